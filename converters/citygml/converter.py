"""The CityGML converter plug-in (registered in :mod:`converters.registry`)."""
from __future__ import annotations

from pathlib import Path

from converters.base import ConvertOptions
from converters.citygml.reader import CityGmlReading


class CityGmlConverter:
    """Reads CityGML 1.0, 2.0 and 3.0 files; see :class:`CityGmlReading`."""

    name = "citygml"

    def open(self, path: Path, options: ConvertOptions) -> CityGmlReading:
        """Start reading ``path``. Refuses DTDs at once (:class:`cim.errors.HostileInputError`);
        parse, CRS and geometry problems surface while ``features()`` is iterated."""
        return CityGmlReading(Path(path), options)
