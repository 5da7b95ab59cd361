"""Jobs through the real HTTP stack with real worker processes: a killed or hanging worker fails
its job cleanly and the previous version of the dataset stays served; cancel; list; restart."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cim.store import open_store
from tests.job_helpers import (DANANG, DANANG3, READ, READ_AUTH, WRITE_AUTH, job_client, upload, wait_cleaned,
                               wait_job)
from tests.test_server_fixtures import TestClient, fake_cesium  # noqa: F401 (fixture)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "city-data"


@pytest.fixture
def client(data: Path, fake_cesium: Path) -> Iterator[TestClient]:  # noqa: F811
    with job_client(data, fake_cesium) as c:
        yield c


def _published(client: TestClient, dataset: str) -> tuple[str, int]:
    info = client.get(f"/api/datasets/{dataset}").json()
    return info["tileset_version"], info["version"]


def _first_version(client: TestClient) -> dict[str, object]:
    job = wait_job(client, upload(client, DANANG, dataset="danang").json()["id"])
    assert job["state"] == "done", job
    return job


def _running_with_pid(client: TestClient, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] == "running" and client.app.state.store.get_job(job_id).pid:  # type: ignore[attr-defined]
            return job  # type: ignore[no-any-return]
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.01)
    raise AssertionError("the job never started")


def test_killed_worker_fails_the_job_and_keeps_the_previous_version(client: TestClient, data: Path) -> None:
    _first_version(client)
    before = _published(client, "danang")
    city_before = client.get("/tiles/city/tileset.json").content
    job_id = upload(client, DANANG3, dataset="danang").json()["id"]
    _running_with_pid(client, job_id)
    pid = client.app.state.store.get_job(job_id).pid  # type: ignore[attr-defined]
    os.kill(pid, signal.SIGKILL)  # a crash (segfault, OOM killer) looks like this
    job = wait_job(client, job_id)
    assert job["state"] == "failed", job
    assert job["error"]["error"] == "worker_crashed" and "SIGKILL" in job["error"]["message"]
    assert "previous version" in job["error"]["message"]
    assert _published(client, "danang") == before
    assert client.get("/tiles/city/tileset.json").content == city_before
    assert client.get("/healthz").json()["status"] == "ok"  # the server is fine
    assert wait_cleaned(data) == []
    # and the queue goes on
    assert _first_version(client)["state"] == "done"


def test_time_limit_stops_a_job(data: Path, fake_cesium: Path) -> None:  # noqa: F811
    with job_client(data, fake_cesium, job_time_limit=0.05) as client:
        job = wait_job(client, upload(client, DANANG, dataset="slow").json()["id"])
        assert job["state"] == "failed" and job["error"]["error"] == "time_limit", job
        assert "CIM_JOB_TIME_LIMIT" in job["error"]["message"]
        assert client.get("/api/datasets/slow").status_code == 404
        assert not (data / "tiles" / "slow" / "CURRENT").exists()


def test_cancel_kills_the_worker_and_keeps_the_previous_version(client: TestClient) -> None:
    done = _first_version(client)
    before = _published(client, "danang")
    job_id = upload(client, DANANG3, dataset="danang").json()["id"]
    _running_with_pid(client, job_id)
    pid = client.app.state.store.get_job(job_id).pid  # type: ignore[attr-defined]
    r = client.post(f"/api/jobs/{job_id}/cancel", headers=WRITE_AUTH)
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker is gone
    assert _published(client, "danang") == before
    again = client.post(f"/api/jobs/{job_id}/cancel", headers=WRITE_AUTH)  # idempotent
    assert again.status_code == 200 and again.json()["state"] == "cancelled"
    r = client.post(f"/api/jobs/{done['id']}/cancel", headers=WRITE_AUTH)
    assert r.status_code == 409 and r.json()["state"] == "done"
    assert client.post(f"/api/jobs/{job_id}/cancel").status_code == 401
    assert client.post("/api/jobs/nope/cancel", headers=WRITE_AUTH).status_code == 404


def test_queued_jobs_wait_for_the_slot_and_can_be_cancelled(client: TestClient) -> None:
    first = upload(client, DANANG, dataset="a").json()["id"]
    second = upload(client, DANANG, dataset="b").json()["id"]
    third = upload(client, DANANG, dataset="c").json()["id"]
    r = client.post(f"/api/jobs/{third}/cancel", headers=WRITE_AUTH)
    assert r.status_code in (200, 409)  # 409 only if it already ran to its end
    assert wait_job(client, first)["state"] == "done"
    assert wait_job(client, second)["state"] == "done"
    jobs = client.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in jobs] == [third, second, first]  # newest first
    assert {j["id"] for j in client.get("/api/jobs?state=done").json()["jobs"]} >= {first, second}
    assert client.get("/api/jobs?state=bogus").status_code == 400
    assert client.get("/api/jobs?limit=1").json()["jobs"][0]["id"] == third
    # a finished job's record can be deleted (write scope); an unknown one is 404
    assert client.delete(f"/api/jobs/{first}").status_code == 401
    assert client.delete(f"/api/jobs/{first}", headers=WRITE_AUTH).status_code == 204
    assert client.get(f"/api/jobs/{first}").status_code == 404


def test_two_jobs_at_most_run_together(data: Path, fake_cesium: Path) -> None:  # noqa: F811
    with job_client(data, fake_cesium, job_concurrency=2) as client:
        ids = [upload(client, DANANG, dataset=f"d{i}").json()["id"] for i in range(3)]
        seen = 0
        while True:
            states = [client.get(f"/api/jobs/{i}").json()["state"] for i in ids]
            seen = max(seen, states.count("running"))
            assert states.count("running") <= 2
            if all(s == "done" for s in states):
                break
            assert "failed" not in states
            time.sleep(0.02)
        city = client.get("/tiles/city/tileset.json").json()
        assert len(city["root"]["children"]) == 3


def test_restart_fails_running_jobs_and_resumes_queued_ones(data: Path, fake_cesium: Path) -> None:  # noqa: F811
    staged_file = data / "uploads" / "q1" / "danang.gml"
    staged_file.parent.mkdir(parents=True)
    staged_file.write_bytes(DANANG.read_bytes())
    store = open_store(data / "city.gpkg")  # what a killed server left behind
    try:
        store.create_job("r1", "lost", {"files": ["/nonexistent/lost.gml"]})
        store.update_job("r1", state="running", pid=999999)
        store.create_job("q1", "resumed", {"files": [str(staged_file)], "filename": "danang.gml"})
        store.create_job("q2", "gone", {"files": [str(data / "uploads" / "q2" / "missing.gml")]})
    finally:
        store.close()
    with job_client(data, fake_cesium, read_tokens=(READ,)) as client:
        lost = client.get("/api/jobs/r1", headers=READ_AUTH).json()
        assert lost["state"] == "failed" and lost["error"]["error"] == "server_restarted", lost
        gone = client.get("/api/jobs/q2", headers=READ_AUTH).json()
        assert gone["state"] == "failed" and gone["error"]["error"] == "upload_missing"
        resumed = wait_job(client, "q1", headers=READ_AUTH)
        assert resumed["state"] == "done", resumed
        assert client.get("/api/datasets/resumed", headers=READ_AUTH).json()["feature_count"] == 359


def test_a_server_stopping_fails_its_running_job(data: Path, fake_cesium: Path) -> None:  # noqa: F811
    with job_client(data, fake_cesium) as client:
        job_id = upload(client, DANANG3, dataset="d").json()["id"]
        _running_with_pid(client, job_id)
        pid = client.app.state.store.get_job(job_id).pid  # type: ignore[attr-defined]
    store = open_store(data / "city.gpkg")
    try:
        job = store.get_job(job_id)
    finally:
        store.close()
    assert job.state in ("failed", "done")  # done only if it finished in the meantime
    if job.state == "failed":
        assert job.error and job.error["error"] == "server_stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
