"""The city tileset: one 3D Tiles 1.1 tileset whose root has one external-tileset child per
published dataset. Pure: it only reads the datasets' tileset JSON documents given to it.

The server serves it at ``/tiles/city/tileset.json``; a dataset's tileset is at
``/tiles/<dataset>/tileset.json``, so the child URIs are ``../<dataset>/tileset.json``
(:func:`dataset_child_uri`), resolved by clients against the city tileset's own URL.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tiling.bounding_volume import region_diagonal, region_of_volume, region_union
from tiling.gltf_content import GENERATOR
from tiling.tileset import matrix_from_json

#: the whole Earth, for a city with no dataset yet
WORLD_REGION = [-math.pi, -math.pi / 2, math.pi, math.pi / 2, 0.0, 1.0]


def dataset_child_uri(dataset: str) -> str:
    """URI of a dataset's tileset relative to ``/tiles/city/tileset.json``."""
    return f"../{dataset}/tileset.json"


def tileset_region(tileset: dict[str, Any]) -> list[float]:
    """The root bounding region of a tileset document: its ``region`` when it has one (ours
    do), else computed from its box or sphere through the root transform."""
    root = tileset["root"]
    world = matrix_from_json(root.get("transform"))
    return region_of_volume(root["boundingVolume"], world)


def city_tileset(children: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The city tileset over ``children``: (URI of each dataset's tileset.json relative to the
    city tileset, that tileset.json as a dict)."""
    tiles, regions, names = [], [], []
    max_child_error = 0.0
    for uri, doc in children:
        region = tileset_region(doc)
        error = float(doc.get("geometricError", doc["root"].get("geometricError", 0.0)))
        max_child_error = max(max_child_error, error)
        regions.append(region)
        extras = doc.get("extras") or {}
        name = extras.get("dataset") if isinstance(extras, dict) else None
        names.append(name or uri)
        tile: dict[str, Any] = {"boundingVolume": {"region": region}, "geometricError": error,
                                "content": {"uri": uri}}
        tiles.append(tile)
    if regions:
        region = region_union(regions)
        error = max(region_diagonal(region), max_child_error)
    else:
        region, error = list(WORLD_REGION), 0.0
    root: dict[str, Any] = {"boundingVolume": {"region": region}, "geometricError": error, "refine": "ADD"}
    if tiles:
        root["children"] = tiles
    features = sum(int((doc.get("extras") or {}).get("features", 0)) for _, doc in children)
    return {
        "asset": {"version": "1.1", "generator": GENERATOR},
        "geometricError": float(error),
        "root": root,
        "extras": {"datasets": names, "features": features},
    }

