"""Fixtures for the server tests (imported by tests/test_server_*.py and test_viewer_browser.py).

Tilesets come from the tiles harness's generator (``make_mesh_tileset.py``: 16 box buildings,
glb + EXT_structural_metadata, b3dm or pnts; standard library only), published into the data
directory layout of docs/layout.md. When ``tiling.publish_tileset`` exists, ``city_data`` also
publishes a real tileset built from a store dataset.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from cim.ingest import ingest
from cim.store import open_store
from server.app import create_app
from server.settings import Settings
from tests.cim_helpers import FakeReading, district

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx still works
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
HARNESS_GENERATOR = REPO.parent / "shared" / "tools" / "tiles-harness" / "tools" / "make_mesh_tileset.py"
STORE_DATASET = "district"

__all__ = ["TestClient", "make_tileset", "publish", "city_data", "client", "fake_cesium", "settings_for"]


def make_tileset(out: Path, *, fmt: str = "glb", seed: int = 7, lon: float = 108.2, lat: float = 16.05) -> Path:
    """16 box buildings as a tileset in ``out`` (see the harness's make_mesh_tileset.py)."""
    if not HARNESS_GENERATOR.is_file():
        pytest.fail(f"the tiles harness generator {HARNESS_GENERATOR} is missing (clone the repo beside ../shared)")
    subprocess.run([sys.executable, str(HARNESS_GENERATOR), str(out), "--format", fmt, "--seed", str(seed),
                    "--lon", str(lon), "--lat", str(lat)], check=True, capture_output=True)
    return out


def publish(tiles_root: Path, dataset: str, version: str, source: Path) -> Path:
    """Copy a tileset folder in as ``<dataset>/<version>`` and point CURRENT at it (atomically)."""
    folder = tiles_root / dataset / version
    shutil.copytree(source, folder)
    current = tiles_root / dataset / "CURRENT"
    tmp = current.with_name(f".CURRENT.{os.getpid()}")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, current)
    return folder


def settings_for(data_dir: Path, cesium_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"data_dir": data_dir, "cesium_dir": cesium_dir}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def store_dataset(data_dir: Path, name: str = STORE_DATASET) -> None:
    """20 box buildings in VN-2000 / TM-3 107-45 (Da Nang) as a store dataset."""
    store = open_store(data_dir / "city.gpkg")
    try:
        ingest(store, name, [FakeReading(district())])
        publish_tileset = getattr(__import__("tiling"), "publish_tileset", None)
        if publish_tileset is not None:
            publish_tileset(store, name, data_dir / "tiles")
    finally:
        store.close()


@pytest.fixture(scope="session")
def harness_tilesets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("harness-tilesets")
    return {
        "glb": make_tileset(root / "glb"),
        "glb2": make_tileset(root / "glb2", seed=11, lon=108.21, lat=16.06),
        "b3dm": make_tileset(root / "b3dm", fmt="b3dm", seed=3, lon=108.19),
        "pnts": make_tileset(root / "pnts", fmt="pnts", seed=5, lon=108.22),
    }


@pytest.fixture
def fake_cesium(tmp_path: Path) -> Path:
    """A stand-in for CesiumJS's Build/Cesium (the browser test uses the real one)."""
    folder = tmp_path / "cesium"
    (folder / "Widgets").mkdir(parents=True)
    (folder / "Cesium.js").write_text("window.Cesium = {VERSION: 'fake'};\n" + "// padding\n" * 200, encoding="utf-8")
    (folder / "Widgets" / "widgets.css").write_text("body {}\n", encoding="utf-8")
    return folder


@pytest.fixture
def city_data(tmp_path: Path, harness_tilesets: dict[str, Path]) -> Path:
    """A data directory: datasets ``buildings`` (glb, v1), ``legacy`` (b3dm), ``cloud`` (pnts),
    ``unpublished`` (a folder without CURRENT), and the store dataset ``district``."""
    data = tmp_path / "city-data"
    tiles = data / "tiles"
    publish(tiles, "buildings", "v1", harness_tilesets["glb"])
    publish(tiles, "legacy", "v1", harness_tilesets["b3dm"])
    publish(tiles, "cloud", "v1", harness_tilesets["pnts"])
    (tiles / "unpublished" / ".staging-abc").mkdir(parents=True)
    store_dataset(data)
    return data


@pytest.fixture
def client(city_data: Path, fake_cesium: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(city_data, fake_cesium))) as c:
        yield c
