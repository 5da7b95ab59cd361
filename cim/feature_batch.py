"""Many features in a compact columnar form, for sending them from one process to another.

Pickling features one by one costs about 30 µs each (a dataclass, an enum, a shapely geometry
through WKB, five numpy arrays per mesh); a batch packed here pickles as a few arrays and lists:
all mesh vertices, triangles, surface types and cached bounds in one array each, all footprints
as one list of WKB. :func:`unpack` gives back equal features: the same ids, classes, sources,
attributes (the same dicts, in order), meshes (views into the batch's arrays, bounds cached as
they were) and footprints.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cim.classes import CityClass
from cim.feature import Feature, Source
from cim.mesh import Mesh


@dataclass
class PackedFeatures:
    rows: list[tuple[Any, ...]]            # id, class, parent, name, source file, source class, attributes, lods
    counts: npt.NDArray[np.int64]          # (meshes, 2): vertices and triangles of each mesh
    vertices: npt.NDArray[np.float64]      # (sum of vertices, 3)
    triangles: npt.NDArray[np.uint32]      # (sum of triangles, 3), indices local to their mesh
    surfaces: npt.NDArray[np.uint8]        # (sum of triangles,)
    bounds: npt.NDArray[np.float64]        # (meshes, 6): cached min xyz, max xyz (NaN: not computed)
    footprints: list[bytes | None]         # WKB per feature


def pack(features: list[Feature]) -> PackedFeatures:
    import shapely  # noqa: PLC0415 - only processes that send footprints need it

    rows: list[tuple[Any, ...]] = []
    meshes: list[Mesh] = []
    for f in features:
        rows.append((f.id, f.city_class.value, f.parent, f.name, f.source.file, f.source.original_class,
                     f.attributes, tuple(f.geometry)))
        meshes.extend(f.geometry.values())
    counts = np.array([(len(m.vertices), len(m.triangles)) for m in meshes], np.int64).reshape(-1, 2)
    bounds = np.full((len(meshes), 6), np.nan)
    for i, m in enumerate(meshes):
        cached = m.known_bounds()
        if cached is not None:
            bounds[i, :3], bounds[i, 3:] = cached
    footprints = np.empty(len(features), dtype=object)
    footprints[:] = [f.footprint for f in features]
    return PackedFeatures(
        rows, counts,
        np.concatenate([m.vertices for m in meshes]) if meshes else np.zeros((0, 3)),
        np.concatenate([m.triangles for m in meshes]) if meshes else np.zeros((0, 3), np.uint32),
        np.concatenate([m.surfaces for m in meshes]) if meshes else np.zeros(0, np.uint8),
        bounds, shapely.to_wkb(footprints, include_srid=True).tolist())


def unpack(packed: PackedFeatures) -> list[Feature]:
    import shapely  # noqa: PLC0415

    footprints = shapely.from_wkb(np.array(packed.footprints, dtype=object)).tolist() if packed.footprints else []
    v_end = np.cumsum(packed.counts[:, 0]).tolist()
    t_end = np.cumsum(packed.counts[:, 1]).tolist()
    known = ~np.isnan(packed.bounds[:, 0])
    out: list[Feature] = []
    k = v0 = t0 = 0
    for row, footprint in zip(packed.rows, footprints):
        fid, cls, parent, name, file, original, attributes, lods = row
        geometry: dict[int, Mesh] = {}
        for lod in lods:
            v1, t1 = v_end[k], t_end[k]
            mesh = Mesh(packed.vertices[v0:v1], packed.triangles[t0:t1], packed.surfaces[t0:t1])
            if known[k]:
                mesh.keep_bounds(packed.bounds[k, :3], packed.bounds[k, 3:])
            geometry[lod] = mesh
            k, v0, t0 = k + 1, v1, t1
        out.append(Feature(fid, CityClass(cls), Source(file, original), parent, name, attributes, geometry, footprint))
    return out
