"""CityJSON import (the two real samples in ../shared/data/cityjson) and CityJSON 2.0 export:
counts, classes, semantics, transform, CRS; bad input imports nothing; our export passes a
CityJSON 2.0 schema check, is read by cjio and re-imports with the same features."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from cim.classes import SurfaceType
from cim.errors import CrsMissingError, ParseError, TruncatedFileError, UnsupportedFormatError
from cim.export.cityjson import dataset_to_cityjson
from cim.store import SqliteStore, open_store
from converters import ConvertOptions, open_input
from converters.registry import detect
from server.app import create_app
from server.pipeline import import_files
from tests.cityjson_schema import CITYJSON_2_0, consistency_errors
from tests.test_server_fixtures import TestClient, settings_for

CIM = Path(sys.executable).with_name("cim")
REPO = Path(__file__).resolve().parents[1]
DANANG = REPO / "fixtures" / "danang_hitech_park_citygml2.gml"
DELFT_CLASSES = {"Building": 160, "Road": 143, "PlantCover": 126, "LandUse": 81, "GenericCityObject": 54,
                 "Bridge": 3, "WaterBody": 3}
#: cjio patches the json module when imported (floats to 6 decimals), so it runs in its own process
CJIO_READ = """
import json, sys
from cjio import cityjson
with open(sys.argv[1], encoding="utf-8") as fh:
    cm = cityjson.CityJSON(file=fh)
cm.check_version()
print(json.dumps({"version": cm.get_version(), "objects": len(cm.j["CityObjects"]), "epsg": cm.get_epsg(),
                  "triangulated": cm.is_triangulated()}))
"""
SEM = {"WallSurface": SurfaceType.WALL, "RoofSurface": SurfaceType.ROOF, "GroundSurface": SurfaceType.GROUND}


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> dict[str, Path]:
    return {"delft": shared_data / "cityjson" / "delft.city.json", "dh": shared_data / "cityjson" / "DH_01_subs.city.json"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, samples: dict[str, Path]) -> Iterator[SqliteStore]:
    s = open_store(tmp_path_factory.mktemp("cityjson") / "city.gpkg")
    from cim.placement import user_frame
    import_files(s, "delft", [samples["delft"]])
    import_files(s, "dh", [samples["dh"]], frame=user_frame(crs="EPSG:28992"))
    import_files(s, "dn", [DANANG])
    yield s
    s.close()


def test_sniffed_by_content(samples: dict[str, Path], tmp_path: Path) -> None:
    for p in samples.values():
        assert detect(p).name == "cityjson"
    other = tmp_path / "x.json"
    other.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(UnsupportedFormatError):
        detect(other)


def test_delft_2_0_classes_and_crs(store: SqliteStore) -> None:
    info = store.get_dataset("delft")
    assert info.feature_count == 570 and info.class_counts == DELFT_CLASSES
    assert (info.frame["horizontal"], info.frame["vertical"]) == (28992, 5709)  # EPSG:7415 = RD New + NAP
    west, south, east, north = info.bbox  # type: ignore[misc]
    assert 4.34 < west < east < 4.37 and 52.0 < south < north < 52.02  # Delft


def test_transform_applied(store: SqliteStore, samples: dict[str, Path]) -> None:
    doc = json.loads(samples["delft"].read_text())
    oid, obj = next((k, v) for k, v in doc["CityObjects"].items() if v["type"] == "Building")
    first = obj["geometry"][0]["boundaries"][0][0][0][0]  # Solid: shell, surface, ring, vertex
    expected = np.array(doc["vertices"][first]) * doc["transform"]["scale"] + doc["transform"]["translate"]
    feature = next(f for f in store.iter_features("delft", with_geometry=True) if f.id == oid)
    assert np.min(np.linalg.norm(feature.geometry[1].vertices - expected, axis=1)) < 1e-6


def test_den_haag_parts_semantics_attributes(store: SqliteStore, samples: dict[str, Path]) -> None:
    doc = json.loads(samples["dh"].read_text())
    features = {f.id: f for f in store.iter_features("dh", with_geometry=True)}
    assert Counter(f.city_class.value for f in features.values()) == {"Building": 4, "BuildingPart": 8}
    for oid, obj in doc["CityObjects"].items():
        f = features[oid]
        assert f.parent == (obj.get("parents") or [None])[0]
        assert f.attributes == {k: v for k, v in obj.get("attributes", {}).items() if v is not None}
        for g in obj.get("geometry", []):
            types = {s["type"] for s in g["semantics"]["surfaces"]}
            used = {int(SEM[t]) for t in types}
            mesh = f.geometry[int(g["lod"])]
            assert set(np.unique(mesh.surfaces).tolist()) == used
            n_roofs = sum(1 for v in g["semantics"]["values"][0] if g["semantics"]["surfaces"][v]["type"] == "RoofSurface")
            assert np.count_nonzero(mesh.surfaces == SurfaceType.ROOF) >= n_roofs
    part = next(f for f in features.values() if f.city_class.value == "BuildingPart")
    assert isinstance(part.attributes["RelativeEavesHeight"], float) and isinstance(part.attributes["roofType"], str)
    assert sum(1 for _ in store.footprints(dataset="dh")) == 4  # each building, parts' union for composite ones


def test_no_crs_needs_a_placement(samples: dict[str, Path], tmp_path: Path) -> None:
    s = open_store(tmp_path / "city.gpkg")
    try:
        with pytest.raises(CrsMissingError, match="--crs"):
            import_files(s, "dh", [samples["dh"]])
        assert s.list_datasets() == []
    finally:
        s.close()


@pytest.mark.parametrize("damage", ["truncated", "not_json", "deep", "no_vertices", "bad_version"])
def test_bad_json_imports_nothing(samples: dict[str, Path], tmp_path: Path, damage: str) -> None:
    raw = samples["delft"].read_bytes()
    bad = tmp_path / "bad.city.json"
    content = {
        "truncated": raw[: len(raw) // 2],
        "not_json": b'{"type": "CityJSON", "version": "2.0", "CityObjects": {,}}',
        "deep": b'{"type": "CityJSON", "CityObjects": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
        "no_vertices": b'{"type": "CityJSON", "version": "2.0", "CityObjects": {}}',
        "bad_version": b'{"type": "CityJSON", "version": "3.7", "CityObjects": {}, "vertices": []}',
    }[damage]
    bad.write_bytes(content)
    s = open_store(tmp_path / "city.gpkg")
    try:
        import_files(s, "delft", [samples["delft"]])
        before = s.get_dataset("delft")
        with pytest.raises(TruncatedFileError if damage == "truncated" else ParseError):
            import_files(s, "delft", [bad])
        after = s.get_dataset("delft")
        assert (after.feature_count, after.version) == (before.feature_count, before.version)
    finally:
        s.close()


def check_export(doc: dict[str, object]) -> None:
    jsonschema.validate(doc, CITYJSON_2_0)
    assert consistency_errors(doc) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("dataset", ["delft", "dh", "dn"])
def test_export_validates_and_round_trips(store: SqliteStore, tmp_path: Path, dataset: str) -> None:
    doc = dataset_to_cityjson(store, dataset)
    check_export(doc)
    out = tmp_path / f"{dataset}.city.json"
    out.write_text(json.dumps(doc), encoding="utf-8")
    r = subprocess.run([sys.executable, "-c", CJIO_READ, str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr  # a third-party reader
    cm = json.loads(r.stdout)
    info = store.get_dataset(dataset)
    assert cm["version"] == "2.0" and cm["objects"] == info.feature_count and cm["triangulated"]
    if info.frame["type"] == "crs":
        assert cm["epsg"] in (info.frame["horizontal"], 7415)
    reread = open_store(tmp_path / "again.gpkg")
    try:
        again = import_files(reread, dataset, [out])
        assert again.feature_count == info.feature_count and again.class_counts == info.class_counts
        orig = {f.id: f for f in store.iter_features(dataset, with_geometry=True)}
        for f in reread.iter_features(dataset, with_geometry=True):
            o = orig[f.id]
            assert f.parent == o.parent and f.city_class == o.city_class
            for lod, mesh in o.geometry.items():
                lo, hi = mesh.bounds()
                lo2, hi2 = f.geometry[lod].bounds()
                assert np.allclose(lo, lo2, atol=2e-3) and np.allclose(hi, hi2, atol=2e-3)
                assert Counter(mesh.surfaces.tolist()) == Counter(f.geometry[lod].surfaces.tolist()) or \
                    f.geometry[lod].triangle_count < mesh.triangle_count  # only collapsed triangles dropped
        assert abs(again.bbox[0] - info.bbox[0]) < 1e-7  # type: ignore[index]
    finally:
        reread.close()


def test_export_in_target_crs_and_bbox(store: SqliteStore) -> None:
    doc = dataset_to_cityjson(store, "dn", bbox=(108.095, 16.065, 108.105, 16.075), crs="EPSG:32649")
    check_export(doc)
    assert doc["metadata"]["referenceSystem"] == "https://www.opengis.net/def/crs/EPSG/0/32649"
    objects = doc["CityObjects"]
    assert 0 < sum(1 for o in objects.values() if o["type"] == "Building") < 240
    for o in objects.values():  # whole groups: every part comes with its building
        assert all(p in objects for p in o.get("parents", []))
    x0, y0 = doc["metadata"]["geographicalExtent"][:2]
    assert 180_000 < x0 < 200_000 and 1_770_000 < y0 < 1_790_000  # UTM 49N (lon_0 111°E) at Da Nang, 108.1°E


def test_cli_and_http(store: SqliteStore, samples: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = subprocess.run([str(CIM), "--data", str(data), "import", str(samples["dh"]), "--dataset", "dh",
                        "--origin", "4.27,52.10,0"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "12 features" in r.stdout
    r = subprocess.run([str(CIM), "--data", str(data), "import", str(samples["dh"]), "--dataset", "x"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 4 and "--origin" in r.stderr
    out = tmp_path / "dh.city.json"
    r = subprocess.run([str(CIM), "--data", str(data), "export", "cityjson", "--dataset", "dh", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    check_export(doc)
    assert "referenceSystem" not in doc["metadata"] and len(doc["CityObjects"]) == 12  # a local placed frame
    with TestClient(create_app(settings_for(data, data / "no-cesium"))) as client:
        resp = client.get("/api/datasets/dh/cityjson")
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/city+json"
        assert 'filename="dh.city.json"' in resp.headers["content-disposition"]
        assert resp.json()["CityObjects"].keys() == doc["CityObjects"].keys()
        assert client.get("/api/datasets/nowhere/cityjson").status_code == 404
        assert client.get("/api/datasets/dh/cityjson", params={"bbox": "1,2"}).status_code == 400
        assert client.get("/api/datasets/dh/cityjson", params={"crs": "EPSG:0"}).status_code == 400


def test_user_placement_overrides(samples: dict[str, Path]) -> None:
    from cim.placement import user_frame
    reading = open_input(samples["delft"], ConvertOptions(frame=user_frame(crs="EPSG:28992")))
    assert sum(1 for _ in reading.features()) == 570
    assert any("given placement wins" in w for w in reading.report.warnings)
