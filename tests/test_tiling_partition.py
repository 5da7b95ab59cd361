"""Partitioning and the tile tree: pure functions on feature boxes, no store, no geometry."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tiling.partition import PartitionParams, is_leaf, kd_split, select_own, span, split_longer_axis
from tiling.tree import TileNode, build_tree, feature_extents, tileset_geometric_error


def boxes_at(centres: np.ndarray, sizes: np.ndarray, heights: np.ndarray) -> np.ndarray:
    half = sizes[:, None] / 2
    lo = np.column_stack([centres - half, np.zeros(len(centres))])
    hi = np.column_stack([centres + half, heights])
    return np.hstack([lo, hi])


def big_district(n: int = 30_000, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` buildings in clusters over ~8 x 8 km: boxes and triangle counts (LOD2-like, a few
    heavy ones and a few large landmarks)."""
    rng = np.random.default_rng(seed)
    clusters = rng.uniform(-4000, 4000, size=(40, 2))
    which = rng.integers(0, len(clusters), n)
    centres = clusters[which] + rng.normal(0, 500, size=(n, 2))
    sizes = rng.uniform(8, 40, n)
    sizes[rng.choice(n, 30, replace=False)] = rng.uniform(120, 300, 30)
    heights = rng.uniform(5, 60, n)
    triangles = rng.integers(12, 600, n)
    triangles[rng.choice(n, 20, replace=False)] = 20_000
    return boxes_at(centres, sizes, heights), triangles


def assert_tree_invariants(root: TileNode, boxes: np.ndarray, triangles: np.ndarray, params: PartitionParams) -> None:
    extents = feature_extents(boxes)
    seen = np.concatenate([node.features for node in root.walk()])
    assert sorted(seen.tolist()) == list(range(len(boxes)))  # every feature exactly once

    def below(node: TileNode) -> np.ndarray:
        return np.concatenate([c.features for c in node.walk() if c is not node] or [np.zeros(0, np.int64)])

    for node in root.walk():
        own_tris = int(triangles[node.features].sum())
        if not node.children:
            assert node.geometric_error == 0.0
            assert own_tris <= params.leaf_triangles or len(node.features) == 1
        else:
            assert own_tris <= max(params.own_triangles, int(triangles[node.features].max(initial=0)))
            sub = below(node)
            assert node.geometric_error == pytest.approx(float(extents[sub].max()))
            for child in node.children:
                assert child.geometric_error <= node.geometric_error
    assert tileset_geometric_error(root, extents) >= root.geometric_error


def test_split_longer_axis_is_balanced_and_by_rank() -> None:
    centres = np.array([[0.0, 0.0], [10.0, 1.0], [10.0, 2.0], [10.0, 3.0], [20.0, 0.5]])
    parts = split_longer_axis(centres, np.arange(5))
    assert [len(p) for p in parts] == [2, 3]  # ties at x = 10 are still split by rank
    assert set(parts[0].tolist()) | set(parts[1].tolist()) == set(range(5))
    assert centres[parts[0], 0].max() <= centres[parts[1], 0].min()


def test_split_needs_two_distinct_centres() -> None:
    same = np.zeros((4, 2))
    assert len(split_longer_axis(same, np.arange(4))) == 1
    assert len(split_longer_axis(same, np.arange(1))) == 1


def test_kd_split_gives_up_to_four_parts_on_each_longer_axis() -> None:
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1, size=(100, 2)) * [1000, 10]  # a long thin district
    parts = kd_split(centres, np.arange(100))
    assert len(parts) == 4 and sum(len(p) for p in parts) == 100
    xs = sorted((centres[p, 0].min(), centres[p, 0].max()) for p in parts)
    assert all(a[1] <= b[0] for a, b in zip(xs, xs[1:], strict=False))  # four slices along x


def test_leaf_rule_uses_triangles_and_span() -> None:
    params = PartitionParams(leaf_triangles=100, leaf_size=50, leaf_features=2)
    centres = np.array([[0.0, 0.0], [40.0, 0.0], [80.0, 0.0]])
    tris = np.array([30, 30, 30])
    assert is_leaf(centres, tris, np.array([0, 1]), params)
    assert not is_leaf(centres, tris, np.array([0, 1, 2]), params)  # spans 80 m
    assert is_leaf(centres, tris, np.array([0, 1, 2]), PartitionParams(leaf_size=50, leaf_features=3))  # sparse
    assert not is_leaf(np.zeros((3, 2)), np.array([60, 60, 60]), np.arange(3), params)  # 180 triangles
    assert is_leaf(centres, np.array([10_000]), np.array([0]), params)  # one feature always fits
    assert span(centres) .tolist() == [80.0, 0.0]


def test_select_own_keeps_the_largest_within_budget() -> None:
    params = PartitionParams(own_triangles=100, promote_ratio=0.1)
    extents = np.array([5.0, 300.0, 50.0, 120.0, 150.0])
    tris = np.array([10, 500, 40, 60, 50])
    own, rest = select_own(extents, tris, np.arange(5), node_diagonal=1000.0, params=params)
    # threshold 100 m: 300 (kept although over budget: the largest), 150 (500 + 50 > 100: skipped
    # because the budget is used up), 120 likewise; smaller ones are never promoted
    assert own.tolist() == [1]
    assert rest.tolist() == [0, 2, 3, 4]
    own, rest = select_own(extents, np.array([10, 40, 40, 30, 50]), np.arange(5), 1000.0, params)
    assert own.tolist() == [1, 4]  # 40 + 50 fit, then 120 (30 more) would exceed 100
    assert rest.tolist() == [0, 2, 3]


def test_important_features_stay_high() -> None:
    rng = np.random.default_rng(3)
    centres = rng.uniform(-1000, 1000, size=(2000, 2))
    sizes = np.full(2000, 15.0)
    sizes[7] = 400.0  # a stadium
    boxes = boxes_at(centres, sizes, np.full(2000, 20.0))
    tris = np.full(2000, 100)
    root = build_tree(boxes, tris, PartitionParams(leaf_triangles=5000))
    assert 7 in root.features.tolist()
    assert root.geometric_error == pytest.approx(float(np.hypot(np.hypot(15, 15), 20)))


def test_geometric_error_rule_on_a_small_tree() -> None:
    # four 10 m buildings spread 1 km apart: one level of leaves under an empty root
    centres = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0], [1000.0, 1000.0]])
    boxes = boxes_at(centres, np.array([10.0, 10.0, 10.0, 20.0]), np.array([10.0, 10.0, 10.0, 10.0]))
    root = build_tree(boxes, np.array([12, 12, 12, 12]), PartitionParams(leaf_size=300, leaf_features=1))
    assert len(root.features) == 0 and len(root.children) == 4
    assert all(c.geometric_error == 0 and not c.children for c in root.children)
    assert root.geometric_error == pytest.approx(np.sqrt(20**2 + 20**2 + 10**2))
    assert tileset_geometric_error(root, feature_extents(boxes)) == pytest.approx(root.geometric_error)


def test_a_few_hundred_buildings_give_several_tiles() -> None:
    rng = np.random.default_rng(5)
    centres = rng.uniform(-350, 350, size=(300, 2))
    boxes = boxes_at(centres, rng.uniform(8, 30, 300), rng.uniform(5, 40, 300))
    tris = rng.integers(12, 300, 300)
    root = build_tree(boxes, tris)
    nodes = list(root.walk())
    assert 5 <= len(nodes) <= 60
    assert_tree_invariants(root, boxes, tris, PartitionParams())


def test_identical_centres_end_in_one_leaf() -> None:
    boxes = boxes_at(np.zeros((50, 2)), np.full(50, 10.0), np.full(50, 10.0))
    root = build_tree(boxes, np.full(50, 5000))
    assert sum(len(n.features) for n in root.walk()) == 50
    assert root.depth <= PartitionParams().max_depth + 1


def test_empty_input_is_refused() -> None:
    with pytest.raises(ValueError):
        build_tree(np.zeros((0, 6)), np.zeros(0, np.int64))


def test_big_district_respects_budgets_and_depth() -> None:
    boxes, tris = big_district()
    params = PartitionParams()
    start = time.perf_counter()
    root = build_tree(boxes, tris, params)
    elapsed = time.perf_counter() - start
    assert elapsed < 10
    assert_tree_invariants(root, boxes, tris, params)
    leaves = [n for n in root.walk() if not n.children]
    assert root.depth <= 10
    assert 100 <= len(leaves) <= 5000
    centres = (boxes[:, :2] + boxes[:, 3:5]) / 2
    extents = feature_extents(boxes)
    for leaf in leaves:
        if len(leaf.features) > params.leaf_features:  # small, unless only features promoted for their size
            width = span(centres[leaf.features]).max()
            assert width <= params.leaf_size or extents[leaf.features].min() >= params.promote_ratio * width
    # the landmarks (>= 120 m) sit above the leaves
    big = set(np.flatnonzero(feature_extents(boxes) > 150).tolist())
    in_leaves = {int(k) for leaf in leaves for k in leaf.features}
    assert len(big & in_leaves) < len(big) / 2


def test_one_subtree_per_class() -> None:
    rng = np.random.default_rng(9)
    boxes = boxes_at(rng.uniform(-800, 800, size=(600, 2)), rng.uniform(8, 30, 600), np.full(600, 10.0))
    classes = ["Building"] * 500 + ["Road"] * 60 + ["WaterBody"] * 40
    tris = np.full(600, 100)
    root = build_tree(boxes, tris, classes=classes)
    assert len(root.features) == 0
    assert [c.address for c in root.children] == ["0_Building", "0_Road", "0_WaterBody"]
    for child in root.children:
        members = {classes[k] for node in child.walk() for k in node.features}
        assert len(members) == 1 and child.address.endswith(members.pop())
        assert child.level == 1
    assert_tree_invariants(root, boxes, tris, PartitionParams())
    single = build_tree(boxes[:500], tris[:500], classes=classes[:500])
    assert single.address == "0" and single.level == 0  # one class: no extra level
