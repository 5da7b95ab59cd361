"""Hostile and broken XML: the CityGML reader refuses DTDs and entities, never reads local files
or the network, reports truncation and syntax errors with file and line, and a failed import
leaves the previous version of the dataset untouched."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import lxml
import pytest

from cim.placement import user_frame
from cim.errors import CimError, HostileInputError, ParseError, TruncatedFileError
from cim.ingest import ingest
from cim.store import SqliteStore, open_store
from converters import ConvertOptions, open_input
from converters.citygml import CityGmlConverter, safety

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "data" / "citygml"
POTSDAM = SAMPLES / "Potsdam_LoD1.gml"
CITYGML_ROOT = ('<CityModel xmlns="http://www.opengis.net/citygml/2.0" xmlns:gml="http://www.opengis.net/gml" '
                'xmlns:bldg="http://www.opengis.net/citygml/building/2.0">')
MEMBER = ('<cityObjectMember><bldg:Building gml:id="B1"><gml:name>{name}</gml:name><bldg:lod1MultiSurface><gml:MultiSurface>'
          '<gml:surfaceMember><gml:Polygon><gml:exterior><gml:LinearRing><gml:posList srsName="EPSG:25833">'
          '367000 5808000 40 367010 5808000 40 367010 5808010 40 367000 5808000 40</gml:posList>'
          '</gml:LinearRing></gml:exterior></gml:Polygon></gml:surfaceMember></gml:MultiSurface></bldg:lod1MultiSurface>'
          '</bldg:Building></cityObjectMember>')


def _doc(doctype: str, name: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n{CITYGML_ROOT}{MEMBER.format(name=name)}</CityModel>\n'


BILLION_LAUGHS = _doc("""<!DOCTYPE CityModel [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>""", "&lol9;")
XXE_FILE = _doc('<!DOCTYPE CityModel [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")
XXE_HTTP = _doc('<!DOCTYPE CityModel [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/secret">]>', "&xxe;")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on 127.0.0.1 that records whether anyone connected."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    sock.setblocking(False)
    yield sock
    sock.close()


def _nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.fixture
def store_with_city(tmp_path: Path) -> Iterator[SqliteStore]:
    """A store that already holds dataset 'city' (Potsdam, 97 buildings)."""
    store = open_store(tmp_path / "city.gpkg")
    ingest(store, "city", [open_input(POTSDAM)])
    yield store
    store.close()


def _assert_untouched(store: SqliteStore) -> None:
    assert [d.name for d in store.list_datasets()] == ["city"]
    info = store.get_dataset("city")
    assert info.feature_count == 97 and info.class_counts == {"Building": 97} and info.version == 1
    assert sum(1 for _ in store.iter_features("city")) == 97
    assert store.count_footprints(dataset="city") == 97


def _import(store: SqliteStore, path: Path) -> None:
    ingest(store, "city", [open_input(path, ConvertOptions(frame=user_frame(crs="EPSG:25833")))])


def test_lxml_is_recent_enough() -> None:
    assert tuple(int(p) for p in lxml.__version__.split(".")[:2]) >= (6, 1)


@pytest.mark.parametrize("text, construct", [
    (BILLION_LAUGHS, "billion laughs"), (XXE_FILE, "external entity (file)"), (XXE_HTTP, "external entity (http)")],
    ids=["billion-laughs", "xxe-file", "xxe-http"])
def test_entities_are_refused(text: str, construct: str, tmp_path: Path, store_with_city: SqliteStore) -> None:
    path = tmp_path / "hostile.gml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HostileInputError) as err:
        _import(store_with_city, path)
    message = err.value.message
    assert message.startswith("XML DTDs / entity declarations are not allowed: hostile.gml")
    assert "root:" not in message and "lollol" not in message
    assert err.value.code == "hostile_input"
    _assert_untouched(store_with_city)


def test_external_dtd_is_refused_without_touching_the_network(
        tmp_path: Path, store_with_city: SqliteStore, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    for doctype in (f'<!DOCTYPE CityModel SYSTEM "http://127.0.0.1:{port}/evil.dtd">',
                    f'<!DOCTYPE CityModel PUBLIC "-//X//Y" "http://127.0.0.1:{port}/evil.dtd">',
                    f'<!DOCTYPE CityModel [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>'):
        path = tmp_path / "dtd.gml"
        path.write_text(_doc(doctype, "x"), encoding="utf-8")
        with pytest.raises(HostileInputError, match="not allowed: dtd.gml starts with a document type declaration"):
            _import(store_with_city, path)
    assert _nobody_connected(listener)
    _assert_untouched(store_with_city)


@pytest.mark.parametrize("prefix, encoding", [
    ("\ufeff", "utf-8"), ("", "utf-16"), ("<!-- " + "x" * 200_000 + " -->\n<?pi data?>\n", "utf-8")],
    ids=["bom", "utf-16", "long-comment"])
def test_doctype_is_found_behind_bom_encoding_and_comments(prefix: str, encoding: str, tmp_path: Path) -> None:
    text = _doc('<!DOCTYPE CityModel [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;")
    text = text.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"')
    head, rest = text.split("\n", 1)
    path = tmp_path / "hidden.gml"
    path.write_bytes((head + "\n" + prefix + rest).encode(encoding) if encoding == "utf-16"
                     else (prefix + head + "\n" + rest if prefix == "\ufeff" else head + "\n" + prefix + rest).encode(encoding))
    with pytest.raises(HostileInputError):
        CityGmlConverter().open(path, ConvertOptions())


def test_parser_itself_never_expands_entities(tmp_path: Path, listener: socket.socket) -> None:
    """Defence in depth: even if the prolog check were bypassed, the parser options resolve no
    entity, load no DTD, and the docinfo check refuses the document."""
    port = listener.getsockname()[1]
    path = tmp_path / "xxe.gml"
    path.write_text(_doc(f'<!DOCTYPE CityModel SYSTEM "http://127.0.0.1:{port}/x.dtd" [<!ENTITY xxe SYSTEM '
                         '"file:///etc/passwd">]>', "&xxe;"), encoding="utf-8")
    texts = []
    with open(path, "rb") as fh:
        parser = safety.iterparse(fh, {"{http://www.opengis.net/citygml/2.0}cityObjectMember"})
        for _, el in parser:
            texts += [t for t in el.itertext()]
            with pytest.raises(HostileInputError):
                safety.check_docinfo(el.getroottree(), path.name)
    assert not any("root:" in t for t in texts)
    assert _nobody_connected(listener)


def test_truncated_file(tmp_path: Path, store_with_city: SqliteStore) -> None:
    data = POTSDAM.read_bytes()
    path = tmp_path / "Potsdam_half.gml"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(TruncatedFileError) as err:
        _import(store_with_city, path)
    line = data[:len(data) // 2].count(b"\n") + 1
    assert f"Potsdam_half.gml is truncated or incomplete: the XML ends at line {line}" in err.value.message
    assert err.value.details["line"] == line
    _assert_untouched(store_with_city)


def test_malformed_xml(tmp_path: Path, store_with_city: SqliteStore) -> None:
    lines = POTSDAM.read_text(encoding="utf-8").split("\n")
    lines[1000] = lines[1000].replace(">", " broken>", 1)
    path = tmp_path / "Potsdam_broken.gml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ParseError) as err:
        _import(store_with_city, path)
    assert not isinstance(err.value, TruncatedFileError)
    assert err.value.message.startswith("Potsdam_broken.gml line 1001: not well-formed XML")
    _assert_untouched(store_with_city)


@pytest.mark.parametrize("content", [b"", b"   \n", b"<CityModel", b"not xml at all"], ids=["empty", "blank", "cut", "text"])
def test_empty_and_non_xml_files(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "x.gml"
    path.write_bytes(content)
    with pytest.raises(CimError):
        reading = open_input(path)
        list(reading.features())


def test_entity_reference_without_dtd_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "ent.gml"
    path.write_text(f'<?xml version="1.0"?>\n{CITYGML_ROOT}{MEMBER.format(name="&undefined;")}</CityModel>', encoding="utf-8")
    with pytest.raises(ParseError, match="ent.gml line 2"):
        list(open_input(path).features())


def test_safe_options_are_used() -> None:
    opts = safety.PARSER_OPTIONS
    assert opts["resolve_entities"] is False and opts["load_dtd"] is False and opts["no_network"] is True
    assert opts["dtd_validation"] is False and opts["huge_tree"] is False
