"""The early start of the IFC conversion child (converters/ifc/spawn.py): `cim convert` parks a
child before its heavy imports; the reader adopts it only when every argument matches, and a
child nobody adopts is killed. Real samples from ../shared/data/ifc."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import converters
from cim.placement import user_frame
from converters.ifc import spawn

UTM = "geographic-referencing-utm.ifc"


@pytest.fixture(autouse=True)
def _no_parked_children() -> Iterator[None]:
    spawn.discard_all()
    yield
    spawn.discard_all()


def _read(path: Path, **placement: str) -> list[str]:
    frame = user_frame(**placement) if placement else None
    reading = converters.open_input(path, converters.ConvertOptions(frame=frame))
    return sorted(f.id for f in reading.features())


def test_the_reader_adopts_the_child_started_early(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_data / "ifc" / UTM
    expected = _read(path)
    assert spawn.prestart(path)
    parked = list(spawn._PARKED.values())
    assert len(parked) == 1

    def no_new_child(*args: object) -> spawn.Child:
        raise AssertionError("the reader started a second child instead of adopting the parked one")

    monkeypatch.setattr(spawn, "start", no_new_child)
    assert _read(path) == expected
    assert not spawn._PARKED
    assert parked[0].proc.poll() is not None  # adopted, and ended with the reading


def test_a_child_started_with_other_arguments_is_not_used(shared_data: Path) -> None:
    path = shared_data / "ifc" / UTM
    frame = user_frame(origin="108.25,16.05,5")
    assert frame is not None
    assert spawn.prestart(path, json.dumps(frame.spec()))
    parked = list(spawn._PARKED.values())
    ids = _read(path)  # the file's own georeferencing, not the parked child's --origin
    assert len(ids) == 4
    assert not spawn._PARKED
    assert parked[0].proc.returncode not in (None, 0)  # killed, not adopted


def test_only_plain_complete_ifc_files_are_started_early(shared_data: Path, tmp_path: Path) -> None:
    text = (shared_data / "ifc" / UTM).read_bytes()
    truncated = tmp_path / "truncated.ifc"
    truncated.write_bytes(text[: len(text) // 2])
    zipped = tmp_path / "model.ifczip"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    citygml = next((shared_data / "citygml").glob("*.gml"))
    for path in (truncated, zipped, citygml, tmp_path / "missing.ifc"):
        assert not spawn.prestart(path), path
    assert not spawn._PARKED


def test_unadopted_children_are_killed_at_exit(shared_data: Path, tmp_path: Path) -> None:
    """A separate interpreter parks a child and exits without adopting it: the child must die
    with it (atexit), not convert on in the background."""
    pid_file = tmp_path / "pid"
    code = ("import sys; from pathlib import Path; from converters.ifc import spawn; "
            f"spawn.prestart(Path({str(shared_data / 'ifc' / 'duplex.ifc')!r})); "
            f"Path({str(pid_file)!r}).write_text(str(next(iter(spawn._PARKED.values())).proc.pid))")
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo, timeout=60)
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize("name", ["AC20-FZK-Haus.ifc", "Duplex_A_20110907_georeferenced.ifc", "IfcOpenHouse_IFC4.ifc"])
def test_properties_read_while_the_kernel_runs_equal_a_quiet_read(shared_data: Path, tmp_path: Path, name: str) -> None:
    """The child reads property sets, materials and the spatial tree while the geometry kernel's
    threads run; the result must be the same as reading them with no kernel running at all
    (a separate interpreter that never starts the iterator)."""
    path = shared_data / "ifc" / name
    frame = user_frame(origin="108.25,16.05,5") if name == "IfcOpenHouse_IFC4.ifc" else None
    reading = converters.open_input(path, converters.ConvertOptions(frame=frame))
    overlapped = {f.id: (f.parent, {k: v for k, v in f.attributes.items() if k not in ("color", "transparency")})
                  for f in reading.features()}
    out = tmp_path / "quiet.json"
    code = ("import json, sys; from pathlib import Path; from cim.conversion import ConversionReport; "
            "from converters.ifc import model as m; "
            f"model = m.open_model(Path({str(path)!r}), {name!r}); "
            f"feats = m.read_features(model, {name!r}, ConversionReport(source={name!r})); "
            f"Path({str(out)!r}).write_text(json.dumps({{f.id: [f.parent, f.attributes] for f in feats.values()}}))")
    repo = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo, timeout=300)
    quiet = {k: (v[0], v[1]) for k, v in json.loads(out.read_text()).items()}
    assert len(overlapped) > 3
    assert overlapped == quiet
