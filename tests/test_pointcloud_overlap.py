"""Tiling while importing (the one-shot convert path): a :class:`PointDistribution` fed with the
blocks as the import writes them gives the tiles of a build from the store; one whose declared
extent or count the imported cloud does not fit is redone from the store. Real samples from
../shared/data/las (MANIFEST.tsv)."""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import struct
from pathlib import Path

import laspy
import numpy as np
import pytest

import converters
from cim.errors import StoreError
from cim.store import SqliteStore, open_store
from converters.las import LasReading
from server import pipeline
from tests.test_tiling_judges import check_tileset
from tiling.pointcloud import PointCloudParams, PointDistribution, build_point_tiles, point_cloud_summary

IGN = "IGN_semis_2023_0292_6833_LA93_IGN69.laz"
PARAMS = PointCloudParams(memory_points=60_000, leaf_points=10_000, workers=2, serial_below=0)


def _digests(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _import(store: SqliteStore, path: Path, distribution: PointDistribution | None = None) -> None:
    """Import in blocks of 50 000 points (6 blocks: the block order matters to the tiles)."""
    reading = LasReading(path, converters.ConvertOptions(), chunk_points=50_000)
    pipeline._ingest(store, "ign", [reading], progress=None, on_block=None if distribution is None else distribution.add)


@pytest.fixture()
def reference(shared_data: Path, tmp_path: Path) -> tuple[SqliteStore, dict[str, str], tuple[np.ndarray, np.ndarray], int]:
    """IGN imported, tiled from the store: (store, digests, extent, points)."""
    store = open_store(tmp_path / "ref.gpkg")
    _import(store, shared_data / "las" / IGN)
    build_point_tiles(store, "ign", tmp_path / "ref", format="1.1", params=PARAMS)
    total, extent = point_cloud_summary(store, "ign")
    assert total == store.point_block_count("ign")[1] > 0
    return store, _digests(tmp_path / "ref"), extent, total


def test_distributing_while_importing_gives_the_tiles_of_a_build_from_the_store(
        reference: tuple[SqliteStore, dict[str, str], tuple[np.ndarray, np.ndarray], int],
        shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ref_store, want, extent, total = reference
    store = open_store(tmp_path / "city.gpkg")
    out = tmp_path / "out"
    distribution = PointDistribution(ref_store.get_dataset("ign").frame, extent, total, out, format="1.1", params=PARAMS)
    _import(store, shared_data / "las" / IGN, distribution)
    assert distribution.blocks == store.point_block_count("ign")[0] > 1
    with caplog.at_level(logging.INFO, logger="tiling.pointcloud.build"):
        build_point_tiles(store, "ign", out, format="1.1", params=PARAMS, distribution=distribution)
    assert "distributing again" not in caplog.text
    assert _digests(out) == want  # byte for byte
    assert not (out / ".spill").exists()


@pytest.mark.parametrize("wrong", ["extent", "count"])
def test_a_distribution_the_cloud_does_not_fit_is_redone_from_the_store(
        reference: tuple[SqliteStore, dict[str, str], tuple[np.ndarray, np.ndarray], int],
        shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, wrong: str) -> None:
    ref_store, want, (lo, hi), total = reference
    if wrong == "extent":  # a header whose bounds miss the east half of the points
        declared, count = (lo, np.array([(lo[0] + hi[0]) / 2, hi[1], hi[2]])), total
    else:
        declared, count = (lo, hi), total + 1
    store = open_store(tmp_path / "city.gpkg")
    out = tmp_path / "out"
    distribution = PointDistribution(ref_store.get_dataset("ign").frame, declared, count, out, format="1.1", params=PARAMS)
    _import(store, shared_data / "las" / IGN, distribution)
    with caplog.at_level(logging.INFO, logger="tiling.pointcloud.build"):
        build_point_tiles(store, "ign", out, format="1.1", params=PARAMS, distribution=distribution)
    assert "distributing again" in caplog.text
    assert _digests(out) == want


def _lying_max_x(src: Path, dst: Path) -> float:
    """Copy ``src`` with the header's max X set to the middle of its x range (LAS header: max X
    at byte 179, min X at 187, little-endian doubles); returns the points' true max x."""
    shutil.copy(src, dst)
    with open(dst, "r+b") as fh:
        fh.seek(179)
        max_x, min_x = struct.unpack("<2d", fh.read(16))
        fh.seek(179)
        fh.write(struct.pack("<d", (max_x + min_x) / 2))
    return max_x


def test_convert_tiles_while_importing_and_survives_a_lying_header(
        shared_data: Path, shared_tools: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = shared_data / "las" / "autzen_trim.las"
    with caplog.at_level(logging.INFO, logger="tiling.pointcloud.build"):
        info, summary = pipeline.convert([src], tmp_path / "ok")
    assert "distributing again" not in caplog.text  # tiled from the blocks as they were decoded
    caplog.clear()
    lying = tmp_path / "autzen_lying.las"
    true_max = _lying_max_x(src, lying)
    assert laspy.read(lying).x.max() == pytest.approx(true_max)
    with caplog.at_level(logging.INFO):
        info2, summary2 = pipeline.convert([lying], tmp_path / "lying")
    assert "reading the files again" in caplog.text
    assert summary.features == summary2.features == 110_000
    ok, redone = _digests(tmp_path / "ok"), _digests(tmp_path / "lying")
    del ok["tileset.json"], redone["tileset.json"]  # names its dataset (the file's name)
    assert ok == redone  # the same cloud: the same contents
    report = check_tileset(shared_tools, tmp_path / "ok", tmp_path / "check.json")
    assert report["totals"]["errors"] == 0, json.dumps(report["issueSummary"], indent=1)[:3000]
    assert not list(tmp_path.glob(".*staging*"))


def test_points_can_go_to_the_tiler_only(shared_data: Path, tmp_path: Path) -> None:
    """convert's temporary store keeps the PointCloud feature, not the points: the tiles are the
    same as from a store that holds them, and a build without the distribution is refused."""
    src = shared_data / "las" / "autzen_trim.las"
    store = open_store(tmp_path / "city.gpkg")
    reading = LasReading(src, converters.ConvertOptions(), chunk_points=50_000)
    extent = reading.declared_extent
    assert extent is not None
    distribution = PointDistribution(reading.frame.spec(), (np.array(extent[0]), np.array(extent[1])), reading.point_count,
                                     tmp_path / "out", format="1.1", params=PARAMS)
    with pytest.raises(ValueError):
        pipeline._ingest(store, "a", [reading], progress=None, keep_blocks=False)
    pipeline._ingest(store, "a", [reading], progress=None, on_block=distribution.add, keep_blocks=False)
    assert store.point_block_count("a") == (0, 0)
    assert point_cloud_summary(store, "a")[0] == 110_000
    build_point_tiles(store, "a", tmp_path / "out", format="1.1", params=PARAMS, distribution=distribution)
    ref = open_store(tmp_path / "ref.gpkg")
    pipeline._ingest(ref, "a", [LasReading(src, converters.ConvertOptions(), chunk_points=50_000)], progress=None)
    build_point_tiles(ref, "a", tmp_path / "ref", format="1.1", params=PARAMS)
    assert _digests(tmp_path / "out") == _digests(tmp_path / "ref")
    with pytest.raises(StoreError, match="import it again"):
        build_point_tiles(store, "a", tmp_path / "again", format="1.1", params=PARAMS)


def test_convert_decodes_several_files_in_the_workers(shared_data: Path, tmp_path: Path) -> None:
    """Two halves of one LAZ through cim convert's piece path (worker processes): every point
    once, the counts per file checked, the same points as the whole file."""
    whole = laspy.read(shared_data / "las" / IGN)
    halves = []
    for i, part in enumerate((whole.points[:150_000], whole.points[150_000:])):
        out = laspy.LasData(whole.header)
        out.points = part
        path = tmp_path / f"ign_{i}.laz"
        out.write(path)
        halves.append(path)
    readings = [converters.open_input(p) for p in halves]
    assert all(r.pieces() is not None for r in readings)
    info, summary = pipeline.convert(halves, tmp_path / "out")
    assert summary.features == len(whole.points) == 289_055
    assert info.sources == ["ign_0.laz", "ign_1.laz"]
    files = info.report["files"]
    assert [f["counts"]["points"] for f in files] == [150_000, 139_055]
    cls = {k: v for k, v in info.report["points_by_class"].items()}
    want = {int(c): int(n) for c, n in zip(*np.unique(np.asarray(whole.classification), return_counts=True))}
    assert {int(k.split()[0]): v for k, v in cls.items()} == want
