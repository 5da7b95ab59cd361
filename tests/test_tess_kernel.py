"""The compiled triangulation kernel (converters/citygml/tess_kernel.pyx) against the numpy path of
:mod:`converters.citygml.tessellation`, which is the reference: the same cleaned vertices, rings,
triangles and owners, bit for bit, on every kind of polygon the readers hand over, and a decline
(None) for rings it does not take. Real files go through both in tests/test_citygml_compiled_scan.py."""
from __future__ import annotations

import numpy as np
import pytest

from converters.citygml import tessellation
from converters.citygml.polygons import DIRECT, PolygonRecord

kernel = tessellation.kernel


def test_the_kernel_is_built() -> None:
    """`make install` builds it (setup.py); without it batches take the slower numpy path."""
    from converters.citygml import tess_kernel  # noqa: F401

    assert kernel is not None


def _rec(rings: list[np.ndarray], bucket: int = 0, flip: bool = False, stype: int = 0) -> PolygonRecord:
    return PolygonRecord(bucket, [r if r.dtype == np.float64 else r.astype(np.float64) for r in rings],
                         stype, flip, (), DIRECT, None)


def _square(x: float, y: float, s: float, z: float = 0.0) -> list[tuple[float, float, float]]:
    return [(x, y, z), (x + s, y, z), (x + s, y + s, z), (x, y + s, z), (x, y, z)]


def _circle(n: int, r: float = 10.0, z: float = 5.0, wobble: float = 0.0) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rr = r * (1 + wobble * np.sin(7 * a))
    return np.column_stack((rr * np.cos(a) + 500_000.0, rr * np.sin(a) + 1_800_000.0, np.full(n, z) + 0.01 * np.cos(3 * a)))


def _cases() -> dict[str, list[PolygonRecord]]:
    rng = np.random.default_rng(7)
    wall = [(0, 0, 0), (10, 0, 0), (10, 0, 3), (5, 0, 5), (0, 0, 3), (0, 0, 0)]
    l_shape = [(0, 0, 1), (4, 0, 1), (4, 1, 1), (1, 1, 1), (1, 3, 1), (0, 3, 1), (0, 0, 1)]
    holed = [np.array(_square(0, 0, 10)), np.array(_square(2, 2, 3))[::-1].copy(), np.array(_square(6, 6, 2))[::-1].copy()]
    strided = np.zeros((5, 6))
    strided[:, ::2] = np.array(_square(3, 3, 2))
    return {
        "convex and flipped": [_rec([np.array(wall)]), _rec([np.array(wall)], flip=True, stype=3)],
        "non-convex": [_rec([np.array(l_shape)]), _rec([np.array(l_shape)[::-1].copy()], flip=True)],
        "holes and degenerate holes": [_rec(holed), _rec([holed[0], np.array([(1, 1, 0), (2, 2, 0)]), holed[1]])],
        "duplicates, no closing vertex, collinear": [
            _rec([np.array([(0, 0, 0), (0, 0, 0), (5, 0, 0), (10, 0, 0), (10, 0, 0), (10, 10, 0), (0, 10, 0)])])],
        "degenerate": [_rec([np.array([(0, 0, 0), (1, 1, 1), (0, 0, 0)])]), _rec([np.array([(1, 2, 3)])]),
                       _rec([np.array([(0, 0, 0), (1, 1, 1), (2, 2, 2), (0, 0, 0)])])],
        "not finite": [_rec([np.array([(0, 0, 0), (1, 0, np.nan), (1, 1, 0), (0, 1, 0)])]),
                       _rec([np.array(_square(0, 0, 1)), np.array([(0.2, 0.2, np.inf), (0.4, 0.2, 0), (0.3, 0.4, 0)])]),
                       _rec([np.array(_square(5, 5, 1))])],
        "big rings (pairwise sums: <8, <=128, recursive)": [
            _rec([_circle(n, wobble=w)], bucket=i) for i, (n, w) in enumerate([(5, 0), (9, 0), (64, 0), (127, 0.3), (129, 0),
                                                                              (300, 0.2), (1000, 0)])],
        "several buckets": [_rec([np.array(_square(i, 0, 1, z=i))], bucket=b) for i, b in enumerate([0, 0, 9, 9, 9, 17])],
        "strided view": [_rec([strided[:, ::2]])],
        "random planar quads and triangles": [
            _rec([np.array([(x, y, z), (x + a, y, z + c), (x + a, y + b, z + c), (x, y + b, z)][:k])], bucket=j // 50,
                 flip=bool(j % 3 == 0))
            for j, (x, y, z, a, b, c, k) in enumerate(zip(*(rng.uniform(-1e5, 1e5, 300) for _ in range(3)),
                                                         *(rng.uniform(-5, 5, 300) for _ in range(3)),
                                                         rng.integers(3, 5, 300)))],
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_same_as_the_numpy_path(name: str) -> None:
    polygons = sorted(_cases()[name], key=lambda p: p.bucket)
    ours = kernel(polygons)
    ref = tessellation._triangulate(polygons)
    assert ours is not None
    names = "verts starts counts first_ring ring_counts tris tri_poly".split()
    for label, a, b in zip(names, ours, ref):
        assert a.dtype == b.dtype, label
        assert a.shape == b.shape, label
        assert np.array_equal(a, b), label
    assert len(ours[5]) or name in ("degenerate",)


def test_meshes_are_those_of_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    polygons = [p for case in _cases().values() for p in case]
    ours = tessellation.build_meshes(list(polygons))
    monkeypatch.setattr(tessellation, "kernel", None)
    ref = tessellation.build_meshes(list(polygons))
    assert ours.keys() == ref.keys()
    for bucket in ref:
        for field in ("vertices", "triangles", "surfaces"):
            assert np.array_equal(getattr(ours[bucket], field), getattr(ref[bucket], field)), (bucket, field)


@pytest.mark.parametrize("ring", [np.zeros((0, 3)), np.zeros((4, 2)), np.zeros((4, 3), np.float32), np.zeros(12),
                                  np.zeros((4, 3), ">f8"), [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]],
                         ids=["empty", "2D", "float32", "flat", "big-endian", "list"])
def test_rings_it_does_not_take_are_declined(ring: np.ndarray) -> None:
    odd = PolygonRecord(0, [ring], 0, False, (), DIRECT, None)
    assert kernel([_rec([np.array(_square(0, 0, 1))]), odd]) is None
