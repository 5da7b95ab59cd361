"""IFC benchmark: `cim convert FILE` vs `py3dtiles convert FILE` vs the bare ifcopenshell geometry
iterator (same settings, same products, same threads), one run each, in one process tree each.

Wall time, and peak memory as the largest sum of RSS over the command's whole process tree
(sampled from /proc every 20 ms, so worker processes count). Figures go to docs/benchmarks.md.

    make bench-deps                      # .venv-peers with py3dtiles (IFC and LAS extras)
    .venv/bin/python benchmarks/bench_ifc.py [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from proctree import process_tree, tree_memory_kb  # benchmarks/proctree.py (the script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "ifc"
FILES = ["AC20-FZK-Haus.ifc", "duplex.ifc", "Duplex_A_20110907_georeferenced.ifc", "IfcOpenHouse_IFC4.ifc",
         "geographic-referencing-utm.ifc", "geolocation-mapconversion-angle.ifc"]
PLACEMENT = {"IfcOpenHouse_IFC4.ifc": ["--origin", "108.25,16.05,5"],
             "geolocation-mapconversion-angle.ifc": ["--crs", "EPSG:3857"]}


def measure(cmd: list[str], cwd: Path) -> dict[str, object]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_memory_kb(process_tree(proc.pid))[0] * 1024)
        time.sleep(0.02)
    wall = time.perf_counter() - start
    output = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    ok = proc.returncode == 0
    error = "" if ok else (output.strip().splitlines() or ["?"])[-1][:200]
    return {"ok": ok, "wall_s": round(wall, 2), "peak_rss_mb": round(peak / 1e6, 1), "error": error}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--files", nargs="*", default=FILES)
    args = ap.parse_args()
    cim = REPO / ".venv" / "bin" / "cim"
    py = REPO / ".venv" / "bin" / "python"
    peer = REPO / ".venv-peers" / "bin" / "py3dtiles"
    if not peer.exists():
        print("py3dtiles is missing: run `make bench-deps`", file=sys.stderr)
        return 2
    env_threads = {"CIM_IFC_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    rows = []
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[:3]
    with tempfile.TemporaryDirectory(prefix="bench-ifc-") as tmp:
        work = Path(tmp)
        for name in args.files:
            src = DATA / name
            ours = measure([str(cim), "convert", str(src), "--out", str(work / "ours"), *PLACEMENT.get(name, [])], work)
            (work / "peer").mkdir(exist_ok=True)
            theirs = measure([str(peer), "convert", str(src), "--out", str(work / "peer" / "out"), "--overwrite",
                              "--jobs", str(args.threads)], work)
            bare = measure([str(py), str(REPO / "benchmarks" / "bare_ifc_iterator.py"), str(src),
                            "--threads", str(args.threads)], work)
            for d in ("ours", "peer"):
                shutil.rmtree(work / d, ignore_errors=True)
            rows.append({"file": name, "size_mb": round(src.stat().st_size / 1e6, 2), "cim": ours, "py3dtiles": theirs,
                         "bare_iterator": bare})
            print(json.dumps(rows[-1]), flush=True)
    with open("/proc/loadavg") as fh:
        load_after = fh.read().split()[:3]
    print(f"\nthreads {args.threads}; load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print("| file | MB | cim convert s | MB RSS | py3dtiles s | MB RSS | bare iterator s | MB RSS | vs py3dtiles | vs bare |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        c, p, b = r["cim"], r["py3dtiles"], r["bare_iterator"]
        p_txt = f"{p['wall_s']}" if p["ok"] else f"failed ({p['wall_s']}: {p['error'][:60]})"
        vs_p = f"{p['wall_s'] / c['wall_s']:.2f}x" if p["ok"] and c["ok"] else "-"
        vs_b = f"{b['wall_s'] / c['wall_s']:.2f}x" if b["ok"] and c["ok"] else "-"
        print(f"| {r['file']} | {r['size_mb']} | {c['wall_s'] if c['ok'] else 'failed'} | {c['peak_rss_mb']} | {p_txt} | "
              f"{p['peak_rss_mb']} | {b['wall_s']} | {b['peak_rss_mb']} | {vs_p} | {vs_b} |")
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "load_before": load_before, "load_after": load_after,
                                         "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
