"""The tiling pipeline: a store dataset -> tileset.json + content files.

1. Read the dataset's light feature index (store keys, source-frame boxes, triangle counts) and
   map the boxes into the dataset's ENU plane (:mod:`tiling.frames`).
2. Plan the tile tree from those boxes alone (:mod:`tiling.tree`, pure functions).
3. Scan the features' attributes (no geometry) once for the metadata schema.
4. Write the tiles depth-first, children before parents: for each tile load only its own
   features (best LOD), transform them into the tile's ENU frame, write the content, and size the
   tile's box over its content and its children's boxes. Memory stays bounded by a tile's
   content, not by the dataset.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cim.classes import CityClass
from cim.crs import Frame, frame_from_spec
from cim.errors import EmptyInputError, InputError
from cim.feature import Feature
from cim.store.base import FeatureIndex, Store
from tiling import bounding_volume as bv
from tiling.b3dm import write_b3dm
from tiling.feature_metadata import MetadataSchema, batch_table, build_schema, feature_record
from tiling.frames import DatasetPlane, ecef_to_local, relative_transform
from tiling.gltf_content import GENERATOR, ClassGroup, write_batched_glb, write_glb
from tiling.partition import PartitionParams
from tiling.primitive import FeatureMesh, build_primitive, parse_colour
from tiling.tileset import ADD, Tile, tileset_json, write_tileset
from tiling.tree import TileNode, build_tree, feature_extents, tileset_geometric_error

if TYPE_CHECKING:
    from tiling.pointcloud import PointDistribution

Progress = Callable[[int, int], None]
Bounds = tuple[np.ndarray, np.ndarray]
FORMATS = ("1.0", "1.1")


@dataclass
class TilesetSummary:
    """What a build wrote. ``region`` is the root bounding region [west, south, east, north,
    min height, max height] in radians and metres; ``region_degrees`` the same in degrees."""

    dataset: str
    format: str
    tiles: int
    contents: int
    features: int
    triangles: int
    bytes: int
    depth: int
    geometric_error: float
    region: list[float]
    region_degrees: list[float]
    out_dir: Path

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "format": self.format, "tiles": self.tiles, "contents": self.contents,
                "features": self.features, "triangles": self.triangles, "bytes": self.bytes, "depth": self.depth,
                "geometric_error": self.geometric_error, "region": self.region,
                "region_degrees": self.region_degrees, "out_dir": str(self.out_dir)}


def build_tileset(store: Store, dataset: str, out_dir: Path, *, format: str = "1.1",
                  progress: Progress | None = None, params: PartitionParams | None = None,
                  point_distribution: PointDistribution | None = None) -> TilesetSummary:
    """Write the tileset of ``dataset`` into ``out_dir`` (created if needed; it should be empty).

    ``format``: "1.1" (glb with EXT_mesh_features/EXT_structural_metadata) or "1.0" (b3dm).
    ``progress(features done, features total)`` is called after each tile.
    ``point_distribution``: for a point cloud, the distribution done while it was imported
    (:class:`tiling.pointcloud.PointDistribution`; closed by this call).
    """
    if format not in FORMATS:
        raise InputError(f"unknown 3D Tiles format {format!r}: use one of {', '.join(FORMATS)}", format=format)
    info = store.get_dataset(dataset)
    if point_distribution is not None or store.point_block_count(dataset)[1] > 0 \
            or info.class_counts.get(CityClass.POINT_CLOUD.value):
        return _build_point_cloud(store, dataset, Path(out_dir), format, progress, point_distribution)
    frame = frame_from_spec(info.frame)
    index = store.feature_index(dataset)
    if len(index) == 0:
        raise EmptyInputError(f"dataset '{dataset}' has no feature with geometry to tile", dataset=dataset)
    plane = DatasetPlane.from_source_bounds(frame, index.bounds)
    tree = build_tree(plane.boxes, index.triangles, params, classes=index.classes)
    extents = feature_extents(plane.boxes)
    schema = build_schema(dataset, store.iter_features(dataset), classes=sorted(set(index.classes)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    writer = _TileWriter(store, dataset, frame, index, plane, schema, out_dir, format, progress)
    root = writer.write(tree, np.eye(4))
    if root is None:
        raise EmptyInputError(f"dataset '{dataset}' has no triangle to tile (all degenerate)", dataset=dataset)
    root.refine = ADD
    assert root.transform is not None  # the root's transform is its world matrix
    region = bv.region_from_box(root.bounding_volume["box"], root.transform)
    root.bounding_volume = {"box": root.bounding_volume["box"], "region": region}
    extras = {"dataset": dataset, "features": writer.features, "feature_count": info.feature_count,
              "frame": info.frame, "classes": dict(info.class_counts)}
    doc = tileset_json(root, version=format, geometric_error=tileset_geometric_error(tree, extents),
                       generator=GENERATOR, schema=schema.to_json() if format == "1.1" else None, extras=extras)
    size = write_tileset(out_dir / "tileset.json", doc)
    if progress is not None:
        progress(len(index), len(index))
    return TilesetSummary(dataset=dataset, format=format, tiles=root.count(), contents=writer.contents,
                          features=writer.features, triangles=writer.triangles, bytes=writer.byte_count + size,
                          depth=tree.depth, geometric_error=doc["geometricError"], region=region,
                          region_degrees=bv.region_degrees(region), out_dir=out_dir)


def _build_point_cloud(store: Store, dataset: str, out_dir: Path, format: str, progress: Progress | None,
                       distribution: PointDistribution | None = None) -> TilesetSummary:
    """A point-cloud dataset: the out-of-core octree of :mod:`tiling.pointcloud`."""
    from tiling.pointcloud import build_point_tiles

    out_dir.mkdir(parents=True, exist_ok=True)
    doc, result = build_point_tiles(store, dataset, out_dir, format=format, progress=progress,
                                    distribution=distribution)
    region = doc["root"]["boundingVolume"]["region"]
    return TilesetSummary(dataset=dataset, format=format, tiles=result.root.count(), contents=result.contents,
                          features=result.points, triangles=0, bytes=result.bytes, depth=result.depth,
                          geometric_error=result.geometric_error, region=region,
                          region_degrees=bv.region_degrees(region), out_dir=out_dir)


@dataclass
class _TileWriter:
    store: Store
    dataset: str
    frame: Frame
    index: FeatureIndex
    plane: DatasetPlane
    schema: MetadataSchema
    out_dir: Path
    format: str
    progress: Progress | None
    contents: int = 0
    features: int = 0
    triangles: int = 0
    byte_count: int = 0

    def write(self, node: TileNode, parent_world: np.ndarray) -> Tile | None:
        """Write ``node``'s subtree; None when it holds nothing drawable."""
        world = self.plane.tile_world(node.box)
        children: list[Tile] = []
        bounds: tuple[np.ndarray, np.ndarray] | None = None
        for child_node in node.children:
            child = self.write(child_node, world)
            if child is None:
                continue
            children.append(child)
            corners = bv.oriented_box_corners(child.bounding_volume["box"])
            assert child.transform is not None
            bounds = bv.merge(bounds, bv.aabb(bv.transform_points(child.transform, corners)))
        uri = None
        if len(node.features):
            written = self._write_content(node, world)
            if written is not None:
                uri, content_bounds = written
                bounds = bv.merge(bounds, content_bounds)
        if bounds is None:
            return None
        return Tile({"box": bv.box_json(*bounds)}, node.geometric_error, relative_transform(parent_world, world),
                    uri, children)

    def _write_content(self, node: TileNode, world: np.ndarray) -> tuple[str, Bounds] | None:
        """Write the tile's own features (all of one CIM class) as one glb (1.1) or b3dm (1.0)."""
        keys = self.index.keys[node.features]
        features = [f for f in self.store.load_features(keys.tolist()) if f.best_lod() is not None]
        meshes = _local_meshes(features, self.frame, world)
        z_to_m = self.frame.z_to_metres
        records = [feature_record(f, self.dataset, _z_range(f, z_to_m)) for f in features]
        self.features += len(features)
        if self.progress is not None:
            self.progress(self.features, len(self.index))
        arrays = build_primitive(meshes)
        if arrays.is_empty:
            return None
        classes = sorted({f.city_class.value for f in features})
        if self.format == "1.1":
            if len(classes) != 1:
                raise AssertionError(f"tile {node.address} mixes classes {classes}")
            data = write_glb([ClassGroup(classes[0], arrays, records)], self.schema)
            uri = f"content/{node.level}/{node.address}.glb"
        else:
            table = batch_table(records, sorted({k for f in features for k in f.attributes}))
            data = write_b3dm(write_batched_glb(arrays), len(records), table)
            uri = f"content/{node.level}/{node.address}.b3dm"
        return self._save(uri, data, arrays.triangle_count), arrays.local_bounds()

    def _save(self, uri: str, data: bytes, triangles: int) -> str:
        path = self.out_dir / uri
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.contents += 1
        self.byte_count += len(data)
        self.triangles += triangles
        return uri


def _local_meshes(features: list[Feature], frame: Frame, world: np.ndarray) -> list[FeatureMesh]:
    """Each feature's best-LOD mesh in the tile frame ``world``; feature_id = position in ``features``."""
    meshes = [f.geometry[f.best_lod()] for f in features]  # type: ignore[index]
    if not meshes:
        return []
    counts = [len(m.vertices) for m in meshes]
    local = ecef_to_local(world, frame.to_ecef(np.concatenate([m.vertices for m in meshes])))
    parts = np.split(local, np.cumsum(counts)[:-1])
    return [FeatureMesh(p, m.triangles, m.surfaces, i, f.city_class, parse_colour(f.attributes.get("color")))
            for i, (p, m, f) in enumerate(zip(parts, meshes, features, strict=True))]


def _z_range(feature: Feature, z_to_metres: float) -> tuple[float, float] | None:
    z = feature.height_range()
    return None if z is None else (z[0] * z_to_metres, z[1] * z_to_metres)

