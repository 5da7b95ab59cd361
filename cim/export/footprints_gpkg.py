"""Footprints as a GeoPackage file that GDAL/QGIS open: one MultiPolygon table ``footprints`` in
the export CRS (x = easting/longitude, the GeoPackage axis convention), with an R*Tree index and
the columns of :data:`cim.export.footprints.COLUMNS` plus ``attributes`` (JSON text).

Written with the same GeoPackage pieces as the store (:mod:`cim.store.gpkg`), into a temporary
file renamed into place when complete.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from cim.crs import crs_name, crs_wkt1
from cim.export.footprints import COLUMNS, ExportedFootprint, properties
from cim.export.output_crs import OutputCrs
from cim.export.output_file import atomic_output
from cim.store import gpkg

TABLE = "footprints"


def write_gpkg(items: Iterable[ExportedFootprint], crs: OutputCrs, path: Path) -> int:
    """Write the footprints (whose geometries are in ``crs`` with x = easting/longitude, i.e.
    ``crs.lat_first`` False) to ``path``; returns the feature count."""
    if crs.lat_first:
        raise ValueError("GeoPackage geometries are x = easting/longitude; select with authority_axis_order=False")
    with atomic_output(path, suffix=".gpkg") as tmp:
        return _write(items, crs, tmp)


def _write(items: Iterable[ExportedFootprint], crs: OutputCrs, path: Path) -> int:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        gpkg.register_functions(conn)
        conn.execute(f"PRAGMA application_id = {gpkg.APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {gpkg.USER_VERSION}")
        with conn:
            gpkg.create_core(conn)
            if crs.epsg != 4326:
                gpkg.add_srs(conn, crs.epsg, crs_name(crs.epsg), crs_wkt1(crs.epsg))
            columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS.items()) + ", attributes TEXT"
            gpkg.create_feature_table(conn, TABLE, columns, "MULTIPOLYGON", crs.epsg,
                                      f"Footprints with height range and key attributes, {crs.name}")
            names = list(COLUMNS) + ["attributes"]
            sql = (f'INSERT INTO "{TABLE}" (geom, {", ".join(chr(34) + c + chr(34) for c in names)}) '
                   f'VALUES (?, {", ".join("?" * len(names))})')
            n = 0
            bounds = [float("inf"), float("inf"), float("-inf"), float("-inf")]
            batch: list[tuple[object, ...]] = []
            for item in items:
                geom = _multi(item.geometry)
                props = properties(item.row)
                props["attributes"] = json.dumps(props["attributes"], ensure_ascii=False)
                batch.append((gpkg.encode_geometry(geom, crs.epsg), *[props[c] for c in names]))
                x0, y0, x1, y1 = geom.bounds
                bounds = [min(bounds[0], x0), min(bounds[1], y0), max(bounds[2], x1), max(bounds[3], y1)]
                n += 1
                if len(batch) >= 1000:
                    conn.executemany(sql, batch)
                    batch.clear()
            conn.executemany(sql, batch)
            if n:
                conn.execute("UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ? WHERE table_name = ?",
                             (*bounds, TABLE))
        return n
    finally:
        conn.close()


def _multi(geom: BaseGeometry) -> BaseGeometry:
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    if isinstance(geom, MultiPolygon):
        return geom
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polys) if polys else shapely.MultiPolygon()
