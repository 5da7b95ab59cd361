"""Hostile, truncated, slow and archived IFC input: clear typed errors, nothing partial imported.

Hostile and truncated files are generated into tmp_path from the real samples in ../shared/data/ifc.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

import converters
from cim.placement import user_frame
from cim.errors import (ConversionTimeoutError, ConverterCrashError, InputError, TruncatedFileError,
                        UnsafeArchiveError, UnsupportedFormatError)
from cim.ingest import ingest
from cim.store import SqliteStore, open_store
from converters.ifc.archive import ArchiveLimits, extract_ifc, is_ifc_spf, is_ifczip
from converters.ifc.reading import IfcReading

UTM = "geographic-referencing-utm.ifc"


@pytest.fixture()
def store(tmp_path: Path, shared_data: Path) -> SqliteStore:
    """A store that already holds dataset 'model' (the UTM sample), to check it survives failures."""
    s = open_store(tmp_path / "city.gpkg")
    ingest(s, "model", [converters.open_input(shared_data / "ifc" / UTM)])
    return s


def _assert_intact(store: SqliteStore) -> None:
    info = store.get_dataset("model")
    assert info.feature_count == 4 and info.sources == [UTM]


def test_self_referencing_placement_crash_is_contained(shared_data: Path, tmp_path: Path, store: SqliteStore) -> None:
    text = (shared_data / "ifc" / UTM).read_text(encoding="ascii")
    hostile = text.replace("#5044= IFCLOCALPLACEMENT(#100025,#100040);", "#5044= IFCLOCALPLACEMENT(#5044,#100040);")
    assert hostile != text
    path = tmp_path / "hostile.ifc"
    path.write_text(hostile, encoding="ascii")
    with pytest.raises(ConverterCrashError) as info:
        ingest(store, "model", [converters.open_input(path)])
    assert "crashed" in info.value.message and info.value.details["exit_code"] != 0
    _assert_intact(store)
    store.close()


def test_truncated_file_is_refused(shared_data: Path, tmp_path: Path, store: SqliteStore) -> None:
    data = (shared_data / "ifc" / "AC20-FZK-Haus.ifc").read_bytes()
    path = tmp_path / "half.ifc"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedFileError) as info:
        ingest(store, "model", [converters.open_input(path)])
    assert "END-ISO-10303-21;" in info.value.message
    _assert_intact(store)
    store.close()


def test_truncated_file_with_a_forged_end_is_refused(shared_data: Path, tmp_path: Path, store: SqliteStore) -> None:
    data = (shared_data / "ifc" / "AC20-FZK-Haus.ifc").read_bytes()
    path = tmp_path / "half-forged.ifc"
    cut = data[: len(data) // 2]
    cut = cut[: cut.rindex(b"\n") + 1] + b"#999999= IFCWALL('broken\nENDSEC;\nEND-ISO-10303-21;\n"
    path.write_bytes(cut)
    with pytest.raises(TruncatedFileError) as info:
        ingest(store, "model", [converters.open_input(path, converters.ConvertOptions(frame=user_frame(origin="8,49")))])
    assert "referenced but not in the file" in info.value.message
    _assert_intact(store)
    store.close()


def test_time_limit(shared_data: Path) -> None:
    reading = IfcReading(shared_data / "ifc" / "AC20-FZK-Haus.ifc", converters.ConvertOptions(), timeout=0.05)
    with pytest.raises(ConversionTimeoutError) as info:
        list(reading.features())
    assert "0.05 s" in info.value.message


def test_unsupported_schema_is_named(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "ifc" / UTM).read_text(encoding="ascii").replace("'IFC4X3_ADD2'", "'IFC4X3_RC2'")
    path = tmp_path / "rc2.ifc"
    path.write_text(text, encoding="ascii")
    with pytest.raises(UnsupportedFormatError) as info:
        list(converters.open_input(path).features())
    assert "IFC4X3_RC2" in info.value.message and "IFC2X3" in info.value.message


def test_sniffing_by_content(shared_data: Path, tmp_path: Path) -> None:
    head = (shared_data / "ifc" / "duplex.ifc").read_bytes()[:4096]
    assert is_ifc_spf(head) and is_ifc_spf(b"\xef\xbb\xbf\n ISO-10303-21;\n") and not is_ifc_spf(b"<?xml")
    renamed = tmp_path / "model.dat"  # the name does not matter
    renamed.write_bytes((shared_data / "ifc" / UTM).read_bytes())
    assert converters.detect(renamed).name == "ifc"


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_ifczip_converts(shared_data: Path, tmp_path: Path) -> None:
    path = _zip(tmp_path / "utm.ifczip", {"model/utm.ifc": (shared_data / "ifc" / UTM).read_bytes()})
    assert is_ifczip(path.read_bytes()[:4096])
    reading = converters.open_input(path)
    features = list(reading.features())
    assert len(features) == 4 and reading.frame.spec()["horizontal"] == 25832


def test_ifczip_safety_limits(shared_data: Path, tmp_path: Path) -> None:
    model = (shared_data / "ifc" / UTM).read_bytes()
    bomb = _zip(tmp_path / "bomb.ifczip", {"bomb.ifc": model + b" " * 30_000_000})
    with pytest.raises(UnsafeArchiveError, match="compression ratio"):
        extract_ifc(bomb, tmp_path)
    escape = _zip(tmp_path / "escape.ifczip", {"../evil.ifc": model})
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_ifc(escape, tmp_path)
    many = _zip(tmp_path / "many.ifczip", {"a.ifc": model, **{f"x{i}.txt": b"x" for i in range(10)}})
    with pytest.raises(UnsafeArchiveError, match="entries"):
        extract_ifc(many, tmp_path, ArchiveLimits(max_entries=5))
    two = _zip(tmp_path / "two.ifczip", {"a.ifc": model, "b.ifc": model})
    with pytest.raises(InputError, match="exactly one"):
        extract_ifc(two, tmp_path)
    assert not (tmp_path / "bomb.ifc").exists() and not (tmp_path.parent / "evil.ifc").exists()
