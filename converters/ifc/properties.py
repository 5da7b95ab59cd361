"""IFC attributes, property sets and quantity sets -> flat, typed feature attributes.

Every property of every property set and quantity set of an element (its own and its type's;
the element's own value wins) becomes ``<set name>.<property name>`` with a Python value of its
type: IfcBoolean/IfcLogical -> bool (UNKNOWN is left out), integers -> int, measures and reals
-> float (in the project's units, as written), labels/texts/identifiers/enumerations -> str.
Lists (enumerated and list values) are joined with ``"; "``.
"""
from __future__ import annotations

import math
from typing import Any

from cim.feature import AttributeValue

#: entity attributes copied as they are (when set)
ENTITY_ATTRIBUTES = ("GlobalId", "Name", "Description", "ObjectType", "LongName", "Tag", "PredefinedType",
                     "CompositionType", "Elevation")


def entity_attributes(entity: Any) -> dict[str, AttributeValue]:
    """The IFC class and the plain attributes of ``entity``."""
    out: dict[str, AttributeValue] = {"ifc_class": entity.is_a()}
    info = entity.get_info(include_identifier=False, recursive=False)
    for key in ENTITY_ATTRIBUTES:
        value = _plain(info.get(key))
        if value is not None and value != "":
            out[key] = value
    return out


def property_attributes(psets: dict[str, dict[str, Any]]) -> dict[str, AttributeValue]:
    """Flatten ``ifcopenshell.util.element.get_psets`` output to ``Set.Property`` attributes."""
    out: dict[str, AttributeValue] = {}
    for set_name, props in psets.items():
        for prop, raw in props.items():
            if prop == "id":
                continue
            value = _plain(raw)
            if value is not None and value != "":
                out[f"{set_name}.{prop}"] = value
    return out


def _plain(value: Any) -> AttributeValue | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        if value in ("UNKNOWN",):  # IfcLogical UNKNOWN
            return None
        return value.strip()
    if isinstance(value, (list, tuple)):
        parts = [_plain(v) for v in value]
        return "; ".join(str(p) for p in parts if p is not None) or None
    if hasattr(value, "is_a"):  # an entity reference (e.g. a unit); keep its name or class
        name = getattr(value, "Name", None)
        return str(name) if name else str(value.is_a())
    return str(value)
