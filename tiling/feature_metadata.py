"""Per-feature properties: the EXT_structural_metadata schema and property tables (3D Tiles 1.1)
and the batch table (3D Tiles 1.0).

One schema per dataset (its ``id`` is the same in every glb of the dataset), one class per CIM
class that has geometry. Every class has the fixed properties of :data:`FIXED_PROPERTIES` plus
one property per attribute key seen on features of that class. Attribute keys are sanitised to
identifiers (``Pset_WallCommon.IsExternal`` -> ``Pset_WallCommon_IsExternal``); the original key
is the property's ``name``. Missing values are written as the property's ``noData`` value, so
clients read them as undefined (``""`` for strings, :data:`NO_DATA_FLOAT64` and
:data:`NO_DATA_INT32` for numbers). BOOLEAN properties have no noData, so a boolean attribute
that some features of the class lack is written as STRING (``"true"``/``"false"``, ``""``).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cim.feature import Feature
from tiling.glb import GltfBuilder

NO_DATA_FLOAT64 = -1.7976931348623157e308
NO_DATA_INT32 = -(2**31)
_INT32_RANGE = (-(2**31) + 1, 2**31 - 1)
_EXACT_FLOAT = 2**53

STRING, FLOAT64, INT32, BOOLEAN = "STRING", "FLOAT64", "INT32", "BOOLEAN"

#: (property id, type, description) present in every class
FIXED_PROPERTIES: tuple[tuple[str, str, str], ...] = (
    ("id", STRING, "stable feature id (gml:id, IFC GlobalId or derived)"),
    ("class", STRING, "CityGML 3.0 class of the feature"),
    ("name", STRING, "feature name"),
    ("parent", STRING, "id of the parent feature"),
    ("height", FLOAT64, "measuredHeight when positive, else zmax - zmin (metres)"),
    ("zmin", FLOAT64, "lowest point (metres, source vertical datum)"),
    ("zmax", FLOAT64, "highest point (metres, source vertical datum)"),
    ("function", STRING, "function attribute"),
    ("usage", STRING, "usage attribute"),
    ("source_dataset", STRING, "dataset the feature was imported into"),
    ("source_file", STRING, "file the feature was read from"),
    ("source_class", STRING, "class of the feature in the source file"),
)
_FIXED_IDS = {p[0] for p in FIXED_PROPERTIES}
_FROM_ATTRIBUTES = ("function", "usage")  # fixed properties taken from attributes of that name
_BATCH_RESERVED = {"extensions", "extras"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sanitise_identifier(key: str) -> str:
    """A metadata identifier (``^[a-zA-Z_][a-zA-Z0-9_]*$``) for an attribute key."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", key)
    return out if _IDENTIFIER.match(out) else "_" + out


# --- the record of one feature ----------------------------------------------------------------

@dataclass
class FeatureRecord:
    """The values written for one feature (fixed properties + attributes)."""

    values: dict[str, Any]
    attributes: dict[str, Any]


def feature_record(feature: Feature, dataset: str, z_range: tuple[float, float] | None) -> FeatureRecord:
    """Fixed property values of ``feature``; ``z_range`` is its (zmin, zmax) in metres."""
    attrs = feature.attributes
    # mesh blobs keep millimetres (float32 offsets): round so that a click shows 11.356, not 11.356000022
    zmin, zmax = (round(z_range[0], 3), round(z_range[1], 3)) if z_range is not None else (None, None)
    height = _float_or_none(attrs.get("measuredHeight"))
    if height is not None and height <= 0:  # 0 is a common placeholder (e.g. Potsdam LoD1)
        height = None
    if height is None and zmin is not None and zmax is not None:
        height = round(zmax - zmin, 3)
    values = {
        "id": feature.id, "class": feature.city_class.value, "name": feature.name, "parent": feature.parent,
        "height": height, "zmin": zmin, "zmax": zmax,
        "function": _text_or_none(attrs.get("function")), "usage": _text_or_none(attrs.get("usage")),
        "source_dataset": dataset, "source_file": feature.source.file, "source_class": feature.source.original_class,
    }
    return FeatureRecord(values, attrs)


def _float_or_none(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _text_or_none(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


# --- attribute catalogue and schema ---------------------------------------------------------

@dataclass
class _KeyStats:
    kinds: set[str] = field(default_factory=set)
    lo: int = 0
    hi: int = 0
    count: int = 0  # features that have a value
    total: int = 0  # features of the class (set by build_schema)

    def see(self, value: Any) -> None:
        if value is None:
            return
        self.count += 1
        if isinstance(value, bool):
            self.kinds.add("bool")
        elif isinstance(value, int):
            self.kinds.add("int")
            self.lo, self.hi = min(self.lo, value), max(self.hi, value)
        elif isinstance(value, float):
            self.kinds.add("float" if np.isfinite(value) else "str")
        else:
            self.kinds.add("str")

    def type(self) -> str:
        if not self.kinds or "str" in self.kinds or ("bool" in self.kinds and len(self.kinds) > 1):
            return STRING
        if self.kinds == {"bool"}:
            # BOOLEAN has no noData: a key that some features lack would read "false" for them,
            # so it is written as STRING ("true"/"false", "" = missing)
            return BOOLEAN if self.count >= self.total else STRING
        if self.kinds == {"int"} and _INT32_RANGE[0] <= self.lo and self.hi <= _INT32_RANGE[1]:
            return INT32
        if max(-self.lo, self.hi) <= _EXACT_FLOAT:
            return FLOAT64
        return STRING


@dataclass(frozen=True)
class PropertySpec:
    """One property of a class: its identifier, type, and where its value comes from
    (``key`` is a fixed property id, or the original attribute key)."""

    id: str
    type: str
    key: str
    from_attributes: bool
    description: str = ""

    def definition(self) -> dict[str, Any]:
        d: dict[str, Any]
        if self.type == STRING:
            d = {"type": "STRING"}
            if self.id != "id":
                d["noData"] = ""
        elif self.type == BOOLEAN:
            d = {"type": "BOOLEAN"}
        else:
            d = {"type": "SCALAR", "componentType": self.type,
                 "noData": NO_DATA_FLOAT64 if self.type == FLOAT64 else NO_DATA_INT32}
        if self.from_attributes:
            d["name"] = self.key
        if self.description:
            d["description"] = self.description
        return d

    def value(self, record: FeatureRecord) -> Any:
        return record.attributes.get(self.key) if self.from_attributes else record.values.get(self.key)


@dataclass
class MetadataSchema:
    """The dataset's schema: per class (CityGML 3.0 class name) the ordered property specs."""

    id: str
    dataset: str
    classes: dict[str, list[PropertySpec]]

    def to_json(self, classes: Iterable[str] | None = None) -> dict[str, Any]:
        """The schema JSON; with ``classes``, only those classes (a glb embeds the classes it
        uses: the same schema ``id``, a subset of the tileset's schema)."""
        wanted = set(self.classes) if classes is None else set(classes)
        return {"id": self.id, "name": f"CIM dataset {self.dataset}", "classes": {
            cls: {"name": cls, "properties": {p.id: p.definition() for p in specs}}
            for cls, specs in self.classes.items() if cls in wanted}}


def build_schema(dataset: str, features: Iterable[Feature], classes: Iterable[str] | None = None) -> MetadataSchema:
    """Scan ``features`` (attributes only; no geometry needed) for attribute keys and types per
    class. ``classes`` limits the schema to these classes (those with geometry) and makes sure
    each of them has a class even when none of its features has attributes."""
    stats: dict[str, dict[str, _KeyStats]] = {c: {} for c in (classes or [])}
    totals: dict[str, int] = {}
    wanted = set(stats) if classes is not None else None
    for feature in features:
        cls = feature.city_class.value
        if wanted is not None and cls not in wanted:
            continue
        per_class = stats.setdefault(cls, {})
        totals[cls] = totals.get(cls, 0) + 1
        for key, value in feature.attributes.items():
            per_class.setdefault(key, _KeyStats()).see(value)
    for cls, keys in stats.items():
        for key_stats in keys.values():
            key_stats.total = totals.get(cls, 0)
    return MetadataSchema(schema_id(dataset), dataset, {cls: _class_specs(keys) for cls, keys in sorted(stats.items())})


def schema_id(dataset: str) -> str:
    return "cim_" + re.sub(r"[^A-Za-z0-9_]", "_", dataset)


def _class_specs(keys: dict[str, _KeyStats]) -> list[PropertySpec]:
    specs = [PropertySpec(pid, kind, pid, False, desc) for pid, kind, desc in FIXED_PROPERTIES]
    taken = set(_FIXED_IDS)
    for key in sorted(keys):
        if key in _FROM_ATTRIBUTES:
            continue
        pid = sanitise_identifier(key)
        if pid in taken:
            pid = "attr_" + pid
        base, n = pid, 2
        while pid in taken:
            pid, n = f"{base}_{n}", n + 1
        taken.add(pid)
        specs.append(PropertySpec(pid, keys[key].type(), key, True))
    return specs


# --- encoding ------------------------------------------------------------------------------------

def encode_values(spec: PropertySpec, records: Sequence[FeatureRecord]) -> dict[str, Any]:
    """Column of ``spec`` over ``records`` as numpy data / strings (before writing)."""
    raw = [spec.value(r) for r in records]
    if spec.type == STRING:
        return {"strings": [_text_or_none(v) or "" for v in raw]}
    if spec.type == BOOLEAN:
        return {"array": np.packbits(np.array([bool(v) for v in raw], dtype=bool), bitorder="little")}
    if spec.type == INT32:
        ints = [v if isinstance(v, int) and not isinstance(v, bool) else NO_DATA_INT32 for v in raw]
        return {"array": np.array(ints, dtype=np.int32)}
    floats = [_float_or_none(v) for v in raw]
    return {"array": np.array([NO_DATA_FLOAT64 if f is None else f for f in floats], dtype=np.float64)}


def write_property_table(builder: GltfBuilder, class_id: str, specs: Sequence[PropertySpec],
                         records: Sequence[FeatureRecord]) -> dict[str, Any]:
    """Write the columns of one property table into ``builder``'s buffer; returns the
    ``propertyTables`` entry."""
    props: dict[str, Any] = {}
    for spec in specs:
        column = encode_values(spec, records)
        if "strings" in column:
            encoded = [s.encode("utf-8") for s in column["strings"]]
            offsets = np.zeros(len(encoded) + 1, dtype=np.uint32)
            offsets[1:] = np.cumsum([len(e) for e in encoded])
            data = b"".join(encoded) or b"\x00"  # a bufferView cannot be empty; offsets say 0 bytes
            props[spec.id] = {"values": builder.buffer_view(data),
                              "stringOffsets": builder.buffer_view(offsets.tobytes()), "stringOffsetType": "UINT32"}
        else:
            props[spec.id] = {"values": builder.buffer_view(column["array"].tobytes())}
    return {"class": class_id, "count": len(records), "properties": props}


def batch_table(records: Sequence[FeatureRecord], attribute_keys: Sequence[str]) -> dict[str, list[Any]]:
    """3D Tiles 1.0 batch table JSON: one array per property, one value per feature (null when
    missing). Attribute columns keep their original keys, prefixed ``attr_`` when a key is a fixed
    column or a reserved batch-table name."""
    table: dict[str, list[Any]] = {pid: [_plain(r.values.get(pid)) for r in records] for pid, _, _ in FIXED_PROPERTIES}
    for key in attribute_keys:
        if key in _FROM_ATTRIBUTES:
            continue
        column = key if key not in table and key not in _BATCH_RESERVED else "attr_" + key
        table[column] = [_plain(r.attributes.get(key)) for r in records]
    return table


def _plain(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


# --- decoding (tests, clients of the library) -------------------------------------------------

_NUMPY_COMPONENT = {"INT8": np.int8, "UINT8": np.uint8, "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32,
                    "UINT32": np.uint32, "INT64": np.int64, "UINT64": np.uint64, "FLOAT32": np.float32,
                    "FLOAT64": np.float64}


def read_property_table(doc: dict[str, Any], binary: bytes, table: int = 0) -> dict[str, list[Any]]:
    """Decode property table ``table`` of a glb (JSON ``doc`` and BIN chunk) into columns of
    Python values, ``None`` where a value equals the property's noData. Scalars and strings and
    booleans only (what this package writes)."""
    ext = doc["extensions"]["EXT_structural_metadata"]
    tab = ext["propertyTables"][table]
    definitions = ext["schema"]["classes"][tab["class"]]["properties"]
    count = tab["count"]
    views = doc["bufferViews"]

    def view(i: int) -> bytes:
        v = views[i]
        start = v.get("byteOffset", 0)
        return binary[start:start + v["byteLength"]]

    out: dict[str, list[Any]] = {}
    for pid, prop in tab["properties"].items():
        d = definitions[pid]
        values = view(prop["values"])
        column: list[Any]
        if d["type"] == "STRING":
            offset_type = _NUMPY_COMPONENT[prop.get("stringOffsetType", "UINT32")]
            offsets = np.frombuffer(view(prop["stringOffsets"]), dtype=offset_type, count=count + 1)
            column = [values[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(count)]
        elif d["type"] == "BOOLEAN":
            bits = np.unpackbits(np.frombuffer(values, dtype=np.uint8), bitorder="little")[:count]
            column = [bool(b) for b in bits]
        else:
            arr = np.frombuffer(values, dtype=_NUMPY_COMPONENT[d["componentType"]], count=count)
            column = arr.tolist()
        if "noData" in d:
            column = [None if v == d["noData"] else v for v in column]
        out[pid] = column
    return out
