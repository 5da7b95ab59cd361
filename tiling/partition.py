"""Spatial partitioning of features into a tile tree: pure functions over arrays.

Inputs are per-feature arrays in one planar metric frame (the dataset's east-north-up plane):
``centres`` (n, 2) metres, ``extents`` (n,) metres (the 3D diagonal of each feature's box) and
``triangles`` (n,). Nothing here reads the store or writes files, so the tree shape can be
tested on hundreds of thousands of synthetic features in milliseconds.

The strategy (see docs/tiling.md):

* **kd split into up to four children**: split the features at the median of the longer axis of
  their centres' extent, then split each half the same way on its own longer axis. Splitting by
  rank (not by coordinate) always gives non-empty, balanced children.
* **Leaf budget**: a node becomes a leaf when its features hold at most ``leaf_triangles``
  triangles and either their centres span at most ``leaf_size`` metres (so that a district of a
  few hundred light buildings still gives several tiles that cull well) or they are at most
  ``leaf_features`` (sparse outskirts are not cut into tiny tiles), or when it cannot be split.
* **Important features high** (ADD refinement): at an internal node, the features whose extent is at
  least ``promote_ratio`` times the node's horizontal diagonal are kept in the node's own content,
  largest first, within ``own_triangles``; the rest go down.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PartitionParams:
    """Tuning of the tile tree. Triangle budgets bound the content size (a glb takes roughly
    60-100 bytes per triangle, so 25 000 triangles is 1.5-2.5 MB)."""

    leaf_triangles: int = 25_000
    leaf_size: float = 400.0  # metres: the largest span of feature centres in a leaf...
    leaf_features: int = 24  # ...unless it holds at most this many features (sparse outskirts)
    own_triangles: int = 12_000  # budget of the features an internal node keeps
    promote_ratio: float = 0.125  # a feature stays high when extent >= ratio * node diagonal
    max_depth: int = 16


def span(centres: FloatArray) -> FloatArray:
    """(width, depth) of the centres' bounding rectangle, (0, 0) when empty."""
    if len(centres) == 0:
        return np.zeros(2)
    return np.asarray(centres.max(axis=0) - centres.min(axis=0), dtype=np.float64)


def split_longer_axis(centres: FloatArray, idx: IntArray) -> list[IntArray]:
    """Split ``idx`` in two halves by rank along the longer axis of their centres' span.

    Returns one part when there is nothing to split (fewer than two features, or all centres
    equal)."""
    if len(idx) < 2:
        return [idx]
    pts = centres[idx]
    extent = span(pts)
    if not np.any(extent > 0):
        return [idx]
    axis = int(np.argmax(extent))
    order = np.argsort(pts[:, axis], kind="stable")
    half = len(idx) // 2
    return [idx[order[:half]], idx[order[half:]]]


def kd_split(centres: FloatArray, idx: IntArray, levels: int = 2) -> list[IntArray]:
    """Split ``idx`` ``levels`` times (up to 2**levels parts), each part on its own longer axis."""
    parts = [idx]
    for _ in range(levels):
        parts = [sub for part in parts for sub in split_longer_axis(centres, part)]
    return [p for p in parts if len(p)]


def is_leaf(centres: FloatArray, triangles: FloatArray | IntArray, idx: IntArray, params: PartitionParams) -> bool:
    """True when the features ``idx`` fit in one content (triangle budget and spatial size)."""
    if len(idx) <= 1:
        return True
    if triangles[idx].sum() > params.leaf_triangles:
        return False
    return bool(len(idx) <= params.leaf_features or span(centres[idx]).max() <= params.leaf_size)


def select_own(extents: FloatArray, triangles: FloatArray | IntArray, idx: IntArray, node_diagonal: float,
               params: PartitionParams) -> tuple[IntArray, IntArray]:
    """(kept at this node, passed down): the largest features, extent >= promote_ratio * diagonal,
    largest first, while their triangles fit in ``own_triangles``. The largest qualifying
    feature is kept even when it alone exceeds the budget (a feature cannot be split, and it is
    the one most visible from afar)."""
    threshold = params.promote_ratio * node_diagonal
    order = idx[np.argsort(-extents[idx], kind="stable")]
    keep: list[int] = []
    used = 0
    for k in order:
        if extents[k] < threshold:
            break
        t = int(triangles[k])
        if keep and used + t > params.own_triangles:
            continue
        keep.append(int(k))
        used += t
    own = np.array(sorted(keep), dtype=np.int64)
    rest = np.setdiff1d(idx, own, assume_unique=True)
    return own, rest
