"""Deterministic synthetic aerial LiDAR for benchmarks: a 2.5D scan of a 1 km x 1 km block of
Da Nang (WGS 84 / UTM 49N, EPSG:32649) with terrain, buildings and trees, written as LAS 1.4
point format 7 (RGB) with a WKT CRS, or as its LAZ.

    python benchmarks/make_lidar.py --points 10000000 --out benchmarks/out/synthetic_10M.las
    python benchmarks/make_lidar.py --points 10000000 --out benchmarks/out/synthetic_10M.laz

The same ``--points`` and ``--seed`` give the same points in both files (chunk by chunk).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import laspy
import numpy as np
import pyproj

ORIGIN = (545_000.0, 1_772_000.0)  # UTM 49N, Da Nang High-Tech Park area
SIDE = 1000.0
CHUNK = 1_000_000


def _buildings(rng: np.random.Generator) -> np.ndarray:
    """(n, 5) x0, y0, x1, y1, height of box buildings on a street grid."""
    rows = []
    for gx in range(0, 1000, 100):
        for gy in range(0, 1000, 100):
            if rng.random() < 0.6:
                w, d = rng.uniform(25, 70, 2)
                x0, y0 = gx + rng.uniform(10, 90 - w), gy + rng.uniform(10, 90 - d)
                rows.append((x0, y0, x0 + w, y0 + d, rng.uniform(6, 45)))
    return np.array(rows)


def _chunk(i: int, n: int, seed: int, boxes: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, i])
    x = rng.uniform(0, SIDE, n)
    y = rng.uniform(0, SIDE, n)
    ground = 4.0 + 6.0 * np.sin(x / 170.0) * np.cos(y / 230.0) + 0.05 * rng.standard_normal(n)
    z = ground.copy()
    cls = np.full(n, 2, np.uint8)
    for x0, y0, x1, y1, h in boxes:
        inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
        z[inside] = ground[inside] + h
        cls[inside] = 6
    trees = (cls == 2) & (np.sin(x / 9.0) * np.sin(y / 11.0) > 0.75)
    z[trees] += rng.uniform(2, 14, int(trees.sum()))
    cls[trees] = 5
    rgb = np.empty((n, 3), np.uint16)
    palette = {2: (150, 130, 100), 5: (60, 140, 60), 6: (200, 190, 180)}
    for code, colour in palette.items():
        sel = cls == code
        rgb[sel] = (np.array(colour) + rng.integers(-20, 20, (int(sel.sum()), 3))).clip(0, 255) * 257
    return {"x": x + ORIGIN[0], "y": y + ORIGIN[1], "z": z, "cls": cls, "rgb": rgb,
            "intensity": rng.integers(0, 4096, n).astype(np.uint16),
            "ret": np.where(cls == 5, rng.integers(1, 3, n), 1).astype(np.uint8)}


def write(points: int, out: Path, seed: int = 49) -> Path:
    header = laspy.LasHeader(point_format=7, version="1.4")
    header.scales = np.array([0.001, 0.001, 0.001])
    header.offsets = np.array([ORIGIN[0], ORIGIN[1], 0.0])
    header.add_crs(pyproj.CRS.from_epsg(32649))
    header.generating_software = "open-cim-server make_lidar"
    boxes = _buildings(np.random.default_rng(seed))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    compress = out.suffix.lower() == ".laz"
    with laspy.open(tmp, mode="w", header=header, do_compress=compress,
                    laz_backend=laspy.LazBackend.LazrsParallel if compress else None) as writer:
        for i, start in enumerate(range(0, points, CHUNK)):
            n = min(CHUNK, points - start)
            c = _chunk(i, n, seed, boxes)
            rec = laspy.ScaleAwarePointRecord.zeros(n, header=header)
            rec.x, rec.y, rec.z = c["x"], c["y"], c["z"]
            rec.classification = c["cls"]
            rec.intensity = c["intensity"]
            rec.return_number = c["ret"]
            rec.number_of_returns = np.maximum(c["ret"], np.where(c["cls"] == 5, 2, 1)).astype(np.uint8)
            rec.red, rec.green, rec.blue = c["rgb"][:, 0], c["rgb"][:, 1], c["rgb"][:, 2]
            writer.write_points(rec)
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=49)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    write(args.points, args.out, args.seed)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
