"""Ingestion: converters' features -> the store, in one transaction per dataset.

This is the one place that batches writes; converters only yield features (parents before their
children). Per group (a top-level feature and its descendants) ingestion derives the top-level
footprint and height range; per batch of groups it transforms footprints to lon/lat in one call.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from cim.conversion import Reading
from cim.crs import Frame
from cim.placement import check_plausible
from cim.errors import CrsContradictionError, EmptyInputError
from cim.feature import Feature
from cim.footprint import footprint_from_meshes
from cim.store.base import DatasetInfo, DatasetWriter, Store

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)
BATCH_FEATURES = 512


class _Batcher:
    """Collects groups of features and writes them with derived footprints and heights."""

    def __init__(self, writer: DatasetWriter) -> None:
        self.writer = writer
        self.frame: Frame | None = None
        self.features: list[Feature] = []
        self.group_start: int = 0
        self.groups: list[tuple[int, int]] = []  # [start, end) of each complete group
        self.lo = np.full(3, np.inf)
        self.hi = np.full(3, -np.inf)

    def add(self, feature: Feature, frame: Frame) -> None:
        if feature.parent is None and self.features:
            self.groups.append((self.group_start, len(self.features)))
            self.group_start = len(self.features)
            if len(self.features) >= BATCH_FEATURES:
                self.flush(final=False)
        self.frame = frame
        self.features.append(feature)

    def flush(self, final: bool = True) -> None:
        if final and self.features:
            self.groups.append((self.group_start, len(self.features)))
        frame = self.frame
        if frame is None or not self.groups:
            return
        end = self.groups[-1][1]
        batch, rest = self.features[:end], self.features[end:]
        zf = frame.z_to_metres
        heights: list[tuple[float, float] | None] = []
        for f in batch:
            h = f.height_range()
            heights.append(None if h is None else (h[0] * zf, h[1] * zf))
            for mesh in f.geometry.values():
                if not mesh.is_empty:
                    mlo, mhi = mesh.bounds()
                    np.minimum(self.lo, mlo, out=self.lo)
                    np.maximum(self.hi, mhi, out=self.hi)
        footprints: list[BaseGeometry | None] = [None] * len(batch)
        for start, stop in self.groups:
            top = batch[start]
            if top.parent is not None:
                continue  # an orphan child: no footprint of its own
            fp = top.footprint
            if fp is None and top.geometry:
                best = top.best_lod()
                fp = footprint_from_meshes([top.geometry[best]]) if best is not None else None
            footprints[start] = fp
            if heights[start] is None:  # a building made of parts: its height range is theirs
                ranges = [h for h in heights[start + 1:stop] if h is not None]
                if ranges:
                    heights[start] = (min(r[0] for r in ranges), max(r[1] for r in ranges))
        for start, stop in self.groups:
            _inner_footprints(batch, heights, footprints, start, stop)
        idx = [i for i, fp in enumerate(footprints) if fp is not None]
        if idx:
            converted = _to_lonlat(frame, [footprints[i] for i in idx])
            for i, g in zip(idx, converted):
                footprints[i] = g
        self.writer.add_many(batch, footprints, heights)
        self.features = rest
        self.group_start = 0
        self.groups = []


def _inner_footprints(batch: list[Feature], heights: list[tuple[float, float] | None],
                      footprints: list[BaseGeometry | None], start: int, stop: int) -> None:
    """Features below the top of a group that carry their own footprint (e.g. an IFC Building
    under its Site) keep it; without geometry of their own, their height range is that of
    their descendants (parents come before children within a group)."""
    inner = [i for i in range(start + 1, stop) if batch[i].footprint is not None]
    if not inner:
        return
    index = {batch[i].id: i for i in range(start, stop)}
    ranges: dict[int, tuple[float, float]] = {}
    for i in range(stop - 1, start, -1):  # children before parents: roll height ranges up
        own = heights[i] if heights[i] is not None else ranges.get(i)
        parent = index.get(batch[i].parent) if batch[i].parent else None
        if own is not None and parent is not None:
            cur = ranges.get(parent)
            ranges[parent] = own if cur is None else (min(cur[0], own[0]), max(cur[1], own[1]))
    for i in inner:
        footprints[i] = batch[i].footprint
        if heights[i] is None:
            heights[i] = ranges.get(i)


def _to_lonlat(frame: Frame, geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    """All geometries to lon/lat with one transformation call."""
    collection = shapely.GeometryCollection(geoms)
    converted = frame.geometry_to_lonlat(collection)
    return list(converted.geoms)  # type: ignore[attr-defined]


def ingest(store: Store, dataset: str, readings: Sequence[Reading], *,
           progress: ProgressCallback | None = None) -> DatasetInfo:
    """Read every input into dataset ``dataset`` (replacing it). All inputs must share one frame.

    Atomic: on any error (parse, CRS, store) the previous version of the dataset stays as it was.
    """
    total = sum(r.total_bytes for r in readings)
    done_before = 0
    frame: Frame | None = None
    with store.dataset_writer(dataset) as writer:
        batcher = _Batcher(writer)
        for reading in readings:
            first = True
            for n, feature in enumerate(reading.features()):
                if first:
                    frame = _same_frame(frame, reading)
                    first = False
                assert frame is not None
                batcher.add(feature, frame)
                if progress is not None and n % 64 == 0:
                    progress(done_before + reading.bytes_read, total)
            batcher.flush()
            done_before += reading.total_bytes
            if progress is not None:
                progress(done_before, total)
        lo, hi = batcher.lo, batcher.hi
        if frame is None or not np.isfinite(lo[0]):
            names = ", ".join(str(r.path.name) for r in readings)
            raise EmptyInputError(f"no feature with geometry was found in {names}", files=[str(r.path) for r in readings])
        warnings = check_plausible(frame, lo, hi)
        report = _merge_reports(readings, warnings)
        ll = frame.to_lonlat(np.array([lo, hi, [lo[0], hi[1], lo[2]], [hi[0], lo[1], hi[2]]]))
        writer.extend_bbox(ll[:, 0].min(), ll[:, 1].min(), ll[:, 0].max(), ll[:, 1].max())
        return writer.commit(frame.spec(), sources=[str(r.path.name) for r in readings], report=report)


def _same_frame(current: Frame | None, reading: Reading) -> Frame:
    frame = reading.frame
    if current is not None and current.spec() != frame.spec():
        raise CrsContradictionError(
            f"{reading.path.name} is in {frame.describe()} but the files before it are in {current.describe()}; "
            "import files with different CRSs as separate datasets", file=str(reading.path))
    return frame


def _merge_reports(readings: Sequence[Reading], extra_warnings: list[str]) -> dict[str, object]:
    files = [r.report.to_dict() for r in readings]
    return {"files": files, "warnings": extra_warnings + [w for f in files for w in f["warnings"]]}  # type: ignore[union-attr]
