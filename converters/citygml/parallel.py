"""Reading a big CityGML file on every core: chunks of top-level members parsed in worker processes.

The main process has already refused DTDs (:func:`safety.check_prolog`) and read the root start
tag; :mod:`converters.citygml.chunks` finds member boundaries every few MB. Each chunk is parsed
in a worker process by the same :class:`MemberStream` as a sequential read, which returns the
finished features (meshes, footprints and mesh bounds included) with the chunk's report; the first
chunk is read by the main process itself while the workers start (:meth:`ParallelRead._start`).
The workers are forked from this process when it runs no other thread (nothing to import, no
lock another thread could hold); otherwise they come from a ``forkserver`` (:func:`pool_context`).
The main process yields them in document order, keeping at most ``workers + 1`` chunks
submitted, and merges:

* reports (counts, skips, warnings; limited warnings keep their limits, :mod:`notes`);
* ``srsName`` declarations: every worker starts from the root envelope's CRS, a different one in
  any chunk raises the same :class:`CrsContradictionError` as a sequential read;
* ids derived for city objects without ``gml:id`` (numbered per chunk, renumbered here).

A chunk that is not well-formed (a truncated file, a syntax error, or a boundary that was not one)
makes the main process read the rest of the file from that chunk's start itself, as one piece:
the error, if real, is then raised exactly as a sequential read raises it (same line numbers).

Limit: ``xlink:href`` references to polygons of city objects in an earlier chunk are not resolved
(each chunk starts with an empty map of earlier polygons); they are counted and reported like any
unresolved reference.
"""
from __future__ import annotations

import gc
import itertools
import logging
import multiprocessing
import threading
from collections import deque
from collections.abc import Hashable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import TYPE_CHECKING

from lxml import etree

from cim import feature_batch
from cim.conversion import ConversionReport
from cim.errors import ParseError
from cim.feature import Feature
from converters.citygml.chunks import Chunk, ChunkSource, Layout, chunks
from converters.citygml.city_object import derived_id, derived_id_warning
from converters.citygml.members import MemberStream, finish_warnings
from converters.citygml.notes import Notes, merge_report
from converters.citygml.srs import SrsTracker
from converters.citygml.xlinks import SeenPolygons

if TYPE_CHECKING:
    from converters.citygml.reader import CityGmlReading

log = logging.getLogger(__name__)

CRS_SEARCH_FEATURES = 1000  # city objects held while looking for a first srsName


@dataclass
class ChunkResult:
    features: list[Feature] = field(default_factory=list)
    report: ConversionReport = field(default_factory=ConversionReport)
    keyed: dict[int, tuple[Hashable, int]] = field(default_factory=dict)
    srs: tuple[str, str] | None = None      # the chunk's first srsName and where
    derived: list[tuple[int, int]] = field(default_factory=list)  # (position, line) of derived ids
    derived_counts: dict[str, int] = field(default_factory=dict)  # class -> ids derived
    flat_rings: int = 0
    objects: int = 0
    not_well_formed: bool = False
    packed: feature_batch.PackedFeatures | None = None  # the features, once :meth:`pack` ran

    def pack(self) -> None:
        """Replace the features by their packed batch (:mod:`cim.feature_batch`)."""
        self.packed = feature_batch.pack(self.features)
        self.features = []

    # sent back from the worker as one packed batch, not feature by feature
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["features"] = self.packed if self.packed is not None else feature_batch.pack(self.features)
        state["packed"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state["features"] = feature_batch.unpack(state["features"])  # type: ignore[arg-type]
        self.__dict__.update(state)


def read_chunk(path: Path, lay: Layout, chunk: Chunk, *, pack: bool = True) -> ChunkResult:
    """Parse one chunk (in a worker process; with ``pack=False`` in this one). The cyclic
    garbage collector is paused meanwhile: a chunk allocates hundreds of thousands of
    short-lived containers, all freed by reference counting, and the collector's passes over
    them cost ~7 % of the worker's time; the few
    cycles (a city object's parts link to their parent) are collected after the chunk. The
    features are packed for sending before the collector resumes: its first pass would otherwise
    visit every object of every feature still alive."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        result = _read_chunk(path, lay, chunk)
        if pack:
            result.pack()
        return result
    finally:
        if was_enabled:
            gc.enable()


def _read_chunk(path: Path, lay: Layout, chunk: Chunk) -> ChunkResult:
    report = ConversionReport(source=path.name)
    notes = Notes(report)
    srs = SrsTracker(path.name, report, None)
    if lay.root_srs:
        srs.seen(lay.root_srs, "root gml:Envelope")
    stream = MemberStream(path, notes, srs, SeenPolygons(), line_offset=chunk.line_offset, defer_derived_ids=True)
    result = ChunkResult(report=report, keyed=notes.keyed)
    with ChunkSource(path, lay, chunk) as src:
        try:
            for batch in stream.batches(src, lambda: True, lambda: src.tell() >= lay.total):
                result.features.extend(batch)
        except ParseError as exc:
            if not isinstance(exc.__cause__, etree.XMLSyntaxError):
                raise
            return ChunkResult(not_well_formed=True)
    result.srs = (srs.declared, srs.where) if srs.declared is not None else None
    result.derived = stream.derived
    result.derived_counts = dict(stream.walker.derived_counts)
    result.flat_rings = stream.walker.geometry.flat_rings
    result.objects = stream.read_objects
    return result


def pool_context() -> BaseContext:
    """How the chunk workers start. ``fork`` when this process runs no thread but the calling
    one (the CLI): the workers then share this process's imports instead
    of importing lxml, numpy, shapely and pyproj again (~0.2 s of a core, and the pool's start
    delay). With other threads running (a server, a test's live server, a progress monitor) a
    fork could copy a lock one of them holds, so the workers come from a ``forkserver`` that
    imports what they need once; ``spawn`` where neither exists (decision 42)."""
    methods = multiprocessing.get_all_start_methods()
    threads = threading.active_count()
    if "fork" in methods and threads == 1:
        method = "fork"
    else:
        method = "forkserver" if "forkserver" in methods else "spawn"
    log.debug("CityGML chunk workers start with %s (%d thread(s) running)", method, threads)
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["cim.worker_env", "converters.citygml.parallel"])
    return context


class ParallelRead:
    """The main process's side: submit chunks, merge results, yield features in order."""

    def __init__(self, reading: CityGmlReading, lay: Layout, chunk_bytes: int, workers: int) -> None:
        self.reading = reading
        self.lay = lay
        self.chunk_bytes = chunk_bytes
        self.workers = workers
        self.notes = reading.notes
        self.derived_counts: dict[str, int] = {}
        self.derived_ids = 0
        self.flat_rings = 0
        self.objects = 0

    def features(self) -> Iterator[Feature]:
        reading, path = self.reading, self.reading.path
        context = pool_context()
        pool = ProcessPoolExecutor(self.workers, mp_context=context)
        todo = chunks(path, self.lay, self.chunk_bytes)
        held: list[Feature] = []
        try:
            pending = self._start(pool, todo, forked=context.get_start_method() == "fork")

            def submit() -> None:
                chunk = next(todo, None)
                if chunk is not None:
                    pending.append((chunk, pool.submit(read_chunk, path, self.lay, chunk)))

            while pending:
                chunk, future = pending.popleft()
                result = future.result()
                if result.not_well_formed:
                    for _, later in pending:
                        later.cancel()
                    pending.clear()
                    yield from self._release(held)
                    held = []
                    yield from self._rest_in_process(chunk)
                    return
                submit()
                self._merge(result)
                reading.bytes_read = chunk.end
                held.extend(result.features)
                if self._may_release():
                    yield from self._release(held)
                    held = []
            yield from self._release(held)
            finish_warnings(self.notes, self.derived_ids, self.flat_rings, path.stem)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _start(self, pool: ProcessPoolExecutor, todo: Iterator[Chunk], *,
               forked: bool) -> deque[tuple[Chunk, Future[ChunkResult]]]:
        """Submit the first chunks and read the very first one here meanwhile. Forked workers
        start at once (the first submit forks them all before the pool starts its own thread).
        Starting them from a forkserver takes a few tenths of a second (it imports lxml, numpy,
        shapely), in which this process would otherwise wait: then a thread submits (the first
        submit blocks until the forkserver runs) while this thread reads. Returns the chunks in
        file order, ``workers`` of them submitted to the pool. (Reading a second chunk here while
        the pool still starts was measured: no faster, it then competes with the starting
        workers.)"""
        path = self.reading.path
        first = next(todo, None)
        if first is None:
            return deque()
        ahead = list(itertools.islice(todo, self.workers))
        submitted: list[Future[ChunkResult]] = []
        failed: list[BaseException] = []

        def start() -> None:
            try:
                for chunk in ahead:
                    submitted.append(pool.submit(read_chunk, path, self.lay, chunk))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the reading thread below
                failed.append(exc)

        if forked:  # the first submit forks every worker, before the pool's own thread starts
            start()
            here = self._here(first)
        else:
            starter = threading.Thread(target=start, name="cim-citygml-pool-start", daemon=True)
            starter.start()
            try:
                here = self._here(first)
            finally:
                starter.join()
        if failed:
            raise failed[0]
        return deque([(first, here), *zip(ahead, submitted)])

    def _here(self, chunk: Chunk) -> Future[ChunkResult]:
        """Read ``chunk`` in this process; its error, if any, is raised in order, as a worker's is."""
        done: Future[ChunkResult] = Future()
        try:
            done.set_result(read_chunk(self.reading.path, self.lay, chunk, pack=False))
        except Exception as exc:  # noqa: BLE001 - kept for future.result()
            done.set_exception(exc)
        return done

    def _may_release(self) -> bool:
        srs = self.reading.srs
        return srs.known or srs.user_frame is not None or self.objects >= CRS_SEARCH_FEATURES

    def _release(self, features: list[Feature]) -> Iterator[Feature]:
        if features:
            self.reading.srs.frame()  # the frame is known before the first feature leaves (or CrsMissingError)
            yield from features

    def _merge(self, result: ChunkResult) -> None:
        if result.report.format:
            self.reading.report.format = result.report.format
        merge_report(self.notes, result.report, result.keyed)
        if result.srs is not None:
            self.reading.srs.seen(*result.srs)
        self._renumber(result)
        self.flat_rings += result.flat_rings
        self.objects += result.objects

    def _renumber(self, result: ChunkResult) -> None:
        """Give ids derived in a chunk the numbers a sequential read gives them."""
        stem = self.reading.path.stem
        renamed: dict[str, str] = {}
        for pos, line in result.derived:
            feature = result.features[pos]
            head, _, number = feature.id.rpartition(":")
            local = head[len(stem) + 1:]
            new = derived_id(stem, local, int(number) + self.derived_counts.get(local, 0))
            if new != feature.id:
                renamed[feature.id] = new
                feature.id = new
            self.notes.warn("derived", derived_id_warning(feature.source.original_class, line, new), 3)
        if renamed:
            for feature in result.features:
                if feature.parent in renamed:
                    feature.parent = renamed[feature.parent]
        for local, n in result.derived_counts.items():
            self.derived_counts[local] = self.derived_counts.get(local, 0) + n
            self.derived_ids += n

    def _rest_in_process(self, chunk: Chunk) -> Iterator[Feature]:
        """Read from ``chunk`` to the end of the file here, as one piece (after a chunk that was
        not well-formed: the error is raised as a sequential read raises it, or the boundary was
        a wrong guess and reading goes on)."""
        reading, path = self.reading, self.reading.path
        rest = Chunk(chunk.index, chunk.start, self.lay.total, chunk.line_offset, True)
        stream = MemberStream(path, self.notes, reading.srs, SeenPolygons(), line_offset=rest.line_offset)
        stream.walker.derived_counts = dict(self.derived_counts)
        stream.walker.derived_ids = self.derived_ids
        stream.walker.geometry.flat_rings = self.flat_rings
        stream.read_objects = self.objects
        with ChunkSource(path, self.lay, rest) as src:
            def may_flush() -> bool:
                return (reading.srs.known or reading.srs.user_frame is not None
                        or stream.read_objects >= CRS_SEARCH_FEATURES)

            for batch in stream.batches(src, may_flush, lambda: src.tell() >= self.lay.total):
                reading.bytes_read = src.tell()
                yield from self._release(batch)
        stream.finish()
