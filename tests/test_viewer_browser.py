"""The viewer page in real headless Chromium (Debian's /usr/bin/chromium, driven by playwright):
the real app under uvicorn on 127.0.0.1, the real CesiumJS from settings.cesium_dir.

Needs ``make install`` (CesiumJS) and Chromium (``make test-deps``); never runs ``playwright install``.
"""
from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from server.app import create_app
from server.settings import default_cesium_dir
from tests.test_server_fixtures import STORE_DATASET, harness_tilesets, publish, settings_for, store_dataset

__all__ = ["harness_tilesets"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # WebGL2 on the CPU
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # nothing but loopback
LOAD_TIMEOUT_MS = 150_000

# Find a feature: the screen centre first, then a grid around it, nearest first.
FIND_FEATURE_JS = """() => {
  const canvas = window.cimViewer.viewer.scene.canvas;
  const cx = Math.floor(canvas.clientWidth / 2), cy = Math.floor(canvas.clientHeight / 2);
  const offsets = [[0, 0]];
  for (let y = 8; y < canvas.clientHeight; y += 16) {
    for (let x = 8; x < canvas.clientWidth; x += 16) offsets.push([x - cx, y - cy]);
  }
  offsets.sort((a, b) => Math.hypot(a[0], a[1]) - Math.hypot(b[0], b[1]));
  for (const [dx, dy] of offsets) {
    const props = window.cimViewer.pickAt(cx + dx, cy + dy);
    if (props) return { x: cx + dx, y: cy + dy, properties: props, dataset: window.cimViewer.lastPick.dataset };
  }
  return null;
}"""


def _cesium_dir() -> Path:
    folder = default_cesium_dir()
    if not (folder / "Cesium.js").is_file():
        pytest.fail(f"CesiumJS is not installed in {folder}: run 'make install' (server/viewer/install-cesium.sh)")
    if not CHROMIUM.is_file():
        pytest.fail("Chromium is missing: run 'make test-deps' (apt-get install chromium fonts-liberation)")
    return folder


class LiveServer:
    """The app under uvicorn in a thread, on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = create_app(settings_for(data_dir, _cesium_dir()))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            self.thread.join(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _cesium_dir()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class PageLog:
    def __init__(self, page: Any, origin: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.origin = origin
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page: {e}"))
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
        page.route("**/*", self._only_loopback)

    def _only_loopback(self, route: Any) -> None:
        if route.request.url.startswith((self.origin, "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()


def _open(browser: Any, url: str) -> tuple[Any, Any, PageLog]:
    context = browser.new_context(viewport={"width": 1024, "height": 768}, device_scale_factor=1)
    page = context.new_page()
    log = PageLog(page, url)
    page.goto(url + "/", wait_until="load")
    return context, page, log


def test_viewer_loads_city_lists_datasets_and_picks_a_feature(browser: Any, tmp_path: Path,
                                                              harness_tilesets: dict[str, Path]) -> None:
    data = tmp_path / "city-data"
    store_dataset(data)  # the store dataset, published by tiling when it can
    tiled = (data / "tiles" / STORE_DATASET / "CURRENT").is_file()
    if not tiled:  # before the tiler: the harness's buildings under the store dataset's name
        publish(data / "tiles", STORE_DATASET, "v1", harness_tilesets["glb"])
    with LiveServer(data) as server:
        context, page, log = _open(browser, server.url)
        try:
            result = page.evaluate("() => window.cimViewer.ready", None)
            assert result["empty"] is False and result["tilesLoaded"] is True and result["tiles"] > 0, result
            item = page.locator(f'#dataset-list li[data-dataset="{STORE_DATASET}"]')
            assert item.count() == 1 and STORE_DATASET in item.inner_text()
            assert "20 features" in item.inner_text()

            found = page.evaluate(FIND_FEATURE_JS)
            assert found is not None, "no feature could be picked anywhere on the screen"
            props = found["properties"]
            assert found["dataset"] == STORE_DATASET
            keys = list(props)
            if tiled:  # the tiler writes the CIM id and class first
                assert keys[:2] == ["id", "class"], keys
                assert props["id"].startswith("b") and props["class"] == "Building"
            else:
                assert props["name"].startswith("Building ")

            # a real click at that spot fills the panel that a person sees
            page.evaluate("() => window.cimViewer.pickAt(1, 1)")  # clear it first (the sky)
            page.mouse.click(found["x"], found["y"])
            panel = page.locator("#feature-panel")
            first = keys[0]
            page.wait_for_function(f"() => document.querySelector('#feature-panel tr[data-property=\"{first}\"]')")
            assert panel.locator(f'tr[data-property="{first}"] td').inner_text() == str(props[first])
            for key in keys[:2]:
                assert panel.locator(f'tr[data-property="{key}"] th').inner_text() == key

            page.screenshot(path=str(tmp_path / "viewer.png"))
            shutil.copy(tmp_path / "viewer.png", Path("/tmp") / "cim-viewer-test.png")

            flown = page.evaluate(f"() => window.cimViewer.flyToDataset('{STORE_DATASET}')")
            assert flown is True
            assert log.errors == [] and log.outside == [], (log.errors, log.outside)
        finally:
            context.close()


def test_viewer_with_an_empty_city_says_so_without_errors(browser: Any, tmp_path: Path) -> None:
    with LiveServer(tmp_path / "empty-city") as server:
        context, page, log = _open(browser, server.url)
        try:
            result = page.evaluate("() => window.cimViewer.ready", None)
            assert result == {"empty": True, "tilesLoaded": True, "tiles": 0}
            assert "No dataset is published" in page.locator("#status").inner_text()
            assert "No dataset yet" in page.locator("#dataset-list").inner_text()
            assert log.errors == [] and log.outside == [], (log.errors, log.outside)
        finally:
            context.close()
