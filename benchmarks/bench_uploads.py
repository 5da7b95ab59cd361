"""Upload streaming throughput and upload-to-published latency against a real ``cim serve``.

    .venv/bin/python benchmarks/bench_uploads.py [--mb 256] [--port 8104]

Streams ``--mb`` MB as a raw body and as multipart (the body is not a city model, so the server
answers 415 after writing it to the staging area and sniffing it: the figure is the receive path),
then uploads the Da Nang CityGML fixture three times and times upload -> job done (published).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-writer-token"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--port", type=int, default=8104)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cim-bench-") as tmp:
        env = {**os.environ, "CIM_WRITE_TOKENS": TOKEN, "CIM_UPLOAD_MAX_BYTES": "2G"}
        cim = Path(sys.executable).with_name("cim")
        proc = subprocess.Popen([str(cim), "--data", f"{tmp}/data", "serve", "--port", str(args.port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        http = httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=600,
                            headers={"Authorization": f"Bearer {TOKEN}"})
        try:
            for _ in range(100):
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            block = os.urandom(1024 * 1024)

            def body() -> Iterator[bytes]:
                for _ in range(args.mb):
                    yield block

            t0 = time.perf_counter()
            r = http.post("/api/uploads", content=body(),
                          headers={"Content-Type": "application/octet-stream", "X-Filename": "noise.bin"})
            dt = time.perf_counter() - t0
            print(f"raw body      {args.mb} MB in {dt:.2f} s = {args.mb / dt:.0f} MB/s (answer {r.status_code})")
            path = Path(tmp) / "noise.bin"
            with open(path, "wb") as fh:
                for chunk in body():
                    fh.write(chunk)
            t0 = time.perf_counter()
            with open(path, "rb") as fh:
                r = http.post("/api/uploads", files={"file": ("noise.bin", fh)})
            dt = time.perf_counter() - t0
            print(f"multipart     {args.mb} MB in {dt:.2f} s = {args.mb / dt:.0f} MB/s (answer {r.status_code})")
            fixture = REPO / "fixtures" / "danang_hitech_park_citygml2.gml"
            for i in range(3):
                t0 = time.perf_counter()
                with open(fixture, "rb") as fh:
                    job = http.post("/api/uploads", files={"file": (fixture.name, fh)}, data={"dataset": "danang"}).json()
                while job["state"] not in ("done", "failed", "cancelled"):
                    time.sleep(0.02)
                    job = http.get(f"/api/jobs/{job['id']}").json()
                print(f"Da Nang CityGML 2.6 MB upload -> published: {time.perf_counter() - t0:.2f} s ({job['state']})")
        finally:
            http.close()
            proc.send_signal(signal.SIGINT)
            proc.wait(30)


if __name__ == "__main__":
    main()
