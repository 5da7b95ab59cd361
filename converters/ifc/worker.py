"""The conversion child process: all ifcopenshell work happens here, so that a crash of the
library (a segfault on a hostile file) ends this process, not the CLI or the server.

Started as ``python -m converters.ifc.worker PATH NAME FRAME_JSON THREADS`` (a fresh
interpreter: no fork after threads, no re-import of the caller's main module). Messages go to
the parent on the original stdout as length-prefixed pickles (8-byte little-endian length);
the library's own output on fd 1 is redirected to stderr. In this order::

    ("frame", frame_spec, report_dict)   once the placement is chosen (before any feature; the
                                         kernel is already running then, docs/ifc.md "Speed")
    ("progress", fraction)               while the geometry kernel runs (0..1)
    ("features", [Feature, ...])         batches, parents before children
    ("done", report_dict)                the end
    ("error", error_class_name, message, details)   instead of the rest, on a library error
"""
from __future__ import annotations

import itertools
import json
import os
import pickle
import struct
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cim.classes import CityClass
from cim.conversion import ConversionReport
from cim.cpus import usable_cpus
from cim.errors import CimError
from cim.feature import Feature
from cim.mesh import Mesh

BATCH = 128


def send(channel: BinaryIO, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    channel.write(struct.pack("<Q", len(data)))
    channel.write(data)
    channel.flush()


def main(argv: list[str]) -> int:
    """Entry point of the child process."""
    path, display_name, frame_json, threads = argv[0], argv[1], argv[2], int(argv[3])
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything the libraries print goes to stderr, not into the message stream
    sys.stdout = sys.stderr
    frame_spec = json.loads(frame_json) if frame_json else None
    try:
        for message in convert(Path(path), display_name, frame_spec, threads):
            send(channel, message)
    except CimError as exc:
        send(channel, ("error", type(exc).__name__, exc.message, exc.details))
    except Exception as exc:  # a bug or an unexpected library error: report it, do not hang
        send(channel, ("error", "ParseError", f"{display_name}: the IFC reader failed: {exc.__class__.__name__}: {exc}",
                       {"file": display_name, "traceback": traceback.format_exc(limit=5)}))
    finally:
        channel.close()
    return 0


def convert(path: Path, display_name: str, frame_spec: dict[str, Any] | None, threads: int) -> Iterator[tuple[Any, ...]]:
    # heavy imports only in the child; pyproj (placement) and shapely (footprints) only once the
    # kernel threads run (see docs/ifc.md "Speed")
    from converters.ifc import geometry, model as model_io
    from converters.ifc.mapping import NOT_IN_FOOTPRINT, surface_type

    report = ConversionReport(source=display_name)
    model = model_io.open_model(path, display_name)
    report.format = model.schema_identifier if hasattr(model, "schema_identifier") else model.schema
    entities = model_io.select_products(model, report)
    with_geometry = [entity for entity, _ in entities.values() if getattr(entity, "Representation", None) is not None]
    features: dict[int, Feature] = {}
    placements: list[Any] = []
    read: list[bool] = []

    def place_and_read() -> None:
        # Georeferencing, property sets, materials and the spatial tree are read on this (the
        # only Python) thread while the kernel's C++ threads triangulate: both only read the
        # model, which ifcopenshell.open() parsed completely (not lazy); see docs/ifc.md "Speed".
        from cim.crs import frame_from_spec
        from converters.ifc.georef import choose_placement

        user = frame_from_spec(frame_spec) if frame_spec else None
        placements.append(choose_placement(model_io.read_georeferencing(model), user, report, display_name))
        features.update(model_io.read_features(model, display_name, report, entities))
        read.append(True)
        _import_footprints()

    progress_messages: list[float] = []
    shapes = geometry.iterate_shapes(model, with_geometry, threads or usable_cpus(),
                                     progress_messages.append, while_running=place_and_read)
    first = next(shapes, None)  # starts the kernel, then runs place_and_read while it works
    if not read:  # nothing for the kernel (or initialize() found nothing): read them now
        place_and_read()
    placement = placements[0]
    yield ("frame", placement.frame.spec(), report.to_dict())
    for shape in itertools.chain([first] if first is not None else [], shapes):
        feature = features.get(shape.step_id)
        if feature is None:
            continue
        entity = model.by_id(shape.step_id)
        mesh = Mesh(placement.apply(shape.vertices), shape.triangles.astype("uint32"))
        mesh.surfaces[:] = int(surface_type(entity))
        feature.geometry[_lod(feature)] = mesh
        if shape.colour:
            feature.attributes["color"] = shape.colour
        if shape.transparency > 0:
            feature.attributes["transparency"] = round(shape.transparency, 3)
        report.count("elements with geometry")
        if progress_messages:
            yield ("progress", progress_messages[-1])
            progress_messages.clear()
    missing = sum(1 for p in with_geometry if not features[p.id()].geometry)
    if missing:
        report.warn(f"{missing} product(s) have a representation that produced no triangles (e.g. only axes, "
                    "curves or a failed boolean); they are kept as features without geometry")
    ordered = _parents_first(list(features.values()), report)
    _building_footprints(ordered, NOT_IN_FOOTPRINT)
    for start in range(0, len(ordered), BATCH):
        yield ("features", ordered[start:start + BATCH])
    yield ("done", report.to_dict())


def _import_footprints() -> None:
    """Import shapely (for the footprints at the end) while the kernel threads triangulate
    (0.1 s off the serial path)."""
    import cim.footprint  # noqa: F401


def _lod(feature: Feature) -> int:
    """IFC bodies are detailed geometry: LOD 3 (exterior) for elements, 4 for interiors/rooms."""
    return 4 if feature.city_class in (CityClass.BUILDING_ROOM, CityClass.BUILDING_FURNITURE) else 3


def _parents_first(features: list[Feature], report: ConversionReport) -> list[Feature]:
    """Depth-first order from the roots, so each top-level feature is followed by its subtree;
    features caught in a parent cycle become roots (with a warning)."""
    by_id = {f.id: f for f in features}
    children: dict[str | None, list[Feature]] = {}
    for f in features:
        key = f.parent if f.parent in by_id else None
        if f.parent is not None and key is None:
            f.parent = None
        children.setdefault(key, []).append(f)
    out: list[Feature] = []
    visited: set[str] = set()

    def walk(roots: list[Feature]) -> None:
        stack = list(reversed(roots))
        while stack:
            f = stack.pop()
            if f.id in visited:
                continue
            visited.add(f.id)
            out.append(f)
            stack.extend(reversed(children.get(f.id, [])))

    walk(children.get(None, []))
    for f in features:
        if f.id not in visited:
            report.warn(f"{f.source.original_class} {f.id} is part of a cycle of parent links; imported as a top-level feature")
            f.parent = None
            walk([f])
    return out


def _building_footprints(ordered: list[Feature], excluded: frozenset[CityClass]) -> None:
    """Give each Building (and BuildingPart) the plan outline of its elements' meshes; GIS
    footprint exports and the store's footprint table use it."""
    children: dict[str, list[Feature]] = {}
    for f in ordered:
        if f.parent is not None:
            children.setdefault(f.parent, []).append(f)
    for f in ordered:
        if f.city_class not in (CityClass.BUILDING, CityClass.BUILDING_PART):
            continue
        meshes: list[Mesh] = []
        stack = [f]
        while stack:
            node = stack.pop()
            if node.city_class not in excluded:
                meshes.extend(m for m in node.geometry.values() if not m.is_empty)
            stack.extend(children.get(node.id, []))
        if meshes:
            from cim.footprint import footprint_from_meshes

            f.footprint = footprint_from_meshes(meshes)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
