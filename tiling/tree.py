"""The tile tree (which features each tile holds) and its geometric errors.

Built from per-feature boxes in the dataset's east-north-up frame (metres) by the pure functions
of :mod:`tiling.partition`. Geometric error rule (ADD refinement): a tile's geometric error is
the largest extent (3D box diagonal, metres) of the features stored *below* it, i.e. the biggest
object a viewer misses by not refining the tile; a leaf's is 0. The tileset's geometric error is
the largest extent of all features (what is missed when the root is not drawn), so it is never
below the root's.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from tiling.partition import FloatArray, IntArray, PartitionParams, is_leaf, kd_split, select_own


@dataclass(eq=False)
class TileNode:
    """One tile: ``features`` are rows of the feature arrays stored in this tile's own content.
    ``box`` (6,) is the union of the boxes of every feature in the subtree (dataset ENU: min
    xyz, max xyz), used to place the tile's local frame."""

    level: int
    address: str
    features: IntArray
    box: FloatArray
    children: list[TileNode] = field(default_factory=list)
    geometric_error: float = 0.0

    def walk(self) -> Iterator[TileNode]:
        """Pre-order traversal."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def depth(self) -> int:
        return 1 + max((c.depth for c in self.children), default=0)


def feature_extents(boxes: FloatArray) -> FloatArray:
    """3D diagonal of each (min xyz, max xyz) box."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    return np.asarray(np.linalg.norm(boxes[:, 3:] - boxes[:, :3], axis=1), dtype=np.float64)


def union_box(boxes: FloatArray) -> FloatArray:
    return np.concatenate([boxes[:, :3].min(axis=0), boxes[:, 3:].max(axis=0)])


def build_tree(boxes: FloatArray, triangles: IntArray, params: PartitionParams | None = None,
               classes: Sequence[str] | None = None) -> TileNode:
    """The tile tree over features with ``boxes`` (n, 6) and ``triangles`` (n,).

    With ``classes`` (one CIM class name per feature) and more than one class, the root has no
    content and one subtree per class, so that every tile holds features of one class only
    (one property table per glb: see docs/tiling.md)."""
    params = params or PartitionParams()
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 6)
    if len(boxes) == 0:
        raise ValueError("cannot build a tile tree without features")
    triangles = np.asarray(triangles, dtype=np.int64)
    centres = (boxes[:, :2] + boxes[:, 3:5]) / 2
    extents = feature_extents(boxes)
    rows = np.arange(len(boxes), dtype=np.int64)
    names = sorted(set(classes)) if classes is not None else []
    if len(names) <= 1:
        root = _node(rows, 0, "0", boxes, centres, extents, triangles, params)
    else:
        labels = np.asarray(classes)
        children = [_node(rows[labels == name], 1, f"0_{name}", boxes, centres, extents, triangles, params)
                    for name in names]
        root = TileNode(0, "0", np.zeros(0, dtype=np.int64), union_box(boxes), children)
    assign_geometric_errors(root, extents)
    return root


def _node(idx: IntArray, level: int, address: str, boxes: FloatArray, centres: FloatArray, extents: FloatArray,
          triangles: IntArray, params: PartitionParams) -> TileNode:
    box = union_box(boxes[idx])
    if level >= params.max_depth or is_leaf(centres, triangles, idx, params):
        return TileNode(level, address, idx, box)
    diagonal = float(np.hypot(box[3] - box[0], box[4] - box[1]))
    own, rest = select_own(extents, triangles, idx, diagonal, params)
    node = TileNode(level, address, own, box)
    if len(rest) == 0:
        return node
    parts = kd_split(centres, rest) if not is_leaf(centres, triangles, rest, params) else [rest]
    if len(parts) == 1 and len(own) == 0:  # cannot split (all centres equal): one leaf
        return TileNode(level, address, idx, box)
    node.children = [_node(p, level + 1, f"{address}_{i}", boxes, centres, extents, triangles, params)
                     for i, p in enumerate(parts)]
    return node


def assign_geometric_errors(node: TileNode, extents: FloatArray) -> float:
    """Set ``geometric_error`` on every node of the subtree; returns the largest extent of all
    features in the subtree (the node's own included)."""
    below = 0.0
    for child in node.children:
        below = max(below, assign_geometric_errors(child, extents))
    node.geometric_error = below
    own = float(extents[node.features].max()) if len(node.features) else 0.0
    return max(below, own)


def tileset_geometric_error(root: TileNode, extents: FloatArray) -> float:
    """The error of not drawing the tileset at all: the largest feature extent (>= the root's)."""
    return max(root.geometric_error, float(extents.max()) if len(extents) else 0.0)
