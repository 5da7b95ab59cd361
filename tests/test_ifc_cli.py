"""The `cim` command on IFC input (a real subprocess): placement refusal, crash containment and
the conversion report, with exit codes from server/cli.py EXIT_CODES."""
from __future__ import annotations

from pathlib import Path

from tests.test_cli import run


def test_ifc_without_placement_is_exit_4_and_converts_with_origin(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "ifc" / "IfcOpenHouse_IFC4.ifc"
    r = run("convert", src, "--out", tmp_path / "refused")
    assert r.returncode == 4 and "--origin" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "refused").exists()
    r = run("convert", src, "--out", tmp_path / "placed", "--origin", "108.25,16.05,5", "--rotation", "30")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "placed" / "tileset.json").is_file() and "Building" in r.stdout


def test_crash_of_the_ifc_library_is_exit_3_not_a_crash_of_the_cli(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "ifc" / "geographic-referencing-utm.ifc").read_text(encoding="ascii")
    hostile = tmp_path / "hostile.ifc"
    hostile.write_text(text.replace("#121= IFCLOCALPLACEMENT(#5044,#243);", "#121= IFCLOCALPLACEMENT(#121,#243);"),
                       encoding="ascii")
    r = run("convert", hostile, "--out", tmp_path / "out")
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert "crashed" in r.stderr and "nothing was imported" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_conflict_is_reported_on_the_command_line(shared_data: Path, tmp_path: Path) -> None:
    r = run("convert", shared_data / "ifc" / "Duplex_A_20110907_georeferenced.ifc", "--out", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert "EPSG:2169+5774" in r.stdout + r.stderr and "conflict" in r.stdout + r.stderr
