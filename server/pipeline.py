"""Orchestration shared by the CLI and the HTTP jobs: files -> store -> published tiles.

This is the one place that joins converters and tiling (the dependency rule keeps them apart).
"""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import converters
import tiling
from cim.crs import Frame
from cim.errors import InputError
from cim.ingest import ingest
from cim.point_ingest import ingest_points, record_point_cloud
from cim.points import PieceReading, PointPiece, PointReading, PointStats, is_piece_reading, is_point_reading
from cim.store import DatasetInfo, SqliteStore, open_store
from server.layout import STORE_FILE, DataDir

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]



def check_dataset_name(name: str) -> str:
    """``name`` if it can name a dataset and its tiles folder (docs/layout.md), else InputError."""
    if not tiling.is_dataset_name(name):
        raise InputError(f"'{name}' is not a valid dataset name: use 1-64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit (and not 'city')", dataset=name)
    return name


def dataset_name_for(paths: Sequence[Path]) -> str:
    """A dataset name derived from the first file's name."""
    stem = paths[0].name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:64] or "dataset"
    if not name[0].isalnum():
        name = "d" + name
    return name if tiling.is_dataset_name(name) else name + "-1"


def import_files(store: SqliteStore, dataset: str, paths: Sequence[Path], *, frame: Frame | None = None,
                 progress: Progress | None = None) -> DatasetInfo:
    """Convert ``paths`` into dataset ``dataset`` (replacing it atomically)."""
    check_dataset_name(dataset)
    return _ingest(store, dataset, _open(paths, frame), progress=progress)


def _open(paths: Sequence[Path], frame: Frame | None) -> list[Any]:
    options = converters.ConvertOptions(frame=frame)
    readings = [converters.open_input(p, options) for p in paths]
    if any(is_point_reading(r) for r in readings) and not all(is_point_reading(r) for r in readings):
        raise InputError("point clouds (LAS/LAZ) and other formats cannot make one dataset: import them as "
                         "separate datasets", files=[str(p) for p in paths])
    return readings


def _ingest(store: SqliteStore, dataset: str, readings: list[Any], *, progress: Progress | None,
            on_block: Callable[[bytes], None] | None = None, keep_blocks: bool = True) -> DatasetInfo:
    if readings and is_point_reading(readings[0]):
        return ingest_points(store, dataset, readings, progress=progress, on_block=on_block, keep_blocks=keep_blocks)
    return ingest(store, dataset, readings, progress=progress)


def _pieces(readings: list[Any]) -> list[list[PointPiece]] | None:
    """Each point reading's pieces (:class:`cim.points.PieceReading`), or None when one of them
    cannot be read piece by piece."""
    if not all(is_piece_reading(r) for r in readings):
        return None
    pieces = [r.pieces() for r in readings]
    return None if any(p is None for p in pieces) else pieces


def _ingest_pieces(store: SqliteStore, dataset: str, readings: list[PieceReading], pieces: list[list[PointPiece]],
                   distribution: Any, progress: Progress | None) -> DatasetInfo:
    """The points of ``readings`` decoded and distributed by the tiler's workers, piece by
    piece; the store gets the PointCloud feature that describes them."""
    owner = [i for i, ps in enumerate(pieces) for _ in ps]
    flat = [p for ps in pieces for p in ps]
    stats = [PointStats() for _ in readings]
    total_points = max(1, sum(p.count for p in flat))
    total_bytes = sum(r.total_bytes for r in readings)
    done = 0

    def on_piece(index: int, piece_stats: PointStats) -> None:
        nonlocal done
        stats[owner[index]].merge(piece_stats)
        done += flat[index].count
        if progress is not None:
            progress(int(total_bytes * done / total_points), total_bytes)

    distribution.add_pieces(flat, on_piece)
    merged = PointStats()
    for reading, reading_stats in zip(readings, stats):
        reading.finish(reading_stats)
        merged.merge(reading_stats)
    return record_point_cloud(store, dataset, readings, merged)


def _point_distribution(readings: list[Any], out_dir: Path, format: str, progress: Progress | None) -> Any:
    """For point readings whose headers declare their extent (all in one frame), the tiler's
    distribution, started now so that it runs while the import decodes; else None."""
    if not readings or not all(is_point_reading(r) for r in readings):
        return None
    points: list[PointReading] = readings
    spec = points[0].frame.spec()
    extents = [getattr(r, "declared_extent", None) for r in points]
    if any(e is None for e in extents) or any(r.frame.spec() != spec for r in points[1:]):
        return None
    from tiling.pointcloud import PointDistribution

    lo = np.min([e[0] for e in extents if e is not None], axis=0)
    hi = np.max([e[1] for e in extents if e is not None], axis=0)
    return PointDistribution(spec, (lo, hi), sum(r.point_count for r in points), out_dir, format=format,
                             progress=progress)


def publish(data: DataDir, store: SqliteStore, dataset: str, *, format: str = "1.1",
            progress: Progress | None = None) -> Path:
    """Build and atomically publish the tileset of ``dataset``."""
    return tiling.publish_tileset(store, dataset, data.tiles_root, format=format, progress=progress)


def convert(paths: Sequence[Path], out_dir: Path, *, frame: Frame | None = None, format: str = "1.1",
            import_progress: Progress | None = None, tile_progress: Progress | None = None) -> tuple[DatasetInfo, tiling.TilesetSummary]:
    """One shot: files -> tileset in ``out_dir``, through a temporary store.

    A point cloud whose headers declare its extent is distributed to the tiler's workers while
    it is imported (docs/pointcloud.md). ``out_dir`` is replaced only when the whole conversion
    succeeded.
    """
    if format not in tiling.FORMATS:
        raise InputError(f"unknown 3D Tiles format {format!r}: use one of {', '.join(tiling.FORMATS)}", format=format)
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cim-convert-") as tmp:
        store = open_store(Path(tmp) / STORE_FILE)
        staging: Path | None = None
        distribution = None
        try:
            name = check_dataset_name(dataset_name_for(paths))
            readings = _open(paths, frame)
            staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
            staging.chmod(tiling.PUBLISHED_MODE)  # mkdtemp makes 0700; the output is for others to serve
            distribution = _point_distribution(readings, staging, format, tile_progress)
            if distribution is None:
                info = _ingest(store, name, readings, progress=import_progress)
            else:  # the points go to the tiler only; the temporary store keeps the PointCloud feature
                from tiling.pointcloud import point_cloud_summary

                pieces = _pieces(readings)
                if pieces is not None:  # decoded in the tiler's workers
                    info = _ingest_pieces(store, name, readings, pieces, distribution, import_progress)
                else:
                    info = _ingest(store, name, readings, progress=import_progress, on_block=distribution.add,
                                   keep_blocks=False)
                if not distribution.fits(*point_cloud_summary(store, name)):
                    log.info("%s: the points do not fit the extent the headers declare: reading the files again",
                             name)
                    distribution.close()
                    distribution = None
                    info = _ingest(store, name, _open(paths, frame), progress=import_progress)
            summary = tiling.build_tileset(store, name, staging, format=format, progress=tile_progress,
                                           point_distribution=distribution)
            distribution = None  # closed by build_tileset
            if out_dir.exists():
                old = out_dir.with_name(f".{out_dir.name}.old-{staging.name[-8:]}")
                out_dir.rename(old)
                staging.rename(out_dir)
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(out_dir)
        except BaseException:
            if distribution is not None:
                distribution.close()
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            store.close()
    return info, summary
