"""Small builders for tests: box buildings and an in-memory Reading."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cim import CityClass, Feature, Mesh, Source, SurfaceType
from cim.conversion import ConversionReport
from cim.crs import Frame, crs_frame


def box_mesh(x: float, y: float, w: float = 10, d: float = 10, h: float = 10, z: float = 0) -> Mesh:
    v = np.array([[x, y, z], [x + w, y, z], [x + w, y + d, z], [x, y + d, z],
                  [x, y, z + h], [x + w, y, z + h], [x + w, y + d, z + h], [x, y + d, z + h]], float)
    t = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                  [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])
    s = np.array([SurfaceType.GROUND] * 2 + [SurfaceType.ROOF] * 2 + [SurfaceType.WALL] * 8, np.uint8)
    return Mesh(v, t, s)


class FakeReading:
    """A Reading over given features (see cim.conversion.Reading)."""

    def __init__(self, features: list[Feature], frame: Frame | None = None, fail_after: int | None = None) -> None:
        self.path = Path("fake.gml")
        self.report = ConversionReport(source="fake.gml", format="test")
        self.bytes_read = 0
        self.total_bytes = len(features)
        self._features = features
        self._frame = frame or crs_frame("EPSG:5899")
        self._fail_after = fail_after

    @property
    def frame(self) -> Frame:
        return self._frame

    def features(self) -> Iterator[Feature]:
        for i, f in enumerate(self._features):
            if self._fail_after is not None and i == self._fail_after:
                raise ValueError("simulated failure in the middle of a file")
            self.bytes_read = i + 1
            yield f


def district(n: int = 20, x0: float = 536000.0, y0: float = 1777000.0) -> list[Feature]:
    out = []
    for i in range(n):
        x, y = x0 + (i % 10) * 30, y0 + (i // 10) * 30
        out.append(Feature(f"b{i}", CityClass.BUILDING, Source("fake.gml", "bldg:Building"), name=f"Building {i}",
                           attributes={"measuredHeight": 10.0 + i, "function": "office", "employees": i},
                           geometry={2: box_mesh(x, y, h=10 + i)}))
    return out
