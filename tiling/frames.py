"""Local east-north-up frames: the dataset's planning plane and each tile's own frame.

* The **dataset plane** is an ENU frame at the centre of the dataset. Feature boxes from the
  store's index (source frame) are mapped into it to plan the tile tree in metres, whatever the
  source CRS (projected, geographic or a placed local frame).
* Every **tile** has its own ENU frame at the centre of its features' boxes: world matrix
  ``F = enu_to_ecef_matrix(lon, lat, h)``. Its 3D Tiles ``transform`` is
  ``inverse(F_parent) @ F`` (the root's is ``F``), because tile transforms compose with the
  parent's. Content positions are float32 offsets in that frame, so they stay exact to well
  under a millimetre.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cim.crs import Frame, ecef_to_lonlat, enu_to_ecef_matrix

Array = npt.NDArray[np.float64]


def ecef_to_local(world: Array, ecef: Array) -> Array:
    """ECEF (n, 3) -> coordinates in the frame whose world matrix is ``world`` (rigid)."""
    return np.asarray((np.asarray(ecef, dtype=np.float64).reshape(-1, 3) - world[:3, 3]) @ world[:3, :3],
                      dtype=np.float64)


def local_to_ecef(world: Array, local: Array) -> Array:
    return np.asarray(np.asarray(local, dtype=np.float64).reshape(-1, 3) @ world[:3, :3].T + world[:3, 3],
                      dtype=np.float64)


def enu_frame_at(ecef_point: Array) -> Array:
    """The ENU world matrix whose origin is ``ecef_point`` (on the ellipsoid normal through it)."""
    lon, lat, h = ecef_to_lonlat(np.asarray(ecef_point, dtype=np.float64).reshape(1, 3))[0]
    return enu_to_ecef_matrix(float(lon), float(lat), float(h))


def relative_transform(parent_world: Array, world: Array) -> Array:
    """The 3D Tiles ``transform`` of a tile with world matrix ``world`` under ``parent_world``."""
    return np.asarray(np.linalg.inv(parent_world) @ world, dtype=np.float64)


@dataclass
class DatasetPlane:
    """The dataset's ENU planning frame and every indexed feature's box in it."""

    world: Array  # 4x4, ENU at the dataset centre -> ECEF
    boxes: Array  # (n, 6) min xyz, max xyz in the plane's ENU metres

    @classmethod
    def from_source_bounds(cls, frame: Frame, bounds: Array) -> DatasetPlane:
        """``bounds`` (n, 6): per-feature source-frame boxes (min xyz, max xyz)."""
        bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 6)
        lo, hi = bounds[:, :3].min(axis=0), bounds[:, 3:].max(axis=0)
        centre_ecef = frame.to_ecef(((lo + hi) / 2).reshape(1, 3))[0]
        world = enu_frame_at(centre_ecef)
        corners = np.stack([bounds[:, [x, y, z]] for x in (0, 3) for y in (1, 4) for z in (2, 5)], axis=1)
        enu = ecef_to_local(world, frame.to_ecef(corners.reshape(-1, 3))).reshape(-1, 8, 3)
        boxes = np.concatenate([enu.min(axis=1), enu.max(axis=1)], axis=1)
        return cls(world, boxes)

    def tile_world(self, box: Array) -> Array:
        """World matrix of the ENU frame at the centre of ``box`` (plane ENU, min xyz, max xyz)."""
        centre = (np.asarray(box[:3]) + np.asarray(box[3:])) / 2
        return enu_frame_at(local_to_ecef(self.world, centre)[0])
