"""CityGML 1.0 / 2.0 / 3.0 reader (GML 3.1.1 and 3.2), streaming and hardened.

``CityGmlConverter().open(path, options)`` returns a :class:`CityGmlReading` whose ``features()``
yields CIM features as the file is parsed. See docs/citygml.md.
"""
from converters.citygml.converter import CityGmlConverter
from converters.citygml.reader import CityGmlReading

__all__ = ["CityGmlConverter", "CityGmlReading"]
