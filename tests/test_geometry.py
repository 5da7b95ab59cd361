"""Meshes and their blobs, polygon triangulation, footprints."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from cim import Mesh, SurfaceType
from cim.errors import StoreError
from cim.footprint import (
    footprint_from_meshes,
    footprint_from_rings,
    footprints_from_rings,
    ground_polygons,
    ground_polygons_many,
)
from cim.triangulate import newell_normal, triangulate_polygon
from tests.cim_helpers import box_mesh


def test_mesh_blob_round_trip_keeps_millimetres() -> None:
    mesh = box_mesh(536123.456, 1777987.654, z=12.345)
    back = Mesh.from_bytes(mesh.to_bytes())
    assert np.abs(back.vertices - mesh.vertices).max() < 1e-3
    assert np.array_equal(back.triangles, mesh.triangles) and np.array_equal(back.surfaces, mesh.surfaces)


def test_mesh_blob_large_indices() -> None:
    n = 70000
    mesh = Mesh(np.random.default_rng(1).random((n, 3)), np.array([[0, n - 1, n - 2]]))
    assert Mesh.from_bytes(mesh.to_bytes()).triangles.tolist() == [[0, n - 1, n - 2]]


@pytest.mark.parametrize("blob", [b"", b"CIMM", b"XXXX" + bytes(60), box_mesh(0, 0).to_bytes()[:-3]])
def test_corrupt_blob_is_a_store_error(blob: bytes) -> None:
    with pytest.raises(StoreError):
        Mesh.from_bytes(blob)


def test_concat_offsets_indices() -> None:
    a, b = box_mesh(0, 0), box_mesh(100, 0)
    m = Mesh.concat([a, b])
    assert m.triangle_count == 24 and m.triangles.max() == 15
    assert np.allclose(m.vertices[m.triangles[12]], b.vertices[b.triangles[0]])


def _area(verts: np.ndarray, tris: np.ndarray) -> float:
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def test_triangulate_polygon_with_hole_keeps_area_and_orientation() -> None:
    outer = np.array([[0, 0, 5], [10, 0, 5], [10, 10, 5], [0, 10, 5], [0, 0, 5]], float)
    hole = np.array([[2, 2, 5], [2, 4, 5], [4, 4, 5], [4, 2, 5], [2, 2, 5]], float)
    verts, tris = triangulate_polygon([outer, hole])
    assert _area(verts, tris) == pytest.approx(96.0)
    normals = np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]])
    assert np.all(normals[:, 2] > 0)  # counter-clockwise from above -> faces up


def test_triangulate_vertical_wall_faces_outward() -> None:
    wall = np.array([[0, 0, 0], [10, 0, 0], [10, 0, 3], [0, 0, 3], [0, 0, 0]], float)  # CCW seen from -y
    verts, tris = triangulate_polygon([wall])
    assert _area(verts, tris) == pytest.approx(30.0)
    n = np.cross(verts[tris[:, 1]] - verts[tris[:, 0]], verts[tris[:, 2]] - verts[tris[:, 0]])
    assert np.all(n[:, 1] < 0)
    assert newell_normal(wall[:-1])[1] < 0


def test_triangulate_concave_polygon() -> None:
    l_shape = np.array([[0, 0, 0], [20, 0, 0], [20, 5, 0], [5, 5, 0], [5, 20, 0], [0, 20, 0]], float)
    verts, tris = triangulate_polygon([l_shape])
    assert _area(verts, tris) == pytest.approx(175.0) and len(tris) == 4


@pytest.mark.parametrize("ring", [
    [[0, 0, 0], [1, 1, 1], [0, 0, 0]],               # two distinct points
    [[0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 0, 0]],    # collinear
])
def test_degenerate_polygons_give_no_triangles(ring: list[list[float]]) -> None:
    _, tris = triangulate_polygon([np.array(ring, float)])
    assert len(tris) == 0


def test_footprint_of_a_box_is_its_ground() -> None:
    fp = footprint_from_meshes([box_mesh(536000, 1777000, w=20, d=10)])
    assert fp is not None and fp.area == pytest.approx(200.0)
    assert fp.bounds == pytest.approx((536000, 1777000, 536020, 1777010))


def test_footprint_without_ground_uses_roof_projection() -> None:
    mesh = box_mesh(0, 0, w=4, d=5)
    roof_only = Mesh(mesh.vertices, mesh.triangles[mesh.surfaces != SurfaceType.GROUND],
                     mesh.surfaces[mesh.surfaces != SurfaceType.GROUND])
    fp = footprint_from_meshes([roof_only])
    assert fp is not None and fp.area == pytest.approx(20.0)


def test_footprint_of_two_parts_is_a_multipolygon() -> None:
    fp = footprint_from_meshes([box_mesh(0, 0), box_mesh(100, 0)])
    assert fp is not None and fp.geom_type == "MultiPolygon" and len(fp.geoms) == 2
    assert fp.area == pytest.approx(200.0)


def _square(x: float, y: float, s: float, z: float = 0.0, down: bool = False) -> np.ndarray:
    ring = [(x, y, z), (x + s, y, z), (x + s, y + s, z), (x, y + s, z), (x, y, z)]
    return np.array(ring[::-1] if down else ring, float)


def _box_polygons(x: float, y: float, s: float, h: float = 10.0) -> list[list[np.ndarray]]:
    """The six faces of a box, outward: bottom (facing down), top, four walls."""
    c = [(x, y), (x + s, y), (x + s, y + s), (x, y + s)]
    walls = [[np.array([(*c[i], 0), (*c[(i + 1) % 4], 0), (*c[(i + 1) % 4], h), (*c[i], h)], float)] for i in range(4)]
    return [[_square(x, y, s, down=True)], [_square(x, y, s, h)], *walls]


def test_footprint_from_rings_of_one_polygon_and_with_a_hole() -> None:
    fp = footprint_from_rings([[_square(536000, 1777000, 20)]])
    assert fp is not None and fp.geom_type == "MultiPolygon" and fp.area == pytest.approx(400.0)
    holed = footprint_from_rings([[_square(0, 0, 10), _square(2, 2, 3, down=True)]])
    assert holed is not None and holed.area == pytest.approx(91.0)


def test_footprint_from_rings_unions_overlapping_and_keeps_apart_disjoint() -> None:
    overlapping = footprint_from_rings([[_square(0, 0, 10)], [_square(5, 0, 10)]])
    assert overlapping is not None and len(overlapping.geoms) == 1 and overlapping.area == pytest.approx(150.0)
    touching = footprint_from_rings([[_square(0, 0, 10)], [_square(10, 0, 10)]])  # a coverage
    assert touching is not None and len(touching.geoms) == 1 and touching.area == pytest.approx(200.0)
    apart = footprint_from_rings([[_square(0, 0, 10)], [_square(100, 0, 10)]])
    assert apart is not None and len(apart.geoms) == 2 and apart.area == pytest.approx(200.0)


def test_usable_rings_agrees_with_usable_ring_by_ring() -> None:
    from cim.footprint import _usable, _usable_rings

    nan = _square(0, 0, 10)
    nan[2, 2] = np.nan  # a non-finite height makes the ring unusable too
    rings = [_square(0, 0, 10), _square(0, 0, 10)[:-1],  # closed and open
             np.array([(0, 0, 0), (1, 0, 0), (0, 0, 0)], float),  # closed triangle of two points
             np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0)], float),  # open triangle
             np.array([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 0)], float),
             np.zeros((2, 3)), np.zeros((1, 3)), nan, np.array([(0, 0, 0), (1, 0, np.inf), (0, 1, 0)], float)]
    want = [_usable(r) for r in rings]
    assert want == [True, True, False, True, True, False, False, False, False]
    assert _usable_rings(rings).tolist() == want
    assert _usable_rings([*rings, np.zeros((0, 3))]).tolist() == [*want, False]  # an empty ring: one by one
    flat = [r[:, :2] for r in rings[:5]]
    assert _usable_rings([*flat, rings[0]]).tolist() == [*want[:5], True]  # mixed dimensions
    assert _usable_rings([]).tolist() == []


def test_footprint_from_rings_leaves_out_degenerate_rings() -> None:
    assert footprint_from_rings([]) is None
    assert footprint_from_rings([[np.array([(0, 0, 0), (1, 0, 0), (0, 0, 0)], float)]]) is None
    assert footprint_from_rings([[np.array([(0, 0, 0), (0, 0, 5), (0, 0, 0)], float)]]) is None
    wall = np.array([(0, 0, 0), (5, 0, 0), (5, 0, 3), (0, 0, 3)], float)
    assert footprint_from_rings([[wall]]) is None
    nan = _square(0, 0, 10)
    nan[1, 0] = np.nan
    fp = footprint_from_rings([[nan], [_square(100, 0, 10)], [_square(200, 0, 10), np.zeros((2, 3))]])
    assert fp is not None and fp.area == pytest.approx(200.0)
    bowtie = footprint_from_rings([[np.array([(0, 0, 0), (10, 10, 0), (10, 0, 0), (0, 10, 0)], float)]])
    assert bowtie is not None and bowtie.is_valid and bowtie.area == pytest.approx(50.0)


def test_footprints_of_a_batch_equal_one_by_one() -> None:
    """The batched builder gives exactly (WKB) what footprint_from_rings gives for each item."""
    nan = _square(0, 0, 10)
    nan[1, 0] = np.nan
    inf = _square(0, 0, 10)
    inf[2, 1] = np.inf
    bowtie = np.array([(0, 0, 0), (10, 10, 0), (10, 0, 0), (0, 10, 0)], float)
    unclosed = _square(5, 5, 4)[:-1]
    items = [
        [[_square(536000, 1777000, 20)]], [[unclosed]], [], [[np.zeros((2, 3))]], [[nan]], [[inf]], [[bowtie]],
        [[np.array([(0, 0, 0), (1, 0, 0), (0, 0, 0)], float)]],          # two distinct vertices
        [[np.array([(0, 0, 0), (5, 0, 0), (5, 0, 3), (0, 0, 3)], float)]],  # a wall: no plan area
        [[np.array([(0, 0, 0), (1e-4, 0, 0), (0, 1e-4, 0)], float)]],    # below the minimum area
        [[_square(0, 0, 10), _square(2, 2, 3, down=True)]],               # with a hole
        [[_square(0, 0, 10)], [_square(5, 0, 10)]],                        # two polygons: a union
        [[_square(-3, 7, 2, z=4.5, down=True)]],
        # several polygons (buildings with parts, roads): merged for the whole batch at once
        [[_square(0, 0, 10)], [_square(10, 0, 10)], [_square(0, 10, 20)]],  # a clean coverage
        [[_square(0, 0, 10)], [_square(100, 0, 10)]],                      # apart
        [[_square(0, 0, 10), _square(2, 2, 3, down=True)], [_square(10, 0, 10)]],  # a hole and a neighbour
        [[nan], [_square(100, 0, 10)]],                                    # one polygon left: no union
        [[nan], [inf]],                                                    # none left
        [[_square(0, 0, 10), np.zeros((2, 3))], [_square(3, 3, 10)]],     # an unusable hole; overlapping
        [[bowtie], [_square(20, 0, 5)]],                                   # an invalid polygon merged
        [[np.array([(0, 0, 0), (1e-4, 0, 0), (0, 1e-4, 0)], float)], [_square(0, 0, 1)]],  # one below the minimum
        [[]], [[], []],                                                    # polygons without rings
    ]
    batch = footprints_from_rings(items)
    assert len(batch) == len(items)
    for item, got in zip(items, batch):
        want = footprint_from_rings(item)
        assert (got is None) == (want is None)
        if want is not None:
            assert got.geom_type == "MultiPolygon" and got.wkb == want.wkb
    assert sum(g is not None for g in batch) == 13
    assert footprints_from_rings([]) == []


def test_footprints_of_several_polygons_merge_rows_that_are_no_coverage_one_by_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One overlapping item makes the batch's coverage union fail: the rows are then merged one
    by one, the clean coverages still by coverage union, the others by a full union."""
    import cim.footprint as fp_module

    rows: list[int] = []
    real = fp_module._coverage_union_or_none
    monkeypatch.setattr(fp_module, "_coverage_union_or_none", lambda row: rows.append(1) or real(row))
    # a building and its part of the 25 MB district (relative, in metres): the part's side runs on
    # past the building's corner, which is a hair off that line: GEOS refuses the coverage union
    building = np.array([(0.0, 0.0, 0), (13.988, 2.973, 0), (20.579, -28.034, 0), (6.591, -31.007, 0), (0, 0, 0)])
    part = np.array([(-53.174, -6.191, 0), (-1.039, 4.891, 0), (6.591, -31.007, 0), (-45.544, -42.089, 0),
                     (-53.174, -6.191, 0)])
    items = [[[_square(0, 0, 10)], [_square(10, 0, 10)]], [[building], [part]], [[_square(0, 0, 10)], [_square(5, 5, 10)]],
             [[_square(50, 0, 10)], [_square(50, 10, 10)], [_square(60, 0, 10)]]]
    with pytest.raises(shapely.errors.GEOSException):
        shapely.coverage_union_all(shapely.polygons([building[:, :2], part[:, :2]]))
    batch = footprints_from_rings(items)
    assert len(rows) == 4
    for item, got in zip(items, batch):
        want = footprint_from_rings(item)
        assert got is not None and want is not None and got.wkb == want.wkb
    assert batch[0].area == pytest.approx(200.0) and len(batch[0].geoms) == 1
    assert batch[1].is_valid and batch[1].area == pytest.approx(
        shapely.union_all(shapely.polygons([building[:, :2], part[:, :2]])).area)
    assert batch[2].area == pytest.approx(175.0) and len(batch[2].geoms) == 1
    assert batch[3].area == pytest.approx(300.0)


def test_ground_polygons_of_many_groups() -> None:
    box = _box_polygons(0, 0, 10)
    nan = _square(0, 0, 10, down=True)
    nan[1, 0] = np.nan
    typed_top = [False] * 6
    typed_top[1] = True
    groups = [
        (box, typed_top, [False] * 6),                       # ground typed: wins over orientation
        (box, [False] * 6, [False] * 6),                     # the bottom
        (box, [False] * 6, [True] * 6),                      # inside out: the top
        (box[1:], [False] * 5, [False] * 5),                 # no bottom: the roof
        (box[2:], [False] * 4, [False] * 4),                 # walls only: nothing
        ([], [], []),
        ([[nan], *box[1:]], [True] + [False] * 5, [False] * 6),  # an unusable ground: orientation decides
        ([[np.zeros((0, 3))], *box], [False] * 7, [False] * 7),  # an empty ring has no plan area
        (_box_polygons(100, 0, 5), [True, False, False, False, False, False], [False] * 6),
    ]
    many = ground_polygons_many(groups)
    expected = [[box[1]], [box[0]], [box[1]], [box[1]], [], [], [box[1]], [box[0]], [groups[8][0][0]]]
    assert len(many) == len(groups)
    for got, want in zip(many, expected):
        assert len(got) == len(want) and all(a is b for a, b in zip(got, want))
    for group, got in zip(groups, many):  # a batch picks for each group what that group alone gives
        alone = ground_polygons(*group)
        assert len(got) == len(alone) and all(a is b for a, b in zip(got, alone))


def test_ground_polygons_picks_ground_else_bottom_else_top() -> None:
    box = _box_polygons(0, 0, 10)
    ground = [False] * 6
    ground[1] = True  # say the top is typed GROUND: ground wins over orientation
    assert ground_polygons(box, ground, [False] * 6) == [box[1]]
    assert ground_polygons(box, [False] * 6, [False] * 6) == [box[0]]  # LOD1 solid: the bottom
    flipped = ground_polygons(box, [False] * 6, [True] * 6)  # orientation="-" turns the box inside out
    assert flipped == [box[1]]
    open_top = box[1:]
    assert ground_polygons(open_top, [False] * 5, [False] * 5) == [box[1]]  # no bottom: the roof
    assert ground_polygons(box[2:], [False] * 4, [False] * 4) == []  # walls only
    assert ground_polygons([], [], []) == []


def test_footprint_from_rings_equals_footprint_from_meshes_of_a_box() -> None:
    from_mesh = footprint_from_meshes([box_mesh(3, 4, w=20, d=10)])
    c = [(3, 4), (23, 4), (23, 14), (3, 14)]
    bottom = [np.array([(*p, 0) for p in c[::-1]], float)]
    from_rings = footprint_from_rings(ground_polygons([bottom], [True], [False]))
    assert from_mesh is not None and from_rings is not None
    assert from_rings.area == pytest.approx(from_mesh.area, rel=1e-9)
    assert shapely.symmetric_difference(from_rings, from_mesh).area < 1e-9
