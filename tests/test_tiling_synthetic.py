"""A synthetic district for the tiling tests, and the tests of the generator itself.

``make_district`` yields ~200 box and gable-roof buildings (some with BuildingParts), two large
landmarks, a terrain (TINRelief) and roads, in VN-2000 / TM-3 107-45 (EPSG:5899) around
lon 108.09, lat 16.08 (Da Nang), with attributes of every type (float, int, str, bool, keys
with dots, values missing on some features). ``make_store`` ingests it with cim.ingest through
a minimal :class:`cim.conversion.Reading`. Deterministic (seeded).

Other tiling test modules import these functions (``from tests.test_tiling_synthetic import ...``).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from shapely.geometry import Point

from cim.classes import CityClass, SurfaceType
from cim.conversion import ConversionReport
from cim.crs import Frame, crs_frame, transform_geometry
from cim.feature import Feature, Source
from cim.ingest import ingest
from cim.mesh import Mesh
from cim.store import SqliteStore, open_store
from cim.triangulate import triangulate_polygon

DANANG_LON, DANANG_LAT = 108.09, 16.08
EPSG = 5899
BASE_Z = 5.0

Face = tuple[list[tuple[float, float, float]], SurfaceType]


def mesh_from_faces(faces: list[Face]) -> Mesh:
    """Planar faces (rings counter-clockwise seen from outside) -> one triangle mesh."""
    verts, tris, surfs = [], [], []
    offset = 0
    for ring, surface in faces:
        v, t = triangulate_polygon([np.array(ring, dtype=np.float64)])
        verts.append(v)
        tris.append(t.astype(np.int64) + offset)
        surfs.append(np.full(len(t), int(surface), np.uint8))
        offset += len(v)
    return Mesh(np.concatenate(verts), np.concatenate(tris), np.concatenate(surfs))


def building_faces(cx: float, cy: float, w: float, d: float, angle: float, z0: float, eave: float,
                   ridge: float | None) -> list[Face]:
    """A box (``ridge`` None) or gable-roofed building, footprint w x d rotated by ``angle`` rad."""
    c, s = math.cos(angle), math.sin(angle)

    def at(u: float, v: float, z: float) -> tuple[float, float, float]:
        return (cx + u * c - v * s, cy + u * s + v * c, z)
    fp = [(-w / 2, -d / 2), (w / 2, -d / 2), (w / 2, d / 2), (-w / 2, d / 2)]  # counter-clockwise
    top = z0 + eave
    faces: list[Face] = [([at(u, v, z0) for u, v in reversed(fp)], SurfaceType.GROUND)]
    for i in range(4):
        (u0, v0), (u1, v1) = fp[i], fp[(i + 1) % 4]
        ring = [at(u0, v0, z0), at(u1, v1, z0), at(u1, v1, top), at(u0, v0, top)]
        if ridge is not None and i in (1, 3):  # gable ends (x = +-w/2): a pentagon up to the ridge
            ring.insert(3, at(u1, 0.0, z0 + ridge))
        faces.append((ring, SurfaceType.WALL))
    if ridge is None:
        faces.append(([at(u, v, top) for u, v in fp], SurfaceType.ROOF))
    else:
        rz = z0 + ridge
        faces.append(([at(-w / 2, -d / 2, top), at(w / 2, -d / 2, top), at(w / 2, 0, rz), at(-w / 2, 0, rz)],
                      SurfaceType.ROOF))
        faces.append(([at(w / 2, d / 2, top), at(-w / 2, d / 2, top), at(-w / 2, 0, rz), at(w / 2, 0, rz)],
                      SurfaceType.ROOF))
    return faces


def grid_faces(x0: float, y0: float, size: float, n: int, z: float, surface: SurfaceType) -> list[Face]:
    step = size / n
    faces: list[Face] = []
    for i in range(n):
        for j in range(n):
            xa, ya = x0 + i * step, y0 + j * step
            dz = 0.3 * math.sin(i * 0.7) * math.cos(j * 0.5)
            faces.append(([(xa, ya, z + dz), (xa + step, ya, z + dz), (xa + step, ya + step, z + dz),
                           (xa, ya + step, z + dz)], surface))
    return faces


def danang_centre() -> tuple[float, float]:
    p = transform_geometry(Point(DANANG_LON, DANANG_LAT), 4326, EPSG)
    return float(p.x), float(p.y)


def make_district(buildings: int = 200, seed: int = 7) -> list[Feature]:
    rng = np.random.default_rng(seed)
    e0, n0 = danang_centre()
    side = int(math.ceil(math.sqrt(buildings)))
    spacing = 45.0
    half = side * spacing / 2
    out: list[Feature] = []
    src = "synthetic-danang.gml"
    for k in range(buildings):
        i, j = divmod(k, side)
        cx = e0 - half + (i + 0.5) * spacing + rng.uniform(-6, 6)
        cy = n0 - half + (j + 0.5) * spacing + rng.uniform(-6, 6)
        w, d = rng.uniform(10, 28), rng.uniform(8, 18)
        eave = float(rng.uniform(6, 45))
        gable = k % 2 == 1
        ridge = eave + min(w, d) * 0.35 if gable else None
        attrs: dict[str, object] = {"storeysAboveGround": int(eave // 3.2),
                                    "function": ["residential", "office", "retail"][k % 3],
                                    "address.street": f"Đường {k % 17} tháng {k % 12 + 1}"}
        if k % 4:
            attrs["measuredHeight"] = round(ridge or eave, 2)
        if k % 5 == 0:
            attrs["Pset_BuildingCommon.IsLandmarked"] = k % 10 == 0
        if k % 7 == 0:
            attrs["yearOfConstruction"] = 1960 + k % 60
        faces = building_faces(cx, cy, w, d, float(rng.uniform(0, math.pi)), BASE_Z, eave, ridge)
        bid = f"BLDG_{k:04d}"
        out.append(Feature(bid, CityClass.BUILDING, Source(src, "bldg:Building"),
                           name=f"Building {k}" if k % 6 else None, attributes=attrs,
                           geometry={2: mesh_from_faces(faces)}))
        if k % 20 == 3:  # an annex as a BuildingPart child
            part = building_faces(cx + w, cy, 6, 6, 0.0, BASE_Z, 4.0, None)
            out.append(Feature(f"{bid}_part", CityClass.BUILDING_PART, Source(src, "bldg:BuildingPart"),
                               parent=bid, attributes={"storeysAboveGround": 1},
                               geometry={2: mesh_from_faces(part)}))
    for m, (dx, dy) in enumerate([(-0.25, 0.3), (0.3, -0.2)]):  # landmarks
        faces = building_faces(e0 + dx * 2 * half, n0 + dy * 2 * half, 110, 70, 0.3 * m, BASE_Z, 80.0, None)
        out.append(Feature(f"LANDMARK_{m}", CityClass.BUILDING, Source(src, "bldg:Building"), name=f"Landmark {m}",
                           attributes={"measuredHeight": 80.0, "function": "stadium"},
                           geometry={2: mesh_from_faces(faces)}))
    terrain = grid_faces(e0 - half - 30, n0 - half - 30, 2 * half + 60, 16, BASE_Z - 0.5, SurfaceType.TERRAIN)
    out.append(Feature("TERRAIN_0", CityClass.TIN_RELIEF, Source(src, "dem:TINRelief"),
                       geometry={1: mesh_from_faces(terrain)}))
    for r in range(3):
        y = n0 - half + (r + 1) * 2 * half / 4
        road = [([(e0 - half, y - 4, BASE_Z + 0.05), (e0 + half, y - 4, BASE_Z + 0.05),
                  (e0 + half, y + 4, BASE_Z + 0.05), (e0 - half, y + 4, BASE_Z + 0.05)], SurfaceType.TRAFFIC)]
        out.append(Feature(f"ROAD_{r}", CityClass.ROAD, Source(src, "tran:Road"), name=f"Road {r}",
                           attributes={"function": "street", "lanes": 2 + r},
                           geometry={1: mesh_from_faces(road)}))
    return out


@dataclass
class ListReading:
    """A :class:`cim.conversion.Reading` over a list of features (what a converter hands over)."""

    path: Path
    items: list[Feature]
    source_frame: Frame
    report: ConversionReport = field(default_factory=lambda: ConversionReport(source="synthetic", format="test"))
    bytes_read: int = 0
    total_bytes: int = 1000

    @property
    def frame(self) -> Frame:
        return self.source_frame

    def features(self) -> Iterator[Feature]:
        for i, f in enumerate(self.items):
            self.bytes_read = int(self.total_bytes * (i + 1) / len(self.items))
            yield f


def make_store(path: Path, dataset: str = "danang", buildings: int = 200) -> SqliteStore:
    store = open_store(path)
    reading = ListReading(Path("synthetic-danang.gml"), make_district(buildings), crs_frame(f"EPSG:{EPSG}"))
    ingest(store, dataset, [reading])
    return store


# --- tests of the generator -----------------------------------------------------------------

def test_district_is_closed_and_outward() -> None:
    faces = building_faces(0, 0, 20, 10, 0.4, 0.0, 9.0, 12.0)
    mesh = mesh_from_faces(faces)
    v, t = mesh.vertices, mesh.triangles.astype(int)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    signed_volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6
    assert signed_volume > 0  # outward faces: positive enclosed volume
    assert abs(signed_volume - (20 * 10 * 9 + 0.5 * 10 * 3 * 20)) < 1e-6


def test_store_holds_the_district(tmp_path: Path) -> None:
    store = make_store(tmp_path / "city.gpkg", buildings=30)
    try:
        info = store.get_dataset("danang")
        assert info.class_counts["Building"] == 32
        west, south, east, north = info.bbox
        assert west < DANANG_LON < east and south < DANANG_LAT < north
    finally:
        store.close()
