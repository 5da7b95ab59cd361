"""Helpers for the upload/job tests: an app with tokens, uploads, polling a job to its end."""
from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from server.app import create_app
from tests.test_server_fixtures import TestClient, settings_for

REPO = Path(__file__).resolve().parents[1]
DANANG = REPO / "fixtures" / "danang_hitech_park_citygml2.gml"
DANANG3 = REPO / "fixtures" / "danang_hitech_park_citygml3.gml"
WRITE = "writer-token-0123"
READ = "reader-token-4567"
WRITE_AUTH = {"Authorization": f"Bearer {WRITE}"}
READ_AUTH = {"Authorization": f"Bearer {READ}"}
FINAL = ("done", "failed", "cancelled")


@contextmanager
def job_client(data: Path, cesium: Path, **overrides: Any) -> Iterator[TestClient]:
    values: dict[str, Any] = {"write_tokens": (WRITE,)}
    values.update(overrides)
    with TestClient(create_app(settings_for(data, cesium, **values))) as client:
        yield client


def upload(client: TestClient, path: Path, *, filename: str | None = None, headers: dict[str, str] | None = None,
           **fields: str) -> Any:
    with open(path, "rb") as fh:
        return client.post("/api/uploads", files={"file": (filename or path.name, fh)}, data=fields,
                           headers=WRITE_AUTH if headers is None else headers)


def upload_bytes(client: TestClient, body: bytes, filename: str, **fields: str) -> Any:
    return client.post("/api/uploads", files={"file": (filename, io.BytesIO(body))}, data=fields, headers=WRITE_AUTH)


def wait_job(client: TestClient, job_id: str, states: tuple[str, ...] = FINAL, timeout: float = 180,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}", headers=headers or {}).json()
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s: {job}")
        time.sleep(0.02)


def staged(data: Path) -> list[Path]:
    """Everything left in the staging area."""
    root = data / "uploads"
    return sorted(root.rglob("*")) if root.is_dir() else []


def zip_bytes(entries: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return out.getvalue()


def wait_cleaned(data: Path, timeout: float = 30) -> list[Path]:
    """The staging area once the dispatcher has reaped the worker (it removes the job's folder
    right after the worker exits, which is just after the job's final state is written)."""
    deadline = time.monotonic() + timeout
    while staged(data) and time.monotonic() < deadline:
        time.sleep(0.05)
    return staged(data)
