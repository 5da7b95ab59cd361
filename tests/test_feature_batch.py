"""cim.feature_batch: features packed for another process come back equal."""
from __future__ import annotations

import pickle

import numpy as np
from shapely.geometry import MultiPolygon, Polygon, box

from cim import CityClass, Feature, Mesh, Source
from cim.feature_batch import pack, unpack
from tests.cim_helpers import box_mesh


def _key(f: Feature) -> tuple:
    meshes = {lod: (m.vertices.tobytes(), m.triangles.tobytes(), m.surfaces.tobytes(), m.vertices.dtype,
                    m.triangles.dtype, m.surfaces.dtype,
                    tuple(a.tobytes() for a in m.known_bounds() or ())) for lod, m in f.geometry.items()}
    return (f.id, f.city_class, f.source, f.parent, f.name, list(f.attributes.items()),
            [type(v) for v in f.attributes.values()], list(f.geometry), meshes,
            None if f.footprint is None else (f.footprint.geom_type, f.footprint.wkb))


def test_round_trip_keeps_everything() -> None:
    cached = box_mesh(10, 20, h=7)
    cached.bounds()
    empty = Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.uint32))
    features = [
        Feature("b1", CityClass.BUILDING, Source("a.gml", "bldg:Building"), name="Tòa nhà 1",
                attributes={"measuredHeight": 7.5, "storeys": 2, "flat": True, "function": "office"},
                geometry={2: cached, 1: box_mesh(10, 20, h=6)},
                footprint=MultiPolygon([box(10, 20, 20, 30)])),
        Feature("b1/p", CityClass.BUILDING_PART, Source("a.gml", "bldg:BuildingPart"), parent="b1"),
        Feature("t", CityClass.TIN_RELIEF, Source("a.gml", "dem:TINRelief"), geometry={1: empty},
                footprint=Polygon()),
        Feature("r", CityClass.ROAD, Source("b.gml", "tran:Road"),
                footprint=Polygon([(0, 0, 1), (5, 0, 1), (5, 5, 2)], [[(1, 1, 1), (2, 1, 1), (2, 2, 1)]])),
    ]
    back = unpack(pickle.loads(pickle.dumps(pack(features), protocol=pickle.HIGHEST_PROTOCOL)))
    assert [_key(f) for f in back] == [_key(f) for f in features]
    assert back[0].geometry[2].known_bounds() is not None and back[0].geometry[1].known_bounds() is None
    assert back[0].footprint.equals(features[0].footprint) and back[3].footprint.has_z
    assert back[2].footprint.is_empty


def test_nothing_to_pack() -> None:
    assert unpack(pickle.loads(pickle.dumps(pack([])))) == []
