"""Meshes and their blobs, polygon triangulation, footprints."""
from __future__ import annotations

import numpy as np
import pytest

from cim import Mesh, SurfaceType
from cim.errors import StoreError
from cim.footprint import footprint_from_meshes
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
