"""Content writers read back: glb (accessors, feature ids, EXT_structural_metadata property
tables), the metadata schema, and b3dm (header, feature table, batch table)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from cim.classes import CityClass, SurfaceType
from cim.feature import Feature, Source
from tiling.b3dm import read_b3dm, write_b3dm
from tiling.feature_metadata import (
    NO_DATA_FLOAT64,
    NO_DATA_INT32,
    batch_table,
    build_schema,
    feature_record,
    read_property_table,
    sanitise_identifier,
)
from tiling.glb import FLOAT, UNSIGNED_BYTE, GltfBuilder, read_accessor, read_glb
from tiling.gltf_content import ClassGroup, write_batched_glb, write_glb
from tiling.primitive import COLOR_TABLE, FeatureMesh, build_primitive, gltf_to_enu

CUBE_V = np.array([[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)])


def cube_mesh(offset: tuple[float, float, float], size: float, feature_id: int,
              city_class: CityClass = CityClass.BUILDING) -> FeatureMesh:
    """A closed cube: 12 triangles; top = roof, bottom = ground, sides = wall."""
    v = CUBE_V * size + np.array(offset)
    quads = {  # corner indices (x*4 + y*2 + z), counter-clockwise seen from outside
        "bottom": ([0, 2, 6, 4], SurfaceType.GROUND), "top": ([1, 5, 7, 3], SurfaceType.ROOF),
        "south": ([0, 4, 5, 1], SurfaceType.WALL), "north": ([2, 3, 7, 6], SurfaceType.WALL),
        "west": ([0, 1, 3, 2], SurfaceType.WALL), "east": ([4, 6, 7, 5], SurfaceType.WALL),
    }
    tris, surf = [], []
    for (a, b, c, d), s in quads.values():
        tris += [[a, b, c], [a, c, d]]
        surf += [s, s]
    return FeatureMesh(v, np.array(tris, np.uint32), np.array(surf, np.uint8), feature_id, city_class)


def features_for(n: int) -> list[Feature]:
    out = []
    for i in range(n):
        attrs: dict[str, object] = {"Pset_WallCommon.IsExternal": i % 2 == 0, "storeys": i + 1,
                                    "address.street": "Hùng Vương" if i == 0 else f"street {i}"}
        if i != 1:
            attrs["measuredHeight"] = 10.0 + i
        if i == 2:
            attrs["3d-note"] = "starts with a digit"
            attrs["name"] = "collides with the fixed property"
        out.append(Feature(f"F{i}", CityClass.BUILDING, Source("a.gml", "bldg:Building"), parent="P" if i else None,
                           name=f"Name {i}" if i != 1 else None, attributes=attrs))
    return out


def test_builder_aligns_views_and_chunks() -> None:
    b = GltfBuilder("test")
    b.buffer_view(b"\x01\x02\x03")
    b.accessor(np.array([1.5, 2.5]), FLOAT, "SCALAR", min_max=True)
    b.accessor(np.array([[1, 2, 3, 4]]), UNSIGNED_BYTE, "VEC4", normalized=True)
    b.doc["meshes"] = []
    glb = b.to_glb()
    assert len(glb) % 8 == 0
    doc, binary = read_glb(glb)
    json_len = struct.unpack_from("<I", glb, 12)[0]
    assert (20 + json_len + 8) % 8 == 0  # BIN data starts 8-aligned in the file
    assert doc["buffers"][0]["byteLength"] == len(binary) and len(binary) % 8 == 0
    assert all(v["byteOffset"] % 8 == 0 for v in doc["bufferViews"])
    assert doc["accessors"][0]["min"] == [1.5] and doc["accessors"][0]["max"] == [2.5]
    assert read_accessor(doc, binary, 1).tolist() == [[1, 2, 3, 4]]
    with pytest.raises(ValueError):
        b.buffer_view(b"")


def test_primitive_is_y_up_flat_shaded_and_coloured() -> None:
    arrays = build_primitive([cube_mesh((0, 0, 0), 2.0, 0), cube_mesh((10, 20, 5), 1.0, 1)])
    assert arrays.triangle_count == 24
    assert len(arrays.positions) == 48  # 4 vertices per face: shared inside a face, not across faces
    enu = gltf_to_enu(arrays.positions)
    assert enu.min(axis=0).tolist() == [0, 0, 0] and enu.max(axis=0).tolist() == [11, 21, 6]
    # glTF y is up: the highest glTF y is the top of the second cube (U = 6); z = -north
    assert arrays.positions[:, 1].max() == 6 and arrays.positions[:, 2].min() == -21
    assert np.allclose(np.linalg.norm(arrays.normals, axis=1), 1, atol=1e-6)
    tri = arrays.indices.reshape(-1, 3)
    # every triangle's three corners carry the same feature id and the same normal
    fids = arrays.feature_ids[tri]
    assert (fids == fids[:, :1]).all() and sorted(set(fids[:, 0].tolist())) == [0.0, 1.0]
    assert np.count_nonzero(fids[:, 0] == 0) == 12
    # the normal points away from the cube's centre; roof triangles are roof-coloured and face up
    corners = arrays.positions[tri].astype(np.float64)
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert (np.einsum("ij,ij->i", cross, arrays.normals[tri[:, 0]]) > 0).all()
    up = arrays.normals[tri[:, 0], 1] > 0.99
    assert (arrays.colors[tri[up, 0]] == COLOR_TABLE[SurfaceType.ROOF]).all()
    down = arrays.normals[tri[:, 0], 1] < -0.99
    assert (arrays.colors[tri[down, 0]] == COLOR_TABLE[SurfaceType.GROUND]).all()


def test_primitive_drops_degenerate_triangles_and_colours_by_class() -> None:
    v = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]])
    mesh = FeatureMesh(v, np.array([[0, 1, 2], [0, 1, 3]], np.uint32), np.zeros(2, np.uint8), 0, CityClass.ROAD)
    arrays = build_primitive([mesh])
    assert arrays.triangle_count == 1
    assert (arrays.colors == COLOR_TABLE[SurfaceType.TRAFFIC]).all()
    assert build_primitive([FeatureMesh(v[:3], np.array([[0, 1, 2]], np.uint32), np.zeros(1, np.uint8), 0,
                                        CityClass.ROAD)]).is_empty


def test_schema_types_sanitised_names_and_collisions() -> None:
    schema = build_schema("my-data.set", features_for(3), classes=["Building", "Road"])
    assert schema.id == "cim_my_data_set"
    props = {p.id: p for p in schema.classes["Building"]}
    assert props["Pset_WallCommon_IsExternal"].type == "BOOLEAN"
    assert props["Pset_WallCommon_IsExternal"].key == "Pset_WallCommon.IsExternal"
    assert props["storeys"].type == "INT32" and props["measuredHeight"].type == "FLOAT64"
    assert props["address_street"].type == "STRING"
    assert props["_3d_note"].key == "3d-note"
    assert props["attr_name"].key == "name" and props["name"].key == "name" and not props["name"].from_attributes
    assert [p.id for p in schema.classes["Road"]][:3] == ["id", "class", "name"]  # fixed properties only
    js = schema.to_json(["Building"])
    assert list(js["classes"]) == ["Building"]
    b = js["classes"]["Building"]["properties"]
    assert b["Pset_WallCommon_IsExternal"]["name"] == "Pset_WallCommon.IsExternal"
    assert b["height"] == {"type": "SCALAR", "componentType": "FLOAT64", "noData": NO_DATA_FLOAT64,
                           "description": b["height"]["description"]}
    assert b["storeys"]["noData"] == NO_DATA_INT32 and b["name"]["noData"] == ""
    assert "noData" not in b["id"]
    for pid in b:
        assert sanitise_identifier(pid) == pid


def test_mixed_and_large_values_fall_back_to_wider_types() -> None:
    feats = [Feature(f"x{i}", CityClass.BUILDING, Source("a", "b"), attributes=a) for i, a in enumerate([
        {"mixed": 1, "big": 2**40, "huge": 2**60, "flag": True, "num": 1},
        {"mixed": "one", "big": 3, "huge": 1, "flag": 1, "num": 2.5}])]
    props = {p.id: p.type for p in build_schema("d", feats).classes["Building"]}
    assert props["mixed"] == "STRING" and props["big"] == "FLOAT64" and props["huge"] == "STRING"
    assert props["flag"] == "STRING" and props["num"] == "FLOAT64"


def test_glb_round_trip_feature_ids_and_property_table() -> None:
    feats = features_for(3)
    schema = build_schema("ds", feats)
    records = [feature_record(f, "ds", (5.0, 15.0 + i)) for i, f in enumerate(feats)]
    arrays = build_primitive([cube_mesh((i * 10.0, 0, 0), 3.0, i) for i in range(3)])
    glb = write_glb([ClassGroup("Building", arrays, records)], schema)
    doc, binary = read_glb(glb)
    assert set(doc["extensionsUsed"]) == {"EXT_mesh_features", "EXT_structural_metadata"}
    prim = doc["meshes"][0]["primitives"][0]
    assert prim["extensions"]["EXT_mesh_features"] == {
        "featureIds": [{"featureCount": 3, "attribute": 0, "propertyTable": 0}]}
    pos = read_accessor(doc, binary, prim["attributes"]["POSITION"])
    acc = doc["accessors"][prim["attributes"]["POSITION"]]
    assert acc["min"] == pos.min(axis=0).tolist() and acc["max"] == pos.max(axis=0).tolist()
    color = doc["accessors"][prim["attributes"]["COLOR_0"]]
    assert color["componentType"] == UNSIGNED_BYTE and color["normalized"] and color["type"] == "VEC4"
    fid = read_accessor(doc, binary, prim["attributes"]["_FEATURE_ID_0"])
    idx = read_accessor(doc, binary, prim["indices"]).reshape(-1, 3)
    # each triangle's feature id is the cube it belongs to (cube i spans x in [10 i, 10 i + 3])
    tri_x = pos[idx][:, :, 0].mean(axis=1)
    assert (fid[idx[:, 0]] == np.floor(tri_x / 10)).all()
    table = read_property_table(doc, binary, 0)
    assert table["id"] == ["F0", "F1", "F2"]
    assert table["class"] == ["Building"] * 3
    assert table["name"] == ["Name 0", None, "Name 2"]
    assert table["parent"] == [None, "P", "P"]
    assert table["height"] == [10.0, 11.0, 12.0]  # measuredHeight, else zmax - zmin (16 - 5)
    assert table["zmax"] == [15.0, 16.0, 17.0]
    assert table["address_street"][0] == "Hùng Vương"
    assert table["Pset_WallCommon_IsExternal"] == [True, False, True]
    assert table["storeys"] == [1, 2, 3]
    assert table["measuredHeight"] == [10.0, None, 12.0]
    assert table["_3d_note"] == [None, None, "starts with a digit"]
    assert table["function"] == [None, None, None]
    assert table["source_file"] == ["a.gml"] * 3 and table["source_dataset"] == ["ds"] * 3
    ext = doc["extensions"]["EXT_structural_metadata"]
    assert ext["schema"]["id"] == "cim_ds"
    for view in (ext["propertyTables"][0]["properties"]["height"]["values"],):
        assert doc["bufferViews"][view]["byteOffset"] % 8 == 0
    mat = doc["materials"][0]
    assert mat["doubleSided"] is True and mat["pbrMetallicRoughness"]["metallicFactor"] == 0


def test_b3dm_header_feature_and_batch_table() -> None:
    feats = features_for(2)
    records = [feature_record(f, "ds", (0.0, 9.0)) for f in feats]
    arrays = build_primitive([cube_mesh((0, 0, 0), 1.0, 0), cube_mesh((5, 0, 0), 1.0, 1)])
    glb = write_batched_glb(arrays)
    keys = sorted({k for f in feats for k in f.attributes})
    data = write_b3dm(glb, 2, batch_table(records, keys))
    magic, version, length, ft_json, ft_bin, bt_json, bt_bin = struct.unpack_from("<4sIIIIII", data, 0)
    assert (magic, version, length, ft_bin, bt_bin) == (b"b3dm", 1, len(data), 0, 0)
    assert (28 + ft_json) % 8 == 0 and (28 + ft_json + bt_json) % 8 == 0 and length % 8 == 0
    parsed = read_b3dm(data)
    assert parsed.feature_table == {"BATCH_LENGTH": 2}
    bt = parsed.batch_table
    assert bt["id"] == ["F0", "F1"] and bt["class"] == ["Building", "Building"]
    assert bt["height"] == [10.0, 9.0] and bt["name"] == ["Name 0", None]
    assert bt["Pset_WallCommon.IsExternal"] == [True, False]
    assert all(len(col) == 2 for col in bt.values())
    doc, binary = read_glb(parsed.glb)
    assert "extensionsUsed" not in doc
    prim = doc["meshes"][0]["primitives"][0]
    batch_ids = read_accessor(doc, binary, prim["attributes"]["_BATCHID"])
    assert sorted(set(batch_ids.tolist())) == [0.0, 1.0]
    with pytest.raises(ValueError):
        write_b3dm(glb, 3, batch_table(records, keys))


def test_unlabelled_building_triangles_are_shaded_by_orientation() -> None:
    # a LOD1 block without semantic surfaces (like Potsdam_LoD1.gml): roof red, walls grey
    v = np.array([[0, 0, 0], [10, 0, 0], [10, 10, 0], [0, 0, 5], [10, 0, 5], [10, 10, 5]], float)
    tris = np.array([[3, 4, 5], [0, 1, 4]], np.uint32)  # a roof triangle (up) and a wall triangle (vertical)
    prim = build_primitive([FeatureMesh(v, tris, np.zeros(2, np.uint8), 0, CityClass.BUILDING)])
    enu = gltf_to_enu(prim.positions.astype(np.float64))
    roof = prim.colors[enu[:, 2] == 5.0]
    wall = prim.colors[(enu[:, 2] == 0.0)]
    assert (roof == COLOR_TABLE[SurfaceType.ROOF]).all(axis=1).any()
    assert (wall == COLOR_TABLE[SurfaceType.WALL]).all(axis=1).all()
    # a generic-class feature that is not a building keeps its undefined colour
    other = build_primitive([FeatureMesh(v, tris, np.zeros(2, np.uint8), 0, CityClass.LAND_USE)])
    assert not (other.colors == COLOR_TABLE[SurfaceType.ROOF]).all(axis=1).any()
