"""The IFC (BIM) converter: IFC2X3, IFC4 and IFC4X3 files and ``.ifczip`` archives, read by
ifcopenshell in a child process (see docs/ifc.md). ifcopenshell is imported only there.

``IfcConverter`` is imported on first use, so that :mod:`converters.ifc.spawn` stays light."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from converters.ifc.converter import IfcConverter

__all__ = ["IfcConverter"]


def __getattr__(name: str) -> Any:
    if name != "IfcConverter":
        raise AttributeError(f"module 'converters.ifc' has no attribute {name!r}")
    from converters.ifc.converter import IfcConverter

    return IfcConverter
