"""Point-cloud tiling: an out-of-core octree over a point-cloud dataset's stored blocks, written
as 3D Tiles 1.1 glb POINTS (with EXT_structural_metadata property attributes) or 3D Tiles 1.0
``pnts`` (docs/pointcloud.md)."""
from tiling.pointcloud.build import PointCloudParams, PointDistribution, build_point_tiles, point_cloud_summary
from tiling.pointcloud.content import read_pnts

__all__ = ["PointCloudParams", "PointDistribution", "build_point_tiles", "point_cloud_summary", "read_pnts"]
