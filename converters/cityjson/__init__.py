"""CityJSON 1.0, 1.1 and 2.0 reader (registered in :mod:`converters.registry`)."""
from converters.cityjson.converter import CityJsonConverter

__all__ = ["CityJsonConverter"]
