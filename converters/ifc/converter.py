"""The IFC converter plug-in (registered in :mod:`converters.registry`)."""
from __future__ import annotations

from pathlib import Path

from converters.base import ConvertOptions
from converters.ifc.reading import IfcReading


class IfcConverter:
    """Reads IFC-SPF files and ``.ifczip`` archives; see :class:`IfcReading`."""

    name = "ifc"

    def open(self, path: Path, options: ConvertOptions) -> IfcReading:
        """Start reading ``path``. A truncated file is refused at once
        (:class:`cim.errors.TruncatedFileError`); schema, placement, crash and time-limit
        problems surface while ``features()`` is iterated."""
        return IfcReading(Path(path), options)
