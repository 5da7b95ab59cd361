"""The unified city information model (CIM): features, geometry, CRS handling and the store.

This package knows nothing of file formats (see ``converters``), of 3D Tiles (see ``tiling``) or
of HTTP (see ``server``).

The names below are imported on first use (PEP 562), so that ``from cim import errors`` does not
pull in numpy/shapely: the CLI starts the IFC conversion child before its heavy imports.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from cim.lazy import lazy_exports

if TYPE_CHECKING:
    from cim.classes import CityClass, SurfaceType
    from cim.errors import CimError
    from cim.feature import Feature, Source
    from cim.mesh import Mesh

_EXPORTS = {"CityClass": "cim.classes", "SurfaceType": "cim.classes", "CimError": "cim.errors",
            "Feature": "cim.feature", "Source": "cim.feature", "Mesh": "cim.mesh"}

__all__ = ["CimError", "CityClass", "Feature", "Mesh", "Source", "SurfaceType"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
