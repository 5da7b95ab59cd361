"""LiDAR benchmark: py3dtiles vs ``cim convert`` on the same generated cloud, in one run.

    make bench-deps                      # py3dtiles in .venv-peers
    .venv/bin/python benchmarks/bench_las.py                 # 10 M points, LAS and LAZ
    .venv/bin/python benchmarks/bench_las.py --big 100000000 # also: ours on 100 M points (RSS)

Inputs come from ``benchmarks/make_lidar.py`` (deterministic) into ``benchmarks/out/``. Each
command runs as a child process, twice for the time (wall time around it; the faster run
counts, as for the laspy reference) and once more for the memory, sampled every 50 ms over the
child's whole process tree (workers included): the peak of the summed RSS and of the summed PSS
(shared pages counted once). Sampling is kept out of the timed runs: it costs CPU. py3dtiles gets ``--jobs 2 --srs_out 4978`` (without
the latter it leaves the points in the source CRS) and a time limit: it can hang on LAZ. The
laspy row is the decode rate of ``laspy`` with the ``LazrsParallel`` backend (2 cores here).
Results: ``benchmarks/out/bench_las.json`` and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)
from proctree import process_tree, tree_memory_kb

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
OURS = REPO / ".venv" / "bin" / "cim"
PEERS = REPO / ".venv-peers" / "bin" / "py3dtiles"
PYTHON = REPO / ".venv" / "bin" / "python"
DECODE = """
import sys, time, laspy
t = time.perf_counter(); n = 0
with laspy.open(sys.argv[1], laz_backend=laspy.LazBackend.LazrsParallel) as r:
    for chunk in r.chunk_iterator(1_000_000):
        n += len(chunk)
print(n, time.perf_counter() - t)
"""


def _execute(cmd: list[str], limit: float, sample: bool) -> tuple[float, bool, int | None, str, int, int]:
    """Run ``cmd`` once: (wall s, hung, exit code, output, peak tree RSS kB, peak tree PSS kB).
    Memory is sampled only when ``sample`` (reading smaps_rollup of every process of the tree
    20 times a second costs about half a core-second per 5 s run: it would slow the timed runs)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    peak_rss = peak_pss = 0
    hung = False
    while proc.poll() is None:
        if sample:
            rss, pss = tree_memory_kb(process_tree(proc.pid))
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        if time.perf_counter() - start > limit:
            hung = True
            os.killpg(proc.pid, 9)
            proc.wait()
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    return seconds, hung, proc.returncode, output, peak_rss, peak_pss


def run(label: str, cmd: list[str], points: int, limit: float, repeat: int = 2) -> dict[str, Any]:
    """``cmd`` timed ``repeat`` times without memory sampling (the fastest run counts), then once
    more with the tree's RSS/PSS sampled every 50 ms for the memory figures. A run still going
    after ``limit`` s is killed and recorded as hung (and not repeated). The output folder (the
    argument after ``--out``) is removed before each run, so no run pays for deleting the
    previous one's tiles."""
    print(f"-- {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    out = Path(cmd[cmd.index("--out") + 1])
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        seconds, hung, code, output, _, _ = _execute(cmd, limit, sample=False)
        times.append(round(seconds, 2))
        if hung or code != 0:
            break
    ok = not hung and code == 0
    peak_rss = peak_pss = 0
    sampled = None
    if ok:
        shutil.rmtree(out, ignore_errors=True)
        sampled, hung2, code2, output2, peak_rss, peak_pss = _execute(cmd, limit, sample=True)
        if hung2 or code2 != 0:
            ok, hung, code, output = False, hung2, code2, output2
    seconds = min(times)
    row = {"label": label, "command": " ".join(cmd), "points": points, "seconds": seconds, "timed_runs": times,
           "sampled_run_seconds": round(sampled, 2) if sampled else None, "ok": ok, "hung": hung, "exit": code,
           "peak_rss_mb": round(peak_rss / 1024), "peak_pss_mb": round(peak_pss / 1024),
           "points_per_s": round(points / seconds) if ok else None, "tail": output[-600:] if not ok else ""}
    print(f"   {seconds:.1f} s (runs {times}), {row['points_per_s']} points/s, RSS {row['peak_rss_mb']} MB, "
          f"PSS {row['peak_pss_mb']} MB{' HUNG (killed)' if hung else '' if ok else ' FAILED'}", file=sys.stderr, flush=True)
    return row


def decode_rate(path: Path, points: int) -> dict[str, Any]:
    proc = subprocess.run([str(PYTHON), "-c", DECODE, str(path)], capture_output=True, text=True, check=True)
    n, seconds = proc.stdout.split()
    assert int(n) == points
    return {"label": "laspy LazrsParallel decode (LAZ)", "points": points, "seconds": round(float(seconds), 2),
            "points_per_s": round(points / float(seconds)), "ok": True}


def inputs(points: int, laz: bool = True) -> tuple[Path, Path | None]:
    name = f"synthetic_{points // 1_000_000}M" if points % 1_000_000 == 0 else f"synthetic_{points}"
    las = OUT / f"{name}.las"
    paths = [las] + ([OUT / f"{name}.laz"] if laz else [])
    for path in paths:
        if not path.is_file():
            print(f"-- generating {path}", file=sys.stderr, flush=True)
            subprocess.run([str(PYTHON), str(REPO / "benchmarks" / "make_lidar.py"), "--points", str(points),
                            "--out", str(path)], check=True, stdout=subprocess.DEVNULL)
    return las, (paths[1] if laz else None)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| run | points | wall s | points/s | peak RSS MB (tree) | peak PSS MB (tree) | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        note = "hung, killed at the time limit" if r.get("hung") else ("" if r["ok"] else f"failed (exit {r.get('exit')})")
        lines.append(f"| {r['label']} | {r['points']:,} | {r['seconds']} | {r['points_per_s'] or '-'} | "
                     f"{r.get('peak_rss_mb') or '-'} | {r.get('peak_pss_mb') or '-'} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--limit", type=float, default=900.0, help="seconds before a run counts as hung")
    parser.add_argument("--big", type=int, default=0, help="also convert a generated file of this many points (ours)")
    parser.add_argument("--skip-peers", action="store_true")
    args = parser.parse_args(argv)
    if not args.skip_peers and not PEERS.exists():
        print(f"{PEERS} is missing: run 'make bench-deps'", file=sys.stderr)
        return 2
    las, laz = inputs(args.points)
    assert laz is not None
    work = OUT / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    decodes = []
    for kind, path in (("LAS", las), ("LAZ", laz)):
        if not args.skip_peers:
            rows.append(run(f"py3dtiles convert --jobs 2 ({kind})", [str(PEERS), "convert", str(path), "--out",
                            str(work / f"py3dtiles-{kind}"), "--overwrite", "--jobs", "2", "--srs_out", "4978"],
                            args.points, args.limit))
        if kind == "LAZ":
            decodes.append(decode_rate(laz, args.points))
        rows.append(run(f"cim convert ({kind})", [str(OURS), "convert", str(path), "--out", str(work / f"cim-{kind}")],
                        args.points, args.limit))
        if kind == "LAZ":
            decodes.append(decode_rate(laz, args.points))
    # the machine is shared: the decode rate is measured right before and after our LAZ run and the
    # faster one is the reference (the conservative ratio)
    rows.insert(0, max(decodes, key=lambda r: r["points_per_s"]))
    if args.big:
        big, _ = inputs(args.big, laz=False)
        rows.append(run("cim convert (LAS, big)", [str(OURS), "convert", str(big), "--out", str(work / "cim-big")],
                        args.big, args.limit * 10, repeat=1))
    shutil.rmtree(work, ignore_errors=True)
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
              "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "rows": rows}
    by = {r["label"]: r for r in rows}
    ratios = {}
    for kind in ("LAS", "LAZ"):
        ours, peer = by.get(f"cim convert ({kind})"), by.get(f"py3dtiles convert --jobs 2 ({kind})")
        if ours and peer and ours["ok"] and peer["ok"]:
            ratios[f"{kind} speed vs py3dtiles"] = round(ours["points_per_s"] / peer["points_per_s"], 2)
            ratios[f"{kind} RSS vs py3dtiles"] = round(ours["peak_rss_mb"] / max(1, peer["peak_rss_mb"]), 2)
    ours_laz = by.get("cim convert (LAZ)")
    if ours_laz and ours_laz["ok"]:
        ratios["LAZ vs laspy 2-core decode"] = round(ours_laz["points_per_s"] / rows[0]["points_per_s"], 2)
    report["ratios"] = ratios
    (OUT / "bench_las.json").write_text(json.dumps(report, indent=1))
    print(table(rows))
    print()
    print(json.dumps({"ratios": ratios, "loadavg_before": load_before, "loadavg_after": report["loadavg_after"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
