"""Ingestion: converters' features -> the store, in one transaction per dataset.

This is the one place that batches writes; converters only yield features.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cim.conversion import Reading
from cim.crs import Frame, check_plausible
from cim.errors import CrsContradictionError, EmptyInputError
from cim.footprint import footprint_from_meshes
from cim.store.base import DatasetInfo, Store

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)


def ingest(store: Store, dataset: str, readings: Sequence[Reading], *,
           progress: ProgressCallback | None = None) -> DatasetInfo:
    """Read every input into dataset ``dataset`` (replacing it). All inputs must share one frame.

    Atomic: on any error (parse, CRS, store) the previous version of the dataset stays as it was.
    """
    total = sum(r.total_bytes for r in readings)
    done_before = 0
    frame: Frame | None = None
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    with store.dataset_writer(dataset) as writer:
        for reading in readings:
            first = True
            for feature in reading.features():
                if first:
                    frame = _same_frame(frame, reading)
                    first = False
                assert frame is not None
                height = feature.height_range()
                if height is not None:
                    zf = frame.z_to_metres
                    height = (height[0] * zf, height[1] * zf)
                for mesh in feature.geometry.values():
                    if not mesh.is_empty:
                        mlo, mhi = mesh.bounds()
                        np.minimum(lo, mlo, out=lo)
                        np.maximum(hi, mhi, out=hi)
                footprint = feature.footprint
                if footprint is None and feature.parent is None and feature.geometry:
                    best = feature.best_lod()
                    footprint = footprint_from_meshes([feature.geometry[best]]) if best is not None else None
                footprint_ll = frame.geometry_to_lonlat(footprint) if footprint is not None else None
                writer.add(feature, footprint_ll, height)
                if progress is not None:
                    progress(done_before + reading.bytes_read, total)
            done_before += reading.total_bytes
            if progress is not None:
                progress(done_before, total)
        if frame is None or not np.isfinite(lo[0]):
            names = ", ".join(str(r.path.name) for r in readings)
            raise EmptyInputError(f"no feature with geometry was found in {names}", files=[str(r.path) for r in readings])
        warnings = check_plausible(frame, lo, hi)
        report = _merge_reports(readings, warnings)
        if hasattr(writer, "extend_bbox"):
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
