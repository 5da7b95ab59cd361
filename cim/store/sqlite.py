"""The embedded store: one SQLite file per city that is also a GeoPackage.

* ``footprints``: a GeoPackage feature table (MultiPolygon, EPSG:4326) with an R*Tree index, which
  GDAL/QGIS open directly.
* ``cim_datasets``, ``cim_features``, ``cim_geometry``: datasets, features (attributes as JSON)
  and meshes (compact blobs, one per feature and LOD).
* ``cim_point_blocks``: the points of point-cloud datasets as compact blocks
  (:func:`cim.points.encode_block`, ~19 bytes per point), written in the dataset's transaction.

WAL mode: readers (the server) keep seeing the previous version of a dataset while an import
writes the next one in a single transaction.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry.base import BaseGeometry

from cim.classes import CityClass
from cim.errors import DatasetNotFoundError, StoreError
from cim.feature import Feature, Source
from cim.mesh import Mesh
from cim.store import gpkg
from cim.store.base import DatasetInfo, FeatureIndex, FootprintRow, JobRecord
from cim.store.connections import ThreadConnections
from cim.store.sqlite_jobs import SqliteJobTable, jobs_path

SCHEMA_VERSION = 1
FOOTPRINT_TABLE = "footprints"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cim_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cim_datasets (
  name TEXT PRIMARY KEY, frame TEXT NOT NULL, sources TEXT NOT NULL, feature_count INTEGER NOT NULL,
  class_counts TEXT NOT NULL, west REAL, south REAL, east REAL, north REAL, zmin REAL, zmax REAL,
  report TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cim_features (
  key INTEGER PRIMARY KEY, dataset TEXT NOT NULL, id TEXT NOT NULL, class TEXT NOT NULL, parent TEXT,
  name TEXT, source_file TEXT NOT NULL, source_class TEXT NOT NULL, attributes TEXT NOT NULL,
  xmin REAL, ymin REAL, zmin REAL, xmax REAL, ymax REAL, zmax REAL, triangles INTEGER NOT NULL DEFAULT 0,
  UNIQUE (dataset, id));
CREATE INDEX IF NOT EXISTS cim_features_dataset ON cim_features (dataset);
CREATE TABLE IF NOT EXISTS cim_geometry (
  key INTEGER NOT NULL, lod INTEGER NOT NULL, mesh BLOB NOT NULL, PRIMARY KEY (key, lod)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cim_point_blocks (
  dataset TEXT NOT NULL, seq INTEGER NOT NULL, points INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (dataset, seq));
"""

_FOOTPRINT_COLUMNS = ("dataset TEXT NOT NULL, feature_id TEXT NOT NULL, class TEXT NOT NULL, name TEXT, "
                      "height_min REAL, height_max REAL, measured_height REAL, function TEXT, usage TEXT, "
                      "source_file TEXT, feature_key INTEGER NOT NULL")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _setup_connection(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA foreign_keys=OFF")
    gpkg.register_functions(conn)


class SqliteStore:
    """See :class:`cim.store.base.Store`. Thread-safe for one writer and many readers: each
    thread gets its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path, _setup_connection)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the GeoPackage header fields go into the main file before WAL mode takes over, so
            # that GDAL sees them without replaying the WAL
            plain = sqlite3.connect(self.path, timeout=30)
            try:
                if plain.execute("PRAGMA application_id").fetchone()[0] == 0:
                    plain.execute(f"PRAGMA application_id = {gpkg.APPLICATION_ID}")
                    plain.execute(f"PRAGMA user_version = {gpkg.USER_VERSION}")
                    plain.commit()
            finally:
                plain.close()
            conn = self._conn()
            with conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version != gpkg.USER_VERSION:
                    raise StoreError(f"{self.path} is not a CIM store (SQLite user_version {version})", path=str(self.path))
                gpkg.create_core(conn)
                conn.executescript(_SCHEMA)
                gpkg.create_feature_table(conn, FOOTPRINT_TABLE, _FOOTPRINT_COLUMNS, "MULTIPOLYGON", 4326,
                                          "Building and city-object footprints (lon/lat) with height range")
                conn.execute("CREATE INDEX IF NOT EXISTS footprints_dataset ON footprints (dataset)")
                row = conn.execute("SELECT value FROM cim_meta WHERE key='schema_version'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO cim_meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise StoreError(f"{self.path} has store schema {row[0]}, this version reads {SCHEMA_VERSION}",
                                     path=str(self.path))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}", path=str(self.path)) from exc
        self._jobs = SqliteJobTable(jobs_path(self.path))

    # --- connections -----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()
        if hasattr(self, "_jobs"):
            self._jobs.close()

    # --- jobs (in a companion file, see cim/store/sqlite_jobs.py) ---------------------------
    def create_job(self, job_id: str, dataset: str, params: dict[str, Any]) -> JobRecord:
        return self._jobs.create(job_id, dataset, params)

    def get_job(self, job_id: str) -> JobRecord:
        return self._jobs.get(job_id)

    def list_jobs(self, states: Iterable[str] | None = None, limit: int | None = None) -> list[JobRecord]:
        return self._jobs.list(states, limit)

    def update_job(self, job_id: str, *, only_if: Iterable[str] | None = None, **changes: Any) -> bool:
        return self._jobs.update(job_id, only_if, **changes)

    def delete_job(self, job_id: str) -> None:
        self._jobs.delete(job_id)

    # --- datasets --------------------------------------------------------------------------
    def list_datasets(self) -> list[DatasetInfo]:
        rows = self._conn().execute("SELECT * FROM cim_datasets ORDER BY name").fetchall()
        return [_dataset_from_row(r) for r in rows]

    def get_dataset(self, name: str) -> DatasetInfo:
        row = self._conn().execute("SELECT * FROM cim_datasets WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise DatasetNotFoundError(f"no dataset named '{name}'", dataset=name)
        return _dataset_from_row(row)

    def has_dataset(self, name: str) -> bool:
        return self._conn().execute("SELECT 1 FROM cim_datasets WHERE name = ?", (name,)).fetchone() is not None

    def dataset_writer(self, name: str) -> "SqliteDatasetWriter":
        return SqliteDatasetWriter(self, name)

    def delete_dataset(self, name: str) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM cim_datasets WHERE name = ?", (name,)).fetchone() is None:
                raise DatasetNotFoundError(f"no dataset named '{name}'", dataset=name)
            _delete_rows(conn, name)
            conn.execute("DELETE FROM cim_datasets WHERE name = ?", (name,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # --- features --------------------------------------------------------------------------
    def feature_index(self, dataset: str, lod: int | None = None) -> FeatureIndex:
        self.get_dataset(dataset)
        rows = self._conn().execute(
            "SELECT key, xmin, ymin, zmin, xmax, ymax, zmax, triangles, class FROM cim_features "
            "WHERE dataset = ? AND triangles > 0 ORDER BY key", (dataset,)).fetchall()
        if not rows:
            return FeatureIndex(np.zeros(0, np.int64), np.zeros((0, 6)), np.zeros(0, np.int64), [])
        keys = np.array([r[0] for r in rows], np.int64)
        bounds = np.array([r[1:7] for r in rows], np.float64)
        tris = np.array([r[7] for r in rows], np.int64)
        return FeatureIndex(keys, bounds, tris, [r[8] for r in rows])

    def load_features(self, keys: Iterable[int], lod: int | None = -1) -> list[Feature]:
        """Features by key, in the order given. ``lod``: -1 = the best LOD only (default),
        None = every LOD, n = only LOD n."""
        keys = [int(k) for k in keys]
        conn = self._conn()
        out: list[Feature] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = {r[0]: r for r in conn.execute(f"SELECT * FROM cim_features WHERE key IN ({marks})", chunk)}
            geoms: dict[int, dict[int, Mesh]] = {}
            for key, glod, blob in conn.execute(f"SELECT key, lod, mesh FROM cim_geometry WHERE key IN ({marks})", chunk):
                geoms.setdefault(key, {})[glod] = Mesh.from_bytes(blob)
            for key in chunk:
                if key not in rows:
                    continue
                g = geoms.get(key, {})
                if lod == -1 and g:
                    best = max(g)
                    g = {best: g[best]}
                elif lod is not None and lod >= 0:
                    g = {k: v for k, v in g.items() if k == lod}
                out.append(_feature_from_row(rows[key], g))
        return out

    def iter_features(self, dataset: str, with_geometry: bool = False) -> Iterator[Feature]:
        self.get_dataset(dataset)
        conn = self._conn()
        cur = conn.execute("SELECT key FROM cim_features WHERE dataset = ? ORDER BY key", (dataset,))
        while True:
            batch = [r[0] for r in cur.fetchmany(500)]
            if not batch:
                return
            if with_geometry:
                yield from self.load_features(batch, lod=None)
            else:
                marks = ",".join("?" * len(batch))
                for row in conn.execute(f"SELECT * FROM cim_features WHERE key IN ({marks}) ORDER BY key", batch):
                    yield _feature_from_row(row, {})

    # --- point blocks ----------------------------------------------------------------------
    def point_block_count(self, dataset: str) -> tuple[int, int]:
        """(number of point blocks, number of points) of ``dataset``."""
        row = self._conn().execute("SELECT COUNT(*), COALESCE(SUM(points), 0) FROM cim_point_blocks WHERE dataset = ?",
                                   (dataset,)).fetchone()
        return int(row[0]), int(row[1])

    def point_blocks(self, dataset: str) -> Iterator[bytes]:
        """The point blocks of ``dataset`` in the order they were written (one at a time)."""
        conn = self._conn()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM cim_point_blocks WHERE dataset = ? ORDER BY seq", (dataset,))]
        for seq in seqs:
            row = conn.execute("SELECT data FROM cim_point_blocks WHERE dataset = ? AND seq = ?", (dataset, seq)).fetchone()
            if row is not None:
                yield bytes(row[0])

    def footprints(self, bbox: tuple[float, float, float, float] | None = None, *, dataset: str | None = None,
                   limit: int | None = None, offset: int = 0) -> Iterator[FootprintRow]:
        """Footprints (lon/lat) whose envelope meets ``bbox`` (west, south, east, north)."""
        sql = ("SELECT f.geom, f.dataset, f.feature_id, f.class, f.name, f.height_min, f.height_max, c.attributes "
               "FROM footprints f JOIN cim_features c ON c.key = f.feature_key")
        where, args = [], []  # type: list[str], list[Any]
        if bbox is not None:
            where.append("f.fid IN (SELECT id FROM rtree_footprints_geom WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?)")
            args += [bbox[0], bbox[2], bbox[1], bbox[3]]
        if dataset is not None:
            where.append("f.dataset = ?")
            args.append(dataset)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY f.fid LIMIT ? OFFSET ?"
        args += [-1 if limit is None else limit, offset]
        for row in self._conn().execute(sql, args):
            geom = gpkg.decode_geometry(row[0])
            if geom is None:
                continue
            yield FootprintRow(row[2], row[1], row[3], row[4], geom, row[5], row[6], json.loads(row[7]))

    def count_footprints(self, bbox: tuple[float, float, float, float] | None = None, dataset: str | None = None) -> int:
        return sum(1 for _ in self.footprints(bbox, dataset=dataset))


def _delete_rows(conn: sqlite3.Connection, dataset: str) -> None:
    conn.execute("DELETE FROM cim_geometry WHERE key IN (SELECT key FROM cim_features WHERE dataset = ?)", (dataset,))
    conn.execute("DELETE FROM footprints WHERE dataset = ?", (dataset,))
    conn.execute("DELETE FROM cim_point_blocks WHERE dataset = ?", (dataset,))
    conn.execute("DELETE FROM cim_features WHERE dataset = ?", (dataset,))


class SqliteDatasetWriter:
    """One transaction that replaces a dataset; see :class:`cim.store.base.DatasetWriter`."""

    BATCH = 500

    def __init__(self, store: SqliteStore, name: str) -> None:
        self.store = store
        self.name = name
        self._conn = store._conn()
        self._features: list[tuple[Any, ...]] = []
        self._geometry: list[tuple[Any, ...]] = []
        self._footprints: list[tuple[Any, ...]] = []
        self._rtree: list[tuple[int, float, float, float, float]] = []
        self._next_fid = 0
        self._class_counts: dict[str, int] = {}
        self._count = 0
        self._lonlat = [np.inf, np.inf, -np.inf, -np.inf]
        self._z = [np.inf, -np.inf]
        self._next_key = 0
        self._open = False
        self._ids: set[str] = set()
        self._blocks = 0

    def __enter__(self) -> "SqliteDatasetWriter":
        self._conn.execute("BEGIN IMMEDIATE")
        self._open = True
        _delete_rows(self._conn, self.name)
        self._next_key = (self._conn.execute("SELECT COALESCE(MAX(key), 0) FROM cim_features").fetchone()[0]) + 1
        # footprint rows get their fid here and their R*Tree row from add() (no trigger per row)
        self._next_fid = self._conn.execute(
            "SELECT MAX(COALESCE((SELECT MAX(fid) FROM footprints), 0), "
            "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'footprints'), 0))").fetchone()[0] + 1
        gpkg.drop_rtree_insert_trigger(self._conn, FOOTPRINT_TABLE, "geom")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open:
            self._conn.execute("ROLLBACK")
            self._open = False

    def add(self, feature: Feature, footprint_lonlat: BaseGeometry | None,
            height_range: tuple[float, float] | None) -> None:
        self.add_many([feature], [footprint_lonlat], [height_range])

    def add_many(self, features: Sequence[Feature], footprints_lonlat: Sequence[BaseGeometry | None],
                 height_ranges: Sequence[tuple[float, float] | None]) -> None:
        blobs, bounds = gpkg.encode_geometries(footprints_lonlat, 4326)
        ids, name, geometry, rows, class_counts = self._ids, self.name, self._geometry, self._features, self._class_counts
        for feature, blob, fb, height_range in zip(features, blobs, bounds.tolist(), height_ranges):
            fid_ = feature.id
            if fid_ in ids:
                raise StoreError(f"duplicate feature id '{fid_}' in dataset '{name}'", feature=fid_)
            ids.add(fid_)
            key = self._next_key
            self._next_key += 1
            lows, highs = [], []
            best, tri = -1, 0
            for lod, mesh in feature.geometry.items():
                m = len(mesh.triangles)
                if m == 0:
                    continue
                lo, hi = mesh.bounds()
                lows.append(lo)
                highs.append(hi)
                geometry.append((key, int(lod), mesh.to_bytes()))
                if lod > best:
                    best, tri = lod, m
            if len(lows) == 1:
                b = (*lows[0].tolist(), *highs[0].tolist())
            else:
                b = (*np.min(lows, axis=0).tolist(), *np.max(highs, axis=0).tolist()) if lows else (None,) * 6
            cls = feature.city_class.value
            rows.append((key, name, fid_, cls, feature.parent, feature.name, feature.source.file,
                         feature.source.original_class, json.dumps(feature.attributes, ensure_ascii=False), *b, tri))
            if blob is not None:
                attrs = feature.attributes
                w, s, e, n = fb
                fid = self._next_fid
                self._next_fid += 1
                self._footprints.append((
                    fid, blob, name, fid_, cls, feature.name, height_range[0] if height_range else None,
                    height_range[1] if height_range else None,
                    _float_or_none(attrs.get("measuredHeight")), _str_or_none(attrs.get("function")),
                    _str_or_none(attrs.get("usage")), feature.source.file, key))
                self._rtree.append((fid, w, e, s, n))
                ll = self._lonlat
                if w < ll[0]:
                    ll[0] = w
                if s < ll[1]:
                    ll[1] = s
                if e > ll[2]:
                    ll[2] = e
                if n > ll[3]:
                    ll[3] = n
            if height_range is not None:
                z = self._z
                if height_range[0] < z[0]:
                    z[0] = height_range[0]
                if height_range[1] > z[1]:
                    z[1] = height_range[1]
            class_counts[cls] = class_counts.get(cls, 0) + 1
            self._count += 1
            if len(rows) >= self.BATCH:
                self._flush()

    def add_point_block(self, block: bytes, points: int) -> None:
        """Append one encoded point block (:func:`cim.points.encode_block`) to the dataset."""
        self._conn.execute("INSERT INTO cim_point_blocks VALUES (?,?,?,?)", (self.name, self._blocks, points, block))
        self._blocks += 1

    def extend_bbox(self, west: float, south: float, east: float, north: float) -> None:
        """Widen the dataset's lon/lat extent (for features without footprints)."""
        self._lonlat = [min(self._lonlat[0], west), min(self._lonlat[1], south),
                        max(self._lonlat[2], east), max(self._lonlat[3], north)]

    def _flush(self) -> None:
        c = self._conn
        c.executemany("INSERT INTO cim_features VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", self._features)
        c.executemany("INSERT INTO cim_geometry VALUES (?,?,?)", self._geometry)
        c.executemany("INSERT INTO footprints (fid, geom, dataset, feature_id, class, name, height_min, height_max, "
                      "measured_height, function, usage, source_file, feature_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      self._footprints)
        c.executemany(f'INSERT INTO "rtree_{FOOTPRINT_TABLE}_geom" VALUES (?,?,?,?,?)', self._rtree)
        self._features.clear()
        self._geometry.clear()
        self._footprints.clear()
        self._rtree.clear()

    def commit(self, frame_spec: dict[str, Any], *, sources: list[str], report: dict[str, Any]) -> DatasetInfo:
        if not self._open:
            raise StoreError("dataset writer is not open")
        self._flush()
        c = self._conn
        old = c.execute("SELECT created, version FROM cim_datasets WHERE name = ?", (self.name,)).fetchone()
        now = _now()
        bbox = self._lonlat if np.isfinite(self._lonlat[0]) else [None] * 4
        z = self._z if np.isfinite(self._z[0]) else [None, None]
        c.execute("INSERT OR REPLACE INTO cim_datasets VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
            self.name, json.dumps(frame_spec), json.dumps(sources), self._count, json.dumps(self._class_counts),
            *bbox, *z, json.dumps(report, ensure_ascii=False), old[0] if old else now, now, (old[1] + 1) if old else 1))
        if bbox[0] is not None:
            c.execute("UPDATE gpkg_contents SET min_x = MIN(COALESCE(min_x, ?), ?), min_y = MIN(COALESCE(min_y, ?), ?), "
                      "max_x = MAX(COALESCE(max_x, ?), ?), max_y = MAX(COALESCE(max_y, ?), ?), "
                      "last_change = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name = ?",
                      (bbox[0], bbox[0], bbox[1], bbox[1], bbox[2], bbox[2], bbox[3], bbox[3], FOOTPRINT_TABLE))
        gpkg.create_rtree_triggers(c, FOOTPRINT_TABLE, "geom")
        c.execute("COMMIT")
        self._open = False
        return self.store.get_dataset(self.name)


def _float_or_none(v: Any) -> float | None:
    try:
        return None if v is None or isinstance(v, bool) else float(v)
    except (TypeError, ValueError):
        return None


def _str_or_none(v: Any) -> str | None:
    return None if v is None else str(v)


def _dataset_from_row(r: tuple[Any, ...]) -> DatasetInfo:
    bbox = None if r[5] is None else (r[5], r[6], r[7], r[8])
    z = None if r[9] is None else (r[9], r[10])
    return DatasetInfo(r[0], json.loads(r[1]), json.loads(r[2]), r[3], json.loads(r[4]), bbox, z,
                       json.loads(r[11]), r[12], r[13], r[14])


def _feature_from_row(r: tuple[Any, ...], geometry: dict[int, Mesh]) -> Feature:
    return Feature(id=r[2], city_class=CityClass(r[3]), parent=r[4], name=r[5],
                   source=Source(file=r[6], original_class=r[7]), attributes=json.loads(r[8]), geometry=geometry)
