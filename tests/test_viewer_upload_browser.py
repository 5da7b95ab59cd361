"""The web page in real headless Chromium: upload a CityGML file through the page (token from
``?token=``, reads protected too), watch the progress bar, wait for the job, see the new dataset
listed and its tiles loaded and pickable in the CesiumJS view."""
from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from server.app import create_app
from tests.job_helpers import DANANG, READ, WRITE
from tests.test_server_fixtures import settings_for
from tests.test_viewer_browser import FIND_FEATURE_JS, LiveServer, PageLog, _cesium_dir, browser

__all__ = ["browser"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class TokenServer(LiveServer):
    """LiveServer with write and read tokens configured."""

    def __init__(self, data_dir: Path) -> None:  # noqa: D107 - same as LiveServer, other settings
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        app = create_app(settings_for(data_dir, _cesium_dir(), write_tokens=(WRITE,), read_tokens=(READ,)))
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)


def test_upload_through_the_page_then_see_and_pick_the_new_dataset(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    with TokenServer(tmp_path / "city-data") as server:
        context = browser.new_context(viewport={"width": 1024, "height": 768}, device_scale_factor=1)
        page = context.new_page()
        log = PageLog(page, server.url)
        requests: list[tuple[str, str | None]] = []
        page.on("request", lambda r: requests.append((r.url, r.headers.get("authorization"))))
        try:
            page.goto(f"{server.url}/?token={WRITE}", wait_until="load")
            assert page.evaluate("() => window.cimViewer.ready") == {"empty": True, "tilesLoaded": True, "tiles": 0}
            assert "token=" not in page.url  # taken out of the address bar

            steps: list[str] = []  # what the progress line said, in order (bytes sent, then the job)
            page.expose_function("recordStep", lambda text: steps.append(text))
            page.evaluate("""() => new MutationObserver(() => window.recordStep(
                document.getElementById('upload-status').textContent)).observe(
                document.getElementById('upload-status'), {childList: true, characterData: true, subtree: true})""")
            page.click("#upload-options summary")  # open "Dataset name and placement"
            page.fill("#upload-dataset", "hitech")
            page.set_input_files("#upload-file", str(DANANG))
            page.wait_for_function("() => window.cimViewer.lastJob && ['done', 'failed', 'cancelled', 'refused']"
                                   ".includes(window.cimViewer.lastJob.state)", timeout=180_000)
            job = page.evaluate("() => window.cimViewer.lastJob")
            assert job["state"] == "done" and job["dataset"] == "hitech", job
            reloaded = page.evaluate("() => window.cimViewer.reloaded")
            assert reloaded["empty"] is False and reloaded["tilesLoaded"] is True and reloaded["tiles"] > 0, reloaded
            page.wait_for_function("() => /Done: dataset 'hitech'/.test(document.getElementById('upload-status').textContent)")
            assert page.locator("#upload-progress").evaluate("b => b.value") == 100
            assert steps[0].startswith("Sending danang_hitech_park_citygml2.gml"), steps
            assert any(step.startswith("Job ") for step in steps), steps  # queued/running: stage and percent
            assert steps[-1].startswith("Done: dataset 'hitech' (359 features)"), steps

            item = page.locator('#dataset-list li[data-dataset="hitech"]')
            assert item.count() == 1 and "359 features" in item.inner_text()
            page.wait_for_function("() => document.querySelector('#job-list li[data-state=\"done\"]')")
            assert "hitech" in page.locator("#job-list").inner_text()

            found = page.evaluate(FIND_FEATURE_JS)
            assert found is not None and found["dataset"] == "hitech", found
            assert list(found["properties"])[:2] == ["id", "class"]

            href = page.locator("#footprint-link").get_attribute("href")
            assert href.startswith("/api/footprints?") and "format=gpkg" in href and "bbox=" in href

            page.screenshot(path=str(tmp_path / "upload.png"))
            shutil.copy(tmp_path / "upload.png", Path("/tmp") / "cim-upload-test.png")
            # every API and tile request carried the token as a header (reads are protected here)
            protected = [(u, a) for u, a in requests if "/api/" in u or "/tiles/" in u]
            assert protected and all(a == f"Bearer {WRITE}" for _, a in protected), protected
            assert log.errors == [] and log.outside == [], (log.errors, log.outside)
        finally:
            context.close()


def test_upload_refused_without_a_token_says_why(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    with TokenServer(tmp_path / "city-data") as server:
        context = browser.new_context(viewport={"width": 1024, "height": 768})
        page = context.new_page()
        try:
            page.goto(f"{server.url}/?token={READ}", wait_until="load")
            page.evaluate("() => window.cimViewer.ready")
            page.set_input_files("#upload-file", str(DANANG))
            page.wait_for_function("() => window.cimViewer.lastJob && window.cimViewer.lastJob.state === 'refused'")
            text = page.locator("#upload-status").inner_text()
            assert "Upload refused" in text and "write scope" in text, text
        finally:
            context.close()
