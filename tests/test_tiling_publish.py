"""Atomic, versioned publishing: staging -> v<N> -> CURRENT; failures leave CURRENT alone."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tiling.publish as publish_module
from cim.errors import InputError
from cim.store import SqliteStore
from tests.test_tiling_synthetic import make_store
from tiling import current_tileset_dir, publish_tileset
from tiling.publish import publish_tileset_with_summary


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    s = make_store(tmp_path_factory.mktemp("store") / "city.gpkg")
    yield s
    s.close()


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".lock")


def test_publish_versions_current_and_pruning(store: SqliteStore, tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    assert current_tileset_dir(root, "danang") is None
    first = publish_tileset(store, "danang", root)
    assert first == root / "danang" / "v1"
    assert (root / "danang" / "CURRENT").read_text() == "v1\n"
    assert current_tileset_dir(root, "danang") == first.resolve()
    assert json.loads((first / "tileset.json").read_text())["extras"]["dataset"] == "danang"
    summary, second = publish_tileset_with_summary(store, "danang", root, format="1.0")
    assert second.name == "v2" and summary.out_dir == second and summary.format == "1.0"
    third = publish_tileset(store, "danang", root)
    assert third.name == "v3"
    assert entries(root / "danang") == ["CURRENT", "v2", "v3"]  # the two newest are kept
    assert current_tileset_dir(root, "danang") == third.resolve()


def test_failed_build_leaves_current_and_no_staging(store: SqliteStore, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tiles"
    good = publish_tileset(store, "danang", root)
    current_before = (root / "danang" / "CURRENT").read_bytes()
    seen: list[int] = []

    def failing_progress(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 2:  # part of the tileset is written by now
            staging = [p for p in (root / "danang").iterdir() if p.name.startswith(".staging-")]
            assert len(staging) == 1 and any(staging[0].rglob("*.glb"))
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_tileset(store, "danang", root, progress=failing_progress)
    assert (root / "danang" / "CURRENT").read_bytes() == current_before
    assert entries(root / "danang") == ["CURRENT", "v1"]
    assert current_tileset_dir(root, "danang") == good.resolve()

    def broken_build(*args: object, **kwargs: object) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(publish_module, "build_tileset", broken_build)
    with pytest.raises(OSError):
        publish_tileset(store, "danang", root)
    assert entries(root / "danang") == ["CURRENT", "v1"]


def test_current_is_replaced_atomically(store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tiles"
    publish_tileset(store, "danang", root)
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replaced.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(publish_module.os, "replace", spy)
    publish_tileset(store, "danang", root)
    names = [dst for _, dst in replaced]
    assert names[-1] == "CURRENT" and replaced[-1][0].startswith(".CURRENT-")
    assert names.index("v2") < names.index("CURRENT")  # the version is complete before it is current


def test_stale_staging_is_cleaned_young_one_kept(store: SqliteStore, tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    (root / "danang" / ".staging-old").mkdir(parents=True)
    (root / "danang" / ".staging-young").mkdir()
    os.utime(root / "danang" / ".staging-old", (1, 1))
    publish_tileset(store, "danang", root)
    assert entries(root / "danang") == [".staging-young", "CURRENT", "v1"]


def test_concurrent_publishes_end_on_the_newest(store: SqliteStore, tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    with ThreadPoolExecutor(max_workers=3) as pool:
        published = list(pool.map(lambda _: publish_tileset(store, "danang", root), range(3)))
    assert sorted(p.name for p in published) == ["v1", "v2", "v3"]
    assert (root / "danang" / "CURRENT").read_text() == "v3\n"
    assert entries(root / "danang") == ["CURRENT", "v2", "v3"]


@pytest.mark.parametrize("name", ["city", "../x", ".hidden", "a/b", "", "x" * 65])
def test_bad_dataset_names(store: SqliteStore, tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError):
        publish_tileset(store, name, tmp_path)
    assert current_tileset_dir(tmp_path, name) is None


def test_current_tileset_dir_guards_against_escapes(tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    ds = root / "ds"
    (ds / "v1").mkdir(parents=True)
    (ds / "v1" / "tileset.json").write_text("{}")
    for bad in ("../../etc", "v1/../../x", "/etc", "v1\nv2", ""):
        (ds / "CURRENT").write_text(bad)
        assert current_tileset_dir(root, "ds") is None
    (ds / "CURRENT").write_text("v2\n")  # points at a missing version
    assert current_tileset_dir(root, "ds") is None
    outside = tmp_path / "outside"
    (outside / "v9").mkdir(parents=True)
    (outside / "v9" / "tileset.json").write_text("{}")
    (root / "link").symlink_to(outside)
    (outside / "CURRENT").write_text("v9")
    assert current_tileset_dir(root, "link") is None  # a dataset folder that is a link out of the root
    (ds / "CURRENT").write_text("v1\n")
    assert current_tileset_dir(root, "ds") == (ds / "v1").resolve()


def test_published_folder_is_readable_by_other_users(store: SqliteStore, tmp_path: Path) -> None:
    # a front end such as nginx often runs as another user: the version folder must not be 0700
    folder = publish_tileset(store, "danang", tmp_path / "tiles")
    assert folder.stat().st_mode & 0o777 == 0o755
