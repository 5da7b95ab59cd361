"""A feature's own colour (its `color` attribute, e.g. an IFC style) wins over semantic shading."""
from __future__ import annotations

import numpy as np

from cim.classes import CityClass, SurfaceType
from tiling.primitive import COLOR_TABLE, FeatureMesh, build_primitive, parse_colour


def _square(fid: int, colour: tuple[int, int, int] | None) -> FeatureMesh:
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=np.float64) + fid * 2
    tri = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint32)
    return FeatureMesh(v, tri, np.full(2, int(SurfaceType.WALL), np.uint8), fid,
                       CityClass.BUILDING_CONSTRUCTIVE_ELEMENT, colour)


def test_feature_colour_overrides_semantic_colour() -> None:
    arrays = build_primitive([_square(0, parse_colour("#ff8000")), _square(1, None)])
    coloured = arrays.colors[arrays.feature_ids == 0]
    plain = arrays.colors[arrays.feature_ids == 1]
    # sRGB ff8000 in linear 8-bit: (255, 55, 0)
    assert (coloured == [255, 55, 0, 255]).all()
    assert (plain == COLOR_TABLE[int(SurfaceType.WALL)]).all()


def test_parse_colour() -> None:
    assert parse_colour("#0a0B0c") == (10, 11, 12)
    assert parse_colour("red") is None and parse_colour(None) is None and parse_colour("#12345") is None
