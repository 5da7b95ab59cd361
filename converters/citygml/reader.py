"""CityGML reading: :class:`CityGmlReading` yields features as the file is parsed.

Small files are read sequentially in this process by :class:`MemberStream` (the reference
implementation); files of ``parallel_min_bytes`` or more are split into chunks of top-level members
parsed by the same code in worker processes (:mod:`converters.citygml.parallel`). Both give the
same features in the same order (document order, parents before children).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from cim.conversion import ConversionReport
from cim.cpus import usable_cpus
from cim.crs import Frame
from cim.errors import InputError
from cim.feature import Feature
from converters.base import ConvertOptions
from converters.citygml import chunks, safety
from converters.citygml import namespaces as ns
from converters.citygml.members import MemberStream
from converters.citygml.notes import Notes
from converters.citygml.parallel import CRS_SEARCH_FEATURES, ParallelRead
from converters.citygml.srs import SrsTracker
from converters.citygml.xlinks import SeenPolygons

PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # files this big are read by worker processes
CHUNK_BYTES = 4 * 1024 * 1024          # about this much XML per chunk
_XMLNS = re.compile(r"xmlns(?::[\w.-]+)?\s*=\s*[\"']([^\"']+)[\"']")


class CityGmlReading:
    """See :class:`cim.conversion.Reading`. ``workers`` defaults to the number of CPUs; with
    fewer than two, or below ``parallel_min_bytes``, the file is read in this process."""

    def __init__(self, path: Path, options: ConvertOptions, *, parallel_min_bytes: int = PARALLEL_MIN_BYTES,
                 chunk_bytes: int = CHUNK_BYTES, workers: int | None = None) -> None:
        self.path = Path(path)
        self.report = ConversionReport(source=self.path.name)
        self.notes = Notes(self.report)
        try:
            self.total_bytes = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                self._root_tag = safety.check_prolog(fh, self.path.name)
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}", file=str(self.path)) from exc
        self.bytes_read = 0
        self.report.format = _format_from_root_tag(self._root_tag)
        self.srs = SrsTracker(self.path.name, self.report, options.frame)
        self.parallel_min_bytes = parallel_min_bytes
        self.chunk_bytes = chunk_bytes
        self.workers = workers if workers is not None else usable_cpus()
        #: whether the file was read by worker processes (known once features() has started)
        self.parallel = False
        self._started = False

    @property
    def frame(self) -> Frame:
        return self.srs.frame()

    def features(self) -> Iterator[Feature]:
        if self._started:
            raise InputError(f"{self.path.name} is already being read; open it again to read it twice",
                             file=str(self.path))
        self._started = True
        if self.workers >= 2 and self.total_bytes >= self.parallel_min_bytes:
            lay = chunks.layout(self.path, self._root_tag)
            if lay is not None and lay.total - lay.first_member > self.chunk_bytes:
                self.parallel = True
                yield from ParallelRead(self, lay, self.chunk_bytes, self.workers).features()
                self.bytes_read = self.total_bytes
                return
        yield from self._sequential()

    def _sequential(self) -> Iterator[Feature]:
        stream = MemberStream(self.path, self.notes, self.srs, SeenPolygons())
        srs = self.srs

        def may_flush() -> bool:  # hold the first city objects until a CRS is known
            return srs.known or srs.user_frame is not None or stream.read_objects >= CRS_SEARCH_FEATURES

        with open(self.path, "rb") as fh:
            for batch in stream.batches(fh, may_flush, lambda: fh.tell() >= self.total_bytes):
                self.bytes_read = stream.bytes_read
                srs.frame()  # the frame is known before the first feature leaves (or CrsMissingError)
                yield from batch
        self.bytes_read = self.total_bytes
        stream.finish()


def _format_from_root_tag(root_tag: str) -> str:
    version = ns.citygml_version(set(_XMLNS.findall(root_tag)))
    return f"CityGML {version}" if version else "XML"
