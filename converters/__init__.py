"""Input converters: files -> CIM features (they never write storage).

``open_input(path, options)`` finds the converter for a file by its content and returns a
:class:`cim.conversion.Reading`.

The names below are imported on first use (PEP 562), so that a stdlib-only submodule such as
:mod:`converters.ifc.spawn` can be imported without numpy, shapely or pyproj.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from cim.lazy import lazy_exports

if TYPE_CHECKING:
    from converters.base import ConvertOptions, Converter
    from converters.registry import detect, open_input, registered_formats

_EXPORTS = {"ConvertOptions": "converters.base", "Converter": "converters.base", "detect": "converters.registry",
            "open_input": "converters.registry", "registered_formats": "converters.registry"}

__all__ = ["ConvertOptions", "Converter", "detect", "open_input", "registered_formats"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
