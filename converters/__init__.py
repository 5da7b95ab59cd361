"""Input converters: files -> CIM features (they never write storage).

``open_input(path, options)`` finds the converter for a file by its content and returns a
:class:`cim.conversion.Reading`.
"""
from converters.base import ConvertOptions, Converter
from converters.registry import detect, open_input, registered_formats

__all__ = ["ConvertOptions", "Converter", "detect", "open_input", "registered_formats"]
