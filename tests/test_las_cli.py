"""`cim` on LAS/LAZ as a user runs it: convert, import + tile + re-tile, refusals with exit codes."""
from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run


def test_convert_las_needs_crs_then_works(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "las" / "simple.las"
    r = run("convert", src, "--out", tmp_path / "simple")
    assert r.returncode == 4 and "--crs" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "simple").exists()
    r = run("convert", src, "--out", tmp_path / "simple", "--crs", "EPSG:2994", "--format", "1.0")
    assert r.returncode == 0, r.stderr
    assert "1,065 points" in r.stdout
    assert json.loads((tmp_path / "simple" / "tileset.json").read_text())["asset"]["version"] == "1.0"
    assert list((tmp_path / "simple").rglob("*.pnts"))


def test_import_tile_and_retile_from_the_store(shared_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = run("import", shared_data / "las" / "fullwave_yellowscan.laz", "--dataset", "uav", "--tile", data=data)
    assert r.returncode == 0, r.stderr
    assert "10,750 points" in r.stdout
    r = run("tile", "uav", "--format", "1.0", data=data)  # no source file needed: points are in the store
    assert r.returncode == 0, r.stderr
    current = (data / "tiles" / "uav" / "CURRENT").read_text().strip()
    assert current == "v2" and list((data / "tiles" / "uav" / current).rglob("*.pnts"))


def test_truncated_las_is_exit_3_and_keeps_nothing(shared_data: Path, tmp_path: Path) -> None:
    broken = tmp_path / "autzen.las"
    data = (shared_data / "las" / "autzen_trim.las").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    r = run("import", broken, data=tmp_path / "data")
    assert r.returncode == 3 and "truncated" in r.stderr
    r = run("datasets", data=tmp_path / "data")
    assert r.stdout.strip() == ""


def test_convert_of_a_truncated_laz_is_exit_3_and_writes_nothing(shared_data: Path, tmp_path: Path) -> None:
    """The pieces are decoded in the tiler's worker processes: a piece the file does not hold
    fails the conversion with the reader's message, and no output is left behind."""
    broken = tmp_path / "ign.laz"
    data = (shared_data / "las" / "IGN_semis_2023_0292_6833_LA93_IGN69.laz").read_bytes()
    broken.write_bytes(data[: len(data) * 2 // 3])
    r = run("convert", broken, "--out", tmp_path / "out", data=tmp_path / "data")
    assert r.returncode == 3 and "truncated" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
