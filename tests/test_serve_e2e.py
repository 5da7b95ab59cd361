"""End to end against a real ``cim serve`` process: upload with a write token, poll the job to
done, the city tileset includes the dataset (and passes check-tileset); the same upload without
a token is refused; a killed worker fails its job cleanly; a cap exceeded answers 413 and leaves
nothing behind; a zip bomb and a zip-slip archive are refused."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cim.store import open_store
from tests.job_helpers import DANANG, DANANG3, WRITE, WRITE_AUTH, zip_bytes
from tests.test_tiling_judges import assert_clean, check_tileset

pytestmark = pytest.mark.slow

CAP = 4 * 1024 * 1024


class Served:
    def __init__(self, data: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        env = {**os.environ, "CIM_WRITE_TOKENS": WRITE, "CIM_UPLOAD_MAX_BYTES": str(CAP), "CIM_JOB_TIME_LIMIT": "300"}
        env.pop("CIM_READ_TOKENS", None)
        cim = Path(sys.executable).with_name("cim")
        self.log = open(data.parent / "serve.log", "wb")
        self.proc = subprocess.Popen([str(cim), "--data", str(data), "serve", "--port", str(self.port)],
                                     env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url, timeout=60)

    def wait_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data.parent / "serve.log").read_text()
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("cim serve did not start")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextmanager
def running_server(data: Path) -> Iterator[Served]:
    """A ``cim serve`` process on ``data``, up and answering, stopped at the end."""
    server = Served(data)
    try:
        server.wait_up()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_server(tmp_path_factory.mktemp("e2e") / "city-data") as server:
        yield server


def _upload(served: Served, path: Path, headers: dict[str, str], **fields: str) -> httpx.Response:
    with open(path, "rb") as fh:
        return served.http.post("/api/uploads", files={"file": (path.name, fh)}, data=fields, headers=headers)


def _wait(served: Served, job_id: str, states: tuple[str, ...] = ("done", "failed", "cancelled")) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job: dict[str, Any] = served.http.get(f"/api/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def _staged(served: Served) -> list[Path]:
    deadline = time.monotonic() + 30
    root = served.data / "uploads"
    while time.monotonic() < deadline and root.is_dir() and any(root.iterdir()):
        time.sleep(0.05)
    return sorted(root.rglob("*")) if root.is_dir() else []


def test_upload_poll_publish_and_judge(served: Served, shared_tools: Path, tmp_path: Path) -> None:
    refused = _upload(served, DANANG, {}, dataset="danang")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert _staged(served) == [] and served.http.get("/api/jobs").json()["jobs"] == []

    r = _upload(served, DANANG, WRITE_AUTH, dataset="danang")
    assert r.status_code == 202, r.text
    job = _wait(served, r.json()["id"])
    assert job["state"] == "done", job
    assert job["report"]["feature_count"] == 359
    city = served.http.get("/tiles/city/tileset.json").json()
    assert "../danang/tileset.json" in [c["content"]["uri"] for c in city["root"]["children"]]
    report = check_tileset(shared_tools, f"{served.url}/tiles/city/tileset.json", tmp_path / "check.json")  # type: ignore[arg-type]
    assert_clean(report)
    assert _staged(served) == []


def test_killed_worker_fails_cleanly(served: Served) -> None:
    first = _wait(served, _upload(served, DANANG, WRITE_AUTH, dataset="killed").json()["id"])
    assert first["state"] == "done"
    before = served.http.get("/api/datasets/killed").json()
    job_id = _upload(served, DANANG3, WRITE_AUTH, dataset="killed").json()["id"]
    store = open_store(served.data / "city.gpkg")  # the server's store, read from this process
    try:
        deadline = time.monotonic() + 60
        while not store.get_job(job_id).pid and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = store.get_job(job_id).pid
    finally:
        store.close()
    assert pid, "the job never started"
    os.kill(pid, signal.SIGKILL)
    job = _wait(served, job_id)
    assert job["state"] == "failed" and "SIGKILL" in job["error"]["message"], job
    after = served.http.get("/api/datasets/killed").json()
    assert (after["version"], after["tileset_version"]) == (before["version"], before["tileset_version"])
    assert served.http.get("/healthz").json()["status"] == "ok"


def test_cap_exceeded_is_413_and_leaves_nothing(served: Served) -> None:
    def body() -> Iterator[bytes]:
        chunk = DANANG.read_bytes()
        for _ in range(3):  # 8 MB > 4 MB cap, streamed without Content-Length
            yield chunk

    try:
        r = served.http.post("/api/uploads", content=body(),
                             headers={**WRITE_AUTH, "Content-Type": "application/octet-stream", "X-Filename": "big.gml"})
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    except httpx.TransportError:  # the server may close the connection before the client finished sending
        pass
    assert _staged(served) == []
    big = served.http.post("/api/uploads", content=b"x" * (CAP + 200_000),
                           headers={**WRITE_AUTH, "Content-Type": "application/octet-stream", "X-Filename": "big.gml"})
    assert big.status_code == 413  # refused from its Content-Length
    assert _staged(served) == []


@pytest.mark.parametrize("entries, code", [
    ({"../../outside.gml": b"<x/>"}, "hostile_input"),
    ({"bomb.gml": b"\0" * (3 * 1024 * 1024)}, "hostile_input"),
])
def test_hostile_archives_are_refused(served: Served, entries: dict[str, bytes], code: str) -> None:
    r = served.http.post("/api/uploads", files={"file": ("a.zip", zip_bytes(entries))}, headers=WRITE_AUTH)
    assert r.status_code == 400 and r.json()["error"] == code, r.text
    assert _staged(served) == []
    assert not (served.data / "outside.gml").exists() and not (served.data.parent / "outside.gml").exists()
