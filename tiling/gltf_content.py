"""Tile content as glTF: the 3D Tiles 1.1 glb (EXT_mesh_features + EXT_structural_metadata) and
the plain glTF inside a 3D Tiles 1.0 b3dm (``_BATCHID``)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tiling.feature_metadata import FeatureRecord, MetadataSchema, write_property_table
from tiling.glb import (
    ARRAY_BUFFER,
    ELEMENT_ARRAY_BUFFER,
    FLOAT,
    UNSIGNED_BYTE,
    UNSIGNED_INT,
    UNSIGNED_SHORT,
    GltfBuilder,
)
from tiling.primitive import PrimitiveArrays

GENERATOR = "open-cim-server tiling"
EXT_MESH_FEATURES = "EXT_mesh_features"
EXT_STRUCTURAL_METADATA = "EXT_structural_metadata"

MATERIAL = {
    "name": "vertex colours",
    "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.9},
    "doubleSided": True,
}


@dataclass
class ClassGroup:
    """The features of one CIM class in a tile: their vertex arrays and property records
    (``records[i]`` is feature id ``i``)."""

    class_id: str
    arrays: PrimitiveArrays
    records: Sequence[FeatureRecord]


def _primitive(builder: GltfBuilder, arrays: PrimitiveArrays, id_semantic: str) -> dict[str, Any]:
    attributes = {
        "POSITION": builder.accessor(arrays.positions, FLOAT, "VEC3", target=ARRAY_BUFFER, min_max=True),
        "NORMAL": builder.accessor(arrays.normals, FLOAT, "VEC3", target=ARRAY_BUFFER),
        "COLOR_0": builder.accessor(arrays.colors, UNSIGNED_BYTE, "VEC4", target=ARRAY_BUFFER, normalized=True),
        id_semantic: builder.accessor(arrays.feature_ids, FLOAT, "SCALAR", target=ARRAY_BUFFER),
    }
    # 65535 is the primitive restart value of UNSIGNED_SHORT indices: it cannot be an index
    index_type = UNSIGNED_SHORT if len(arrays.positions) <= 65535 else UNSIGNED_INT
    indices = builder.accessor(arrays.indices, index_type, "SCALAR", target=ELEMENT_ARRAY_BUFFER)
    return {"attributes": attributes, "indices": indices, "material": 0, "mode": 4}


def _finish(builder: GltfBuilder, primitives: list[dict[str, Any]]) -> bytes:
    builder.add("materials", dict(MATERIAL))
    builder.add("meshes", {"primitives": primitives})
    builder.add("nodes", {"mesh": 0})
    builder.add("scenes", {"nodes": [0]})
    builder.doc["scene"] = 0
    return builder.to_glb()


def write_glb(groups: Sequence[ClassGroup], schema: MetadataSchema) -> bytes:
    """3D Tiles 1.1 content: one primitive per class, each with its own feature ids (0..n-1)
    and property table; the dataset's schema embedded (the classes used).

    The pipeline writes one class per glb: CesiumJS styles and picks a glb's features through
    a single property table (the first primitive's), so a glb with several tables would show
    the wrong properties for the other primitives' features."""
    builder = GltfBuilder(GENERATOR)
    primitives: list[dict[str, Any]] = []
    tables: list[dict[str, Any]] = []
    for group in groups:
        if group.arrays.is_empty:
            continue
        prim = _primitive(builder, group.arrays, "_FEATURE_ID_0")
        table_index = len(tables)
        tables.append(write_property_table(builder, group.class_id, schema.classes[group.class_id], group.records))
        prim["extensions"] = {EXT_MESH_FEATURES: {"featureIds": [
            {"featureCount": len(group.records), "attribute": 0, "propertyTable": table_index}]}}
        primitives.append(prim)
    if not primitives:
        raise ValueError("a tile content needs at least one non-empty primitive")
    builder.use_extension(EXT_MESH_FEATURES)
    builder.use_extension(EXT_STRUCTURAL_METADATA)
    used = [g.class_id for g in groups if not g.arrays.is_empty]
    builder.doc["extensions"] = {EXT_STRUCTURAL_METADATA: {"schema": schema.to_json(used), "propertyTables": tables}}
    return _finish(builder, primitives)


def write_batched_glb(arrays: PrimitiveArrays) -> bytes:
    """The glTF of a 3D Tiles 1.0 b3dm: one primitive, ``_BATCHID`` = index in the batch table."""
    if arrays.is_empty:
        raise ValueError("a tile content needs at least one triangle")
    builder = GltfBuilder(GENERATOR)
    return _finish(builder, [_primitive(builder, arrays, "_BATCHID")])
