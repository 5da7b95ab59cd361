"""Element geometry through ifcopenshell's multi-threaded geometry iterator.

One triangle mesh per element in world coordinates (metres, the project's engineering frame,
openings subtracted as the kernel computes them), with the colour of the style that covers
most of its triangles.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import ifcopenshell.geom
import numpy as np
import numpy.typing as npt


#: ifcopenshell's recommended kernel: CGAL for simple booleans, OpenCASCADE for the rest (about 3x
#: faster than OpenCASCADE alone on the Duplex sample)
GEOMETRY_LIBRARY = "hybrid-cgal-simple-opencascade"


@dataclass
class ElementShape:
    step_id: int
    vertices: npt.NDArray[np.float64]  # (n, 3) metres
    triangles: npt.NDArray[np.int32]   # (m, 3)
    colour: str | None                 # "#rrggbb" sRGB of the dominant style
    transparency: float


def kernel_settings() -> Any:
    """The geometry settings used by the converter and by the benchmark's bare iterator."""
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    settings.set("weld-vertices", True)
    settings.set("apply-default-materials", True)
    return settings


def iterate_shapes(model: Any, products: list[Any], threads: int,
                   progress: Callable[[float], None] | None = None,
                   while_running: Callable[[], None] | None = None) -> Iterator[ElementShape]:
    """Triangulate ``products`` on ``threads`` threads; yields one shape per product that has
    a body (products without geometry are skipped by the kernel). ``while_running`` is called
    once after the kernel threads have started, before the first shape is awaited (with more
    than one thread the kernel works in the background after ``initialize()``); it may read
    ``model`` (parsed eagerly by ``ifcopenshell.open``), never change it."""
    if not products:
        return
    iterator = ifcopenshell.geom.iterator(kernel_settings(), model, max(1, threads), include=products,
                                          geometry_library=GEOMETRY_LIBRARY)
    if not iterator.initialize():
        return
    if while_running is not None:
        while_running()
    last = -1
    while True:
        shape = iterator.get()
        geometry = shape.geometry
        verts = np.frombuffer(geometry.verts_buffer, dtype=np.float64).reshape(-1, 3).copy()
        faces = np.frombuffer(geometry.faces_buffer, dtype=np.int32).reshape(-1, 3).copy()
        if len(faces):
            colour, transparency = _dominant_style(geometry)
            yield ElementShape(int(shape.id), verts, faces, colour, transparency)
        if progress is not None:
            p = iterator.progress()
            if p != last:
                last = p
                progress(p / 100.0)
        if not iterator.next():
            break


def _dominant_style(geometry: Any) -> tuple[str | None, float]:
    materials = geometry.materials
    if not materials:
        return None, 0.0
    ids = np.frombuffer(geometry.material_ids_buffer, dtype=np.int32)
    ids = ids[ids >= 0]
    index = int(np.bincount(ids).argmax()) if len(ids) else 0
    material = materials[min(index, len(materials) - 1)]
    diffuse = material.diffuse
    rgb = [diffuse.r(), diffuse.g(), diffuse.b()]
    colour = "#" + "".join(f"{max(0, min(255, round(c * 255))):02x}" for c in rgb)
    transparency = float(material.transparency) if material.has_transparency else 0.0
    return colour, (transparency if np.isfinite(transparency) else 0.0)
