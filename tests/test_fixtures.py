"""The synthetic Da Nang district (fixtures/make_danang_district.py): the committed files are what
the script makes, they are valid CityGML geometry, and they import into the CIM in Da Nang."""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from lxml import etree

from cim.crs import crs_frame

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
XLINK = "{http://www.w3.org/1999/xlink}href"
NS = {
    2: {"gml": "http://www.opengis.net/gml", "core": "http://www.opengis.net/citygml/2.0",
        "bldg": "http://www.opengis.net/citygml/building/2.0", "tran": "http://www.opengis.net/citygml/transportation/2.0",
        "gen": "http://www.opengis.net/citygml/generics/2.0", "dem": "http://www.opengis.net/citygml/relief/2.0"},
    3: {"gml": "http://www.opengis.net/gml/3.2", "core": "http://www.opengis.net/citygml/3.0",
        "bldg": "http://www.opengis.net/citygml/building/3.0", "tran": "http://www.opengis.net/citygml/transportation/3.0",
        "gen": "http://www.opengis.net/citygml/generics/3.0", "dem": "http://www.opengis.net/citygml/relief/3.0",
        "con": "http://www.opengis.net/citygml/construction/3.0"},
}
GENERIC = {2: "gen:GenericCityObject", 3: "gen:GenericOccupiedSpace"}
# Da Nang, generously (the district lies around lon 108.10, lat 16.07)
LON, LAT = (108.0, 108.3), (15.9, 16.2)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_danang_district", FIXTURES / "make_danang_district.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=[2, 3], ids=["citygml2", "citygml3"])
def fixture(request: pytest.FixtureRequest, gen: ModuleType) -> tuple[int, Path, etree._ElementTree]:
    path = FIXTURES / gen.FIXTURES[request.param]
    return request.param, path, etree.parse(str(path), etree.XMLParser(resolve_entities=False, huge_tree=True))


def _ring(pos: etree._Element) -> np.ndarray:
    assert pos.get("srsDimension") == "3"
    values = np.array(pos.text.split(), dtype=float)
    assert len(values) % 3 == 0
    return values.reshape(-1, 3)


def _newell(pts: np.ndarray) -> np.ndarray:
    p = pts[:-1] - pts[0]
    q = np.roll(p, -1, axis=0)
    return 0.5 * np.cross(p, q).sum(axis=0)  # area-weighted normal


@pytest.mark.parametrize("version", [2, 3])
def test_committed_fixture_is_what_the_script_writes(gen: ModuleType, version: int, tmp_path: Path) -> None:
    out = tmp_path / "district.gml"
    stats = gen.write_district(out, version)
    assert out.read_bytes() == (FIXTURES / gen.FIXTURES[version]).read_bytes(), \
        "regenerate the fixtures with: python fixtures/make_danang_district.py"
    assert stats.buildings == gen.DEFAULT_BUILDINGS and stats.bytes == out.stat().st_size < 3.1e6


def test_cli_and_seed(gen: ModuleType, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.gml", tmp_path / "b.gml", tmp_path / "c.gml"
    assert gen.main(["--version", "3", "--buildings", "9", "--out", str(a)]) == 0
    gen.main(["--version", "3", "--buildings", "9", "--out", str(b)])
    gen.main(["--version", "3", "--buildings", "9", "--seed", "7", "--out", str(c)])
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    root = etree.parse(str(a)).getroot()
    assert len(root.findall(".//bldg:Building", NS[3])) == 9


def test_target_size_streams(gen: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "big.gml"
    stats = gen.write_district(out, 2, target_mb=1.5)
    assert 1.3e6 < out.stat().st_size < 1.8e6
    assert stats.buildings > 100 and stats.roads > 0
    etree.parse(str(out))


def test_wellformed_counts_and_ids(fixture: tuple[int, Path, etree._ElementTree], gen: ModuleType, tmp_path: Path) -> None:
    version, _, tree = fixture
    ns = NS[version]
    root = tree.getroot()
    assert etree.QName(root).namespace == ns["core"] and etree.QName(root).localname == "CityModel"
    members = root.findall("core:cityObjectMember", ns)
    stats = gen.write_district(tmp_path / "again.gml", version)
    kinds = Counter(etree.QName(m[0]).localname for m in members)
    assert kinds["Building"] == stats.buildings == 240
    assert kinds["Road"] == stats.roads > 4
    assert kinds["ReliefFeature"] == 1
    assert kinds[GENERIC[version].split(":")[1]] == stats.generic_objects > 0
    assert len(root.findall(".//bldg:BuildingPart", ns)) == stats.building_parts > 0
    assert len(root.findall(".//dem:TINRelief", ns)) == 1
    assert len(root.findall(".//gml:Triangle", ns)) == stats.triangles
    ids = [e.get(f"{{{ns['gml']}}}id") for e in root.iter() if e.get(f"{{{ns['gml']}}}id")]
    assert len(ids) == len(set(ids))
    b = root.find("core:cityObjectMember/bldg:Building", ns)
    assert b is not None
    text = etree.tostring(b, encoding="unicode")
    for expected in ("tenant", "parcel_id", "employees", "floor_area_m2", "Hoa Vang", "Da Nang", "Vietnam"):
        assert expected in text


def test_rings_closed_planar_and_inside_the_envelope(fixture: tuple[int, Path, etree._ElementTree]) -> None:
    version, _, tree = fixture
    ns = NS[version]
    env = tree.getroot().find("gml:boundedBy/gml:Envelope", ns)
    lo = np.array(env.find("gml:lowerCorner", ns).text.split(), float)
    hi = np.array(env.find("gml:upperCorner", ns).text.split(), float)
    rings = tree.getroot().findall(".//gml:posList", ns)
    assert len(rings) > 2000
    for pos in rings:
        pts = _ring(pos)
        assert len(pts) >= 4 and np.array_equal(pts[0], pts[-1]), "ring not closed"
        assert np.all(pts >= lo) and np.all(pts <= hi), "coordinate outside the envelope"
        normal = _newell(pts)
        area = np.linalg.norm(normal)
        assert area > 0.5, "degenerate polygon"
        offsets = (pts - pts.mean(axis=0)) @ (normal / area)
        assert np.abs(offsets).max() < 0.005, "polygon not planar within 5 mm"
    frame = crs_frame(env.get("srsName"))
    ll = frame.to_lonlat(np.array([lo, hi]))
    assert np.all((ll[:, 0] > LON[0]) & (ll[:, 0] < LON[1]) & (ll[:, 1] > LAT[0]) & (ll[:, 1] < LAT[1]))
    assert 8.0 <= lo[2] and hi[2] < 100.0


def _own(element: etree._Element, path: str, ns: dict[str, str]) -> list[etree._Element]:
    """Matches of ``path`` under ``element`` that do not belong to a nested BuildingPart."""
    part = f"{{{ns['bldg']}}}BuildingPart"
    out = []
    for e in element.iterfind(path, ns):
        p = e.getparent()
        while p is not None and p is not element and p.tag != part:
            p = p.getparent()
        if p is element:
            out.append(e)
    return out


def test_solids_are_closed_and_outward(fixture: tuple[int, Path, etree._ElementTree]) -> None:
    """Every lod2Solid is made of xlinks to its own boundary polygons, and those polygons form a
    closed, consistently oriented shell with outward normals (positive volume)."""
    version, _, tree = fixture
    ns = NS[version]
    gml_id = f"{{{ns['gml']}}}id"
    solids = 0
    for owner in tree.getroot().iterfind(".//bldg:Building", ns):
        for element in [owner, *owner.iterfind(".//bldg:BuildingPart", ns)]:
            polygons = {p.get(gml_id): p for p in _own(element, ".//gml:Polygon", ns)}
            members = _own(element, ".//gml:Solid/gml:exterior/*/gml:surfaceMember", ns)
            if not members:
                assert not polygons, "geometry without a solid"
                continue
            refs = [m.get(XLINK) for m in members]
            assert all(r.startswith("#") for r in refs) and sorted(r[1:] for r in refs) == sorted(polygons)
            edges: Counter[tuple[str, str]] = Counter()
            volume = 0.0
            for ref in refs:
                pos = polygons[ref[1:]].find(".//gml:posList", ns)
                words = pos.text.split()
                vertices = [" ".join(words[k:k + 3]) for k in range(0, len(words), 3)]
                edges.update(zip(vertices, vertices[1:]))
                pts = _ring(pos) - np.array([537000.0, 1777000.0, 0.0])
                volume += sum(np.dot(pts[0], np.cross(pts[k], pts[k + 1])) for k in range(1, len(pts) - 2)) / 6
            unmatched = [e for e, n in edges.items() if n != 1 or edges[(e[1], e[0])] != 1]
            assert not unmatched, f"{element.get(gml_id)}: shell not closed/oriented at {unmatched[:3]}"
            assert volume > 100.0, f"{element.get(gml_id)}: inward-facing shell (volume {volume:.1f})"
            solids += 1
    assert solids > 240


def test_surface_normals(fixture: tuple[int, Path, etree._ElementTree]) -> None:
    """Ground faces down; roofs, roads and the terrain face up."""
    version, _, tree = fixture
    ns = NS[version]
    surface_ns = "bldg" if version == 2 else "con"
    root = tree.getroot()
    checks = [(f".//{surface_ns}:GroundSurface//gml:posList", -1), (f".//{surface_ns}:RoofSurface//gml:posList", 1),
              (".//tran:TrafficArea//gml:posList", 1), (".//tran:AuxiliaryTrafficArea//gml:posList", 1),
              (".//gml:Triangle//gml:posList", 1)]
    for path, sign in checks:
        rings = root.findall(path, ns)
        assert rings, path
        for pos in rings:
            normal = _newell(_ring(pos))
            assert sign * normal[2] > 0.2 * np.linalg.norm(normal), path


@pytest.mark.parametrize("version", [2, 3])
def test_imports_into_the_cim_in_da_nang(gen: ModuleType, version: int, tmp_path: Path) -> None:
    import converters
    from cim.ingest import ingest
    from cim.store import open_store

    path = FIXTURES / gen.FIXTURES[version]
    stats = gen.write_district(tmp_path / "again.gml", version)
    store = open_store(tmp_path / "city.gpkg")
    try:
        info = ingest(store, "danang", [converters.open_input(path)])
        counts = info.class_counts
        assert counts.get("Building") == stats.buildings
        assert counts.get("BuildingPart") == stats.building_parts
        assert counts.get("Road") == stats.roads
        assert counts.get("GenericCityObject") == stats.generic_objects
        assert counts.get("TINRelief") == 1
        assert info.frame["horizontal"] == 5899
        rows = list(store.footprints(dataset="danang"))
        buildings = [r for r in rows if r.city_class == "Building"]
        assert len(buildings) == stats.buildings
        for row in rows:
            w, s, e, n = row.geometry.bounds
            assert LON[0] < w <= e < LON[1] and LAT[0] < s <= n < LAT[1], row.feature_id
        # buildings made only of BuildingParts have no geometry of their own, hence no height range
        heights = [r.height_max - r.height_min for r in buildings if r.height_min is not None]
        assert len(heights) >= stats.buildings - stats.building_parts // 2
        assert 7.0 < min(heights) and max(heights) < 80.0
        west, south, east, north = info.bbox
        assert 108.08 < west < east < 108.12 and 16.06 < south < north < 16.09
        sample = next(r for r in buildings if r.feature_id == "DNHTP_B000001")
        assert sample.attributes.get("tenant", "").startswith("Công ty")
    finally:
        store.close()
