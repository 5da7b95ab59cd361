"""Streaming LAS/LAZ reading with laspy (lazrs backend): header sanity and georeferencing when
opened, then :class:`cim.points.PointChunk` objects of at most ``chunk_points`` points.

LAZ is decoded by lazrs on every core of this process (``LazrsParallel``). That starts threads,
so nothing may ``fork`` after it: the tiler's workers use ``forkserver``/``spawn``.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np

from cim.conversion import ConversionReport
from cim.crs import Frame
from cim.errors import CimError, ParseError, TruncatedFileError
from cim.points import BLOCK_POINTS, PointChunk, PointStats
from converters.base import ConvertOptions
from converters.las.georef import las_frame, read_georef
from converters.las.header import HeaderFacts, check_header, header_bounds_ok

RGB_FORMATS = frozenset({2, 3, 5, 7, 8, 10})
RGB_PROBE_POINTS = 65_536  # the first points decide whether 16-bit RGB fields hold 8-bit values
_KEPT = laspy.DecompressionSelection
#: the LAZ layers the CIM keeps (point formats 6-10 compress each field group in its own layer;
#: GPS time, scan angle, user data, point source, flags, NIR and extra bytes are not decoded)
DECOMPRESSION_SELECTION = (_KEPT.XY_RETURNS_CHANNEL | _KEPT.Z | _KEPT.CLASSIFICATION | _KEPT.INTENSITY
                           | _KEPT.RGB)


def _laz_backend() -> laspy.LazBackend:
    for backend in (laspy.LazBackend.LazrsParallel, laspy.LazBackend.Lazrs):
        if backend.is_available():
            return backend
    raise ParseError("LAZ needs the lazrs backend: pip install 'laspy[lazrs]'")


class LasReading:
    """See :class:`cim.points.PointReading`."""

    def __init__(self, path: Path, options: ConvertOptions, *, chunk_points: int = BLOCK_POINTS) -> None:
        self.path = Path(path)
        self.total_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self.chunk_points = chunk_points
        self.report = ConversionReport(source=self.path.name)
        try:
            with laspy.open(self.path) as reader:
                header = reader.header
                self.facts = check_header(self.path, header, self.total_bytes)
                vlrs = list(header.vlrs)
                self._variable_chunks = _variable_size_chunks(vlrs)
        except CimError:
            raise
        except Exception as exc:  # laspy/lazrs raise many types for damaged headers
            raise ParseError(f"{self.path.name}: not a readable LAS/LAZ header: {exc}", file=str(self.path)) from exc
        facts = self.facts
        self.point_count = facts.point_count
        self.report.format = f"LAS {facts.version} point format {facts.point_format}" + (" (LAZ)" if facts.compressed else "")
        self.declared_extent = (facts.mins, facts.maxs) if header_bounds_ok(facts) else None
        if self.declared_extent is None:
            self.report.warn(f"the header's bounds {facts.mins}..{facts.maxs} are not consistent with its scales "
                             "and offsets; the extent is taken from the points")
        centre = ((facts.mins[0] + facts.maxs[0]) / 2, (facts.mins[1] + facts.maxs[1]) / 2)
        georef = read_georef(vlrs, centre)
        self._frame, self.report.georeferencing = las_frame(georef, options.frame, self.path.name)
        for warning in georef.warnings:
            self.report.warn(f"{self.path.name}: {warning}")
        if georef.notes:
            self.report.georeferencing += "; " + "; ".join(georef.notes)
        self.report.count("points_in_header", facts.point_count)
        self._rgb_8bit: bool | None = None

    @property
    def frame(self) -> Frame:
        return self._frame

    def chunks(self) -> Iterator[PointChunk]:
        facts = self.facts
        read = 0
        zero_rgb = 0
        backend = _laz_backend() if facts.compressed else None
        if facts.point_format in RGB_FORMATS and self._rgb_8bit is None:
            self._rgb_8bit = self._probe_rgb()
        try:
            with laspy.open(self.path, laz_backend=backend, decompression_selection=DECOMPRESSION_SELECTION) as reader:
                for points in reader.chunk_iterator(self.chunk_points):
                    n = len(points)
                    if n == 0:
                        break
                    chunk, top = _to_chunk(points, facts, self._rgb_8bit)
                    if top and self._rgb_8bit is None:  # no colour in the probe: the first coloured chunk decides
                        self._rgb_8bit = top <= 255
                        chunk, _ = _to_chunk(points, facts, self._rgb_8bit)
                    if facts.point_format in RGB_FORMATS and chunk.rgb is None:
                        zero_rgb += n
                    read += n
                    self.bytes_read = int(self.total_bytes * min(1.0, read / facts.point_count))
                    yield chunk
        except CimError:
            raise
        except Exception as exc:
            if read < facts.point_count:
                raise TruncatedFileError(
                    f"{self.path.name}: reading stopped after {read:,} of {facts.point_count:,} points ({exc}); "
                    "the file is truncated or damaged", file=str(self.path), points_read=read) from exc
            raise ParseError(f"{self.path.name}: {exc}", file=str(self.path)) from exc
        stats = PointStats(count=read, zero_rgb=zero_rgb)
        self.finish(stats)

    def pieces(self) -> list[LasPiece] | None:
        """The file as pieces of ``chunk_points`` points that worker processes decode on their
        own (:class:`cim.points.PieceReading`); None when the colour depth cannot be decided
        from the file's first points (then only :meth:`chunks` reads it)."""
        facts = self.facts
        if facts.compressed and self._variable_chunks:
            # LAZ with variable-size chunks (COPC and some writers): laspy/lazrs' seek returns
            # wrong points there (tests/test_las_reader.py), so such files are read in order
            return None
        rgb_8bit = None
        if facts.point_format in RGB_FORMATS:
            rgb_8bit = self._rgb_8bit if self._rgb_8bit is not None else self._probe_rgb()
            if rgb_8bit is None:
                return None
            self._rgb_8bit = rgb_8bit
        step = self.chunk_points
        return [LasPiece(str(self.path), start, min(step, facts.point_count - start), facts, rgb_8bit)
                for start in range(0, facts.point_count, step)]

    def finish(self, stats: PointStats) -> None:
        """Account for the points read (by :meth:`chunks` or by the pieces): the count against
        the header, and the colour warnings, into the report."""
        facts = self.facts
        self.bytes_read = self.total_bytes
        if stats.count < facts.point_count:
            raise TruncatedFileError(f"{self.path.name}: the header announces {facts.point_count:,} points but the "
                                     f"file holds {stats.count:,}: it is truncated or the header lies",
                                     file=str(self.path), header_points=facts.point_count, points_read=stats.count)
        self.report.count("points", stats.count)
        if stats.zero_rgb:
            self.report.warn(f"{self.path.name}: {stats.zero_rgb:,} points have RGB fields that are all zero: "
                             "they are coloured by classification instead")
        if self._rgb_8bit:
            self.report.warn(f"{self.path.name}: RGB holds 8-bit values in 16-bit fields: used as 8-bit")

    def _probe_rgb(self) -> bool | None:
        """Whether the file's RGB fields hold 8-bit values (all <= 255), decided once from its
        first :data:`RGB_PROBE_POINTS` points; None when those have no colour at all."""
        try:
            with laspy.open(self.path, laz_backend=laspy.LazBackend.Lazrs if self.facts.compressed else None,
                            decompression_selection=_KEPT.base() | _KEPT.RGB) as reader:
                points = reader.read_points(min(RGB_PROBE_POINTS, self.facts.point_count))
        except Exception:  # a damaged start: chunks() reports it with the point count
            return None
        if len(points) == 0:
            return None
        top = max(int(np.max(points.red)), int(np.max(points.green)), int(np.max(points.blue)))
        return None if top == 0 else top <= 255


def _variable_size_chunks(vlrs: list[object]) -> bool:
    """True when the LAZ VLR declares variable-size chunks (chunk size 0xFFFFFFFF)."""
    for vlr in vlrs:
        if getattr(vlr, "user_id", "") == "laszip encoded" and getattr(vlr, "record_id", 0) == 22204:
            data = getattr(vlr, "record_data", b"")
            return len(data) >= 16 and int.from_bytes(data[12:16], "little") == 0xFFFFFFFF
    return False


@dataclass(frozen=True)
class LasPiece:
    """``count`` points of a LAS/LAZ file from point ``start`` (:class:`cim.points.PointPiece`)."""

    path: str
    start: int
    count: int
    facts: HeaderFacts
    rgb_8bit: bool | None

    def read(self) -> tuple[PointChunk, PointStats]:
        name = Path(self.path).name
        try:  # one thread per piece: pieces are decoded in parallel by worker processes
            with laspy.open(self.path, laz_backend=laspy.LazBackend.Lazrs if self.facts.compressed else None,
                            decompression_selection=DECOMPRESSION_SELECTION) as reader:
                if self.start:
                    reader.seek(self.start)
                points = reader.read_points(self.count)
        except Exception as exc:
            raise TruncatedFileError(f"{name}: reading points {self.start:,}-{self.start + self.count:,} failed ({exc}); "
                                     "the file is truncated or damaged", file=self.path, points_read=self.start) from exc
        if len(points) < self.count:
            raise TruncatedFileError(f"{name}: the file ends after {self.start + len(points):,} points, before the "
                                     f"{self.start + self.count:,} its header announces: it is truncated or the header lies",
                                     file=self.path, points_read=self.start + len(points))
        chunk, _ = _to_chunk(points, self.facts, self.rgb_8bit)
        stats = PointStats()
        stats.add(chunk)
        if self.facts.point_format in RGB_FORMATS and chunk.rgb is None:
            stats.zero_rgb = len(chunk)
        return chunk, stats


def _to_chunk(points: laspy.ScaleAwarePointRecord, facts: HeaderFacts, rgb_8bit: bool | None) -> tuple[PointChunk, int]:
    """The CIM chunk of laspy points, and the largest raw RGB value (0: no colour). RGB is
    reduced to 8 bits (``rgb_8bit``: the 16-bit fields hold 8-bit values; None: not decided
    yet, the chunk gets no colour)."""
    ixyz = np.empty((len(points), 3), np.int32)
    ixyz[:, 0], ixyz[:, 1], ixyz[:, 2] = points.X, points.Y, points.Z
    rgb = None
    top = 0
    if facts.point_format in RGB_FORMATS:
        raw = np.empty((len(points), 3), np.uint16)
        raw[:, 0], raw[:, 1], raw[:, 2] = points.red, points.green, points.blue
        top = int(raw.max()) if len(raw) else 0
        if top > 0 and rgb_8bit is not None:
            rgb = (np.minimum(raw, 255) if rgb_8bit else raw >> 8).astype(np.uint8)
    return PointChunk(ixyz, facts.scales, facts.offsets, np.asarray(points.intensity, np.uint16),
                      np.asarray(points.classification, np.uint8), np.asarray(points.return_number, np.uint8), rgb), top
