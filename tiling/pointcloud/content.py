"""Point tile contents: 3D Tiles 1.1 glb (mode POINTS, per-point metadata through
EXT_structural_metadata property attributes) and 3D Tiles 1.0 ``pnts``.

Positions are float32 offsets in the tile's frame (plane ENU, z up). glTF is y-up and 3D Tiles
clients rotate glTF content y-up -> z-up, so glb positions are written as (E, U, -N); ``pnts``
is z-up and takes (E, N, U) as is. Every glb vertex attribute starts on a 4-byte boundary with a
stride that is a multiple of 4 (one-byte values get a 4-byte stride), as glTF requires.
"""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.points import class_name
from tiling.glb import ARRAY_BUFFER, FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT, GltfBuilder

GENERATOR = "open-cim-server tiling (point cloud)"
EXT_STRUCTURAL_METADATA = "EXT_structural_metadata"
EXT_MESH_FEATURES = "EXT_mesh_features"
CLASS_TABLE = "lidar_class"
UNLIT = "KHR_materials_unlit"
CLASS_ID = "lidar_point"

#: per-point properties: name -> (glTF attribute, schema component type, glTF component type, numpy dtype)
POINT_PROPERTIES: dict[str, tuple[str, str, int, str]] = {
    "classification": ("_CLASSIFICATION", "UINT8", UNSIGNED_BYTE, "u1"),
    "intensity": ("_INTENSITY", "UINT16", UNSIGNED_SHORT, "<u2"),
    "return_number": ("_RETURN_NUMBER", "UINT8", UNSIGNED_BYTE, "u1"),
}


def metadata_schema() -> dict[str, Any]:
    """The EXT_structural_metadata schema of point tiles (also put in the tileset JSON)."""
    descriptions = {"classification": "ASPRS LAS point class (2 ground, 6 building, ...)",
                    "intensity": "pulse return magnitude as recorded", "return_number": "1 = first return"}
    return {"id": "lidar", "classes": {
        CLASS_ID: {"name": "LiDAR point", "properties": {
            name: {"type": "SCALAR", "componentType": ctype, "description": descriptions[name]}
            for name, (_, ctype, _, _) in POINT_PROPERTIES.items()}},
        CLASS_TABLE: {"name": "LiDAR point class", "description": "what a click on a point shows: its ASPRS class",
                      "properties": {"classification": {"type": "SCALAR", "componentType": "UINT8"},
                                     "class_name": {"type": "STRING"}, "source": {"type": "STRING"}}}}}


def _class_table(builder: GltfBuilder, rows: int) -> dict[str, Any]:
    """The property table with one row per class code 0..rows-1 (feature id = class code)."""
    names = [class_name(code).encode("utf-8") for code in range(rows)]
    offsets = np.zeros(rows + 1, np.uint32)
    offsets[1:] = np.cumsum([len(n) for n in names])
    source = [b"LiDAR"] * rows
    source_offsets = np.arange(rows + 1, dtype=np.uint32) * 5
    return {"class": CLASS_TABLE, "count": rows, "properties": {
        "classification": {"values": builder.buffer_view(np.arange(rows, dtype=np.uint8).tobytes())},
        "class_name": {"values": builder.buffer_view(b"".join(names)), "stringOffsetType": "UINT32",
                       "stringOffsets": builder.buffer_view(offsets.tobytes())},
        "source": {"values": builder.buffer_view(b"".join(source)), "stringOffsetType": "UINT32",
                   "stringOffsets": builder.buffer_view(source_offsets.tobytes())}}}


def _strided(builder: GltfBuilder, values: npt.NDArray[Any], dtype: str, component: int) -> int:
    """A SCALAR accessor over ``values`` in its own bufferView with a 4-byte stride."""
    n = len(values)
    slots = np.zeros((n, 4), np.uint8)
    slots.view(np.dtype(dtype) if np.dtype(dtype).itemsize == 1 else np.dtype("<u2"))[:, 0] = values
    view = builder.buffer_view(memoryview(slots).cast("B"), target=ARRAY_BUFFER, alignment=4)
    builder.doc["bufferViews"][view]["byteStride"] = 4
    return builder.add("accessors", {"bufferView": view, "componentType": component, "count": n, "type": "SCALAR"})


def _yup_bounds(bounds: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None
                ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """(E, N, U) bounds -> the (E, U, -N) bounds of the glb positions."""
    if bounds is None:
        return None
    lo, hi = (np.asarray(b, np.float32) for b in bounds)
    return np.array([lo[0], lo[2], -hi[1]], np.float32), np.array([hi[0], hi[2], -lo[1]], np.float32)


def write_points_glb(local: npt.NDArray[np.float32], rgb: npt.NDArray[np.uint8], attributes: dict[str, npt.NDArray[Any]],
                     bounds: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None) -> bytes:
    """A glb with one POINTS primitive: ``local`` (n, 3) ENU offsets in the tile frame, ``rgb``
    (n, 3) colours, ``attributes`` the :data:`POINT_PROPERTIES` arrays. ``bounds``: the
    per-axis (min, max) of ``local`` when the caller has them (saves a pass over the points)."""
    yup = np.empty((len(local), 3), np.float32)
    yup[:, 0], yup[:, 1], yup[:, 2] = local[:, 0], local[:, 2], -local[:, 1]
    return b"".join(points_glb_parts(yup, rgb, attributes, _yup_bounds(bounds)))


def points_glb_parts(yup: npt.NDArray[np.float32], rgb: npt.NDArray[np.uint8], attributes: dict[str, npt.NDArray[Any]],
                     bounds: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None = None) -> list[bytes | bytearray]:
    """:func:`write_points_glb` from glTF (y-up: E, U, -N) positions and their bounds, as the
    pieces of the file (:meth:`tiling.glb.GltfBuilder.glb_parts`)."""
    n = len(yup)
    if n == 0:
        raise ValueError("a point tile needs at least one point")
    builder = GltfBuilder(GENERATOR)
    colours = np.empty((n, 4), np.uint8)
    colours[:, :3] = rgb
    colours[:, 3] = 255
    prim_attributes = {
        "POSITION": builder.accessor(yup, FLOAT, "VEC3", target=ARRAY_BUFFER, min_max=True, bounds=bounds),
        "COLOR_0": builder.accessor(colours, UNSIGNED_BYTE, "VEC4", target=ARRAY_BUFFER, normalized=True),
    }
    props = {}
    for name, (semantic, _, component, dtype) in POINT_PROPERTIES.items():
        prim_attributes[semantic] = _strided(builder, attributes[name], dtype, component)
        props[name] = {"attribute": semantic}
    # feature id = class code, so that a click on a point shows its class (CesiumJS picks features)
    cls_accessor = builder.doc["accessors"][prim_attributes["_CLASSIFICATION"]]
    prim_attributes["_FEATURE_ID_0"] = builder.add("accessors", dict(cls_accessor))
    rows = int(attributes["classification"].max()) + 1
    builder.add("materials", {"name": "point colours", "pbrMetallicRoughness": {"baseColorFactor": [1, 1, 1, 1],
                              "metallicFactor": 0.0, "roughnessFactor": 1.0}, "extensions": {UNLIT: {}}})
    primitive = {"attributes": prim_attributes, "mode": 0, "material": 0, "extensions": {
        EXT_STRUCTURAL_METADATA: {"propertyAttributes": [0]},
        EXT_MESH_FEATURES: {"featureIds": [{"featureCount": rows, "attribute": 0, "propertyTable": 0}]}}}
    builder.add("meshes", {"primitives": [primitive]})
    builder.add("nodes", {"mesh": 0})
    builder.add("scenes", {"nodes": [0]})
    builder.doc["scene"] = 0
    builder.use_extension(UNLIT)
    builder.use_extension(EXT_STRUCTURAL_METADATA)
    builder.use_extension(EXT_MESH_FEATURES)
    table = _class_table(builder, rows)
    builder.doc["extensions"] = {EXT_STRUCTURAL_METADATA: {
        "schema": metadata_schema(), "propertyTables": [table],
        "propertyAttributes": [{"class": CLASS_ID, "properties": props}]}}
    return builder.glb_parts()


# --- pnts (3D Tiles 1.0) --------------------------------------------------------------------

PNTS_MAGIC = b"pnts"
PNTS_HEADER = struct.Struct("<4sIIIIII")  # magic, version, byteLength, ftJSON, ftBin, btJSON, btBin


def _json8(obj: Any, start: int) -> bytes:
    text = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return text + b" " * ((-(start + len(text))) % 8)


def _pad8(data: bytes) -> bytes:
    return data + b"\x00" * ((-len(data)) % 8)


def write_pnts(local: npt.NDArray[np.float32], rgb: npt.NDArray[np.uint8], attributes: dict[str, npt.NDArray[Any]]) -> bytes:
    """A ``pnts`` tile: POSITION (float32, z-up tile frame), RGB, and a binary batch table with
    one value per point for each :data:`POINT_PROPERTIES` (no BATCH_ID)."""
    n = len(local)
    if n == 0:
        raise ValueError("a point tile needs at least one point")
    positions = np.ascontiguousarray(local, "<f4").tobytes()
    colours = np.ascontiguousarray(rgb, "u1").tobytes()
    ft_bin = _pad8(positions + b"\x00" * ((-len(positions)) % 8) + colours)
    rgb_offset = len(positions) + ((-len(positions)) % 8)
    ft_json = _json8({"POINTS_LENGTH": n, "POSITION": {"byteOffset": 0}, "RGB": {"byteOffset": rgb_offset}},
                     PNTS_HEADER.size)
    bt_parts: list[bytes] = []
    bt_meta: dict[str, Any] = {}
    pos = 0
    for name, (_, _, component, dtype) in POINT_PROPERTIES.items():
        data = _pad8(np.ascontiguousarray(attributes[name], dtype).tobytes())
        bt_meta[name] = {"byteOffset": pos, "componentType": "UNSIGNED_BYTE" if component == UNSIGNED_BYTE
                         else "UNSIGNED_SHORT", "type": "SCALAR"}
        bt_parts.append(data)
        pos += len(data)
    bt_bin = b"".join(bt_parts)
    bt_json = _json8(bt_meta, PNTS_HEADER.size + len(ft_json) + len(ft_bin))
    length = PNTS_HEADER.size + len(ft_json) + len(ft_bin) + len(bt_json) + len(bt_bin)
    header = PNTS_HEADER.pack(PNTS_MAGIC, 1, length, len(ft_json), len(ft_bin), len(bt_json), len(bt_bin))
    return header + ft_json + ft_bin + bt_json + bt_bin


def read_pnts(data: bytes) -> tuple[dict[str, Any], bytes, dict[str, Any], bytes]:
    """(feature table JSON, its binary, batch table JSON, its binary) of a ``pnts``."""
    magic, version, length, ftj, ftb, btj, btb = PNTS_HEADER.unpack_from(data, 0)
    if magic != PNTS_MAGIC or version != 1 or length != len(data):
        raise ValueError(f"bad pnts header: {magic!r} v{version}, byteLength {length} for {len(data)} bytes")
    pos = PNTS_HEADER.size
    ft = json.loads(data[pos:pos + ftj])
    pos += ftj
    ft_bin = data[pos:pos + ftb]
    pos += ftb
    bt = json.loads(data[pos:pos + btj]) if btj else {}
    pos += btj
    return ft, ft_bin, bt, data[pos:pos + btb]
