"""Feature meshes in a tile's local frame -> the vertex arrays of one glTF primitive.

Colours: a feature's own colour (its ``color`` attribute, e.g. the IFC style of the element) when it
has one, else a colour per semantic surface type.

Local frame: east, north, up metres (z-up, the tile's ENU frame). glTF is y-up, and 3D Tiles
clients rotate glTF content by +90 degrees about x (y-up -> z-up), so positions and normals are
written as glTF (x, y, z) = (E, U, -N).

Normals are flat: a vertex is shared only by triangles of the same feature that have the same
normal and surface type (so a planar wall's triangles share vertices, a box corner does not).
Degenerate triangles (zero area) are dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cim.classes import CityClass, SurfaceType

Array = npt.NDArray[np.float64]

# sRGB colours per surface type
_SRGB: dict[SurfaceType, tuple[int, int, int]] = {
    SurfaceType.UNDEFINED: (226, 215, 190),  # light beige
    SurfaceType.WALL: (214, 214, 210),  # light grey
    SurfaceType.ROOF: (160, 72, 52),  # red-brown
    SurfaceType.GROUND: (90, 90, 90),  # dark grey
    SurfaceType.CLOSURE: (200, 200, 200),
    SurfaceType.FLOOR: (180, 170, 150),
    SurfaceType.OUTER_FLOOR: (180, 170, 150),
    SurfaceType.CEILING: (235, 235, 230),
    SurfaceType.OUTER_CEILING: (235, 235, 230),
    SurfaceType.INTERIOR_WALL: (230, 228, 220),
    SurfaceType.DOOR: (120, 80, 45),  # brown
    SurfaceType.WINDOW: (110, 160, 210),  # blue-ish
    SurfaceType.TERRAIN: (132, 140, 92),  # green-brown
    SurfaceType.TRAFFIC: (70, 70, 72),  # dark grey
    SurfaceType.WATER: (60, 120, 200),  # blue
    SurfaceType.VEGETATION: (80, 140, 60),
}


def _linear(c: int) -> float:
    s = c / 255.0
    return s / 12.92 if s <= 0.04045 else float(((s + 0.055) / 1.055) ** 2.4)


#: COLOR_0 values (linear, as glTF requires), indexed by SurfaceType code
COLOR_TABLE = np.zeros((256, 4), np.uint8)
COLOR_TABLE[:] = [round(_linear(c) * 255) for c in _SRGB[SurfaceType.UNDEFINED]] + [255]
for _surface, _rgb in _SRGB.items():
    COLOR_TABLE[int(_surface)] = [round(_linear(c) * 255) for c in _rgb] + [255]

#: surface type used for display when a triangle has none (UNDEFINED), by feature class
CLASS_SURFACE: dict[CityClass, SurfaceType] = {
    CityClass.ROOF_SURFACE: SurfaceType.ROOF, CityClass.WALL_SURFACE: SurfaceType.WALL,
    CityClass.GROUND_SURFACE: SurfaceType.GROUND, CityClass.DOOR: SurfaceType.DOOR,
    CityClass.WINDOW: SurfaceType.WINDOW, CityClass.TIN_RELIEF: SurfaceType.TERRAIN,
    CityClass.RELIEF_FEATURE: SurfaceType.TERRAIN, CityClass.LAND_USE: SurfaceType.TERRAIN,
    CityClass.ROAD: SurfaceType.TRAFFIC, CityClass.RAILWAY: SurfaceType.TRAFFIC, CityClass.TRACK: SurfaceType.TRAFFIC,
    CityClass.SQUARE: SurfaceType.TRAFFIC, CityClass.TRAFFIC_AREA: SurfaceType.TRAFFIC,
    CityClass.AUXILIARY_TRAFFIC_AREA: SurfaceType.TRAFFIC, CityClass.WATER_BODY: SurfaceType.WATER,
    CityClass.PLANT_COVER: SurfaceType.VEGETATION, CityClass.SOLITARY_VEGETATION_OBJECT: SurfaceType.VEGETATION,
}

#: classes whose unlabelled triangles are shaded by orientation (roof up, wall vertical, ground down)
SHADED_BY_ORIENTATION = frozenset({
    CityClass.BUILDING, CityClass.BUILDING_PART, CityClass.BUILDING_INSTALLATION, CityClass.BRIDGE,
    CityClass.BRIDGE_PART, CityClass.TUNNEL, CityClass.TUNNEL_PART, CityClass.GENERIC_CITY_OBJECT,
    CityClass.CITY_FURNITURE, CityClass.BUILDING_CONSTRUCTIVE_ELEMENT,
})
_UP = 0.3  # |normal z| above this: a roof (up) or a ground/underside (down)


def enu_to_gltf(xyz: Array) -> Array:
    """(E, N, U) -> glTF y-up (E, U, -N)."""
    xyz = np.asarray(xyz).reshape(-1, 3)
    return np.column_stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]])


def gltf_to_enu(xyz: Array) -> Array:
    """glTF y-up (x, y, z) -> (E, N, U) = (x, -z, y): what a 3D Tiles client does to glTF content."""
    xyz = np.asarray(xyz).reshape(-1, 3)
    return np.column_stack([xyz[:, 0], -xyz[:, 2], xyz[:, 1]])


@dataclass
class FeatureMesh:
    """One feature's best-LOD mesh in the tile's local ENU frame; ``feature_id`` is its index in
    the primitive's property table (or the b3dm batch)."""

    vertices: Array
    triangles: npt.NDArray[np.uint32]
    surfaces: npt.NDArray[np.uint8]
    feature_id: int
    city_class: CityClass
    colour: tuple[int, int, int] | None = None  # sRGB of the feature (e.g. its IFC style); None: by semantics


def parse_colour(value: object) -> tuple[int, int, int] | None:
    """A feature's ``color`` attribute (``#rrggbb``, sRGB) as a tuple, or None when absent or malformed."""
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        return None
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _linear_rgba(rgb: tuple[int, int, int]) -> npt.NDArray[np.uint8]:
    return np.array([round(_linear(c) * 255) for c in rgb] + [255], dtype=np.uint8)


@dataclass
class PrimitiveArrays:
    """glTF-ready arrays (y-up) and the local (ENU, z-up) bounds of the positions."""

    positions: npt.NDArray[np.float32]
    normals: npt.NDArray[np.float32]
    colors: npt.NDArray[np.uint8]
    feature_ids: npt.NDArray[np.float32]
    indices: npt.NDArray[np.uint32]

    @property
    def triangle_count(self) -> int:
        return int(len(self.indices) // 3)

    @property
    def is_empty(self) -> bool:
        return len(self.indices) == 0

    def local_bounds(self) -> tuple[Array, Array]:
        """(lo, hi) of the positions in the local ENU frame (z-up), as the client places them."""
        enu = gltf_to_enu(self.positions.astype(np.float64))
        return enu.min(axis=0), enu.max(axis=0)


def build_primitive(meshes: list[FeatureMesh]) -> PrimitiveArrays:
    """Concatenate feature meshes into flat-shaded, coloured, feature-id'd vertex arrays."""
    verts, corners, normals, surfaces, fids, colours = [], [], [], [], [], []
    offset = 0
    for m in meshes:
        if len(m.triangles) == 0:
            continue
        v = np.asarray(m.vertices, dtype=np.float64)
        tri = np.asarray(m.triangles, dtype=np.int64)
        a, b, c = v[tri[:, 0]], v[tri[:, 1]], v[tri[:, 2]]
        cross = np.cross(b - a, c - a)
        length = np.linalg.norm(cross, axis=1)
        keep = length > 1e-9
        if not keep.any():
            continue
        tri, cross, length = tri[keep], cross[keep], length[keep]
        surf = np.asarray(m.surfaces, dtype=np.uint8)[keep].copy()
        default = CLASS_SURFACE.get(m.city_class)
        if default is not None:
            surf[surf == SurfaceType.UNDEFINED] = int(default)
        elif m.city_class in SHADED_BY_ORIENTATION:  # display only: e.g. LOD1 solids without semantics
            nz = cross[:, 2] / length
            undefined = surf == SurfaceType.UNDEFINED
            surf[undefined] = np.where(nz[undefined] > _UP, SurfaceType.ROOF,
                                       np.where(nz[undefined] < -_UP, SurfaceType.GROUND, SurfaceType.WALL))
        verts.append(v)
        corners.append(tri + offset)
        normals.append(cross / length[:, None])
        surfaces.append(surf)
        fids.append(np.full(len(tri), m.feature_id, np.int64))
        colours.append(COLOR_TABLE[surf] if m.colour is None else np.tile(_linear_rgba(m.colour), (len(tri), 1)))
        offset += len(v)
    if not corners:
        return PrimitiveArrays(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32),
                               np.zeros((0, 4), np.uint8), np.zeros(0, np.float32), np.zeros(0, np.uint32))
    all_verts = np.concatenate(verts)
    tris = np.concatenate(corners)
    tri_normal = np.concatenate(normals)
    tri_surface = np.concatenate(surfaces)
    tri_fid = np.concatenate(fids)
    tri_colour = np.concatenate(colours)
    # one output vertex per distinct (source vertex, quantised normal, surface type)
    qn = np.round(tri_normal * 32767).astype(np.int64)
    keys = np.column_stack([
        tris.reshape(-1),
        np.repeat(qn, 3, axis=0),
        np.repeat(tri_surface.astype(np.int64), 3),
    ])
    unique, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    corner_tri = first // 3
    positions = enu_to_gltf(all_verts[unique[:, 0]]).astype(np.float32)
    vertex_normals = enu_to_gltf(tri_normal[corner_tri])
    vertex_normals /= np.linalg.norm(vertex_normals, axis=1)[:, None]
    return PrimitiveArrays(
        positions=positions,
        normals=vertex_normals.astype(np.float32),
        colors=tri_colour[corner_tri],
        feature_ids=tri_fid[corner_tri].astype(np.float32),
        indices=np.asarray(inverse, dtype=np.uint32).reshape(-1),
    )
