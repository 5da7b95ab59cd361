"""3D Tiles from the CIM store: a dataset -> tile tree -> glb (3D Tiles 1.1, EXT_mesh_features +
EXT_structural_metadata) or b3dm (3D Tiles 1.0) contents, published atomically.

Public API:

* :func:`build_tileset` writes a dataset's tileset into a folder and returns a :class:`TilesetSummary`;
* :func:`publish_tileset` builds into a staging folder and publishes it as the next version
  (``tiles_root/<dataset>/v<N>``, ``CURRENT``); :func:`current_tileset_dir` resolves it;
* :func:`city_tileset` builds the city tileset over the datasets' tilesets (external tilesets);
* :func:`read_glb`, :func:`read_property_table`, :func:`read_b3dm` read contents back (tests, tools).

This package depends on :mod:`cim` only (never on converters or the server). The names above
are imported on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from cim.lazy import lazy_exports

if TYPE_CHECKING:
    from tiling.b3dm import read_b3dm
    from tiling.build import FORMATS, TilesetSummary, build_tileset
    from tiling.city import city_tileset, dataset_child_uri, tileset_region
    from tiling.feature_metadata import read_property_table
    from tiling.glb import read_glb
    from tiling.partition import PartitionParams
    from tiling.publish import (PUBLISHED_MODE, current_tileset_dir, is_dataset_name, publish_tileset,
                                publish_tileset_with_summary)

# imported on first use (PEP 562): ``import tiling.pointcloud.pool`` must not pull in the tiler
_EXPORTS = {
    "read_b3dm": "tiling.b3dm", "FORMATS": "tiling.build", "TilesetSummary": "tiling.build",
    "build_tileset": "tiling.build", "city_tileset": "tiling.city", "dataset_child_uri": "tiling.city",
    "tileset_region": "tiling.city", "read_property_table": "tiling.feature_metadata", "read_glb": "tiling.glb",
    "PartitionParams": "tiling.partition", "PUBLISHED_MODE": "tiling.publish", "current_tileset_dir": "tiling.publish",
    "is_dataset_name": "tiling.publish", "publish_tileset": "tiling.publish",
    "publish_tileset_with_summary": "tiling.publish",
}

__all__ = [
    "FORMATS", "PUBLISHED_MODE", "PartitionParams", "TilesetSummary", "build_tileset", "city_tileset", "current_tileset_dir",
    "dataset_child_uri", "is_dataset_name", "publish_tileset", "publish_tileset_with_summary", "read_b3dm",
    "read_glb", "read_property_table", "tileset_region",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
