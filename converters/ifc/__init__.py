"""The IFC (BIM) converter: IFC2X3, IFC4 and IFC4X3 files and ``.ifczip`` archives, read by
ifcopenshell in a child process (see docs/ifc.md). ifcopenshell is imported only there."""
from converters.ifc.converter import IfcConverter

__all__ = ["IfcConverter"]
