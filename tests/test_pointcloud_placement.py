"""The interpolated source -> plane placement agrees with the exact transform to 0.1 mm."""
from __future__ import annotations

import numpy as np
import pytest

from cim.crs import LocalFrame, crs_frame, frame_from_spec
from tiling.frames import enu_frame_at
from tiling.pointcloud.placement import exact_plane, to_plane

CASES = {
    "UTM 49N, 1 km": (crs_frame("EPSG:32649"), (545_000.0, 1_772_000.0), 1000.0, 50.0),
    "Oregon feet, 4 km": (frame_from_spec({"type": "crs", "horizontal": 2994, "vertical": None, "text": "",
                                           "lat_first": False, "z_to_metres": 0.3048}), (636_000.0, 849_000.0), 13_000.0, 500.0),
    "WGS 84 degrees": (frame_from_spec({"type": "crs", "horizontal": 4326, "vertical": None, "text": "",
                                        "lat_first": False}), (-94.68, 31.04), 0.02, 60.0),
    "local metres": (LocalFrame(108.25, 16.05, 0.0, 30.0), (0.0, 0.0), 800.0, 80.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_interpolated_placement_matches_exact(case: str) -> None:
    frame, (x0, y0), side, height = CASES[case]
    rng = np.random.default_rng(1)
    xyz = np.column_stack([x0 + rng.uniform(0, side, 100_000), y0 + rng.uniform(0, side, 100_000),
                           rng.uniform(0, height, 100_000)])
    world = enu_frame_at(frame.to_ecef(xyz[:1])[0])
    fast, used = to_plane(frame, world, xyz)
    assert used
    assert np.abs(fast - exact_plane(frame, world, xyz)).max() < 1e-4


def test_small_blocks_use_the_exact_transform() -> None:
    frame = crs_frame("EPSG:32649")
    xyz = np.array([[545_000.0, 1_772_000.0, 3.0], [545_010.0, 1_772_020.0, 4.0]])
    world = enu_frame_at(frame.to_ecef(xyz[:1])[0])
    assert not to_plane(frame, world, xyz)[1]


def test_columns_give_the_same_plane_as_rows() -> None:
    frame, (x0, y0), side, height = CASES["Oregon feet, 4 km"]
    rng = np.random.default_rng(2)
    xyz = np.column_stack([x0 + rng.uniform(0, side, 60_000), y0 + rng.uniform(0, side, 60_000),
                           rng.uniform(0, height, 60_000)])
    world = enu_frame_at(frame.to_ecef(xyz[:1])[0])
    rows, _ = to_plane(frame, world, xyz)
    columns, used = to_plane(frame, world, tuple(np.ascontiguousarray(xyz[:, k]) for k in range(3)))
    assert used and np.array_equal(rows, columns)
