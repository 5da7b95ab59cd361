"""LAS/LAZ 1.0-1.4 (point formats 0-10, COPC read as LAZ) -> streamed point chunks."""
from __future__ import annotations

from pathlib import Path

from converters.base import ConvertOptions
from converters.las.reader import LasReading


class LasConverter:
    """The LiDAR converter plug-in: its readings yield :class:`cim.points.PointChunk` objects
    (``chunks()``) instead of features."""

    name = "las"

    def open(self, path: Path, options: ConvertOptions) -> LasReading:
        return LasReading(path, options)


def is_las(head: bytes) -> bool:
    """LAS and LAZ files (and COPC, which is LAZ) start with the signature ``LASF``."""
    return head[:4] == b"LASF"


__all__ = ["LasConverter", "LasReading", "is_las"]
