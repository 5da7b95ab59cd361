"""The CityJSON converter plug-in."""
from __future__ import annotations

from pathlib import Path

from converters.base import ConvertOptions
from converters.cityjson.reader import CityJsonReading


class CityJsonConverter:
    """Reads CityJSON 1.0, 1.1 and 2.0 documents; see :class:`CityJsonReading`."""

    name = "cityjson"

    def open(self, path: Path, options: ConvertOptions) -> CityJsonReading:
        return CityJsonReading(Path(path), options)
