"""The `cim` command as a user runs it (a real subprocess): exit codes, messages, outputs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CIM = Path(sys.executable).with_name("cim")
CITYGML = "citygml"


def run(*args: str | Path, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [str(CIM)] + (["--data", str(data)] if data else []) + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_convert_writes_a_tileset(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "potsdam"
    r = run("convert", shared_data / CITYGML / "Potsdam_LoD1.gml", "--out", out)
    assert r.returncode == 0, r.stderr
    tileset = json.loads((out / "tileset.json").read_text())
    assert tileset["asset"]["version"] == "1.1"
    assert "97 Building" in r.stdout
    assert "Traceback" not in r.stderr


def test_convert_format_1_0_writes_b3dm(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lyon"
    r = run("convert", shared_data / CITYGML / "Opera-Lyon_CityGML3.0_LOD2.gml", "--out", out, "--format", "1.0")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "tileset.json").read_text())["asset"]["version"] == "1.0"
    contents = list(out.rglob("*.b3dm"))
    assert contents and contents[0].read_bytes()[:4] == b"b3dm"


def test_missing_crs_is_exit_4_with_advice(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "kit"
    r = run("convert", shared_data / CITYGML / "LOD2_Buildings_v100_noCRS.gml", "--out", out)
    assert r.returncode == 4
    assert "--crs" in r.stderr and "--origin" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_origin_places_local_data(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "kit"
    r = run("convert", shared_data / CITYGML / "LOD2_Buildings_v100_noCRS.gml", "--out", out,
            "--origin", "108.25,16.05,5", "--rotation", "30")
    assert r.returncode == 0, r.stderr
    assert "100 Building" in r.stdout


def test_bad_origin_is_a_usage_error(shared_data: Path, tmp_path: Path) -> None:
    r = run("convert", shared_data / CITYGML / "LOD2_Buildings_v100_noCRS.gml", "--out", tmp_path / "x",
            "--origin", "16.05")
    assert r.returncode == 4 and "LON,LAT" in r.stderr


def test_truncated_file_is_exit_3_and_keeps_the_previous_dataset(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    good = shared_data / CITYGML / "Potsdam_LoD1.gml"
    r = run("import", good, "--dataset", "potsdam", data=data)
    assert r.returncode == 0, r.stderr
    cut = tmp_path / "cut.gml"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    r = run("import", cut, "--dataset", "potsdam", data=data)
    assert r.returncode == 3, r.stderr
    assert "cut.gml" in r.stderr and "Traceback" not in r.stderr
    listing = run("datasets", data=data)
    assert "potsdam\t97 features" in listing.stdout


def test_unsupported_file_is_exit_3(tmp_path: Path) -> None:
    f = tmp_path / "notes.gml"
    f.write_text("just some text, not XML")
    r = run("import", f, data=tmp_path / "data")
    assert r.returncode == 3 and "tried" in r.stderr


def test_import_tile_and_list(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = run("import", shared_data / CITYGML / "Building_LOD4-EPSG25832_v2.gml", "--dataset", "lod4", data=data)
    assert r.returncode == 0, r.stderr
    r = run("tile", data=data)
    assert r.returncode == 0, r.stderr
    current = (data / "tiles" / "lod4" / "CURRENT").read_text().strip()
    assert (data / "tiles" / "lod4" / current / "tileset.json").is_file()
    r = run("tile", "nope", data=data)
    assert r.returncode == 5 and "nope" in r.stderr


def test_bad_dataset_name_is_refused(shared_data: Path, tmp_path: Path) -> None:
    r = run("import", shared_data / CITYGML / "Potsdam_LoD1.gml", "--dataset", "../evil", data=tmp_path / "d")
    assert r.returncode == 3 and "not a valid dataset name" in r.stderr


@pytest.mark.parametrize("args", [["--help"], ["convert", "--help"], ["import", "--help"]])
def test_help(args: list[str]) -> None:
    r = run(*args)
    assert r.returncode == 0 and "Usage" in r.stdout


def test_convert_output_is_readable_by_other_users(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lyon"
    r = run("convert", shared_data / CITYGML / "Opera-Lyon_CityGML3.0_LOD2.gml", "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o755
