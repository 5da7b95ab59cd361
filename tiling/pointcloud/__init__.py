"""Point-cloud tiling: an out-of-core octree over a point-cloud dataset's stored blocks, written
as 3D Tiles 1.1 glb POINTS (with EXT_structural_metadata property attributes) or 3D Tiles 1.0
``pnts`` (docs/pointcloud.md). The names below are imported on first use (PEP 562)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from cim.lazy import lazy_exports

if TYPE_CHECKING:
    from tiling.pointcloud.build import PointCloudParams, PointDistribution, build_point_tiles, point_cloud_summary
    from tiling.pointcloud.content import read_pnts

_EXPORTS = {"PointCloudParams": "tiling.pointcloud.build", "PointDistribution": "tiling.pointcloud.build",
            "build_point_tiles": "tiling.pointcloud.build", "point_cloud_summary": "tiling.pointcloud.build",
            "read_pnts": "tiling.pointcloud.content"}

__all__ = ["PointCloudParams", "PointDistribution", "build_point_tiles", "point_cloud_summary", "read_pnts"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
