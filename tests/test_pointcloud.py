"""Point clouds end to end: LAS/LAZ -> PointCloud dataset (blocks in the store) -> octree tiles
(glb POINTS / pnts), judged by check-tileset and, for one sample, CesiumJS."""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import laspy
import numpy as np
import pytest

from cim.conversion import ConversionReport
from cim.crs import Frame, crs_frame, frame_from_spec
from cim.placement import user_frame
from cim.point_ingest import ingest_points
from cim.points import PointChunk, class_name
from cim.errors import CrsContradictionError, TruncatedFileError
from cim.store import SqliteStore, open_store
from server import pipeline
from tests.test_tiling_judges import check_tileset, view_tileset
from tiling import build_tileset, city_tileset, dataset_child_uri, publish_tileset, read_glb, read_property_table
from tiling.glb import read_accessor
from tiling.pointcloud import PointCloudParams, build_point_tiles, read_pnts
from tiling.pointcloud.octree import POINT, Cube, grid_select, octant, shuffle_order, take_records
from tiling.tileset import matrix_from_json

SMALL = PointCloudParams(memory_points=20_000, leaf_points=5_000, grid=32, workers=2, serial_below=0)


@pytest.fixture()
def store(tmp_path: Path) -> SqliteStore:
    return open_store(tmp_path / "city.gpkg")


def _las(shared_data: Path, name: str) -> Path:
    return shared_data / "las" / name


def test_import_makes_one_pointcloud_feature(store: SqliteStore, shared_data: Path) -> None:
    info = pipeline.import_files(store, "ahn", [_las(shared_data, "AHN3_Delft_cropped_2.laz")],
                                 frame=user_frame(crs="EPSG:28992"))
    assert info.feature_count == 1 and info.class_counts == {"PointCloud": 1}
    assert store.point_block_count("ahn")[1] == 208_432
    feature = next(iter(store.iter_features("ahn")))
    assert feature.attributes["point_count"] == 208_432
    raw = laspy.read(_las(shared_data, "AHN3_Delft_cropped_2.laz"))
    for code, n in zip(*np.unique(np.asarray(raw.classification), return_counts=True)):
        assert feature.attributes[f"class.{int(code)}"] == int(n)
    assert feature.attributes["extent.xmin"] == pytest.approx(85000.0, abs=0.01)  # MANIFEST bbox
    west, south, east, north = info.bbox or (0, 0, 0, 0)
    assert 4.3 < west < east < 4.4 and 52.0 < south < north < 52.1  # Delft
    rows = list(store.footprints(dataset="ahn"))
    assert len(rows) == 1 and rows[0].city_class == "PointCloud"


def test_several_files_merge_into_one_dataset(store: SqliteStore, shared_data: Path) -> None:
    info = pipeline.import_files(store, "autzen", [_las(shared_data, "autzen_trim.las"), _las(shared_data, "simple.las")],
                                 frame=user_frame(crs="EPSG:2994"))
    assert store.point_block_count("autzen")[1] == 110_000 + 1_065
    assert info.sources == ["autzen_trim.las", "simple.las"]


def test_files_in_different_crs_are_not_merged(store: SqliteStore, shared_data: Path) -> None:
    with pytest.raises(CrsContradictionError, match="separate datasets"):
        pipeline.import_files(store, "mixed", [_las(shared_data, "autzen_trim.las"), _las(shared_data, "with_srs_3857.las")])


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4978"])
def test_crs_contradicting_the_coordinates_is_refused(store: SqliteStore, shared_data: Path, crs: str) -> None:
    with pytest.raises(CrsContradictionError):
        pipeline.import_files(store, "wrong", [_las(shared_data, "autzen_trim.las")], frame=user_frame(crs=crs))
    assert not store.has_dataset("wrong")


def test_failed_import_keeps_previous_version(store: SqliteStore, shared_data: Path, tmp_path: Path) -> None:
    pipeline.import_files(store, "pc", [_las(shared_data, "fullwave_yellowscan.laz")])
    broken = tmp_path / "fullwave_yellowscan.laz"
    data = _las(shared_data, "fullwave_yellowscan.laz").read_bytes()
    broken.write_bytes(data[: len(data) * 3 // 4])
    with pytest.raises(TruncatedFileError):
        pipeline.import_files(store, "pc", [broken])
    assert store.point_block_count("pc")[1] == 10_750
    assert store.get_dataset("pc").version == 1


# --- octree ---------------------------------------------------------------------------------

def test_grid_select_keeps_one_point_per_cell() -> None:
    rng = np.random.default_rng(5)
    cube = Cube((0.0, 0.0, 0.0), 16.0)
    p = rng.uniform(0, 8, (20_000, 3))  # all in node (1, 0, 0, 0): 8 m, cells of 8/16 m
    keep = grid_select(cube.quantize(p.T), 1, 16)
    cells = np.floor(p / 0.5).astype(int)
    assert len({tuple(c) for c in cells[keep]}) == keep.sum() == len({tuple(c) for c in cells})
    inner = cube.quantize(rng.uniform(0, 2, (3, 20_000)))  # all inside node (3, 0, 0, 0)
    for level in (0, 1, 2, 3):  # the compact key of the cells varying inside it selects the same
        np.testing.assert_array_equal(grid_select(inner, level, 16, within=3), grid_select(inner, level, 16))


def test_quantized_node_keys_and_octants_match_the_geometry() -> None:
    rng = np.random.default_rng(8)
    cube = Cube((-100.0, 200.0, -5.0), 1000.0)
    p = rng.uniform(0, 1000, (3, 50_000)) + np.array(cube.lo)[:, None]
    q = cube.quantize(p)
    assert np.abs(cube.to_plane(q, 0) - p[0]).max() <= cube.unit
    for level in (0, 1, 3, 5):
        n = 1 << level
        idx = np.floor((p - np.array(cube.lo)[:, None]) / cube.side(level)).astype(np.int64).clip(0, n - 1)
        np.testing.assert_array_equal(cube.node_key(q, level), (idx[0] * n + idx[1]) * n + idx[2])
    o = octant(q, 0)
    np.testing.assert_array_equal(o, (p[0] >= cube.lo[0] + 500) + 2 * (p[1] >= cube.lo[1] + 500) + 4 * (p[2] >= cube.lo[2] + 500))
    with pytest.raises(ValueError, match="power of two"):
        grid_select(q, 0, 100)


def test_take_records_equals_fancy_indexing() -> None:
    rng = np.random.default_rng(7)
    points = np.zeros(5_000, POINT)
    points["q"] = rng.integers(0, 2**32, (5_000, 3))
    points["rgb"] = rng.integers(0, 256, (5_000, 3))
    points["cls"], points["inten"], points["seq"] = rng.integers(0, 20, 5_000), rng.integers(0, 65535, 5_000), 3
    index = rng.permutation(5_000)[:3_000]
    got = take_records(points, index)
    assert got.dtype == POINT and got.tobytes() == points[index].tobytes()


def test_shuffle_order_does_not_depend_on_spill_file_order() -> None:
    """Workers append blocks to a node's spill files in any order: the order used for
    subsampling must be the same whichever file is read first."""
    rng = np.random.default_rng(6)
    a = rng.integers(0, 2**32, (3, 70_000)).astype(np.uint32)
    b = rng.integers(0, 2**32, (3, 50_000)).astype(np.uint32)
    sa, sb = np.zeros(70_000, np.uint16), np.ones(50_000, np.uint16)
    one = np.hstack([a, b])[:, shuffle_order(np.hstack([a, b]), np.r_[sa, sb])]
    two = np.hstack([b, a])[:, shuffle_order(np.hstack([b, a]), np.r_[sb, sa])]
    assert np.array_equal(one, two)
    assert not np.array_equal(one, np.hstack([a, b]))  # and it is shuffled


def _contents_in_ecef(out: Path, doc: dict) -> tuple[np.ndarray, int]:
    """Every point of every content, in ECEF, through the tile transforms (as a client does)."""
    points: list[np.ndarray] = []
    tiles = 0

    def walk(tile: dict, parent: np.ndarray) -> None:
        nonlocal tiles
        world = parent @ matrix_from_json(tile.get("transform"))
        if "content" in tile:
            tiles += 1
            data = (out / tile["content"]["uri"]).read_bytes()
            if tile["content"]["uri"].endswith(".glb"):
                gltf, binary = read_glb(data)
                prim = gltf["meshes"][0]["primitives"][0]
                assert prim["mode"] == 0
                yup = read_accessor(gltf, binary, prim["attributes"]["POSITION"]).astype(np.float64)
                position = gltf["accessors"][prim["attributes"]["POSITION"]]  # bounds given, not computed
                assert position["min"] == yup.min(axis=0).tolist() and position["max"] == yup.max(axis=0).tolist()
                enu = np.column_stack([yup[:, 0], -yup[:, 2], yup[:, 1]])  # client's y-up -> z-up
                colour = gltf["accessors"][prim["attributes"]["COLOR_0"]]
                assert colour["normalized"] and colour["type"] == "VEC4"
                cls = read_accessor(gltf, binary, prim["attributes"]["_CLASSIFICATION"])
                assert len(cls) == len(enu)
                # a click shows the point's class: feature id = class code -> class table row
                ids = read_accessor(gltf, binary, prim["attributes"]["_FEATURE_ID_0"])
                np.testing.assert_array_equal(ids, cls)
                table = read_property_table(gltf, binary, 0)
                assert len(table["class_name"]) == int(cls.max()) + 1
                assert all(table["class_name"][c] == class_name(c) for c in np.unique(cls).tolist())
            else:
                ft, ft_bin, bt, bt_bin = read_pnts(data)
                n = ft["POINTS_LENGTH"]
                enu = np.frombuffer(ft_bin, "<f4", n * 3, ft["POSITION"]["byteOffset"]).reshape(n, 3).astype(np.float64)
                assert set(bt) == {"classification", "intensity", "return_number"}
            points.append(enu @ world[:3, :3].T + world[:3, 3])
        for child in tile.get("children", []):
            walk(child, world)

    walk(doc["root"], np.eye(4))
    return np.concatenate(points), tiles


def _max_nearest(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance from a point of ``a`` to its nearest point of ``b`` (brute force)."""
    worst = 0.0
    for start in range(0, len(a), 64):
        d = ((a[start:start + 64, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        worst = max(worst, float(np.sqrt(d.min(axis=1)).max()))
    return worst


@pytest.mark.parametrize("fmt", ["1.1", "1.0"])
def test_every_point_lands_once_where_it_belongs(store: SqliteStore, shared_data: Path, tmp_path: Path, fmt: str) -> None:
    path = _las(shared_data, "autzen_trim.las")
    info = pipeline.import_files(store, "autzen", [path])
    doc, result = build_point_tiles(store, "autzen", tmp_path / "out", format=fmt, params=SMALL)
    assert result.depth >= 3 and result.points == 110_000
    got, tiles = _contents_in_ecef(tmp_path / "out", doc)
    assert tiles == result.contents and len(got) == 110_000
    raw = laspy.read(path)
    want = frame_from_spec(info.frame).to_ecef(np.column_stack([raw.x, raw.y, raw.z]))
    assert _max_nearest(want[::400], got) < 0.005 and _max_nearest(got[::400], want) < 0.005  # millimetres
    assert doc["root"]["refine"] == "ADD"
    assert not (tmp_path / "out" / ".spill").exists()


def test_tiles_do_not_depend_on_worker_count(store: SqliteStore, shared_data: Path, tmp_path: Path) -> None:
    pipeline.import_files(store, "ign", [_las(shared_data, "IGN_semis_2023_0292_6833_LA93_IGN69.laz")])
    digests = []
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        params = PointCloudParams(memory_points=60_000, leaf_points=10_000, workers=workers, serial_below=0)
        build_point_tiles(store, "ign", out, format="1.1", params=params)
        digests.append({p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert digests[0] == digests[1]


@pytest.mark.parametrize("fmt", ["1.1", "1.0"])
def test_check_tileset_accepts_point_tiles(store: SqliteStore, shared_data: Path, shared_tools: Path,
                                          tmp_path: Path, fmt: str) -> None:
    pipeline.import_files(store, "ign", [_las(shared_data, "IGN_semis_2023_0292_6833_LA93_IGN69.laz")])
    out = tmp_path / "ign"
    summary = build_tileset(store, "ign", out, format=fmt)
    assert summary.features == 289_055 and summary.contents > 1
    report = check_tileset(shared_tools, out, tmp_path / "check.json")
    assert report["totals"]["errors"] == 0, json.dumps(report["issueSummary"], indent=1)[:3000]
    assert report["totals"]["filesByType"] == {"glb" if fmt == "1.1" else "pnts": summary.contents, "tileset": 1}


def test_point_dataset_joins_the_city_tileset(store: SqliteStore, shared_data: Path, tmp_path: Path) -> None:
    pipeline.import_files(store, "yellowscan", [_las(shared_data, "fullwave_yellowscan.laz")])
    folder = publish_tileset(store, "yellowscan", tmp_path / "tiles")
    doc = json.loads((folder / "tileset.json").read_text())
    city = city_tileset([(dataset_child_uri("yellowscan"), doc)])
    assert city["root"]["children"][0]["content"]["uri"] == "../yellowscan/tileset.json"
    west, south = np.degrees(city["root"]["boundingVolume"]["region"][:2])
    assert -48 < west < -47.5 and -16 < south < -15.5  # Brazil (UTM 23S, west of its -45 meridian)


@pytest.mark.browser
def test_cesium_shows_the_points(store: SqliteStore, shared_data: Path, shared_tools: Path, tmp_path: Path) -> None:
    pipeline.import_files(store, "autzen", [_las(shared_data, "autzen_trim.las")])
    out = tmp_path / "autzen"
    build_tileset(store, "autzen", out)
    report = view_tileset(shared_tools, out / "tileset.json", tmp_path / "view.json", tmp_path / "shot.png")
    assert report["tileErrors"] == [] and report["content"]["pointsLoaded"] == 110_000, json.dumps(report)[:3000]
    assert report["content"]["featuresLoaded"] > 0  # class-table features, for picking
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    shutil.copyfile(tmp_path / "shot.png", tmp_path / "kept.png")


@dataclass
class _Points:
    """A PointReading over chunks made in the test (see cim.points.PointReading)."""

    path: Path
    frame: Frame
    made: list[PointChunk]
    report: ConversionReport = field(default_factory=ConversionReport)
    bytes_read: int = 0
    total_bytes: int = 1

    @property
    def point_count(self) -> int:
        return sum(len(c) for c in self.made)

    def chunks(self) -> Iterator[PointChunk]:
        yield from self.made


def _chunk(ixyz: np.ndarray) -> PointChunk:
    n = len(ixyz)
    return PointChunk(ixyz.astype(np.int32), (0.001, 0.001, 0.001), (545_000.0, 1_772_000.0, 0.0),
                      np.zeros(n, np.uint16), np.full(n, 2, np.uint8), np.ones(n, np.uint8))


def test_many_points_at_one_position_end_in_one_leaf(store: SqliteStore, tmp_path: Path) -> None:
    """200 000 copies of one point plus a spread: no endless subdivision, nothing lost."""
    rng = np.random.default_rng(3)
    spread = rng.integers(0, 50_000, (30_000, 3))
    same = np.tile([[25_000, 25_000, 1_000]], (200_000, 1))
    reading = _Points(tmp_path / "dup.las", crs_frame("EPSG:32649"), [_chunk(spread), _chunk(same)])
    ingest_points(store, "dup", [reading])
    params = PointCloudParams(memory_points=50_000, leaf_points=5_000, workers=0, serial_below=0)
    doc, result = build_point_tiles(store, "dup", tmp_path / "out", format="1.1", params=params)
    got, _ = _contents_in_ecef(tmp_path / "out", doc)
    assert len(got) == 230_000 == result.points
