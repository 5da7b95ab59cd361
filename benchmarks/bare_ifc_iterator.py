"""The bare baseline of benchmarks/bench_ifc.py: open an IFC file with ifcopenshell and run the
geometry iterator with the converter's settings, threads and product selection, copying each
shape's vertex and index buffers (what any consumer must do), and nothing else."""
from __future__ import annotations

import argparse
import os
import sys

import ifcopenshell
import ifcopenshell.geom
import numpy as np

from converters.ifc.geometry import GEOMETRY_LIBRARY, kernel_settings
from converters.ifc.mapping import city_class


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    model = ifcopenshell.open(args.file)
    products = [p for p in model.by_type("IfcProduct") if city_class(p) is not None and p.Representation is not None]
    iterator = ifcopenshell.geom.iterator(kernel_settings(), model, args.threads, include=products,
                                          geometry_library=GEOMETRY_LIBRARY)
    shapes = triangles = 0
    if iterator.initialize():
        while True:
            g = iterator.get().geometry
            verts = np.frombuffer(g.verts_buffer, dtype=np.float64).copy()
            faces = np.frombuffer(g.faces_buffer, dtype=np.int32).copy()
            shapes += 1
            triangles += len(faces) // 3
            del verts
            if not iterator.next():
                break
    print(f"{shapes} shapes, {triangles} triangles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
