"""The CityGML converter on the real sample files (../shared/data/citygml, see its MANIFEST.tsv)
and on small synthetic files for the constructs the samples lack.

Expected counts are computed independently with lxml from each file (and a few are hard-coded
after inspecting the files)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from cim.classes import CityClass, SurfaceType
from cim.crs import LocalFrame
from cim.placement import user_frame
from cim.errors import CrsContradictionError, CrsMissingError, ParseError
from cim.feature import Feature
from cim.ingest import ingest
from cim.store import open_store
from converters import ConvertOptions, detect, open_input
from converters.citygml import CityGmlConverter

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "citygml"
ORIGIN = "108.25,16.05,0"  # places the files that have no CRS (Da Nang)
NEEDS_PLACEMENT = {"LOD2_Buildings_v100_noCRS.gml", "LocalCRS_CityGML3.gml"}

#: element local name -> CIM class value, for counting the samples with lxml
COUNTED = {"Building": "Building", "BuildingPart": "BuildingPart", "Room": "BuildingRoom",
           "BuildingRoom": "BuildingRoom", "Window": "Window", "Door": "Door",
           "BuildingFurniture": "BuildingFurniture", "ReliefFeature": "ReliefFeature", "TINRelief": "TINRelief"}

#: facts verified by reading the files (see MANIFEST.tsv)
EXPECTED = {
    "Potsdam_LoD1.gml": {"classes": {"Building": 97}, "lods": {1}, "epsg": 25833},
    "LOD2_Buildings_v100_noCRS.gml": {"classes": {"Building": 100}, "lods": {2},
                                      "surfaces": {SurfaceType.WALL, SurfaceType.ROOF, SurfaceType.GROUND}},
    "lod2_buildings_v3.gml": {"classes": {"Building": 100}, "lods": {2}, "epsg": 3068,
                              "surfaces": {SurfaceType.WALL, SurfaceType.ROOF, SurfaceType.GROUND}},
    "Building_LOD4-EPSG25832_v2.gml": {
        "classes": {"Building": 1, "BuildingRoom": 1, "Window": 4, "Door": 2, "BuildingFurniture": 1,
                    "ReliefFeature": 1, "TINRelief": 1},
        "lods": {4}, "epsg": 25832,
        "surfaces": {SurfaceType.WALL, SurfaceType.ROOF, SurfaceType.GROUND}},
    "Opera-Lyon_CityGML3.0_LOD2.gml": {"classes": {"Building": 1}, "lods": {2}, "epsg": 3946,
                                       "surfaces": {SurfaceType.WALL, SurfaceType.ROOF, SurfaceType.GROUND}},
    "LocalCRS_CityGML3.gml": {"classes": {"Building": 1, "ReliefFeature": 1, "TINRelief": 1}, "lods": {1}},
}


def _options(name: str) -> ConvertOptions:
    return ConvertOptions(frame=user_frame(origin=ORIGIN) if name in NEEDS_PLACEMENT else None)


def _lxml_facts(path: Path) -> dict[str, object]:
    """Counts, heights and the first building's attributes, read with plain lxml."""
    tree = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    classes: Counter[str] = Counter()
    zs: list[float] = []
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        ns, local = el.tag[1:].split("}")
        if "citygml" in ns and local in COUNTED:
            classes[COUNTED[local]] += 1
        if local == "posList":
            values = np.array(el.text.split(), float)
            zs.extend(values[2::3].tolist())
    return {"classes": dict(classes), "zmin": min(zs), "zmax": max(zs)}


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Every sample imported into one store, one dataset each."""
    store = open_store(tmp_path_factory.mktemp("citygml") / "city.gpkg")
    infos = {}
    for path in sorted(SAMPLES.glob("*.gml")):
        infos[path.name] = ingest(store, path.stem.replace("_", "-")[:60], [open_input(path, _options(path.name))])
    return {"store": store, "infos": infos}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_file_imports(name: str, imported: dict[str, object]) -> None:
    path = SAMPLES / name
    store, info = imported["store"], imported["infos"][name]  # type: ignore[index]
    facts = _lxml_facts(path)
    expected = EXPECTED[name]
    assert info.class_counts == facts["classes"] == expected["classes"]
    assert info.feature_count == sum(expected["classes"].values())  # type: ignore[attr-defined]
    if "epsg" in expected:
        assert info.frame["type"] == "crs" and info.frame["horizontal"] == expected["epsg"]
    else:
        assert info.frame["type"] == "local"

    features = {f.id: f for f in store.iter_features(info.name, with_geometry=True)}  # type: ignore[attr-defined]
    buildings = [f for f in features.values() if f.city_class == CityClass.BUILDING]
    for b in buildings:
        assert b.geometry and not all(m.is_empty for m in b.geometry.values()), b.id
        assert set(b.geometry) <= expected["lods"] | {0}  # type: ignore[operator]
    surfaces = {SurfaceType(s) for b in buildings for m in b.geometry.values() for s in np.unique(m.surfaces)}
    assert expected.get("surfaces", set()) <= surfaces
    for f in features.values():
        if f.parent is not None:
            assert f.parent in features, f"{f.id} points at a missing parent"

    # heights: within the file's z range, and the dataset range covers the features
    zmin, zmax = facts["zmin"], facts["zmax"]
    lo, hi = info.height_range
    assert zmin - 1e-6 <= lo <= hi <= zmax + 1e-6
    for f in features.values():
        hr = f.height_range()
        if hr is not None:
            assert zmin - 1e-6 <= hr[0] <= hr[1] <= zmax + 1e-6

    # one footprint per building, inside the dataset extent, with an area
    rows = list(store.footprints(dataset=info.name))  # type: ignore[attr-defined]
    assert sorted(r.feature_id for r in rows if r.city_class == "Building") == sorted(b.id for b in buildings)
    west, south, east, north = info.bbox
    for r in rows:
        assert r.geometry.area > 0
        x0, y0, x1, y1 = r.geometry.bounds
        assert west - 1e-9 <= x0 and x1 <= east + 1e-9 and south - 1e-9 <= y0 and y1 <= north + 1e-9


def _first_building(path: Path) -> etree._Element:
    for _, el in etree.iterparse(str(path), tag="{*}Building", resolve_entities=False, no_network=True):
        return el
    raise AssertionError("no building")


def _child_text(el: etree._Element, local: str) -> str:
    hit = next(c for c in el.iter() if isinstance(c.tag, str) and c.tag.endswith("}" + local))
    return hit.text.strip()


def test_attributes_round_trip(imported: dict[str, object]) -> None:
    store = imported["store"]
    infos = imported["infos"]

    def first(name: str) -> Feature:
        el = _first_building(SAMPLES / name)
        gid = el.get("{http://www.opengis.net/gml}id") or el.get("{http://www.opengis.net/gml/3.2}id")
        found = [f for f in store.iter_features(infos[name].name) if f.id == gid]  # type: ignore[attr-defined]
        assert len(found) == 1
        return found[0]

    potsdam = first("Potsdam_LoD1.gml")
    el = _first_building(SAMPLES / "Potsdam_LoD1.gml")
    assert potsdam.attributes["measuredHeight"] == pytest.approx(float(_child_text(el, "measuredHeight")))
    assert potsdam.attributes["function"] == _child_text(el, "function") == "Gruppenhaus"
    assert potsdam.attributes["OBJECTID"] == 18358 and isinstance(potsdam.attributes["OBJECTID"], int)
    assert potsdam.attributes["DFORM"] == 2000.0 and isinstance(potsdam.attributes["DFORM"], float)
    assert potsdam.attributes["FOLIENBEZ"] == "Gebaeude"
    assert potsdam.attributes["creationDate"] == "2011-06-08"
    assert potsdam.attributes["address.city"] == "Potsdam" and potsdam.attributes["address.street"] == "Tieckstraße"
    assert potsdam.attributes["address.postalCode"] == "53115" and potsdam.attributes["address.country"] == "Germany"
    assert potsdam.source.file == "Potsdam_LoD1.gml" and potsdam.source.original_class == "bldg:Building"
    assert potsdam.name == _child_text(el, "name")

    kit = first("LOD2_Buildings_v100_noCRS.gml")
    assert kit.attributes["measuredHeight"] == 11.0 and kit.attributes["class"] == "1100"
    assert kit.attributes["storeysAboveGround"] == 5 and kit.attributes["yearOfConstruction"] == 1929

    v3 = first("lod2_buildings_v3.gml")  # CityGML 3.0: con:height with status "measured"
    assert v3.attributes["measuredHeight"] == 11.0 and v3.attributes["height.status"] == "measured"

    lod4 = first("Building_LOD4-EPSG25832_v2.gml")
    assert lod4.attributes["address.street"] == "Hermann-von-Helmholtz-Platz"
    assert lod4.attributes["address.postalCode"] == "76344" and lod4.attributes["address.number"] == "1"
    assert lod4.attributes["function"] == "1000" and lod4.attributes["roofType"] == "1030"

    opera = first("Opera-Lyon_CityGML3.0_LOD2.gml")  # xAL 3
    assert opera.attributes["address.city"] == "Lyon" and opera.attributes["address.country"] == "France"
    assert opera.attributes["address.street"] == "Place de la Comédie"
    assert opera.attributes["address.postalCode"] == "69001"

    # the footprint table carries measuredHeight and function
    row = next(r for r in store.footprints(dataset=infos["Potsdam_LoD1.gml"].name) if r.feature_id == potsdam.id)
    assert row.attributes["function"] == "Gruppenhaus"


def test_lod4_building_structure() -> None:
    """Openings are features (parent = the feature owning the wall), typed WINDOW/DOOR; thematic
    surfaces are not features; the solid's xlinks do not mesh the boundary polygons twice."""
    reading = open_input(SAMPLES / "Building_LOD4-EPSG25832_v2.gml")
    features = list(reading.features())
    by_id = {f.id: f for f in features}
    building = next(f for f in features if f.city_class == CityClass.BUILDING)
    room = next(f for f in features if f.city_class == CityClass.BUILDING_ROOM)
    assert room.parent == building.id
    for f in features:
        if f.city_class in (CityClass.WINDOW, CityClass.DOOR):
            assert f.parent in (building.id, room.id)
            kind = SurfaceType.WINDOW if f.city_class == CityClass.WINDOW else SurfaceType.DOOR
            assert set(np.unique(f.geometry[4].surfaces)) == {kind}
    assert sum(1 for f in features if f.parent == building.id and f.city_class == CityClass.WINDOW) == 2
    # the building mesh: 11 polygons (ground, 6 walls, 2 roofs ...), each once
    mesh = building.geometry[4]
    tris = np.sort(mesh.vertices[mesh.triangles].reshape(-1, 9).round(6), axis=1)
    assert len(np.unique(tris, axis=0)) == len(tris), "a polygon was meshed twice"
    assert {SurfaceType(s) for s in np.unique(mesh.surfaces)} == {SurfaceType.WALL, SurfaceType.ROOF, SurfaceType.GROUND}
    room_types = {SurfaceType(s) for s in np.unique(room.geometry[4].surfaces)}
    assert {SurfaceType.INTERIOR_WALL, SurfaceType.FLOOR, SurfaceType.CEILING} <= room_types
    tin = next(f for f in features if f.city_class == CityClass.TIN_RELIEF)
    assert set(tin.geometry) == {3} and set(np.unique(tin.geometry[3].surfaces)) == {SurfaceType.TERRAIN}
    assert tin.geometry[3].triangle_count == 9
    assert by_id[tin.parent].city_class == CityClass.RELIEF_FEATURE  # type: ignore[index]
    # ids derived for objects without gml:id are stable
    again = [f.id for f in open_input(SAMPLES / "Building_LOD4-EPSG25832_v2.gml").features()]
    assert again == [f.id for f in features]
    assert "Building_LOD4-EPSG25832_v2:Room:1" in by_id
    assert any("no gml:id" in w for w in reading.report.warnings)


@pytest.mark.parametrize("name", sorted(NEEDS_PLACEMENT))
def test_files_without_crs_need_a_placement(name: str, tmp_path: Path) -> None:
    store = open_store(tmp_path / "city.gpkg")
    with pytest.raises(CrsMissingError) as err:
        ingest(store, "nocrs", [open_input(SAMPLES / name)])
    assert "--crs EPSG:" in err.value.message and "--origin LON,LAT,HEIGHT" in err.value.message
    assert name in err.value.message
    assert store.list_datasets() == []
    # the same local 0..100 m coordinates declared as VN-2000 / TM-3 land far outside its area: refused
    if name == "LOD2_Buildings_v100_noCRS.gml":
        with pytest.raises(CrsContradictionError):
            ingest(store, "nocrs", [open_input(SAMPLES / name, ConvertOptions(frame=user_frame(crs="EPSG:5899")))])
        assert store.list_datasets() == []


def test_report(imported: dict[str, object]) -> None:
    infos = imported["infos"]
    files = {n: info.report["files"][0] for n, info in infos.items()}  # type: ignore[attr-defined]
    assert files["Potsdam_LoD1.gml"]["format"] == "CityGML 1.0"
    assert files["Building_LOD4-EPSG25832_v2.gml"]["format"] == "CityGML 2.0"
    assert files["Opera-Lyon_CityGML3.0_LOD2.gml"]["format"] == "CityGML 3.0"
    assert "root gml:Envelope" in files["Opera-Lyon_CityGML3.0_LOD2.gml"]["georeferencing"]
    assert "EPSG:3946" in files["Opera-Lyon_CityGML3.0_LOD2.gml"]["georeferencing"]
    # Potsdam has no root envelope: the CRS comes from the first building's envelope
    assert "line 9" in files["Potsdam_LoD1.gml"]["georeferencing"]
    assert "placement given by the user" in files["LocalCRS_CityGML3.gml"]["georeferencing"]
    assert "#local-CRS-1" in files["LocalCRS_CityGML3.gml"]["georeferencing"]
    assert files["Potsdam_LoD1.gml"]["counts"] == {"Building": 97}
    v3 = infos["lod2_buildings_v3.gml"].report["warnings"]  # type: ignore[attr-defined]
    assert any("just outside the area of use" in w for w in v3)


def test_registry_finds_the_converter() -> None:
    for path in SAMPLES.glob("*.gml"):
        assert isinstance(detect(path), CityGmlConverter)


# --- synthetic files --------------------------------------------------------------------------

GML2 = 'xmlns:gml="http://www.opengis.net/gml" xmlns:xlink="http://www.w3.org/1999/xlink"'
CG2 = ('xmlns="http://www.opengis.net/citygml/2.0" xmlns:bldg="http://www.opengis.net/citygml/building/2.0" '
       'xmlns:gen="http://www.opengis.net/citygml/generics/2.0" xmlns:tran="http://www.opengis.net/citygml/transportation/2.0" '
       'xmlns:dem="http://www.opengis.net/citygml/relief/2.0" xmlns:wtr="http://www.opengis.net/citygml/waterbody/2.0" '
       'xmlns:veg="http://www.opengis.net/citygml/vegetation/2.0" xmlns:ade="http://example.org/ade" ' + GML2)
CG3 = ('xmlns="http://www.opengis.net/citygml/3.0" xmlns:core="http://www.opengis.net/citygml/3.0" '
       'xmlns:bldg="http://www.opengis.net/citygml/building/3.0" xmlns:con="http://www.opengis.net/citygml/construction/3.0" '
       'xmlns:gen="http://www.opengis.net/citygml/generics/3.0" xmlns:gml="http://www.opengis.net/gml/3.2" '
       'xmlns:xlink="http://www.w3.org/1999/xlink"')
UTM = "urn:ogc:def:crs,crs:EPSG::25832,crs:EPSG::5783"
X0, Y0 = 458870.0, 5438350.0


def _ring(pts: list[tuple[float, float, float]], dim: int = 3) -> str:
    return " ".join(" ".join(f"{c:.3f}" for c in p[:dim]) for p in [*pts, pts[0]])


def _box(x: float, y: float, w: float, d: float, h: float, z: float = 100.0) -> dict[str, list[list[tuple[float, float, float]]]]:
    a, b, c, e = (x, y, z), (x + w, y, z), (x + w, y + d, z), (x, y + d, z)
    a1, b1, c1, e1 = ((p[0], p[1], z + h) for p in (a, b, c, e))
    return {"GroundSurface": [[a, e, c, b]], "RoofSurface": [[a1, b1, c1, e1]],
            "WallSurface": [[a, b, b1, a1], [b, c, c1, b1], [c, e, e1, c1], [e, a, a1, e1]]}


def _polygon2(pts: list[tuple[float, float, float]], gid: str | None = None) -> str:
    ident = f' gml:id="{gid}"' if gid else ""
    return (f"<gml:Polygon{ident}><gml:exterior><gml:LinearRing><gml:posList>{_ring(pts)}</gml:posList>"
            "</gml:LinearRing></gml:exterior></gml:Polygon>")


def _bounded2(box: dict[str, list[list[tuple[float, float, float]]]], lod: int = 2, prefix: str = "p") -> str:
    out = []
    for i, (kind, polys) in enumerate(box.items()):
        members = "".join(f"<gml:surfaceMember>{_polygon2(p, f'{prefix}{i}_{k}')}</gml:surfaceMember>"
                          for k, p in enumerate(polys))
        out.append(f"<bldg:boundedBy><bldg:{kind}><bldg:lod{lod}MultiSurface><gml:MultiSurface>{members}"
                   f"</gml:MultiSurface></bldg:lod{lod}MultiSurface></bldg:{kind}></bldg:boundedBy>")
    return "".join(out)


def _write(tmp_path: Path, body: str, ns: str = CG2, envelope: str | None = UTM, name: str = "t.gml") -> Path:
    env = (f'<gml:boundedBy><gml:Envelope srsName="{envelope}" srsDimension="3"><gml:lowerCorner>0 0 0</gml:lowerCorner>'
           '<gml:upperCorner>1 1 1</gml:upperCorner></gml:Envelope></gml:boundedBy>') if envelope else ""
    path = tmp_path / name
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<CityModel {ns}>{env}\n{body}\n</CityModel>\n', encoding="utf-8")
    return path


def _read(path: Path, frame: object = None) -> tuple[list[Feature], object]:
    reading = CityGmlConverter().open(path, ConvertOptions(frame=frame))  # type: ignore[arg-type]
    return list(reading.features()), reading


def test_citygml2_parts_installations_and_generic_attributes(tmp_path: Path) -> None:
    main, annex = _box(X0, Y0, 10, 8, 6), _box(X0 + 10, Y0, 5, 8, 3)
    body = f"""
<cityObjectMember><bldg:Building gml:id="B1">
  <gml:name>Main</gml:name>
  <gen:stringAttribute name="owner"><gen:value>City</gen:value></gen:stringAttribute>
  <gen:intAttribute name="floors"><gen:value>3</gen:value></gen:intAttribute>
  <gen:doubleAttribute name="area"><gen:value>80.5</gen:value></gen:doubleAttribute>
  <gen:dateAttribute name="surveyed"><gen:value>2020-05-01</gen:value></gen:dateAttribute>
  <gen:uriAttribute name="link"><gen:value>https://example.org/b1</gen:value></gen:uriAttribute>
  <gen:measureAttribute name="volume"><gen:value uom="m3">480</gen:value></gen:measureAttribute>
  <gen:genericAttributeSet name="energy"><gen:stringAttribute name="label"><gen:value>B</gen:value></gen:stringAttribute>
    <gen:doubleAttribute name="demand"><gen:value>95.5</gen:value></gen:doubleAttribute></gen:genericAttributeSet>
  <bldg:function>1000</bldg:function><bldg:usage>1010</bldg:usage>
  <bldg:measuredHeight uom="ft">30</bldg:measuredHeight>
  <bldg:consistsOfBuildingPart><bldg:BuildingPart gml:id="P1">{_bounded2(main, prefix="m")}
    <bldg:outerBuildingInstallation><bldg:BuildingInstallation gml:id="I1"><bldg:lod2Geometry><gml:MultiSurface>
      <gml:surfaceMember>{_polygon2([(X0, Y0 - 1, 106), (X0 + 2, Y0 - 1, 106), (X0 + 2, Y0, 106), (X0, Y0, 106)])}</gml:surfaceMember>
    </gml:MultiSurface></bldg:lod2Geometry></bldg:BuildingInstallation></bldg:outerBuildingInstallation>
  </bldg:BuildingPart></bldg:consistsOfBuildingPart>
  <bldg:consistsOfBuildingPart><bldg:BuildingPart gml:id="P2">{_bounded2(annex, prefix="a")}</bldg:BuildingPart></bldg:consistsOfBuildingPart>
</bldg:Building></cityObjectMember>"""
    features, reading = _read(_write(tmp_path, body))
    assert [(f.id, f.city_class, f.parent) for f in features] == [
        ("B1", CityClass.BUILDING, None), ("P1", CityClass.BUILDING_PART, "B1"),
        ("I1", CityClass.BUILDING_INSTALLATION, "P1"), ("P2", CityClass.BUILDING_PART, "B1")]
    b = features[0]
    assert b.name == "Main" and b.geometry == {}
    a = b.attributes
    assert a["owner"] == "City" and a["floors"] == 3 and a["area"] == 80.5 and a["surveyed"] == "2020-05-01"
    assert a["link"] == "https://example.org/b1" and a["volume"] == 480.0 and a["volume.uom"] == "m3"
    assert a["energy.label"] == "B" and a["energy.demand"] == 95.5
    assert a["function"] == "1000" and a["usage"] == "1010"
    assert a["measuredHeight"] == pytest.approx(30 * 0.3048)
    # the building's footprint is the union of its parts' footprints
    assert b.footprint is not None and b.footprint.area == pytest.approx(10 * 8 + 5 * 8)
    p1 = features[1].geometry[2]
    assert p1.triangle_count == 12
    assert Counter(SurfaceType(s) for s in p1.surfaces) == {SurfaceType.WALL: 8, SurfaceType.ROOF: 2, SurfaceType.GROUND: 2}
    assert reading.report.counts == {"Building": 1, "BuildingPart": 2, "BuildingInstallation": 1}  # type: ignore[attr-defined]


def test_citygml3_gml32_spaces_fillings_and_generic_attributes(tmp_path: Path) -> None:
    box = _box(X0, Y0, 10, 10, 10)
    walls = "".join(
        f"""<boundary><con:{kind}><lod2MultiSurface><gml:MultiSurface>{''.join(
            f'<gml:surfaceMember><gml:Polygon gml:id="w{kind}{k}"><gml:exterior><gml:LinearRing><gml:posList>{_ring(p)}'
            '</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>' for k, p in enumerate(polys))}
        </gml:MultiSurface></lod2MultiSurface>{'<con:fillingSurface><con:DoorSurface><lod2MultiSurface><gml:MultiSurface><gml:surfaceMember>'
            f'<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring([(X0 + 4, Y0, 100), (X0 + 6, Y0, 100), (X0 + 6, Y0, 102), (X0 + 4, Y0, 102)])}'
            '</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface></lod2MultiSurface>'
            '</con:DoorSurface></con:fillingSurface>' if kind == 'WallSurface' else ''}</con:{kind}></boundary>"""
        for kind, polys in box.items())
    body = f"""
<cityObjectMember><bldg:Building gml:id="B3">
  <genericAttribute><gen:StringAttribute><gen:name>owner</gen:name><gen:value>Port</gen:value></gen:StringAttribute></genericAttribute>
  <genericAttribute><gen:IntAttribute><gen:name>n</gen:name><gen:value>7</gen:value></gen:IntAttribute></genericAttribute>
  <genericAttribute><gen:MeasureAttribute><gen:name>len</gen:name><gen:value uom="m">2.5</gen:value></gen:MeasureAttribute></genericAttribute>
  <genericAttribute><gen:GenericAttributeSet><gen:name>tax</gen:name>
    <gen:genericAttribute><gen:DoubleAttribute><gen:name>rate</gen:name><gen:value>0.5</gen:value></gen:DoubleAttribute></gen:genericAttribute>
  </gen:GenericAttributeSet></genericAttribute>
  {walls}
  <bldg:buildingRoom><bldg:BuildingRoom gml:id="R1"><lod1Solid><gml:Solid><gml:exterior><gml:Shell>
    <gml:surfaceMember><gml:OrientableSurface orientation="-"><gml:baseSurface>
      <gml:Polygon><gml:exterior><gml:LinearRing>
        <gml:pos>{X0 + 1} {Y0 + 1} 101</gml:pos><gml:pos>{X0 + 3} {Y0 + 1} 101</gml:pos><gml:pos>{X0 + 3} {Y0 + 3} 101</gml:pos><gml:pos>{X0 + 1} {Y0 + 1} 101</gml:pos>
      </gml:LinearRing></gml:exterior></gml:Polygon>
    </gml:baseSurface></gml:OrientableSurface></gml:surfaceMember>
  </gml:Shell></gml:exterior></gml:Solid></lod1Solid></bldg:BuildingRoom></bldg:buildingRoom>
  <bldg:buildingConstructiveElement><bldg:BuildingConstructiveElement gml:id="C1"/></bldg:buildingConstructiveElement>
  <bldg:storeysAboveGround>3</bldg:storeysAboveGround>
</bldg:Building></cityObjectMember>"""
    features, reading = _read(_write(tmp_path, body, ns=CG3, envelope="EPSG:25832"))
    assert reading.report.format == "CityGML 3.0"  # type: ignore[attr-defined]
    assert [(f.id, f.city_class, f.parent, f.source.original_class) for f in features] == [
        ("B3", CityClass.BUILDING, None, "bldg:Building"), ("R1", CityClass.BUILDING_ROOM, "B3", "bldg:BuildingRoom"),
        ("C1", CityClass.BUILDING_CONSTRUCTIVE_ELEMENT, "B3", "bldg:BuildingConstructiveElement")]
    a = features[0].attributes
    assert a == {"owner": "Port", "n": 7, "len": 2.5, "len.uom": "m", "tax.rate": 0.5, "storeysAboveGround": 3}
    mesh = features[0].geometry[2]
    assert Counter(SurfaceType(s) for s in mesh.surfaces) == {
        SurfaceType.WALL: 8, SurfaceType.ROOF: 2, SurfaceType.GROUND: 2, SurfaceType.DOOR: 2}
    # gml:pos ring, flipped by the OrientableSurface: the triangle faces down
    room = features[1].geometry[1]
    v = room.vertices[room.triangles[0]]
    assert np.cross(v[1] - v[0], v[2] - v[0])[2] < 0


def test_citygml3_transportation_spaces_and_bridges(tmp_path: Path) -> None:
    ns = CG3 + (' xmlns:tran="http://www.opengis.net/citygml/transportation/3.0"'
                ' xmlns:brid="http://www.opengis.net/citygml/bridge/3.0"')

    def ms(x: float, z: float = 100.0) -> str:
        return (f"<gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>"
                f"{_ring(_quad(X0 + x, Y0, 4, z))}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
                "</gml:surfaceMember></gml:MultiSurface>")
    body = f"""
<cityObjectMember><tran:Road gml:id="R"><tran:section><tran:Section gml:id="S"><tran:function>main</tran:function>
  <tran:trafficSpace><tran:TrafficSpace><boundary><tran:TrafficArea><lod2MultiSurface>{ms(0)}</lod2MultiSurface></tran:TrafficArea></boundary>
  </tran:TrafficSpace></tran:trafficSpace>
  <tran:auxiliaryTrafficSpace><tran:AuxiliaryTrafficSpace><boundary><tran:AuxiliaryTrafficArea><lod2MultiSurface>{ms(5)}</lod2MultiSurface>
  </tran:AuxiliaryTrafficArea></boundary></tran:AuxiliaryTrafficSpace></tran:auxiliaryTrafficSpace>
</tran:Section></tran:section></tran:Road></cityObjectMember>
<cityObjectMember><brid:Bridge gml:id="BR"><brid:bridgePart><brid:BridgePart gml:id="BP"><lod1Solid><gml:Solid><gml:exterior><gml:Shell>
  <gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring(_quad(X0 + 20, Y0, 4, 100))}</gml:posList>
  </gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:Shell></gml:exterior></gml:Solid></lod1Solid>
  <brid:bridgeRoom><brid:BridgeRoom gml:id="BRR"/></brid:bridgeRoom></brid:BridgePart></brid:bridgePart></brid:Bridge></cityObjectMember>"""
    features, reading = _read(_write(tmp_path, body, ns=ns, envelope="EPSG:25832"))
    assert [(f.id, f.city_class, f.parent, f.source.original_class) for f in features] == [
        ("R", CityClass.ROAD, None, "tran:Road"), ("BR", CityClass.BRIDGE, None, "brid:Bridge"),
        ("BP", CityClass.BRIDGE_PART, "BR", "brid:BridgePart"), ("BRR", CityClass.BUILDING_ROOM, "BP", "brid:BridgeRoom")]
    road = features[0]
    assert road.attributes == {}  # the section's attributes are not the road's
    assert road.geometry[2].triangle_count == 4 and set(np.unique(road.geometry[2].surfaces)) == {SurfaceType.TRAFFIC}
    assert features[1].footprint is not None and features[1].footprint.area == pytest.approx(16)
    assert reading.report.counts == {"Road": 1, "Bridge": 1, "BridgePart": 1, "BuildingRoom": 1}  # type: ignore[attr-defined]


def _quad(x: float, y: float, s: float, z: float = 0.0) -> list[tuple[float, float, float]]:
    return [(x, y, z), (x + s, y, z), (x + s, y + s, z), (x, y + s, z)]


def test_holes_concave_polygons_and_orientation(tmp_path: Path) -> None:
    outer = _quad(X0, Y0, 10)
    hole = list(reversed(_quad(X0 + 4, Y0 + 4, 2)))
    ell = [(X0, Y0, 0), (X0 + 10, Y0, 0), (X0 + 10, Y0 + 4, 0), (X0 + 4, Y0 + 4, 0), (X0 + 4, Y0 + 10, 0), (X0, Y0 + 10, 0)]
    body = f"""<cityObjectMember><gen:GenericCityObject gml:id="G1"><gen:lod1Geometry><gml:MultiSurface>
<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring(outer)}</gml:posList></gml:LinearRing></gml:exterior>
<gml:interior><gml:LinearRing><gml:posList>{_ring(hole)}</gml:posList></gml:LinearRing></gml:interior></gml:Polygon></gml:surfaceMember>
<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring([(x, y, 5) for x, y, _ in ell])}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>
<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring([(X0, Y0, 9), (X0, Y0, 9), (X0 + 1, Y0, 9)])}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember>
</gml:MultiSurface></gen:lod1Geometry></gen:GenericCityObject></cityObjectMember>"""
    features, _ = _read(_write(tmp_path, body))
    mesh = features[0].geometry[1]
    v = mesh.vertices[mesh.triangles]
    normal = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert (normal[:, 2] > 0).all()  # all counter-clockwise seen from above, like the exterior rings
    area = 0.5 * np.abs(normal[:, 2])
    z = v[:, 0, 2]
    assert area[z == 0].sum() == pytest.approx(100 - 4)   # square with a hole
    assert area[z == 5].sum() == pytest.approx(100 - 36)  # L shape (non-convex)
    assert not (z == 9).any()                            # degenerate polygon: no triangles


def test_relief_transport_water_vegetation_and_unknown_classes(tmp_path: Path) -> None:
    tri = "".join(f"<gml:Triangle><gml:exterior><gml:LinearRing><gml:posList>{_ring(t)}</gml:posList></gml:LinearRing></gml:exterior></gml:Triangle>"
                  for t in ([(X0, Y0, 1), (X0 + 10, Y0, 2), (X0, Y0 + 10, 3)], [(X0 + 10, Y0, 2), (X0 + 10, Y0 + 10, 4), (X0, Y0 + 10, 3)]))
    sq = _ring(_quad(X0, Y0, 5, 1))
    ms = f"<gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{sq}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface>"
    body = f"""
<cityObjectMember><dem:ReliefFeature gml:id="RF"><dem:lod>2</dem:lod><dem:reliefComponent><dem:TINRelief gml:id="TIN">
  <dem:lod>2</dem:lod><dem:tin><gml:TriangulatedSurface><gml:trianglePatches>{tri}</gml:trianglePatches></gml:TriangulatedSurface></dem:tin>
</dem:TINRelief></dem:reliefComponent></dem:ReliefFeature></cityObjectMember>
<cityObjectMember><tran:Road gml:id="ROAD"><tran:function>1</tran:function>
  <tran:trafficArea><tran:TrafficArea><tran:lod2MultiSurface>{ms}</tran:lod2MultiSurface></tran:TrafficArea></tran:trafficArea>
  <tran:auxiliaryTrafficArea><tran:AuxiliaryTrafficArea><tran:lod2MultiSurface>{ms}</tran:lod2MultiSurface></tran:AuxiliaryTrafficArea></tran:auxiliaryTrafficArea>
</tran:Road></cityObjectMember>
<cityObjectMember><wtr:WaterBody gml:id="W"><wtr:lod1MultiSurface>{ms}</wtr:lod1MultiSurface></wtr:WaterBody></cityObjectMember>
<cityObjectMember><veg:PlantCover gml:id="V"><veg:lod1MultiSurface>{ms}</veg:lod1MultiSurface></veg:PlantCover></cityObjectMember>
<cityObjectMember><ade:Kiosk gml:id="K"><ade:lod1MultiSurface>{ms}</ade:lod1MultiSurface></ade:Kiosk></cityObjectMember>
<cityObjectMember><gen:GenericCityObject><gen:lod1Geometry>{ms}</gen:lod1Geometry></gen:GenericCityObject></cityObjectMember>
<cityObjectMember><gen:GenericCityObject><gen:lod1Geometry>{ms}</gen:lod1Geometry></gen:GenericCityObject></cityObjectMember>"""
    features, reading = _read(_write(tmp_path, body))
    by_id = {f.id: f for f in features}

    def types(fid: str, lod: int) -> set[SurfaceType]:
        return {SurfaceType(s) for s in np.unique(by_id[fid].geometry[lod].surfaces)}

    assert by_id["TIN"].parent == "RF" and by_id["TIN"].geometry[2].triangle_count == 2
    assert types("TIN", 2) == {SurfaceType.TERRAIN}
    assert by_id["ROAD"].city_class == CityClass.ROAD and types("ROAD", 2) == {SurfaceType.TRAFFIC}
    assert by_id["ROAD"].geometry[2].triangle_count == 4  # traffic areas are part of the road
    assert types("W", 1) == {SurfaceType.WATER} and types("V", 1) == {SurfaceType.VEGETATION}
    kiosk = by_id["K"]
    assert kiosk.city_class == CityClass.GENERIC_CITY_OBJECT and kiosk.source.original_class == "ade:Kiosk"
    assert any("ade:Kiosk" in w and "GenericCityObject" in w for w in reading.report.warnings)  # type: ignore[attr-defined]
    assert "t:GenericCityObject:1" in by_id and "t:GenericCityObject:2" in by_id


def test_coordinates_2d_pos_and_units(tmp_path: Path) -> None:
    sq = _quad(X0, Y0, 4)
    coords = " ".join(f"{x},{y},7" for x, y, _ in [*sq, sq[0]])
    body = f"""
<cityObjectMember><bldg:Building gml:id="A"><bldg:measuredHeight uom="mm">7500</bldg:measuredHeight>
<bldg:lod1MultiSurface><gml:MultiSurface srsDimension="2"><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing>
<gml:posList>{_ring(sq, dim=2)}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface></bldg:lod1MultiSurface>
</bldg:Building></cityObjectMember>
<cityObjectMember><bldg:Building gml:id="B"><bldg:measuredHeight uom="furlong">2</bldg:measuredHeight>
<bldg:lod1MultiSurface><gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing>
<gml:coordinates>{coords}</gml:coordinates></gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface></bldg:lod1MultiSurface>
</bldg:Building></cityObjectMember>"""
    features, reading = _read(_write(tmp_path, body))
    a, b = features
    assert a.attributes["measuredHeight"] == 7.5
    assert a.geometry[1].triangle_count == 2 and (a.geometry[1].vertices[:, 2] == 0).all()
    assert any("srsDimension 2" in w for w in reading.report.warnings)  # type: ignore[attr-defined]
    assert b.geometry[1].triangle_count == 2 and (b.geometry[1].vertices[:, 2] == 7).all()
    assert b.attributes["measuredHeight"] == 2.0 and b.attributes["measuredHeight.uom"] == "furlong"
    assert any("furlong" in w for w in reading.report.warnings)  # type: ignore[attr-defined]


def test_xlinks_within_and_across_city_objects(tmp_path: Path) -> None:
    box = _box(X0, Y0, 4, 4, 4)
    refs = "".join(f'<gml:surfaceMember xlink:href="#s{i}_{k}"/>' for i, (_, polys) in enumerate(box.items())
                   for k in range(len(polys)))
    body = f"""
<cityObjectMember><bldg:Building gml:id="A">{_bounded2(box, prefix="s")}
  <bldg:lod2Solid><gml:Solid><gml:exterior><gml:CompositeSurface>{refs}</gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>
</bldg:Building></cityObjectMember>
<cityObjectMember><gen:GenericCityObject gml:id="G"><gen:lod2Geometry><gml:MultiSurface>
  <gml:surfaceMember xlink:href="#s1_0"/><gml:surfaceMember><gml:OrientableSurface orientation="-"><gml:baseSurface xlink:href="#s1_0"/></gml:OrientableSurface></gml:surfaceMember>
  <gml:surfaceMember xlink:href="#nowhere"/>
</gml:MultiSurface></gen:lod2Geometry></gen:GenericCityObject></cityObjectMember>"""
    features, reading = _read(_write(tmp_path, body))
    a, g = features
    assert a.geometry[2].triangle_count == 12  # the solid's references do not mesh the surfaces twice
    m = g.geometry[2]
    assert m.triangle_count == 4 and set(np.unique(m.surfaces)) == {SurfaceType.ROOF}  # s1_0: the roof
    n = np.cross(m.vertices[m.triangles[:, 1]] - m.vertices[m.triangles[:, 0]],
                 m.vertices[m.triangles[:, 2]] - m.vertices[m.triangles[:, 0]])
    assert (n[:2] @ n[2:].T < 0).all()  # the flipped copy faces the other way
    assert reading.report.skipped["unresolved xlink:href geometry reference"] == 1  # type: ignore[attr-defined]
    assert any("#nowhere" in w for w in reading.report.warnings)  # type: ignore[attr-defined]


def test_polygons_seen_earlier_are_a_bounded_oldest_first_map() -> None:
    from converters.citygml.polygons import SEMANTIC, PolygonRecord
    from converters.citygml.xlinks import SeenPolygons

    def rec(pid: str | None, n: int = 4) -> PolygonRecord:
        return PolygonRecord(0, [np.zeros((n, 3))], 0, False, (), SEMANTIC, pid)

    seen = SeenPolygons(max_polygons=8, max_values=1000)
    seen.add([rec("a"), rec(None), rec("b", 5)])
    assert len(seen) == 2 and seen.values == 12 + 15 and seen.get("a") is not None and seen.get("x") is None
    seen.add([rec("a", 10)])  # the same id again: replaced, counted once, now the newest
    assert len(seen) == 2 and seen.values == 15 + 30 and seen.get("a").rings[0].shape == (10, 3)  # type: ignore[union-attr]
    seen.add([rec(f"p{i}") for i in range(7)])  # 9 > 8 polygons: the oldest go until 6 are left
    assert len(seen) == 6 and seen.get("b") is None and seen.get("a") is None and seen.get("p6") is not None
    assert seen.values == 6 * 12
    big = SeenPolygons(max_polygons=100, max_values=100)  # the cap on coordinate values
    big.add([rec("q", 20), rec("r", 20)])  # 120 values > 100: evicted down to 75 or less
    assert big.values <= 75 and big.get("r") is not None and big.get("q") is None


def test_feature_members_and_crs_rules(tmp_path: Path) -> None:
    poly = _polygon2(_quad(X0, Y0, 3, 100))
    geom = f"<gen:lod1Geometry><gml:MultiSurface>{'<gml:surfaceMember>' + poly + '</gml:surfaceMember>'}</gml:MultiSurface></gen:lod1Geometry>"
    body = (f'<gml:featureMember><gen:GenericCityObject gml:id="F1">{geom}</gen:GenericCityObject></gml:featureMember>'
            f'<gml:featureMembers><gen:GenericCityObject gml:id="F2">{geom}</gen:GenericCityObject>'
            f'<gen:GenericCityObject gml:id="F3">{geom}</gen:GenericCityObject></gml:featureMembers>')
    features, _ = _read(_write(tmp_path, body))
    assert [f.id for f in features] == ["F1", "F2", "F3"]

    # the CRS of the first geometry that has one; other spellings of it agree
    spelled = geom.replace("<gml:MultiSurface>", '<gml:MultiSurface srsName="{}">')
    body = "".join(f'<cityObjectMember><gen:GenericCityObject gml:id="S{i}">{spelled.format(s)}</gen:GenericCityObject></cityObjectMember>'
                   for i, s in enumerate(["EPSG:25832", "urn:ogc:def:crs:EPSG::25832", UTM]))
    features, reading = _read(_write(tmp_path, body, envelope=None))
    assert len(features) == 3 and reading.frame.crs.horizontal == 25832  # type: ignore[attr-defined]

    # a different CRS later in the file is a contradiction naming both
    bad = body + f'<cityObjectMember><gen:GenericCityObject gml:id="S9">{spelled.format("EPSG:3857")}</gen:GenericCityObject></cityObjectMember>'
    with pytest.raises(CrsContradictionError) as err:
        _read(_write(tmp_path, bad, envelope=None))
    assert "EPSG:25832" in err.value.message and "EPSG:3857" in err.value.message

    # a placement given by the user wins, with a warning
    features, reading = _read(_write(tmp_path, body, envelope=None), frame=user_frame(crs="EPSG:25833"))
    assert reading.frame.crs.horizontal == 25833  # type: ignore[attr-defined]
    assert any("EPSG:25832" in w and "instead" in w for w in reading.report.warnings)  # type: ignore[attr-defined]
    features, reading = _read(_write(tmp_path, body, envelope=None), frame=user_frame(origin=ORIGIN))
    assert isinstance(reading.frame, LocalFrame)  # type: ignore[attr-defined]


def test_bad_coordinates_are_a_parse_error_with_line(tmp_path: Path) -> None:
    body = ('<cityObjectMember><bldg:Building gml:id="X"><bldg:lod1MultiSurface><gml:MultiSurface><gml:surfaceMember>'
            '<gml:Polygon><gml:exterior><gml:LinearRing>\n<gml:posList>1 2 3 4 5 six 7 8 9 1 2 3</gml:posList>'
            '</gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface></bldg:lod1MultiSurface>'
            '</bldg:Building></cityObjectMember>')
    with pytest.raises(ParseError, match=r"t\.gml line 4: coordinates are not numbers"):
        _read(_write(tmp_path, body))


# --- streaming: memory stays flat ----------------------------------------------------------------

BUILDING_TEMPLATE = (
    '<cityObjectMember><bldg:Building gml:id="B{i}"><gml:name>Building {i}</gml:name>'
    '<gen:intAttribute name="n"><gen:value>{i}</gen:value></gen:intAttribute>'
    '<bldg:measuredHeight uom="m">9</bldg:measuredHeight>{surfaces}</bldg:Building></cityObjectMember>\n')


def write_district(path: Path, megabytes: float) -> int:
    """A synthetic CityGML 2.0 district of box buildings in a grid (UTM 32N), ``megabytes`` big;
    returns the number of buildings."""
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<CityModel {CG2}><gml:boundedBy><gml:Envelope srsName="EPSG:25832">' \
           '<gml:lowerCorner>0 0 0</gml:lowerCorner><gml:upperCorner>1 1 1</gml:upperCorner></gml:Envelope></gml:boundedBy>\n'
    target, n = int(megabytes * 1e6), 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(head)
        size = len(head)
        while size < target:
            box = _box(X0 + (n % 300) * 15.0, Y0 + (n // 300) * 15.0, 8, 10, 6)
            text = BUILDING_TEMPLATE.format(i=n, surfaces=_bounded2(box, prefix=f"b{n}_"))
            fh.write(text)
            size += len(text)
            n += 1
        fh.write("</CityModel>\n")
    return n


_MEASURE = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    from pathlib import Path
    from converters import open_input
    tracemalloc.start()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reading = open_input(Path(sys.argv[1]))
    count = sum(1 for _ in reading.features())
    peak = tracemalloc.get_traced_memory()[1]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"count": count, "py_peak_mb": peak / 1e6, "rss_growth_mb": (rss - base_rss) / 1024}))
""")


def _measure(path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True, cwd=REPO)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    small, big = tmp_path / "small.gml", tmp_path / "big.gml"
    n_small, n_big = write_district(small, 8), write_district(big, 40)
    m_small, m_big = _measure(small), _measure(big)
    assert m_small["count"] == n_small and m_big["count"] == n_big
    assert m_big["rss_growth_mb"] < 150 and m_big["py_peak_mb"] < 150
    # five times the file, not five times the memory
    assert m_big["py_peak_mb"] < 1.5 * m_small["py_peak_mb"] + 5, (m_small, m_big)
    assert m_big["rss_growth_mb"] < 1.5 * m_small["rss_growth_mb"] + 20, (m_small, m_big)


def test_progress_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.gml"
    write_district(path, 3)  # several batches
    reading = open_input(path)
    seen = [reading.bytes_read for _ in reading.features()]
    assert reading.total_bytes == path.stat().st_size and reading.bytes_read == reading.total_bytes
    assert seen == sorted(seen) and 0 < seen[0] < reading.total_bytes
