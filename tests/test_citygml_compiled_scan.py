"""The compiled scan of plain GML geometry and walk of city objects (converters/citygml/gml_scan.pyx),
and the compiled triangulation kernel (tess_kernel.pyx), against the Python reader, which is the reference: same features, same reports, and a decline
(None, nothing added) for geometry that is not plain."""
from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

import converters.citygml.city_object as city_object
import converters.citygml.gml_geometry as gml_geometry
import converters.citygml.tessellation as tessellation
from cim.conversion import ConversionReport
from cim.errors import ParseError
from cim.feature import Feature
from cim.placement import user_frame
from converters import ConvertOptions
from converters.citygml.polygons import PolygonRecord
from converters.citygml.reader import CityGmlReading

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "citygml"
NEEDS_PLACEMENT = {"LOD2_Buildings_v100_noCRS.gml", "LocalCRS_CityGML3.gml"}
GML = "http://www.opengis.net/gml"
NS = (f'xmlns:gml="{GML}" xmlns:xlink="http://www.w3.org/1999/xlink" '
      'xmlns="http://www.opengis.net/citygml/2.0" xmlns:bldg="http://www.opengis.net/citygml/building/2.0" '
      'xmlns:gen="http://www.opengis.net/citygml/generics/2.0"')


def test_the_compiled_scan_is_built() -> None:
    """`make install` builds it (setup.py); without it every CityGML file takes the slower Python path."""
    from converters.citygml import gml_scan  # noqa: F401  (ImportError: no C compiler or Python headers at install)

    assert gml_geometry.compiled_scan is not None
    assert city_object.compiled_walk is not None


def _read(path: Path, compiled: bool, monkeypatch: pytest.MonkeyPatch, frame: object = None) -> tuple[list[Feature], dict]:
    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(gml_geometry, "compiled_scan", None)
            m.setattr(city_object, "compiled_walk", None)
            m.setattr(tessellation, "kernel", None)
        reading = CityGmlReading(path, ConvertOptions(frame=frame), workers=1)  # type: ignore[arg-type]
        features = list(reading.features())
        return features, reading.report.to_dict()


def _key(f: Feature) -> tuple:
    return (f.id, f.city_class, f.parent, f.name, repr(sorted(f.attributes.items())), f.source,
            {lod: (m.vertices.tobytes(), m.triangles.tobytes(), m.surfaces.tobytes()) for lod, m in f.geometry.items()},
            f.footprint.wkb if f.footprint is not None else None)


def _same(path: Path, monkeypatch: pytest.MonkeyPatch, frame: object = None) -> list[Feature]:
    ours, our_report = _read(path, True, monkeypatch, frame)
    ref, ref_report = _read(path, False, monkeypatch, frame)
    assert [_key(f) for f in ours] == [_key(f) for f in ref]
    assert our_report == ref_report
    return ours


def _inputs() -> Iterator[Path]:
    yield from sorted(SAMPLES.glob("*.gml"))
    yield from sorted((REPO / "fixtures").glob("*.gml"))


@pytest.mark.parametrize("path", list(_inputs()), ids=lambda p: p.name)
def test_same_features_as_the_python_reader(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = user_frame(origin="108.25,16.05,0") if path.name in NEEDS_PLACEMENT else None
    features = _same(path, monkeypatch, frame)
    assert features and any(f.geometry for f in features)


def _ring(x: float, y: float, s: float, z: float = 10.0, reverse: bool = False) -> str:
    pts = [(x, y, z), (x + s, y, z), (x + s, y + s, z), (x, y + s, z), (x, y, z)]
    return " ".join(f"{c:g}" for p in (pts[::-1] if reverse else pts) for c in p)


def _poly(gid: str, x: float, y: float, s: float, holes: int = 0) -> str:
    inner = "".join(f"<gml:interior><gml:LinearRing><gml:posList>{_ring(x + s / 4, y + s / 4, s / 4, reverse=True)}"
                    "</gml:posList></gml:LinearRing></gml:interior>" for _ in range(holes))
    return (f'<gml:Polygon gml:id="{gid}"><gml:exterior><gml:LinearRing><gml:posList>{_ring(x, y, s)}'
            f"</gml:posList></gml:LinearRing></gml:exterior>{inner}</gml:Polygon>")


#: geometries the scan reads (plain) and ones it leaves to the Python reader
PLAIN = {
    "multisurface with holes and ids": f'<gml:MultiSurface gml:id="ms"><gml:surfaceMember>{_poly("a", 0, 0, 4, 1)}'
                                       f'</gml:surfaceMember><gml:surfaceMember>{_poly("b", 5, 0, 4)}</gml:surfaceMember></gml:MultiSurface>',
    "solid with xlinks": '<gml:Solid><gml:exterior><gml:CompositeSurface><gml:surfaceMember xlink:href="#a"/>'
                         '<gml:surfaceMember xlink:href=" #b "/><gml:surfaceMember xlink:href="other.gml#c"/>'
                         '</gml:CompositeSurface></gml:exterior></gml:Solid>',
    "polygon without id": _poly("x", 0, 0, 1).replace(' gml:id="x"', ""),
    "srsName on the root": f'<gml:MultiSurface srsName="EPSG:32649" srsDimension="3"><gml:surfaceMember>{_poly("c", 0, 0, 2)}'
                           "</gml:surfaceMember></gml:MultiSurface>",
    "second exterior skips the polygon": '<gml:MultiSurface><gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing>'
                                         f"<gml:posList>{_ring(0, 0, 1)}</gml:posList><gml:posList>{_ring(0, 0, 2)}</gml:posList>"
                                         f'</gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember><gml:surfaceMember>{_poly("d", 3, 3, 1)}'
                                         "</gml:surfaceMember></gml:MultiSurface>",
    "CDATA text (merged by the parser)": f"<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring(0, 0, 1)[:5]}<![CDATA[{_ring(0, 0, 1)[5:]}]]>"
                           "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
}
NOT_PLAIN = {
    "2D posList": '<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsDimension="2">0 0 1 0 1 1 0 0'
                  "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
    "count not a multiple of 3": "<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0 0 1 0 1 1 0 0"
                                 "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
    "hexadecimal number": f"<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>0x1p3 {_ring(0, 0, 1)[2:]}"
                          "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
    "no-break space": f"<gml:Polygon><gml:exterior><gml:LinearRing><gml:posList>{_ring(0, 0, 1).replace(' ', chr(160), 1)}"
                      "</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>",
    "gml:pos rings": "<gml:Polygon><gml:exterior><gml:LinearRing><gml:pos>0 0 0</gml:pos><gml:pos>1 0 0</gml:pos>"
                     "<gml:pos>1 1 0</gml:pos><gml:pos>0 0 0</gml:pos></gml:LinearRing></gml:exterior></gml:Polygon>",
    "orientable surface": f'<gml:MultiSurface><gml:surfaceMember><gml:OrientableSurface orientation="-"><gml:baseSurface>'
                          f'{_poly("e", 0, 0, 1)}</gml:baseSurface></gml:OrientableSurface></gml:surfaceMember></gml:MultiSurface>',
    "solid interior shell": '<gml:Solid><gml:interior><gml:CompositeSurface><gml:surfaceMember xlink:href="#a"/>'
                            "</gml:CompositeSurface></gml:interior></gml:Solid>",
    "srsName on an inner polygon": "<gml:MultiSurface><gml:surfaceMember>"
                                   + _poly("f", 0, 0, 1).replace("<gml:Polygon ", '<gml:Polygon srsName="EPSG:4326" ')
                                   + "</gml:surfaceMember></gml:MultiSurface>",
    "id on an inner aggregate": f'<gml:Solid><gml:exterior><gml:CompositeSurface gml:id="cs"><gml:surfaceMember>{_poly("g", 0, 0, 1)}'
                                "</gml:surfaceMember></gml:CompositeSurface></gml:exterior></gml:Solid>",
    "a curve": "<gml:MultiCurve><gml:curveMember><gml:LineString><gml:posList>0 0 0 1 1 1</gml:posList></gml:LineString>"
               "</gml:curveMember></gml:MultiCurve>",
}


def _element(xml: str) -> etree._Element:
    root = etree.fromstring(f"<wrap {NS}>{xml}</wrap>".encode(), etree.XMLParser(remove_comments=True, remove_pis=True))
    return root[0]


def _python_fast(el: etree._Element) -> tuple[bool, list[PolygonRecord], list]:
    seen: list = []
    collector = gml_geometry.GeometryCollector("t.gml", ConversionReport(), lambda srs, line: seen.append((srs, line)))
    collector._bucket, collector._stype, collector._origin = 17, 3, 1
    ok = collector._fast(el)
    return ok, collector.records, [(r.href, r.line, r.path) for r in collector.refs] + seen


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_geometry_gives_the_python_records(name: str) -> None:
    el = _element(PLAIN[name])
    ok, expected, expected_refs = _python_fast(el)
    assert ok
    records: list[PolygonRecord] = []
    found = gml_geometry.compiled_scan(el, records, PolygonRecord, 17, 3, 1)
    assert found is not None
    srs, line, refs, base = found
    assert len(records) == len(expected)
    assert records or refs
    for got, want in zip(records, expected):
        assert (got.bucket, got.stype, got.flip, got.path, got.origin, got.pid) == \
               (want.bucket, want.stype, want.flip, want.path, want.origin, want.pid)
        assert [r.tolist() for r in got.rings] == [r.tolist() for r in want.rings]
    ours = [(h[1:].strip(), ln, base) for h, ln in refs if h.startswith("#")]
    ours += [(srs, line)] if srs is not None else []
    assert ours == expected_refs


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_other_geometry_is_left_to_the_python_reader(name: str) -> None:
    records: list[PolygonRecord] = []
    assert gml_geometry.compiled_scan(_element(NOT_PLAIN[name]), records, PolygonRecord, 0, 0, 0) is None
    assert records == []


def test_lines_above_65535(tmp_path: Path) -> None:
    """libxml2 keeps big line numbers outside the node; references still name the right line."""
    xml = f'<gml:Solid {NS}><gml:exterior><gml:CompositeSurface>' + "\n" * 70000 + \
          '<gml:surfaceMember xlink:href="#far"/></gml:CompositeSurface></gml:exterior></gml:Solid>'
    el = etree.fromstring(xml.encode())
    found = gml_geometry.compiled_scan(el, [], PolygonRecord, 0, 0, 0)
    assert found is not None and found[2] == [("#far", 70001)]


def _district(tmp_path: Path, geometries: list[str]) -> Path:
    members = []
    for i, xml in enumerate(geometries):
        xml = xml.replace('gml:id="', f'gml:id="m{i}-')
        members.append(f'<cityObjectMember><bldg:Building gml:id="b{i}"><gen:stringAttribute name="n"><gen:value>{i}'
                       f"</gen:value></gen:stringAttribute><bldg:lod2MultiSurface>{xml}</bldg:lod2MultiSurface>"
                       "</bldg:Building></cityObjectMember>")
    path = tmp_path / "mixed.gml"
    path.write_text(textwrap.dedent(f"""\
        <?xml version="1.0" encoding="UTF-8"?>
        <CityModel {NS}><gml:boundedBy><gml:Envelope srsName="EPSG:32649" srsDimension="3">
        <gml:lowerCorner>0 0 0</gml:lowerCorner><gml:upperCorner>9 9 9</gml:upperCorner></gml:Envelope></gml:boundedBy>
        """) + "\n".join(members) + "\n</CityModel>\n", encoding="utf-8")
    return path


def test_a_file_with_every_kind_of_geometry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain and non-plain geometry mixed in one file: the same features either way."""
    geometries = list(PLAIN.values()) + [xml for name, xml in NOT_PLAIN.items()
                                         if name not in ("hexadecimal number", "srsName on an inner polygon")]
    features = _same(_district(tmp_path, geometries), monkeypatch)
    assert len(features) == len(geometries)
    assert sum(1 for f in features if f.geometry) >= len(PLAIN) + 5


def test_a_bad_number_is_the_same_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _district(tmp_path, [PLAIN["polygon without id"], NOT_PLAIN["hexadecimal number"]])
    messages = []
    for compiled in (True, False):
        with pytest.raises(ParseError) as error:
            _read(path, compiled, monkeypatch)
        messages.append(str(error.value))
    assert messages[0] == messages[1] and "line 5" in messages[0] and "not numbers" in messages[0]


#: city object properties of every shape the walk reads natively or hands to the Python walker
PROPERTIES = """
<gml:name>First &amp; only</gml:name><gml:name>second name (not kept)</gml:name>
<gml:description> described </gml:description>
<gml:boundedBy><gml:Envelope srsName="EPSG:32649" srsDimension="3"><gml:lowerCorner>0 0 0</gml:lowerCorner>
  <gml:upperCorner>9 9 9</gml:upperCorner></gml:Envelope></gml:boundedBy>
<gen:stringAttribute name="s"><gen:value> text </gen:value></gen:stringAttribute>
<gen:stringAttribute name="s"><gen:value>again</gen:value></gen:stringAttribute>
<gen:stringAttribute><gen:value>no name</gen:value></gen:stringAttribute>
<gen:stringAttribute name="empty"><gen:value>  </gen:value></gen:stringAttribute>
<gen:stringAttribute name="novalue"/>
<gen:stringAttribute name="two"><gen:value>first</gen:value><gen:value>second</gen:value></gen:stringAttribute>
<gen:intAttribute name="i"><gen:value>12</gen:value></gen:intAttribute>
<gen:intAttribute name="i_float"><gen:value>12.0</gen:value></gen:intAttribute>
<gen:intAttribute name="i_bad"><gen:value>12a</gen:value></gen:intAttribute>
<gen:doubleAttribute name="d"><gen:value>1e3</gen:value></gen:doubleAttribute>
<gen:doubleAttribute name="d_bad"><gen:value>n/a</gen:value></gen:doubleAttribute>
<gen:dateAttribute name="date"><gen:value>2024-01-02</gen:value></gen:dateAttribute>
<gen:uriAttribute name="uri"><gen:value>https://example.org/x</gen:value></gen:uriAttribute>
<gen:measureAttribute name="m"><gen:value uom="ft">10</gen:value></gen:measureAttribute>
<gen:genericAttributeSet name="set"><gen:intAttribute name="k"><gen:value>3</gen:value></gen:intAttribute>
  </gen:genericAttributeSet>
<bldg:function>office</bldg:function><bldg:function>shop</bldg:function>
<bldg:class codeSpace="x"> 1000 </bldg:class>
<bldg:usage xlink:href="#usage-code"/>
<bldg:yearOfConstruction>2001.0</bldg:yearOfConstruction>
<bldg:storeysAboveGround>many</bldg:storeysAboveGround>
<bldg:measuredHeight uom="#m">12.5</bldg:measuredHeight>
<bldg:storeyHeightsAboveGround uom="ft">3 3.5</bldg:storeyHeightsAboveGround>
<bldg:roofType>true</bldg:roofType>
<bldg:externalReference><informationSystem>https://example.org</informationSystem><externalObject>
  <name>obj-1</name></externalObject></bldg:externalReference>
<bldg:address><Address><xalAddress><xAL:AddressDetails><xAL:Country><xAL:CountryName>Vietnam</xAL:CountryName>
  <xAL:Locality Type="City"><xAL:LocalityName>Da Nang</xAL:LocalityName></xAL:Locality></xAL:Country>
  </xAL:AddressDetails></xalAddress></Address></bldg:address>
<bldg:lod1MultiCurve><gml:MultiCurve><gml:curveMember><gml:LineString><gml:posList>0 0 0 1 1 1</gml:posList>
  </gml:LineString></gml:curveMember></gml:MultiCurve></bldg:lod1MultiCurve>
<bldg:lod0FootPrint><gml:MultiSurface><gml:surfaceMember>POLY_FOOT</gml:surfaceMember></gml:MultiSurface>
  </bldg:lod0FootPrint>
<bldg:lod2MultiSurface xlink:href="#ID-wall"/>
<bldg:lod2Solid><gml:Solid><gml:exterior><gml:CompositeSurface><gml:surfaceMember xlink:href="#ID-roof"/>
  <gml:surfaceMember xlink:href="#ID-wall"/></gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod2Solid>
<bldg:lod2ImplicitRepresentation><ImplicitGeometry/></bldg:lod2ImplicitRepresentation>
<bldg:boundedBy><bldg:RoofSurface gml:id="ID-roofsurface"><bldg:lod2MultiSurface><gml:MultiSurface>
  <gml:surfaceMember>POLY_ROOF</gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface>
  <bldg:lod3ImplicitRepresentation/></bldg:RoofSurface></bldg:boundedBy>
<bldg:boundedBy><bldg:WallSurface><bldg:lod2MultiSurface><gml:MultiSurface><gml:surfaceMember>POLY_WALL
  </gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface>
  <bldg:opening><bldg:Window gml:id="ID-win"><bldg:lod3MultiSurface><gml:MultiSurface><gml:surfaceMember>POLY_WIN
  </gml:surfaceMember></gml:MultiSurface></bldg:lod3MultiSurface></bldg:Window></bldg:opening>
  <bldg:opening><bldg:Door><gml:name>door without id</gml:name></bldg:Door></bldg:opening>
  <bldg:opening xlink:href="#elsewhere"/></bldg:WallSurface></bldg:boundedBy>
<bldg:boundedBy><bldg:OuterFloorSurface><bldg:lod2MultiSurface><gml:MultiSurface><gml:surfaceMember>POLY_FLOOR
  </gml:surfaceMember></gml:MultiSurface></bldg:lod2MultiSurface></bldg:OuterFloorSurface></bldg:boundedBy>
<bldg:boundedBy><bldg:Mystery/></bldg:boundedBy>
<bldg:boundedBy><gml:Point/></bldg:boundedBy>
<bldg:outerBuildingInstallation><bldg:BuildingInstallation gml:id="ID-inst"><bldg:function>antenna</bldg:function>
  </bldg:BuildingInstallation></bldg:outerBuildingInstallation>
<bldg:consistsOfBuildingPart><bldg:BuildingPart gml:id="ID-part"><bldg:measuredHeight uom="furlong">1
  </bldg:measuredHeight><bldg:lod1Solid><gml:Solid><gml:exterior><gml:CompositeSurface><gml:surfaceMember>POLY_PART
  </gml:surfaceMember></gml:CompositeSurface></gml:exterior></gml:Solid></bldg:lod1Solid>
  <bldg:consistsOfBuildingPart><bldg:BuildingPart><bldg:function>nested part without id</bldg:function>
  </bldg:BuildingPart></bldg:consistsOfBuildingPart></bldg:BuildingPart></bldg:consistsOfBuildingPart>
<bldg:consistsOfBuildingPart xlink:href="#remote-part"/>
<bldg:interiorRoom><bldg:Room gml:id="ID-room"><bldg:lod4MultiSurface><gml:MultiSurface><gml:surfaceMember>
  POLY_ROOM</gml:surfaceMember></gml:MultiSurface></bldg:lod4MultiSurface></bldg:Room></bldg:interiorRoom>
<bldg:FancyAdeProperty><bldg:FancyAdeThing gml:id="ID-ade"><bldg:function>unknown class</bldg:function>
  </bldg:FancyAdeThing></bldg:FancyAdeProperty>
<app:appearance xmlns:app="http://www.opengis.net/citygml/appearance/2.0"><app:Appearance/></app:appearance>
"""


def test_city_objects_of_every_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kind of property, child feature and thematic surface the walk reads natively or hands
    over (ids missing, unknown classes, measures, sets, addresses, references ...): the same
    features, attributes (in the same order) and report either way."""
    polys = {"POLY_FOOT": (0, 0, 9), "POLY_ROOF": (0, 0, 9), "POLY_WALL": (0, 0, 9), "POLY_WIN": (1, 1, 1),
             "POLY_FLOOR": (2, 2, 2), "POLY_PART": (10, 0, 5), "POLY_ROOM": (1, 1, 3)}
    members = []
    for i in range(3):
        xml = PROPERTIES.replace("ID-", f"b{i}-")
        for key, (x, y, s) in polys.items():
            xml = xml.replace(key, _poly(f"b{i}-{key.lower()[5:]}", x + 20 * i, y, s, holes=int(key == "POLY_ROOF")))
        gid = f' gml:id="b{i}"' if i != 1 else ""  # the second building has no gml:id
        members.append(f"<cityObjectMember><bldg:Building{gid}>{xml}</bldg:Building></cityObjectMember>")
    members.append('<cityObjectMember><bldg:FancyAdeBuilding gml:id="ade"><gml:name>ade</gml:name>'
                   "</bldg:FancyAdeBuilding></cityObjectMember>")
    path = tmp_path / "objects.gml"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                    f'<CityModel {NS} xmlns:xAL="urn:oasis:names:tc:ciq:xsdschema:xAL:2.0">\n'
                    + "\n".join(members) + "\n</CityModel>\n", encoding="utf-8")
    features = _same(path, monkeypatch)
    by_id = {f.id: f for f in features}
    b0 = by_id["b0"]
    assert b0.name == "First & only"
    assert b0.attributes["s"] == "text; again" and b0.attributes["i"] == 12 and b0.attributes["d"] == 1000.0
    assert b0.attributes["i_bad"] == "12a" and b0.attributes["function"] == "office; shop"
    assert b0.attributes["usage"] == "#usage-code" and b0.attributes["measuredHeight"] == 12.5
    assert b0.attributes["yearOfConstruction"] == 2001 and b0.attributes["roofType"] is True
    assert b0.attributes["address.country"] == "Vietnam" and b0.attributes["set.k"] == 3
    assert b0.attributes["two"] == "first"
    assert {f.city_class.value for f in features} >= {"Building", "BuildingPart", "Window", "Door",
                                                      "BuildingInstallation", "BuildingRoom", "GenericCityObject"}
    assert sum(1 for f in features if f.id.startswith("objects:")) >= 3  # derived ids
    assert b0.geometry and by_id["b0-win"].geometry and by_id["b0-part"].geometry
