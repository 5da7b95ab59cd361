"""The tileset JSON data model (3D Tiles 1.0 / 1.1): tiles, transforms, the tileset document."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

ADD, REPLACE = "ADD", "REPLACE"


def matrix_json(m: Array) -> list[float]:
    """A 4x4 matrix (``p' = m @ p``) as the 16 column-major numbers 3D Tiles and glTF use."""
    return [float(v) for v in np.asarray(m, dtype=np.float64).reshape(4, 4).flatten(order="F")]


def matrix_from_json(values: list[float] | None) -> Array:
    if values is None:
        return np.eye(4)
    return np.asarray(values, dtype=np.float64).reshape(4, 4, order="F")


@dataclass(eq=False)
class Tile:
    """One tile of a tileset JSON. ``transform`` is relative to the parent tile (3D Tiles
    transforms compose: a tile's world matrix is its parent's world matrix times its own)."""

    bounding_volume: dict[str, Any]
    geometric_error: float
    transform: Array | None = None
    content_uri: str | None = None
    children: list[Tile] = field(default_factory=list)
    refine: str | None = None
    extras: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"boundingVolume": self.bounding_volume, "geometricError": float(self.geometric_error)}
        if self.refine:
            out["refine"] = self.refine
        if self.transform is not None:
            out["transform"] = matrix_json(self.transform)
        if self.content_uri:
            out["content"] = {"uri": self.content_uri}
        if self.extras:
            out["extras"] = self.extras
        if self.children:
            out["children"] = [c.to_json() for c in self.children]
        return out

    def count(self) -> int:
        return 1 + sum(c.count() for c in self.children)


def tileset_json(root: Tile, *, version: str, geometric_error: float, generator: str,
                 schema: dict[str, Any] | None = None, extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tileset document. ``schema`` (3D Tiles 1.1 only) is the metadata schema the contents use."""
    if version not in ("1.0", "1.1"):
        raise ValueError(f"unsupported 3D Tiles version {version!r}")
    if root.refine is None:
        raise ValueError("the root tile needs a refine mode")
    doc: dict[str, Any] = {"asset": {"version": version, "generator": generator},
                           "geometricError": float(max(geometric_error, root.geometric_error))}
    if schema is not None and version == "1.1":
        doc["schema"] = schema
    doc["root"] = root.to_json()
    if extras:
        doc["extras"] = extras
    return doc


def write_tileset(path: Path, doc: dict[str, Any]) -> int:
    """Write the tileset JSON; returns its size in bytes."""
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    path.write_bytes(data)
    return len(data)
