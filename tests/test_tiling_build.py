"""The pipeline on the synthetic Da Nang district: tileset structure, geometric errors, frames
(every glb vertex goes back to its source position in ECEF within 1 mm through the composed
tile transforms and the y-up rotation), feature ids and properties, 1.0 output, bounded loads."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cim.crs import frame_from_spec
from cim.errors import InputError
from cim.store import SqliteStore
from tests.test_tiling_synthetic import DANANG_LAT, DANANG_LON, make_store
from tiling import build_tileset
from tiling.b3dm import read_b3dm
from tiling.bounding_volume import box_from_json, transform_points
from tiling.feature_metadata import read_property_table
from tiling.glb import read_accessor, read_glb
from tiling.primitive import gltf_to_enu
from tiling.tileset import matrix_from_json


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    s = make_store(tmp_path_factory.mktemp("store") / "city.gpkg")
    yield s
    s.close()


@pytest.fixture(scope="module")
def built(store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("tiles") / "danang"
    calls: list[tuple[int, int]] = []
    summary = build_tileset(store, "danang", out, progress=lambda done, total: calls.append((done, total)))
    return {"out": out, "summary": summary, "progress": calls,
            "doc": json.loads((out / "tileset.json").read_text(encoding="utf-8"))}


def walk(tile: dict[str, Any], parent_world: np.ndarray) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
    world = parent_world @ matrix_from_json(tile.get("transform"))
    yield tile, world
    for child in tile.get("children", []):
        yield from walk(child, world)


def content_uris(tile: dict[str, Any]) -> list[str]:
    assert "contents" not in tile
    return [tile["content"]["uri"]] if "content" in tile else []


def test_tileset_document(built: dict[str, Any]) -> None:
    doc, summary = built["doc"], built["summary"]
    assert doc["asset"]["version"] == "1.1"
    assert doc["extras"]["dataset"] == "danang" and doc["extras"]["features"] == 216
    assert doc["schema"]["id"] == "cim_danang"
    assert set(doc["schema"]["classes"]) == {"Building", "BuildingPart", "Road", "TINRelief"}
    root = doc["root"]
    assert root["refine"] == "ADD" and len(root["transform"]) == 16
    assert doc["geometricError"] >= root["geometricError"] > 0
    west, south, east, north, hmin, hmax = root["boundingVolume"]["region"]
    assert west < np.radians(DANANG_LON) < east and south < np.radians(DANANG_LAT) < north
    assert hmin < 5 and 85 < hmax < 90  # ground at 5 m, landmarks 80 m tall
    assert summary.region == root["boundingVolume"]["region"]
    assert summary.region_degrees[0] == pytest.approx(np.degrees(west))
    assert summary.features == 216 and summary.format == "1.1"
    assert summary.tiles >= 5 and summary.contents == summary.tiles - 1  # the root has no content
    files = list((built["out"] / "content").rglob("*.glb"))
    assert len(files) == summary.contents
    assert summary.bytes == sum(f.stat().st_size for f in files) + (built["out"] / "tileset.json").stat().st_size
    done = [d for d, _ in built["progress"]]
    assert done == sorted(done) and built["progress"][-1] == (216, 216)


def test_geometric_errors_decrease_to_zero_at_leaves(built: dict[str, Any]) -> None:
    def check(tile: dict[str, Any]) -> None:
        children = tile.get("children", [])
        if not children:
            assert tile["geometricError"] == 0
        for child in children:
            assert child["geometricError"] <= tile["geometricError"]
            check(child)
    root = built["doc"]["root"]
    check(root)
    # one subtree per class under a root without content: every glb holds one class
    assert "content" not in root
    classes = [c["content"]["uri"].rsplit("_", 1)[-1] for c in root["children"]]
    assert classes == ["Building.glb", "BuildingPart.glb", "Road.glb", "TINRelief.glb"]
    # the largest buildings (the 110 m landmarks) are in the top tile of the Building subtree
    assert root["children"][0]["children"] and root["children"][0]["geometricError"] < 80
    assert root["geometricError"] == pytest.approx(np.hypot(15 * 45 + 60, 15 * 45 + 60), rel=0.01)  # the terrain


def tile_contents(built: dict[str, Any]) -> Iterator[tuple[dict[str, Any], np.ndarray, dict[str, Any], bytes]]:
    for tile, world in walk(built["doc"]["root"], np.eye(4)):
        for uri in content_uris(tile):
            doc, binary = read_glb((built["out"] / uri).read_bytes())
            yield tile, world, doc, binary


def test_vertices_map_back_to_their_source_position_in_ecef(built: dict[str, Any], store: SqliteStore) -> None:
    frame = frame_from_spec(store.get_dataset("danang").frame)
    index = store.feature_index("danang")
    by_id = {f.id: f for f in store.load_features(index.keys.tolist())}
    checked = 0
    for tile, world, doc, binary in tile_contents(built):
        prim = doc["meshes"][0]["primitives"][0]
        pos = read_accessor(doc, binary, prim["attributes"]["POSITION"]).astype(np.float64)
        fid = read_accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"]).astype(int)
        ids = read_property_table(doc, binary, 0)["id"]
        # what a client does: y-up -> z-up, then the composed tile transforms
        ecef = transform_points(world, gltf_to_enu(pos))
        # content lies inside the tile's box (in the tile's frame)
        centre, axes = box_from_json(tile["boundingVolume"]["box"])
        local = gltf_to_enu(pos) - centre
        assert (np.abs(local) <= np.abs(axes).sum(axis=0) + 1e-6).all()
        for k, feature_id in enumerate(ids):
            mesh = by_id[feature_id].geometry[by_id[feature_id].best_lod()]
            source = frame.to_ecef(mesh.vertices)
            mine = ecef[fid == k]
            dist = np.linalg.norm(mine[:, None, :] - source[None, :, :], axis=2).min(axis=1)
            assert dist.max() < 1e-3, f"{feature_id}: {dist.max()} m off"
            checked += len(mine)
    assert checked > 1000


def test_every_feature_once_with_all_its_triangles(built: dict[str, Any], store: SqliteStore) -> None:
    index = store.feature_index("danang")
    expected = {f.id: f.geometry[f.best_lod()].triangle_count for f in store.load_features(index.keys.tolist())}
    found: dict[str, int] = {}
    for _, _, doc, binary in tile_contents(built):
        assert doc["extensions"]["EXT_structural_metadata"]["schema"]["id"] == "cim_danang"
        assert len(doc["meshes"][0]["primitives"]) == 1  # one class per glb
        prim = doc["meshes"][0]["primitives"][0]
        fid = read_accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"]).astype(int)
        idx = read_accessor(doc, binary, prim["indices"]).reshape(-1, 3)
        table = read_property_table(doc, binary, 0)
        tri_feature = fid[idx[:, 0]]
        assert (fid[idx] == tri_feature[:, None]).all()
        assert set(table["class"]) == {doc["extensions"]["EXT_structural_metadata"]["propertyTables"][0]["class"]}
        for k, feature_id in enumerate(table["id"]):
            assert feature_id not in found
            found[feature_id] = int((tri_feature == k).sum())
    assert found == expected


def test_properties_of_a_known_building(built: dict[str, Any]) -> None:
    for _, _, doc, binary in tile_contents(built):
        table = read_property_table(doc, binary, 0)
        if "BLDG_0005" in table["id"]:
            row = {k: v[table["id"].index("BLDG_0005")] for k, v in table.items()}
            break
    else:
        pytest.fail("BLDG_0005 not found")
    assert row["class"] == "Building" and row["name"] == "Building 5" and row["function"] == "retail"
    # not every Building has the flag: written as STRING so that a missing value is not read as false
    assert row["Pset_BuildingCommon_IsLandmarked"] in (False, "false") and row["storeysAboveGround"] >= 1
    assert row["zmin"] == pytest.approx(5.0) and row["height"] == pytest.approx(row["measuredHeight"])
    assert row["source_class"] == "bldg:Building" and row["yearOfConstruction"] is None


def test_format_1_0_writes_b3dm(store: SqliteStore, tmp_path: Path) -> None:
    summary = build_tileset(store, "danang", tmp_path / "t10", format="1.0")
    doc = json.loads((tmp_path / "t10" / "tileset.json").read_text(encoding="utf-8"))
    assert doc["asset"]["version"] == "1.0" and "schema" not in doc
    total = 0
    for tile, _ in walk(doc["root"], np.eye(4)):
        for uri in content_uris(tile):
            assert uri.endswith(".b3dm")
            b3dm = read_b3dm((tmp_path / "t10" / uri).read_bytes())
            n = b3dm.feature_table["BATCH_LENGTH"]
            assert all(len(col) == n for col in b3dm.batch_table.values())
            gdoc, binary = read_glb(b3dm.glb)
            ids = read_accessor(gdoc, binary, gdoc["meshes"][0]["primitives"][0]["attributes"]["_BATCHID"])
            assert ids.max() < n
            total += n
    assert total == summary.features == 216


def test_loads_one_tile_at_a_time(store: SqliteStore, tmp_path: Path) -> None:
    sizes: list[int] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def load_features(self, keys: list[int], lod: int | None = -1) -> Any:
            sizes.append(len(keys))
            return store.load_features(keys, lod)

    summary = build_tileset(Spy(), "danang", tmp_path / "spy")  # type: ignore[arg-type]
    assert sum(sizes) == 216 and max(sizes) < 216 / 2
    assert len(sizes) <= summary.tiles


def test_unknown_format_is_refused(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        build_tileset(store, "danang", tmp_path / "x", format="2.0")
