"""POST /api/uploads through the real HTTP stack: multipart and raw bodies, placement options,
size cap while streaming, format sniffing, archives (zip bombs, zip-slip, links), and the job that
converts the upload into the city (real CityGML files)."""
from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.job_helpers import (DANANG, WRITE_AUTH, job_client, staged, upload, upload_bytes, wait_cleaned, wait_job,
                               zip_bytes)
from tests.test_server_fixtures import TestClient, fake_cesium  # noqa: F401 (fixture)

MB = 1024 * 1024


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "city-data"


@pytest.fixture
def client(data: Path, fake_cesium: Path) -> Iterator[TestClient]:  # noqa: F811
    with job_client(data, fake_cesium, upload_max_bytes=8 * MB, zip_max_bytes=20 * MB, zip_max_entries=50) as c:
        yield c


def test_multipart_upload_is_converted_and_published(client: TestClient, data: Path) -> None:
    r = upload(client, DANANG, dataset="danang")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] == "queued" and body["dataset"] == "danang" and r.headers["Location"] == body["url"]
    job = wait_job(client, body["id"])
    assert job["state"] == "done", job
    assert job["progress"]["percent"] == 100.0 and job["progress"]["stage"] == "done"
    assert any("imported 359 features" in m for m in job["progress"]["messages"])
    report = job["report"]
    assert report["feature_count"] == 359 and report["files"][0]["format"] == "CityGML 2.0"
    assert "EPSG:5899" in report["files"][0]["georeferencing"]
    dataset = client.get("/api/datasets/danang").json()
    assert dataset["feature_count"] == 359 and dataset["tileset_version"] == report["tileset_version"]
    city = client.get("/tiles/city/tileset.json").json()
    assert [c["content"]["uri"] for c in city["root"]["children"]] == ["../danang/tileset.json"]
    assert client.get("/tiles/danang/tileset.json").status_code == 200
    assert wait_cleaned(data) == []  # the staging area is cleaned once the job ends
    assert not (data / "tiles" / "uploads").exists()  # staging is outside the served folder


def test_raw_body_with_query_options_and_derived_name(client: TestClient, shared_data: Path) -> None:
    source = shared_data / "citygml" / "LOD2_Buildings_v100_noCRS.gml"
    r = client.post("/api/uploads?origin=108.25,16.05,5&rotation=30", content=source.read_bytes(),
                    headers={**WRITE_AUTH, "Content-Type": "application/octet-stream", "X-Filename": "../../KIT model.gml"})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done", job
    assert job["dataset"] == "KIT_model" and job["source"] == "KIT_model.gml"
    assert job["placement"] == {"origin": "108.25,16.05,5", "rotation": 30.0}
    west, south, east, north = client.get("/api/datasets/KIT_model").json()["bbox"]
    assert 108.2 < west < east < 108.3 and 16.0 < south < north < 16.1  # placed where the user said


def test_missing_placement_fails_the_job_with_the_reason(client: TestClient, shared_data: Path) -> None:
    r = upload(client, shared_data / "citygml" / "LOD2_Buildings_v100_noCRS.gml", dataset="kit")
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "failed" and job["error"]["error"] == "crs_missing", job
    assert "--origin" in job["error"]["message"] or "origin" in job["error"]["message"]
    assert client.get("/api/datasets/kit").status_code == 404


@pytest.mark.parametrize("fields, status, code", [
    ({"dataset": "../etc"}, 400, "invalid_input"),
    ({"dataset": "city"}, 400, "invalid_input"),
    ({"crs": "EPSG:999999"}, 422, "crs_unknown"),
    ({"origin": "north pole"}, 400, "invalid_placement"),
    ({"crs": "EPSG:5899", "origin": "108,16"}, 400, "invalid_placement"),
    ({"rotation": "east"}, 400, "invalid_input"),
])
def test_bad_options_are_refused_at_once(client: TestClient, data: Path, fields: dict[str, str], status: int,
                                         code: str) -> None:
    r = upload(client, DANANG, **fields)
    assert r.status_code == status and r.json()["error"] == code, r.text
    assert staged(data) == [] and client.get("/api/jobs").json()["jobs"] == []


def test_unsupported_content_is_415_with_the_formats_tried(client: TestClient, data: Path) -> None:
    r = upload_bytes(client, b"%PDF-1.7 not a city model\n" * 100, "model.gml")  # sniffed, not by name
    assert r.status_code == 415, r.text
    assert r.json()["error"] == "unsupported_format" and "citygml" in r.json()["tried"]
    r = client.post("/api/uploads", content=b"x", headers={**WRITE_AUTH, "Content-Type": "text/plain"})
    assert r.status_code == 415 and "multipart/form-data" in r.json()["message"]
    r = client.post("/api/uploads", content=b"x", headers={**WRITE_AUTH, "Content-Type": "application/octet-stream"})
    assert r.status_code == 400 and "X-Filename" in r.json()["message"]
    r = upload_bytes(client, b"", "empty.gml")
    assert r.status_code == 400
    r = client.post("/api/uploads", data={"dataset": "x"}, files={"other": ("a.gml", b"<x/>")}, headers=WRITE_AUTH)
    assert r.status_code == 400 and "'file'" in r.json()["message"]
    assert staged(data) == []


def test_size_cap_is_enforced_while_streaming(data: Path, fake_cesium: Path) -> None:  # noqa: F811
    cap = 1 * MB
    with job_client(data, fake_cesium, upload_max_bytes=cap) as client:
        r = upload(client, DANANG)  # 2.6 MB with a Content-Length: refused before reading
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large", r.text

        def chunks() -> Iterator[bytes]:  # no Content-Length: stopped when the cap is passed
            with open(DANANG, "rb") as fh:
                while chunk := fh.read(64 * 1024):
                    yield chunk

        r = client.post("/api/uploads", content=chunks(),
                        headers={**WRITE_AUTH, "Content-Type": "application/octet-stream", "X-Filename": "big.gml"})
        assert r.status_code == 413 and str(cap) in r.json()["message"]
        assert staged(data) == []  # the partial file is gone
        assert client.get("/api/jobs").json()["jobs"] == []


def test_zip_of_citygml_is_converted(client: TestClient) -> None:
    body = zip_bytes({"district/danang.gml": DANANG.read_bytes(), "district/README.txt": b"notes",
                      "__MACOSX/._danang.gml": b"junk"})
    r = upload_bytes(client, body, "district.zip")
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "done", job
    assert job["dataset"] == "district" and job["report"]["feature_count"] == 359


def _symlink_zip() -> bytes:
    import io
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("link.gml")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return out.getvalue()


@pytest.mark.parametrize("make, status, code", [
    (lambda: zip_bytes({"../../evil.gml": b"<x/>"}), 400, "hostile_input"),
    (lambda: zip_bytes({"/abs/evil.gml": b"<x/>"}), 400, "hostile_input"),
    (lambda: zip_bytes({"dir\\..\\evil.gml": b"<x/>"}), 400, "hostile_input"),
    (_symlink_zip, 400, "hostile_input"),
    (lambda: zip_bytes({"bomb.gml": b"\0" * (15 * MB)}), 400, "hostile_input"),  # ratio ~1000
    (lambda: zip_bytes({f"f{i}.gml": b"<x/>" for i in range(51)}), 413, "payload_too_large"),
    (lambda: zip_bytes({"big.gml": bytes(range(256)) * (100 * 1024)}, compression=zipfile.ZIP_STORED)
     + b"", 413, "payload_too_large"),  # 25 MB stored > 8 MB upload cap
    (lambda: b"PK\x03\x04 truncated archive", 400, "invalid_input"),
    (lambda: zip_bytes({"notes.txt": b"no city model here"}), 415, "unsupported_format"),
])
def test_hostile_or_oversize_archives_are_refused(client: TestClient, data: Path, tmp_path: Path, make, status: int,
                                                  code: str) -> None:  # type: ignore[no-untyped-def]
    r = upload_bytes(client, make(), "upload.zip")
    assert r.status_code == status and r.json()["error"] == code, r.text
    assert staged(data) == []
    assert not (tmp_path / "evil.gml").exists() and not Path("/abs/evil.gml").exists()


def test_archive_uncompressed_cap(data: Path, fake_cesium: Path) -> None:  # noqa: F811
    with job_client(data, fake_cesium, zip_max_bytes=1 * MB) as client:
        r = upload_bytes(client, zip_bytes({"danang.gml": DANANG.read_bytes()}), "d.zip")
        assert r.status_code == 413 and "CIM_ZIP_MAX_BYTES" in r.json()["message"]
        assert staged(data) == []
