"""Triangle meshes with a semantic surface type per triangle, and their compact binary form.

Coordinates are in the dataset's source frame (its CRS and its units, or a local placed frame),
z up. The blob stores a float64 origin and float32 offsets from it, which keeps
sub-millimetre precision for anything up to a few kilometres across.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cim.errors import StoreError

_MAGIC = b"CIMM"
_VERSION = 1
_HEADER = struct.Struct("<4sBBxxII3d")  # magic, version, index width, n vertices, n triangles, origin


@dataclass(eq=False)
class Mesh:
    """``vertices`` (n, 3) float64; ``triangles`` (m, 3) int indices; ``surfaces`` (m,) uint8
    :class:`cim.classes.SurfaceType` codes."""

    vertices: npt.NDArray[np.float64]
    triangles: npt.NDArray[np.uint32]
    surfaces: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.triangles = np.ascontiguousarray(self.triangles, dtype=np.uint32).reshape(-1, 3)
        if self.surfaces.size == 0 and len(self.triangles):
            self.surfaces = np.zeros(len(self.triangles), np.uint8)
        self.surfaces = np.ascontiguousarray(self.surfaces, dtype=np.uint8).reshape(-1)
        if len(self.surfaces) != len(self.triangles):
            raise ValueError("one surface type per triangle is required")

    @property
    def triangle_count(self) -> int:
        return int(len(self.triangles))

    @property
    def is_empty(self) -> bool:
        return len(self.triangles) == 0

    def bounds(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(min xyz, max xyz) of the vertices (computed once; meshes are not mutated)."""
        cached = self.__dict__.get("_bounds")
        if cached is None:
            if len(self.vertices) == 0:
                raise ValueError("empty mesh has no bounds")
            cached = self.__dict__["_bounds"] = (self.vertices.min(axis=0), self.vertices.max(axis=0))
        return cached

    def known_bounds(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None:
        """The bounds if :meth:`bounds` has computed them already, else None (nothing computed)."""
        return self.__dict__.get("_bounds")

    def keep_bounds(self, lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64]) -> None:
        """Cache bounds known to be this mesh's (e.g. computed before it was sent to another process)."""
        self.__dict__["_bounds"] = (lo, hi)

    @staticmethod
    def concat(meshes: "list[Mesh]") -> "Mesh":
        meshes = [m for m in meshes if not m.is_empty]
        if not meshes:
            return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.uint32))
        offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
        return Mesh(
            np.concatenate([m.vertices for m in meshes]),
            np.concatenate([m.triangles.astype(np.int64) + o for m, o in zip(meshes, offsets)]),
            np.concatenate([m.surfaces for m in meshes]),
        )

    # --- binary form --------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        n, m = len(self.vertices), len(self.triangles)
        origin = self.bounds()[0] if n else np.zeros(3)
        index_type = np.uint16 if n <= 0xFFFF else np.uint32
        rel = (self.vertices - origin).astype(np.float32)
        return b"".join((
            _HEADER.pack(_MAGIC, _VERSION, np.dtype(index_type).itemsize, n, m, *origin.tolist()),
            rel.tobytes(),
            self.triangles.astype(index_type).tobytes(),
            self.surfaces.tobytes(),
        ))

    @classmethod
    def from_bytes(cls, blob: bytes) -> "Mesh":
        try:
            magic, version, width, n, m, ox, oy, oz = _HEADER.unpack_from(blob, 0)
        except struct.error as exc:
            raise StoreError("mesh blob is too short", size=len(blob)) from exc
        if magic != _MAGIC or version != _VERSION or width not in (2, 4):
            raise StoreError("not a CIM mesh blob (bad magic or version)", magic=repr(magic), version=version)
        pos = _HEADER.size
        expected = pos + n * 12 + m * 3 * width + m
        if len(blob) != expected:
            raise StoreError("mesh blob has the wrong length", size=len(blob), expected=expected)
        rel = np.frombuffer(blob, np.float32, n * 3, pos).reshape(n, 3)
        pos += n * 12
        tri = np.frombuffer(blob, np.uint16 if width == 2 else np.uint32, m * 3, pos).reshape(m, 3)
        pos += m * 3 * width
        surf = np.frombuffer(blob, np.uint8, m, pos)
        return cls(rel.astype(np.float64) + np.array([ox, oy, oz]), tri.astype(np.uint32), surf.copy())
