"""GeoPackage 1.4 pieces: the geometry blob, the core tables and the R*Tree index extension.

Only what the store needs to be a GeoPackage that GDAL/QGIS open: see OGC 12-128r19.
"""
from __future__ import annotations

import sqlite3
import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10400

_ENVELOPE_XY = 1
_HEADER = struct.Struct("<2sBBi4d")


def encode_geometry(geom: BaseGeometry | None, srs_id: int) -> bytes | None:
    """Standard GeoPackage binary: header with an xy envelope, then little-endian WKB
    (:func:`encode_geometries` for many at once)."""
    if geom is None:
        return None
    if geom.is_empty:
        flags = 0b00010001  # empty, no envelope, little endian
        return struct.pack("<2sBBi", b"GP", 0, flags, srs_id) + shapely.to_wkb(geom, byte_order=1)
    minx, miny, maxx, maxy = geom.bounds
    flags = (_ENVELOPE_XY << 1) | 1
    return _HEADER.pack(b"GP", 0, flags, srs_id, minx, maxx, miny, maxy) + shapely.to_wkb(geom, byte_order=1, output_dimension=2)


def encode_geometries(geoms: Sequence[BaseGeometry | None], srs_id: int
                      ) -> tuple[list[bytes | None], npt.NDArray[np.float64]]:
    """:func:`encode_geometry` for many geometries with one shapely call per step; returns the
    blobs (None for None or empty geometries) and their bounds (n, 4: minx, miny, maxx, maxy)."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    bounds = shapely.bounds(arr)
    wkbs = shapely.to_wkb(arr, byte_order=1, output_dimension=2)
    empty = shapely.is_empty(arr)
    flags = (_ENVELOPE_XY << 1) | 1
    pack = _HEADER.pack
    blobs: list[bytes | None] = [
        None if wkb is None or e else pack(b"GP", 0, flags, srs_id, b[0], b[2], b[1], b[3]) + wkb
        for wkb, e, b in zip(wkbs.tolist(), empty.tolist(), bounds.tolist())]
    return blobs, bounds


def _envelope_size(flags: int) -> int:
    return {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get((flags >> 1) & 0b111, 0)


def decode_geometry(blob: bytes | None) -> BaseGeometry | None:
    if blob is None:
        return None
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry blob")
    return shapely.from_wkb(bytes(blob[8 + _envelope_size(blob[3]):]))


def blob_envelope(blob: bytes | None) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) from the header, or None for empty geometries."""
    if blob is None or len(blob) < 8 or blob[3] & 0b00010000:
        return None
    if _envelope_size(blob[3]) == 0:
        g = decode_geometry(blob)
        if g is None or g.is_empty:
            return None
        x0, y0, x1, y1 = g.bounds
        return x0, x1, y0, y1
    return struct.unpack_from("<4d", blob, 8)


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the GeoPackage R*Tree triggers call (GDAL registers its own)."""
    def part(i: int):  # noqa: ANN202 - tiny closure
        def fn(blob: bytes | None) -> float | None:
            env = blob_envelope(blob)
            return None if env is None else env[i]
        return fn
    conn.create_function("ST_MinX", 1, part(0), deterministic=True)
    conn.create_function("ST_MaxX", 1, part(1), deterministic=True)
    conn.create_function("ST_MinY", 1, part(2), deterministic=True)
    conn.create_function("ST_MaxY", 1, part(3), deterministic=True)
    conn.create_function("ST_IsEmpty", 1, lambda b: None if b is None else int(blob_envelope(b) is None), deterministic=True)


CORE_SQL = """
CREATE TABLE IF NOT EXISTS gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE IF NOT EXISTS gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE IF NOT EXISTS gpkg_extensions (
  table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
  scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
"""

_WGS84_WKT = ('GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
              'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
              'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]')


def create_core(conn: sqlite3.Connection) -> None:
    conn.executescript(CORE_SQL)
    conn.executemany(
        "INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)",
        [("WGS 84 geodetic", 4326, "EPSG", 4326, _WGS84_WKT, "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"),
         ("Undefined cartesian SRS", -1, "NONE", -1, "undefined", "undefined cartesian coordinate reference system"),
         ("Undefined geographic SRS", 0, "NONE", 0, "undefined", "undefined geographic coordinate reference system")])


def add_srs(conn: sqlite3.Connection, epsg: int, name: str, wkt: str) -> None:
    conn.execute("INSERT OR IGNORE INTO gpkg_spatial_ref_sys VALUES (?,?,?,?,?,?)", (name, epsg, "EPSG", epsg, wkt, name))


def create_feature_table(conn: sqlite3.Connection, table: str, columns_sql: str, geometry_type: str,
                         srs_id: int, description: str = "") -> None:
    """A feature table with ``fid`` and ``geom`` columns, registered, with an R*Tree index."""
    conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (fid INTEGER PRIMARY KEY AUTOINCREMENT, '
                 f'geom {geometry_type}, {columns_sql})')
    conn.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) "
                 "VALUES (?, 'features', ?, ?, ?)", (table, table, description, srs_id))
    conn.execute("INSERT OR IGNORE INTO gpkg_geometry_columns VALUES (?, 'geom', ?, ?, 0, 0)",
                 (table, geometry_type, srs_id))
    create_rtree(conn, table, "geom")


def create_rtree(conn: sqlite3.Connection, t: str, c: str) -> None:
    """The GeoPackage ``gpkg_rtree_index`` extension: virtual table plus the spec's triggers."""
    r = f"rtree_{t}_{c}"
    conn.execute(f'CREATE VIRTUAL TABLE IF NOT EXISTS "{r}" USING rtree(id, minx, maxx, miny, maxy)')
    conn.execute("INSERT OR IGNORE INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', "
                 "'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')", (t, c))
    create_rtree_triggers(conn, t, c)


def drop_rtree_insert_trigger(conn: sqlite3.Connection, t: str, c: str) -> None:
    """For a bulk insert inside one transaction that writes the R*Tree rows itself (the trigger
    calls five SQL functions per row); :func:`create_rtree_triggers` puts it back before the
    commit, and a rollback restores it."""
    conn.execute(f'DROP TRIGGER IF EXISTS "rtree_{t}_{c}_insert"')


def create_rtree_triggers(conn: sqlite3.Connection, t: str, c: str) -> None:
    """The six triggers of the spec (those that exist are kept)."""
    r = f"rtree_{t}_{c}"
    env = f'ST_MinX(NEW."{c}"), ST_MaxX(NEW."{c}"), ST_MinY(NEW."{c}"), ST_MaxY(NEW."{c}")'
    triggers = {
        "insert": f'AFTER INSERT ON "{t}" WHEN (new."{c}" NOT NULL AND NOT ST_IsEmpty(NEW."{c}")) BEGIN '
                  f'INSERT OR REPLACE INTO "{r}" VALUES (NEW."fid", {env}); END',
        "update1": f'AFTER UPDATE OF "{c}" ON "{t}" WHEN OLD."fid" = NEW."fid" AND (NEW."{c}" NOTNULL AND NOT ST_IsEmpty(NEW."{c}")) '
                   f'BEGIN INSERT OR REPLACE INTO "{r}" VALUES (NEW."fid", {env}); END',
        "update2": f'AFTER UPDATE OF "{c}" ON "{t}" WHEN OLD."fid" = NEW."fid" AND (NEW."{c}" ISNULL OR ST_IsEmpty(NEW."{c}")) '
                   f'BEGIN DELETE FROM "{r}" WHERE id = OLD."fid"; END',
        "update3": f'AFTER UPDATE ON "{t}" WHEN OLD."fid" != NEW."fid" AND (NEW."{c}" NOTNULL AND NOT ST_IsEmpty(NEW."{c}")) '
                   f'BEGIN DELETE FROM "{r}" WHERE id = OLD."fid"; INSERT OR REPLACE INTO "{r}" VALUES (NEW."fid", {env}); END',
        "update4": f'AFTER UPDATE ON "{t}" WHEN OLD."fid" != NEW."fid" AND (NEW."{c}" ISNULL OR ST_IsEmpty(NEW."{c}")) '
                   f'BEGIN DELETE FROM "{r}" WHERE id IN (OLD."fid", NEW."fid"); END',
        "delete": f'AFTER DELETE ON "{t}" WHEN old."{c}" NOT NULL BEGIN DELETE FROM "{r}" WHERE id = OLD."fid"; END',
    }
    for name, body in triggers.items():
        conn.execute(f'CREATE TRIGGER IF NOT EXISTS "{r}_{name}" {body}')
