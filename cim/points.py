"""Point clouds in the CIM: chunks of points (what a LiDAR reader yields and the tiler consumes),
their compact block encoding in the store, and the ASPRS classification table.

A point cloud is never one feature per point. A reader yields :class:`PointChunk` objects:
positions as the file's own scaled integers (``ixyz``, int32) with ``scale`` and ``offset``, so
``xyz = ixyz * scale + offset`` are the exact source-frame coordinates (x = easting or
longitude, y = northing or latitude, z = height, in the units of the dataset's frame), and
per-point attribute arrays. Ingestion stores them as blocks (:func:`encode_block`) and makes one
``PointCloud`` feature that describes the cloud (extent, point count, counts per class).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cim.conversion import ConversionReport
from cim.crs import Frame
from cim.errors import StoreError

#: ASPRS LAS 1.4 standard point classes (R15, table 17); 19-63 reserved, 64-255 user definable
ASPRS_CLASSES: dict[int, str] = {
    0: "Created, never classified", 1: "Unclassified", 2: "Ground", 3: "Low Vegetation",
    4: "Medium Vegetation", 5: "High Vegetation", 6: "Building", 7: "Low Point (Noise)",
    8: "Model Key-point", 9: "Water", 10: "Rail", 11: "Road Surface", 12: "Overlap",
    13: "Wire - Guard (Shield)", 14: "Wire - Conductor (Phase)", 15: "Transmission Tower",
    16: "Wire-Structure Connector (Insulator)", 17: "Bridge Deck", 18: "High Noise",
}

#: display colours (RGB) per class for clouds without colours; unknown classes are grey
CLASS_COLOURS: dict[int, tuple[int, int, int]] = {
    0: (170, 170, 170), 1: (190, 190, 190), 2: (166, 124, 82), 3: (144, 238, 144), 4: (60, 179, 113),
    5: (34, 120, 50), 6: (220, 80, 60), 7: (255, 0, 255), 8: (255, 255, 0), 9: (40, 110, 230),
    10: (120, 80, 40), 11: (90, 90, 90), 12: (250, 200, 0), 13: (255, 255, 255), 14: (255, 255, 255),
    15: (200, 200, 200), 16: (200, 200, 200), 17: (150, 120, 200), 18: (255, 0, 255),
}


def class_name(code: int) -> str:
    """The ASPRS name of classification ``code`` (``"Reserved 19"``, ``"User 64"`` otherwise)."""
    if code in ASPRS_CLASSES:
        return ASPRS_CLASSES[code]
    return f"Reserved {code}" if code < 64 else f"User {code}"


def class_palette() -> npt.NDArray[np.uint8]:
    """(256, 3) display colours indexed by class code."""
    pal = np.full((256, 3), 160, np.uint8)
    for code, rgb in CLASS_COLOURS.items():
        pal[code] = rgb
    return pal


@dataclass
class PointChunk:
    """A run of points from one file.

    ``ixyz`` (n, 3) int32 with ``scale``/``offset`` give exact source coordinates; ``rgb`` is
    (n, 3) uint8 (already reduced from 16-bit fields) or None when the file has no usable colour.
    """

    ixyz: npt.NDArray[np.int32]
    scale: tuple[float, float, float]
    offset: tuple[float, float, float]
    intensity: npt.NDArray[np.uint16]
    classification: npt.NDArray[np.uint8]
    return_number: npt.NDArray[np.uint8]
    rgb: npt.NDArray[np.uint8] | None = None

    def __len__(self) -> int:
        return int(len(self.ixyz))

    @property
    def xyz(self) -> npt.NDArray[np.float64]:
        """(n, 3) float64 source-frame coordinates."""
        return self.ixyz * np.asarray(self.scale) + np.asarray(self.offset)

    def columns(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The source-frame x, y and z as three contiguous float64 arrays (what a transform
        works on column by column; cheaper than :attr:`xyz` followed by column copies)."""
        x, y, z = (self.ixyz[:, k] * self.scale[k] + self.offset[k] for k in range(3))
        return x, y, z


class PointReading(Protocol):
    """One point-cloud file being read (the point counterpart of :class:`cim.conversion.Reading`).

    ``frame`` and ``point_count`` are known as soon as the reading is open (a reader raises
    :class:`cim.errors.CrsMissingError` from ``open`` when it cannot place the data);
    ``chunks()`` streams the points in bounded pieces. ``declared_extent`` is the (min, max)
    source-frame box the file declares before any point is read (LAS header bounds), or None
    when it has none or it cannot be trusted; the points are checked against it afterwards.
    """

    path: Path
    report: ConversionReport
    bytes_read: int
    total_bytes: int
    point_count: int
    declared_extent: tuple[tuple[float, float, float], tuple[float, float, float]] | None

    @property
    def frame(self) -> Frame: ...

    def chunks(self) -> Iterator[PointChunk]: ...


class PointPiece(Protocol):
    """A run of a file's points that can be decoded on its own, in any process (picklable).
    ``read()`` returns its :class:`PointChunk` and the chunk's :class:`PointStats` (raising
    :class:`cim.errors.TruncatedFileError` when the file ends early). A reading's pieces, in
    order, are exactly the chunks its ``chunks()`` yields."""

    count: int

    def read(self) -> tuple[PointChunk, PointStats]: ...


class PieceReading(PointReading, Protocol):
    """A :class:`PointReading` whose points can also be decoded piece by piece in parallel
    (``cim convert`` decodes them in the tiler's workers). ``pieces()`` returns None when this
    file cannot be read that way; ``finish(stats)`` then takes what the pieces found (counts,
    warnings into ``report``) as the end of ``chunks()`` would have."""

    def pieces(self) -> list[PointPiece] | None: ...

    def finish(self, stats: PointStats) -> None: ...


@dataclass
class PointStats:
    """What an import learns about a cloud from its chunks: count, extent (source frame),
    points per class and per return number, coloured points, and points whose RGB fields are
    all zero. Chunks are added in any order and stats merged (pieces decoded in parallel)."""

    count: int = 0
    lo: npt.NDArray[np.float64] = field(default_factory=lambda: np.full(3, np.inf))
    hi: npt.NDArray[np.float64] = field(default_factory=lambda: np.full(3, -np.inf))
    classes: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(256, np.int64))
    returns: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(256, np.int64))
    coloured: int = 0
    zero_rgb: int = 0  # points of a format with colour whose RGB fields are all zero

    def add(self, chunk: PointChunk) -> None:
        n = len(chunk)
        if n == 0:
            return
        for k in range(3):  # column by column: a reduction along axis 0 of (n, 3) is slow
            column = chunk.ixyz[:, k]
            self.lo[k] = min(self.lo[k], int(column.min()) * chunk.scale[k] + chunk.offset[k])
            self.hi[k] = max(self.hi[k], int(column.max()) * chunk.scale[k] + chunk.offset[k])
        self.classes += np.bincount(chunk.classification, minlength=256)
        self.returns += np.bincount(chunk.return_number, minlength=256)
        self.coloured += n if chunk.rgb is not None else 0
        self.count += n

    def merge(self, other: PointStats) -> None:
        self.count += other.count
        np.minimum(self.lo, other.lo, out=self.lo)
        np.maximum(self.hi, other.hi, out=self.hi)
        self.classes += other.classes
        self.returns += other.returns
        self.coloured += other.coloured
        self.zero_rgb += other.zero_rgb


def is_piece_reading(reading: Any) -> bool:
    """True for a point reading that may offer pieces (:class:`PieceReading`)."""
    return is_point_reading(reading) and callable(getattr(type(reading), "pieces", None))


def is_point_reading(reading: Any) -> bool:
    """True for a reading of point chunks (its class has ``chunks``), False for a reading of
    features. Looks at the class only: ``isinstance`` with a runtime protocol would evaluate the
    reading's ``frame`` property, which may raise before the file is read."""
    return callable(getattr(type(reading), "chunks", None))


# --- store blocks ---------------------------------------------------------------------------

_BLOCK_MAGIC = b"CPB1"
_BLOCK_HEADER = struct.Struct("<4sIB3x6d")  # magic, count, has_rgb, scale xyz, offset xyz
BLOCK_POINTS = 500_000  # points per stored block (readers' chunk size)


def encode_block(chunk: PointChunk) -> bytes:
    """A compact little-endian blob: header, int32 xyz, uint16 intensity, uint8 class, uint8
    return number, and uint8 RGB when present (about 19 bytes per point)."""
    n = len(chunk)
    parts = [_BLOCK_HEADER.pack(_BLOCK_MAGIC, n, 1 if chunk.rgb is not None else 0, *chunk.scale, *chunk.offset),
             np.ascontiguousarray(chunk.ixyz, "<i4").tobytes(), np.ascontiguousarray(chunk.intensity, "<u2").tobytes(),
             np.ascontiguousarray(chunk.classification, "u1").tobytes(),
             np.ascontiguousarray(chunk.return_number, "u1").tobytes()]
    if chunk.rgb is not None:
        parts.append(np.ascontiguousarray(chunk.rgb, "u1").tobytes())
    return b"".join(parts)


def decode_block(blob: bytes) -> PointChunk:
    """The inverse of :func:`encode_block`; raises :class:`StoreError` on a damaged block."""
    if len(blob) < _BLOCK_HEADER.size:
        raise StoreError("damaged point block (shorter than its header)")
    magic, n, has_rgb, *so = _BLOCK_HEADER.unpack_from(blob, 0)
    expected = _BLOCK_HEADER.size + n * (12 + 2 + 1 + 1 + (3 if has_rgb else 0))
    if magic != _BLOCK_MAGIC or len(blob) != expected:
        raise StoreError(f"damaged point block ({len(blob)} bytes, expected {expected} for {n} points)")
    pos = _BLOCK_HEADER.size
    ixyz = np.frombuffer(blob, "<i4", n * 3, pos).reshape(n, 3)
    pos += 12 * n
    intensity = np.frombuffer(blob, "<u2", n, pos)
    pos += 2 * n
    cls = np.frombuffer(blob, "u1", n, pos)
    ret = np.frombuffer(blob, "u1", n, pos + n)
    pos += 2 * n
    rgb = np.frombuffer(blob, "u1", n * 3, pos).reshape(n, 3) if has_rgb else None
    return PointChunk(ixyz, (so[0], so[1], so[2]), (so[3], so[4], so[5]), intensity, cls, ret, rgb)
