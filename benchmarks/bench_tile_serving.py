#!/usr/bin/env python3
"""Tile serving throughput: our server (``cim serve``) against nginx on the same published tileset.

    python benchmarks/bench_tile_serving.py                       # ~5 min: demo data, 10 s per run
    python benchmarks/bench_tile_serving.py --duration 5 --layouts pinned
    python benchmarks/bench_tile_serving.py --data city-data --dataset danang-hitech-park

1. Prepares the data once with ``cim --data DIR demo --no-serve`` (a temp dir unless ``--data``):
   the synthetic Da Nang district, imported and published. Picks the largest glb of the published
   version folder, the smallest glb, and ``tileset.json``.
2. Starts, one after the other, every server of the chosen layouts on 127.0.0.1:

   * ``ours``: ``cim --data DIR serve --port P`` (uvicorn, one worker process, the in-memory tile
     cache, the access log on; stderr goes to a log file), exactly as users run it;
   * ``nginx-1`` / ``nginx-auto``: nginx with a minimal generated nginx.conf (``daemon off``,
     ``worker_processes 1`` or ``auto``, ``sendfile on``, keep-alive, ``gzip on`` level 6 for
     JSON, access log to a file) whose root is the published version folder;
   * ``nginx-1-gzip_static`` (tileset.json gzip only): nginx-1 with ``gzip_static on`` and a
     precompressed copy of tileset.json, i.e. nginx without per-request compression;
   * ``starlette-static`` (no gzip run): Starlette's ``StaticFiles`` under uvicorn, the
     alternative DESIGN.md measured (no cache, a file read per request).

   Before measuring, both servers' bytes are checked against the files on disk (identity, and
   gzip decoded for tileset.json).
3. For each file, ``wrk -t1 -c16 --latency`` (a warm-up run, then the measured run), plus one
   run of tileset.json with ``Accept-Encoding: gzip``. Records requests/s, p50/p99 latency,
   transfer, errors, and the peak RSS (``VmHWM`` of /proc/PID/status) of every server process.

Layouts (2-core machine: the load generator competes with the server for CPU):

* ``pinned``: wrk on CPU 0 (``taskset -c 0``), ours and nginx-1 on CPU 1; nginx-auto (one worker
  per core) is not pinned, its second worker shares CPU 0 with wrk.
* ``unpinned``: nothing pinned; the scheduler decides.

Prints a markdown table and writes benchmarks/out/tile_serving.json. Every server is stopped at the
end, on errors too.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
CIM = REPO / ".venv" / "bin" / "cim"
DATASET = "danang-hitech-park"
LOAD_CPU, SERVER_CPU = "0", "1"
SERVERS = ("ours", "nginx-1", "nginx-auto", "nginx-1-gzip_static", "starlette-static")
#: servers measured on some targets only: nginx with a precompressed tileset.json.gz (gzip_static),
#: and Starlette's StaticFiles, which has no gzip
ONLY = {"nginx-1-gzip_static": {"tileset.json gzip"}, "starlette-static": {"large glb", "small glb", "tileset.json"}}
STARLETTE_STATIC = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
app = Starlette(routes=[Mount("/", StaticFiles(directory=sys.argv[1]))])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
"""


# --- helpers -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            fetch(url, timeout=1.0)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f} s")


def proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def kib(value: str | None) -> int | None:
    return int(value.split()[0]) if value else None


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (nginx master + workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ppid = proc_status(int(entry.name)).get("PPid")
            if ppid:
                children.setdefault(int(ppid), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def memory(pid: int) -> dict[str, Any]:
    """Peak (VmHWM) and current (VmRSS) resident memory of pid and its children, in MiB."""
    procs = []
    for p in process_tree(pid):
        st = proc_status(p)
        if st:
            procs.append({"pid": p, "name": st.get("Name", "").strip(), "vmhwm_mib": round(kib(st.get("VmHWM")) / 1024, 1),
                          "vmrss_mib": round(kib(st.get("VmRSS")) / 1024, 1)})
    return {"processes": procs, "sum_vmhwm_mib": round(sum(p["vmhwm_mib"] for p in procs), 1),
            "max_vmhwm_mib": max((p["vmhwm_mib"] for p in procs), default=None)}


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def pin(cpu: str | None) -> list[str]:
    return ["taskset", "-c", cpu] if cpu is not None else []


# --- data ----------------------------------------------------------------------------------------

def prepare(data: Path | None, dataset: str, scratch: Path) -> tuple[Path, Path]:
    if data is None:
        data = scratch / "data"
        print(f"preparing the demo data in {data} (cim demo --no-serve)", file=sys.stderr)
        subprocess.run([str(CIM), "--data", str(data), "demo", "--no-serve"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
    current = (data / "tiles" / dataset / "CURRENT").read_text().strip()
    return data, data / "tiles" / dataset / current


def pick_files(version_dir: Path) -> dict[str, Path]:
    glbs = sorted((p.stat().st_size, str(p)) for p in (version_dir / "content").rglob("*.glb"))
    if not glbs:
        raise SystemExit(f"no glb under {version_dir / 'content'}")
    return {"large glb": Path(glbs[-1][1]), "small glb": Path(glbs[0][1]), "tileset.json": version_dir / "tileset.json"}


# --- servers -------------------------------------------------------------------------------------

NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
{user}pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ application/json json; model/gltf-binary glb; application/octet-stream b3dm pnts i3dm cmpt subtree bin; }}
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    gzip on;
    gzip_comp_level 6;
    gzip_types application/json;
    gzip_vary on;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ try_files $uri =404; }}
{extra}    }}
}}
"""


@contextmanager
def run_server(kind: str, data: Path, version_dir: Path, scratch: Path, cpu: str | None) -> Iterator[dict[str, Any]]:
    """Start one server, yield {base, proc, pid, url_of}, stop it on exit (errors included)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(scratch / f"{kind}.log", "wb")  # noqa: SIM115 (closed in the finally below)
    if kind == "ours":
        cmd = pin(cpu) + [str(CIM), "--data", str(data), "serve", "--port", str(port)]
        prefix = f"/tiles/{version_dir.parent.name}/"
        health = f"{base}/healthz"
        stop_signal = signal.SIGINT
    elif kind == "starlette-static":
        cmd = pin(cpu) + [sys.executable, "-c", STARLETTE_STATIC, str(version_dir), str(port)]
        prefix = "/"
        health = f"{base}/tileset.json"
        stop_signal = signal.SIGINT
    else:
        tmp = scratch / kind
        tmp.mkdir(exist_ok=True)
        conf = tmp / "nginx.conf"
        # run as root, nginx workers would switch to 'nobody', who may not read the version folder
        user = "user root;\n" if os.geteuid() == 0 else ""
        extra = ""
        if kind.endswith("gzip_static"):
            # tileset.json and its precompressed copy (gzip -6) in a folder of their own
            static = tmp / "static"
            static.mkdir(exist_ok=True)
            body = (version_dir / "tileset.json").read_bytes()
            (static / "tileset.json").write_bytes(body)
            (static / "tileset.json.gz").write_bytes(gzip.compress(body, compresslevel=6, mtime=0))
            extra = f"        location = /tileset.json {{ root {static}; gzip_static on; }}\n"
        workers = kind.split("-")[1]
        conf.write_text(NGINX_CONF.format(workers=workers, user=user, tmp=tmp, port=port, root=version_dir,
                                          extra=extra))
        cmd = pin(cpu) + [shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
        prefix = "/"
        health = f"{base}/tileset.json"
        stop_signal = signal.SIGQUIT  # graceful shutdown of master and workers
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(health, proc)
        yield {"kind": kind, "base": base, "proc": proc, "pid": proc.pid, "cmd": cmd,
               "url": lambda rel: base + prefix + rel}
    finally:
        stop(proc, stop_signal)
        log.close()


def verify(server: dict[str, Any], files: dict[str, Path], version_dir: Path) -> dict[str, Any]:
    """Every chosen file, as served, equals the file on disk (gzip decoded for tileset.json)."""
    checked = {}
    for label, path in files.items():
        rel = path.relative_to(version_dir).as_posix()
        disk = path.read_bytes()
        status, headers, body = fetch(server["url"](rel), {"Accept-Encoding": "identity"})
        if status != 200 or body != disk:
            raise RuntimeError(f"{server['kind']}: {rel} differs from the file on disk ({status}, {len(body)} bytes)")
        entry = {"bytes": len(body), "content_type": headers.get("content-type")}
        if label == "tileset.json" and server["kind"] != "starlette-static":
            status, headers, body = fetch(server["url"](rel), {"Accept-Encoding": "gzip"})
            if headers.get("content-encoding") != "gzip" or gzip.decompress(body) != disk:
                raise RuntimeError(f"{server['kind']}: gzipped {rel} is not the file on disk")
            entry["gzip_bytes"] = len(body)
        checked[label] = entry
    return checked


# --- wrk -----------------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.MULTILINE)
        result[f"p{pct}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+\w+) read", out)
    result["requests"] = int(m.group(1)) if m else None
    result["read"] = m.group(4) if m else None
    m = re.search(r"Transfer/sec:\s+(\S+)", out)
    result["transfer_per_s"] = m.group(1) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    result["socket_errors"] = m.group(1).strip() if m else None
    return result


def wrk(url: str, args: argparse.Namespace, seconds: float, cpu: str | None, gzip_: bool) -> dict[str, Any]:
    cmd = pin(cpu) + ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(seconds))}s", "--latency",
                      "--timeout", "5s"]
    if gzip_:
        cmd += ["-H", "Accept-Encoding: gzip"]
    cmd.append(url)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return {"cmd": " ".join(cmd), **parse_wrk(done.stdout), "raw": done.stdout}


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="existing data directory (default: a fresh cim demo in a temp dir)")
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of the warm-up wrk run")
    parser.add_argument("--repeat", type=int, default=1, help="measured runs per file (the fastest counts)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--layouts", default="pinned,unpinned", help="pinned, unpinned or both (comma-separated)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="ours, nginx-1, nginx-auto")
    parser.add_argument("--out", type=Path, default=OUT / "tile_serving.json")
    args = parser.parse_args()
    layouts = [x for x in args.layouts.split(",") if x]
    servers = [x for x in args.servers.split(",") if x]
    for tool in ("wrk", "nginx", "taskset"):
        if shutil.which(tool) is None and not (tool == "nginx" and Path("/usr/sbin/nginx").exists()):
            raise SystemExit(f"{tool} not found (apt-get install -y nginx wrk)")
    if "pinned" in layouts and (os.cpu_count() or 1) < 2:
        raise SystemExit("the pinned layout needs 2 CPUs")

    started = datetime.now(timezone.utc)
    scratch = Path(tempfile.mkdtemp(prefix="cim-tilebench-"))
    runs: list[dict[str, Any]] = []
    try:
        data, version_dir = prepare(args.data, args.dataset, scratch)
        files = pick_files(version_dir)
        targets = [(label, path, False) for label, path in files.items()] + [("tileset.json gzip", files["tileset.json"], True)]
        print("files: " + ", ".join(f"{k} = {v.relative_to(version_dir)} ({v.stat().st_size} B)" for k, v in files.items()),
              file=sys.stderr)
        for layout in layouts:
            for kind in servers:
                server_cpu = SERVER_CPU if layout == "pinned" and kind != "nginx-auto" else None
                load_cpu = LOAD_CPU if layout == "pinned" else None
                with run_server(kind, data, version_dir, scratch, server_cpu) as server:
                    checked = verify(server, files, version_dir)
                    for label, path, gz in targets:
                        if label not in ONLY.get(kind, {label}):
                            continue
                        url = server["url"](path.relative_to(version_dir).as_posix())
                        wrk(url, args, args.warmup, load_cpu, gz)
                        tries = [wrk(url, args, args.duration, load_cpu, gz) for _ in range(args.repeat)]
                        measured = max(tries, key=lambda t: t["rps"] or 0.0)
                        measured["rps_all"] = [t["rps"] for t in tries]
                        row = {"layout": layout, "server": kind, "target": label,
                               "file": path.relative_to(version_dir).as_posix(), "bytes": checked[label.removesuffix(" gzip")],
                               "server_cpu": server_cpu, "load_cpu": load_cpu, **measured}
                        runs.append(row)
                        print(f"{layout:8} {kind:10} {label:18} {measured['rps']:>10.0f} req/s  p50 {measured['p50_ms']:.2f} ms"
                              f"  p99 {measured['p99_ms']:.2f} ms  non-2xx {measured['non_2xx']}", file=sys.stderr)
                    mem = memory(server["pid"])
                    for row in runs:
                        if row["layout"] == layout and row["server"] == kind:
                            row["memory"] = mem
                    procs = ", ".join(f"{p['name']} {p['vmhwm_mib']}" for p in mem["processes"])
                    print(f"{layout:8} {kind:10} peak RSS {mem['sum_vmhwm_mib']} MiB ({procs})", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    table = markdown(runs, layouts, servers)
    print(table)
    result = {
        "benchmark": "tile_serving", "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "python": platform.python_version(), "nginx": _version(["nginx", "-v"]),
                    "wrk": _version(["wrk", "-v"]), "uvicorn": _module_version("uvicorn"),
                    "starlette": _module_version("starlette")},
        "settings": {"threads": args.threads, "connections": args.connections, "duration_s": args.duration,
                     "warmup_s": args.warmup, "repeat": args.repeat, "layouts": layouts, "servers": servers},
        "runs": [{k: v for k, v in r.items() if k != "raw"} | {"wrk_output": r["raw"]} for r in runs],
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


def markdown(runs: list[dict[str, Any]], layouts: list[str], servers: list[str]) -> str:
    lines = ["| layout | file | server | req/s | p50 ms | p99 ms | ours / this |", "|---|---|---|---:|---:|---:|---:|"]
    for layout in layouts:
        for target in dict.fromkeys(r["target"] for r in runs):
            rows = {r["server"]: r for r in runs if r["layout"] == layout and r["target"] == target}
            ours = rows.get("ours", {}).get("rps")
            for kind in servers:
                r = rows.get(kind)
                if r is None:
                    continue
                size = r["bytes"]["gzip_bytes"] if target.endswith("gzip") else r["bytes"]["bytes"]
                ratio = f"{ours / r['rps']:.2f}×" if ours and r["rps"] and kind != "ours" else ""
                label = f"{target} ({size / 1000:.1f} KB)"
                lines.append(f"| {layout} | {label} | {kind} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {ratio} |"
                             .replace(",", " "))
    lines += ["", "| layout | server | peak RSS (VmHWM) MiB | processes |", "|---|---|---:|---|"]
    for layout in layouts:
        for kind in servers:
            r = next((r for r in runs if r["layout"] == layout and r["server"] == kind), None)
            if r and "memory" in r:
                m = r["memory"]
                procs = ", ".join(f"{p['name']} {p['vmhwm_mib']}" for p in m["processes"])
                lines.append(f"| {layout} | {kind} | {m['sum_vmhwm_mib']} | {procs} |")
    return "\n".join(lines)




def _version(cmd: list[str]) -> str | None:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (done.stdout + done.stderr).strip().splitlines()[0] if (done.stdout + done.stderr).strip() else None


def _module_version(name: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return None


if __name__ == "__main__":
    sys.exit(main())
