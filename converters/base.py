"""The converter plug-in interface."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cim.conversion import Reading
from cim.crs import Frame
from cim.points import PointReading


@dataclass(frozen=True)
class ConvertOptions:
    """Options every converter understands.

    ``frame``: a placement the user gave (``--crs`` or ``--origin``/``--rotation``). It places data
    that has no CRS of its own; when the file declares a CRS too, the user's choice wins and the
    report says so.
    """

    frame: Frame | None = None


class Converter(Protocol):
    """A format plug-in, loaded lazily by :mod:`converters.registry`."""

    name: str

    def open(self, path: Path, options: ConvertOptions) -> Reading | PointReading: ...
