"""Ingestion of point clouds: readers' :class:`cim.points.PointChunk` streams -> point blocks in
the store plus one ``PointCloud`` feature that describes the cloud, in one transaction.

The feature carries the extent (source frame), the CRS, the point count and the counts per ASPRS
class as attributes; its footprint is the extent rectangle (lon/lat), so the cloud shows in
footprint exports and bbox queries like any other city object.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import shapely

from cim.classes import CityClass
from cim.crs import Frame
from cim.placement import check_plausible
from cim.errors import CrsContradictionError, EmptyInputError
from cim.feature import AttributeValue, Feature, Source
from cim.points import PointReading, PointStats, class_name, encode_block
from cim.store.base import DatasetInfo, DatasetWriter, Store

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total)
GEOCENTRIC_HEIGHT_RANGE = (-12_000.0, 100_000.0)  # metres: points of a city scan lie near the surface


def ingest_points(store: Store, dataset: str, readings: Sequence[PointReading], *,
                  progress: ProgressCallback | None = None,
                  on_block: Callable[[bytes], None] | None = None, keep_blocks: bool = True) -> DatasetInfo:
    """Read every point reading into dataset ``dataset`` (replacing it atomically).

    All readings must share one frame (merged into one cloud). Raises
    :class:`CrsContradictionError` when the coordinates do not fit the frame and
    :class:`EmptyInputError` when there is no point. ``on_block(blob)`` is called with each point
    block as it is written, in store order (the one-shot convert path tiles while it imports);
    an exception from it aborts the import. ``keep_blocks=False`` (only with ``on_block``)
    stores the ``PointCloud`` feature but not the points: for a temporary store whose points
    go straight to the tiler.
    """
    if not keep_blocks and on_block is None:
        raise ValueError("keep_blocks=False needs on_block: the points would go nowhere")
    frame = _common_frame(readings)
    total = sum(r.total_bytes for r in readings)
    done_before = 0
    stats = PointStats()
    with store.dataset_writer(dataset) as writer:
        for reading in readings:
            for chunk in reading.chunks():
                n = len(chunk)
                if n == 0:
                    continue
                stats.add(chunk)
                blob = encode_block(chunk)
                if keep_blocks:
                    writer.add_point_block(blob, n)
                if on_block is not None:
                    on_block(blob)
                if progress is not None:
                    progress(done_before + reading.bytes_read, total)
            done_before += reading.total_bytes
            if progress is not None:
                progress(done_before, total)
        return _describe(writer, dataset, frame, readings, stats)


def record_point_cloud(store: Store, dataset: str, readings: Sequence[PointReading], stats: PointStats) -> DatasetInfo:
    """Dataset ``dataset`` (replacing it atomically) as the ``PointCloud`` feature that describes
    the points ``stats`` summarises, without the points: for ``cim convert``, whose points went
    to the tiler straight from the files (decoded piece by piece in its workers)."""
    frame = _common_frame(readings)
    with store.dataset_writer(dataset) as writer:
        return _describe(writer, dataset, frame, readings, stats)


def _common_frame(readings: Sequence[PointReading]) -> Frame:
    frame = readings[0].frame
    for r in readings[1:]:
        if r.frame.spec() != frame.spec():
            raise CrsContradictionError(
                f"{r.path.name} is in {r.frame.describe()} but {readings[0].path.name} is in {frame.describe()}; "
                "import point clouds with different CRSs as separate datasets", file=str(r.path))
    return frame


def _describe(writer: DatasetWriter, dataset: str, frame: Frame, readings: Sequence[PointReading],
              stats: PointStats) -> DatasetInfo:
    """Add the PointCloud feature for ``stats`` and commit."""
    count, lo, hi, classes, returns = stats.count, stats.lo, stats.hi, stats.classes, stats.returns
    if count == 0:
        names = ", ".join(r.path.name for r in readings)
        raise EmptyInputError(f"no point was found in {names}", files=[str(r.path) for r in readings])
    warnings = _check_frame(frame, lo, hi)
    zf = frame.z_to_metres
    attributes: dict[str, AttributeValue] = {
        "point_count": count, "crs": frame.describe(), "coloured_points": stats.coloured,
        "extent.xmin": float(lo[0]), "extent.ymin": float(lo[1]), "extent.zmin": float(lo[2]),
        "extent.xmax": float(hi[0]), "extent.ymax": float(hi[1]), "extent.zmax": float(hi[2]),
    }
    for code in np.flatnonzero(classes):
        attributes[f"class.{int(code)}"] = int(classes[code])
    attributes["class_names"] = "; ".join(f"{int(c)}={class_name(int(c))}" for c in np.flatnonzero(classes))
    for code in np.flatnonzero(returns):
        attributes[f"return.{int(code)}"] = int(returns[code])
    extent = shapely.box(lo[0], lo[1], hi[0], hi[1]) if hi[0] > lo[0] and hi[1] > lo[1] else shapely.Point(lo[0], lo[1]).buffer(1e-6)
    footprint = frame.geometry_to_lonlat(shapely.segmentize(extent, max(hi[0] - lo[0], hi[1] - lo[1]) / 16 or 1.0))
    source_files = ", ".join(r.path.name for r in readings)
    feature = Feature(id=f"{dataset}-points", city_class=CityClass.POINT_CLOUD,
                      source=Source(file=source_files, original_class="LAS point cloud"),
                      name=f"{dataset} ({count} points)", attributes=attributes)
    writer.add(feature, footprint, (float(lo[2] * zf), float(hi[2] * zf)))
    ll = frame.to_lonlat(np.array([lo, hi, [lo[0], hi[1], lo[2]], [hi[0], lo[1], hi[2]]]))
    writer.extend_bbox(ll[:, 0].min(), ll[:, 1].min(), ll[:, 0].max(), ll[:, 1].max())
    files = [r.report.to_dict() for r in readings]
    report = {"files": files, "points": count,
              "points_by_class": {f"{int(c)} {class_name(int(c))}": int(classes[c]) for c in np.flatnonzero(classes)},
              "warnings": warnings + [w for f in files for w in f["warnings"]]}  # type: ignore[attr-defined]
    return writer.commit(frame.spec(), sources=[r.path.name for r in readings], report=report)


def _check_frame(frame: Frame, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """:func:`cim.placement.check_plausible`, plus: geocentric coordinates must lie near the Earth's
    surface (a geocentric label on projected-looking metres is a contradiction)."""
    warnings = check_plausible(frame, lo, hi)
    if getattr(getattr(frame, "crs", None), "is_geocentric", False):
        corners = np.array([lo, hi])
        heights = frame.to_lonlat(corners)[:, 2]
        low, high = GEOCENTRIC_HEIGHT_RANGE
        if np.any(heights < low) or np.any(heights > high):
            raise CrsContradictionError(
                f"the coordinates (x {lo[0]:.1f}..{hi[0]:.1f}, y {lo[1]:.1f}..{hi[1]:.1f}, z {lo[2]:.1f}..{hi[2]:.1f}) "
                f"are labelled geocentric ({frame.describe()}) but lie {heights.min():.0f} m from the ellipsoid; "
                "they look projected: give the right CRS with --crs", crs=frame.describe())
    return warnings
