#!/usr/bin/env python3
"""CityGML import speed and memory against the peer baseline, raw ``lxml.etree.iterparse``.

    python benchmarks/bench_citygml_import.py                 # 100 MB and 25 MB CityGML 2.0 districts
    python benchmarks/bench_citygml_import.py --size-mb 20 --small-mb 5 --profile

Generates (once, cached in benchmarks/out/) synthetic Da Nang districts with
fixtures/make_danang_district.py, then runs every measurement in a fresh subprocess so that peak
RSS (``ru_maxrss`` from ``os.wait4``) belongs to that measurement alone, in interleaved rounds
(one run of each measurement per round; the fastest run of each counts):

* ``iterparse``     raw lxml iterparse, end events on cityObjectMember, clear + drop previous siblings
* ``iterparse+xyz`` the same, also turning every gml:posList into a float array (a floor for any
                    reader that looks at coordinates; informative)
* ``features``      ``converters.open_input(file).features()``, iterated without a store
* ``ingest``        ``cim.ingest.ingest`` into a fresh SQLite/GeoPackage store

Prints a markdown table and writes benchmarks/out/citygml<version>_import.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from machine import cpu_model  # benchmarks/machine.py (the script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
GENERATOR = REPO / "fixtures" / "make_danang_district.py"
CORE_NS = ("http://www.opengis.net/citygml/1.0", "http://www.opengis.net/citygml/2.0", "http://www.opengis.net/citygml/3.0")
GML_NS = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")
MODES = ("iterparse", "iterparse+xyz", "features", "ingest")


# --- children: one measurement each ---------------------------------------------------------------

def _child_iterparse(path: Path, coordinates: bool) -> dict[str, Any]:
    from lxml import etree

    members = [f"{{{ns}}}cityObjectMember" for ns in CORE_NS]
    tags = members + ([f"{{{ns}}}posList" for ns in GML_NS] if coordinates else [])
    if coordinates:
        import numpy as np
    count = points = 0
    for _, element in etree.iterparse(str(path), events=("end",), tag=tags, huge_tree=True, resolve_entities=False):
        if coordinates and element.tag.endswith("posList"):
            points += len(np.array(element.text.split(), dtype=np.float64)) // 3
            continue
        count += 1
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]
    return {"features": count, "points": points}


def _child_features(path: Path) -> dict[str, Any]:
    import converters

    reading = converters.open_input(path)
    count = triangles = 0
    for feature in reading.features():
        count += 1
        for mesh in feature.geometry.values():
            triangles += mesh.triangle_count
    return {"features": count, "triangles": triangles, "report": reading.report.to_dict()}


def _child_ingest(path: Path, store_dir: Path) -> dict[str, Any]:
    import converters
    from cim.ingest import ingest
    from cim.store import open_store

    store_path = store_dir / "city.gpkg"
    store = open_store(store_path)
    try:
        info = ingest(store, "bench", [converters.open_input(path)])
    finally:
        store.close()
    size = sum(p.stat().st_size for p in store_dir.iterdir())
    return {"features": info.feature_count, "class_counts": info.class_counts, "store_mb": size / 1e6}


def _preload(mode: str) -> None:
    """Import what a measurement uses before its clock starts (module imports are not reading)."""
    import lxml.etree  # noqa: F401
    if mode != "iterparse":
        import numpy  # noqa: F401
    if mode in ("features", "ingest"):
        import cim.ingest  # noqa: F401
        import cim.store  # noqa: F401
        import converters.citygml  # noqa: F401


def child_main(mode: str, path: Path, result: Path, profile: Path | None) -> None:
    _preload(mode)
    store_dir = Path(tempfile.mkdtemp(prefix="bench-store-", dir=OUT)) if mode == "ingest" else None
    try:
        run = {"iterparse": lambda: _child_iterparse(path, False), "iterparse+xyz": lambda: _child_iterparse(path, True),
               "features": lambda: _child_features(path), "ingest": lambda: _child_ingest(path, store_dir)}[mode]  # type: ignore[arg-type]
        if profile is not None:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            start = time.perf_counter()
            out = profiler.runcall(run)
            seconds = time.perf_counter() - start
            with open(profile, "w") as fh:
                for key in ("tottime", "cumulative"):
                    fh.write(f"=== sorted by {key} ===\n")
                    pstats.Stats(profiler, stream=fh).sort_stats(key).print_stats(30)
        else:
            start = time.perf_counter()
            out = run()
            seconds = time.perf_counter() - start
        out["seconds"] = seconds
        result.write_text(json.dumps(out))
    finally:
        if store_dir is not None:
            shutil.rmtree(store_dir, ignore_errors=True)


# --- parent ----------------------------------------------------------------------------------------

def measure_rounds(modes: list[str], path: Path, repeat: int) -> list[dict[str, Any]]:
    """``repeat`` rounds of every mode, one run of each per round (the machine is shared and its
    speed drifts over minutes: interleaving gives every mode the same conditions; the rounds'
    own ratios are in the summary), then the best of each mode (:func:`best_of`)."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(max(1, repeat)):
        for mode in modes:
            runs[mode].append(measure(mode, path))
    return [best_of(mode, path, runs[mode]) for mode in modes]


def best_of(mode: str, path: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of ``runs``; peak RSS is the largest seen."""
    best = dict(min(runs, key=lambda r: r["seconds"]))
    best["all_seconds"] = [r["seconds"] for r in runs]
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    print(f"  {mode:14s} {path.name}: best {best['seconds']:.2f} s of {best['all_seconds']}, "
          f"{best['peak_rss_mb']:.0f} MB RSS", file=sys.stderr)
    return best


def measure(mode: str, path: Path, profile: Path | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its peak RSS comes from ``os.wait4``."""
    with tempfile.NamedTemporaryFile(suffix=".json", dir=OUT, delete=False) as fh:
        result = Path(fh.name)
    cmd = [sys.executable, __file__, "--child", mode, "--file", str(path), "--result", str(result)]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        if proc.returncode != 0:
            raise SystemExit(f"{mode} on {path.name} failed with exit code {proc.returncode}")
        out = json.loads(result.read_text())
    finally:
        result.unlink(missing_ok=True)
    mb = path.stat().st_size / 1e6
    out.update(mode=mode, file=path.name, file_mb=round(mb, 2), process_seconds=round(wall, 3),
               peak_rss_mb=round(usage.ru_maxrss / 1024, 1), mb_per_s=round(mb / out["seconds"], 2),
               features_per_s=round(out["features"] / out["seconds"], 1))
    out["seconds"] = round(out["seconds"], 3)
    return out


def district(size_mb: float, version: int = 2) -> Path:
    """The cached synthetic district of about ``size_mb`` MB (regenerated when the generator changes)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"danang_{size_mb:g}mb_citygml{version}.gml"
    meta = path.with_suffix(".meta.json")
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("generator_sha256") == digest:
        return path
    cmd = [sys.executable, str(GENERATOR), "--version", str(version), "--target-mb", str(size_mb), "--out", str(path)]
    subprocess.run(cmd, check=True)
    meta.write_text(json.dumps({"generator_sha256": digest, "command": cmd[1:]}))
    return path


def machine() -> dict[str, Any]:
    import lxml.etree

    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(), "lxml": lxml.etree.__version__,
            "platform": platform.platform()}


def table(rows: list[dict[str, Any]], baseline: dict[str, dict[str, Any]]) -> str:
    lines = ["| file | measurement | wall s | MB/s | features | features/s | peak RSS MB | vs raw iterparse |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = baseline.get(r["file"])
        ratio = f"{r['mb_per_s'] / base['mb_per_s']:.2f}x" if base else ""
        lines.append(f"| {r['file']} ({r['file_mb']:.0f} MB) | {r['mode']} | {r['seconds']:.2f} | {r['mb_per_s']:.1f} | "
                     f"{r['features']} | {r['features_per_s']:.0f} | {r['peak_rss_mb']:.0f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=100.0, help="the large district (default %(default)s)")
    parser.add_argument("--small-mb", type=float, default=25.0, help="the district for the memory comparison")
    parser.add_argument("--citygml", type=int, choices=(2, 3), default=2, help="CityGML version of the districts")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of all measurements, the fastest of each counts (default %(default)s)")
    parser.add_argument("--profile", action="store_true", help="also cProfile 'ingest' on the small file")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.file, args.result, args.profile_out)
        return 0
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    large, small = district(args.size_mb, args.citygml), district(args.small_mb, args.citygml)
    rows = measure_rounds(modes, large, args.repeat)
    rows += measure_rounds([m for m in ("iterparse", "ingest") if m in modes], small, args.repeat)
    baseline = {r["file"]: r for r in rows if r["mode"] == "iterparse"}
    summary: dict[str, Any] = {}
    ours = {(r["file"], r["mode"]): r for r in rows}
    if (large.name, "ingest") in ours and large.name in baseline:
        summary["ingest_vs_iterparse"] = round(ours[large.name, "ingest"]["mb_per_s"] / baseline[large.name]["mb_per_s"], 3)
        rounds = [p / i for p, i in zip(baseline[large.name]["all_seconds"], ours[large.name, "ingest"]["all_seconds"])]
        summary["ingest_vs_iterparse_by_round"] = [round(r, 3) for r in rounds]
        summary["ingest_vs_iterparse_median_round"] = round(sorted(rounds)[len(rounds) // 2], 3)
    if (large.name, "features") in ours and large.name in baseline:
        summary["features_vs_iterparse"] = round(ours[large.name, "features"]["mb_per_s"] / baseline[large.name]["mb_per_s"], 3)
    if (large.name, "ingest") in ours and (small.name, "ingest") in ours:
        a, b = ours[small.name, "ingest"], ours[large.name, "ingest"]
        summary["ingest_rss_growth"] = {"file_size_ratio": round(b["file_mb"] / a["file_mb"], 2),
                                        "peak_rss_ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 2)}
    if args.profile:
        profile = OUT / f"profile_ingest_citygml{args.citygml}.txt"
        measure("ingest", small, profile)
        summary["profile"] = str(profile.relative_to(REPO))
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "rows": rows, "summary": summary}
    (OUT / f"citygml{args.citygml}_import.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(table(rows, baseline))
    print()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
