"""The city tileset: a pure function over the datasets' tileset documents."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cim.crs import enu_to_ecef_matrix
from tiling import city_tileset, dataset_child_uri, tileset_region
from tiling.bounding_volume import region_degrees
from tiling.city import WORLD_REGION
from tiling.tileset import matrix_json


def dataset_doc(name: str, lon: float, lat: float, half: float = 100.0, error: float = 50.0,
                with_region: bool = True) -> dict[str, object]:
    box = [0.0, 0.0, 20.0, half, 0, 0, 0, half, 0, 0, 0, 20.0]
    volume: dict[str, object] = {"box": box}
    if with_region:
        d_lon = math.radians(half / (6378137 * math.cos(math.radians(lat))) * 180 / math.pi)
        d_lat = math.radians(half / 6356752 * 180 / math.pi)
        volume["region"] = [math.radians(lon) - d_lon, math.radians(lat) - d_lat, math.radians(lon) + d_lon,
                            math.radians(lat) + d_lat, 0.0, 40.0]
    return {"asset": {"version": "1.1"}, "geometricError": error, "extras": {"dataset": name, "features": 10},
            "root": {"boundingVolume": volume, "geometricError": error / 2, "refine": "ADD",
                     "transform": matrix_json(enu_to_ecef_matrix(lon, lat, 0.0))}}


def test_child_uri_is_relative_to_the_city_tileset() -> None:
    assert dataset_child_uri("danang-2024") == "../danang-2024/tileset.json"


def test_region_from_box_when_a_tileset_has_none() -> None:
    with_region = dataset_doc("a", 108.2, 16.05)
    without = dataset_doc("a", 108.2, 16.05, with_region=False)
    r1, r2 = tileset_region(with_region), tileset_region(without)
    assert r1 == with_region["root"]["boundingVolume"]["region"]  # type: ignore[index]
    # the box is 200 m square and 40 m tall from 0 m: the computed region encloses it
    assert r2[0] <= r1[0] + 1e-9 and r2[2] >= r1[2] - 1e-9 and r2[1] <= r1[1] + 1e-9 and r2[3] >= r1[3] - 1e-9
    assert r2[4] == pytest.approx(-0.5, abs=0.01) and r2[5] == pytest.approx(40.5 + 100**2 / 6.4e6, abs=0.02)
    assert region_degrees(r2)[0] == pytest.approx(108.2 - 100 / (6378137 * math.cos(math.radians(16.05))) * 57.2958,
                                                  abs=1e-5)


def test_city_tileset_has_one_external_child_per_dataset() -> None:
    docs = [("../a/tileset.json", dataset_doc("a", 108.20, 16.05, error=60)),
            ("../b/tileset.json", dataset_doc("b", 108.25, 16.07, half=300, error=900, with_region=False))]
    city = city_tileset(docs)
    assert city["asset"]["version"] == "1.1"
    root = city["root"]
    assert root["refine"] == "ADD"
    assert [c["content"]["uri"] for c in root["children"]] == ["../a/tileset.json", "../b/tileset.json"]
    assert [c["geometricError"] for c in root["children"]] == [60, 900]
    west, south, east, north, hmin, hmax = root["boundingVolume"]["region"]
    for child in root["children"]:
        cw, cs, ce, cn, ch0, ch1 = child["boundingVolume"]["region"]
        assert west <= cw and cs >= south and ce <= east and cn <= north and hmin <= ch0 and ch1 <= hmax
    extent = 6378137 * math.cos(math.radians(16.06)) * (east - west)
    assert extent > 5000  # the two datasets are ~5.3 km apart
    assert city["geometricError"] == root["geometricError"] >= max(extent, 900)
    assert city["extras"] == {"datasets": ["a", "b"], "features": 20}


def test_empty_city_is_a_valid_tileset() -> None:
    city = city_tileset([])
    assert city["root"]["boundingVolume"]["region"] == WORLD_REGION
    assert "children" not in city["root"] and city["geometricError"] == 0


def test_region_of_a_sphere_volume() -> None:
    doc = dataset_doc("s", 0.0, 0.0)
    doc["root"]["boundingVolume"] = {"sphere": [0.0, 0.0, 0.0, 50.0]}  # type: ignore[index]
    west, south, east, north, hmin, hmax = tileset_region(doc)
    assert np.degrees(east - west) * 111319.5 == pytest.approx(101, abs=1)
    assert hmin == pytest.approx(-50.5, abs=0.01) and hmax == pytest.approx(50.5, abs=0.01)
