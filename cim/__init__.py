"""The unified city information model (CIM): features, geometry, CRS handling and the store.

This package knows nothing of file formats (see ``converters``), of 3D Tiles (see ``tiling``) or
of HTTP (see ``server``).
"""
from cim.classes import CityClass, SurfaceType
from cim.errors import CimError
from cim.feature import Feature, Source
from cim.mesh import Mesh

__all__ = ["CimError", "CityClass", "Feature", "Mesh", "Source", "SurfaceType"]
