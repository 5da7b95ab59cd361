"""The jobs table of the embedded store (docs/jobs.md).

It lives in a companion SQLite file next to the city store (``city.gpkg`` ->
``city.jobs.sqlite``): SQLite has one writer per database file, and a dataset import holds the
city store's write lock for its whole transaction (decision 5), during which the job's worker must
still write its progress and the server must still create jobs for new uploads. The file is an
implementation detail of :class:`cim.store.SqliteStore`; callers only see the Store methods.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cim.errors import ConflictError, InputError, JobNotFoundError, StoreError
from cim.store.base import JOB_STATES, JobRecord
from cim.store.connections import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cim_jobs (
  id TEXT PRIMARY KEY, state TEXT NOT NULL, dataset TEXT NOT NULL, params TEXT NOT NULL,
  progress TEXT NOT NULL, report TEXT, error TEXT, pid INTEGER,
  created TEXT NOT NULL, updated TEXT NOT NULL, started TEXT, finished TEXT);
CREATE INDEX IF NOT EXISTS cim_jobs_state ON cim_jobs (state);
"""
_JSON_FIELDS = ("progress", "report", "error")
_FIELDS = ("state", "progress", "report", "error", "pid", "started", "finished")
_COLUMNS = "id, state, dataset, params, progress, report, error, pid, created, updated, started, finished"


def jobs_path(store_path: Path) -> Path:
    """``city.gpkg`` -> ``city.jobs.sqlite`` (same folder)."""
    return store_path.with_name(store_path.stem + ".jobs.sqlite")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class SqliteJobTable:
    """Thread-safe: each thread gets its own connection; every call is its own short transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connections = ThreadConnections(path)
        try:
            self._conn().executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the job table {path}: {exc}", path=str(path)) from exc

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    def create(self, job_id: str, dataset: str, params: dict[str, Any]) -> JobRecord:
        stamp = now()
        progress = {"stage": "queued", "percent": 0.0, "messages": []}
        try:
            self._conn().execute(f"INSERT INTO cim_jobs ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                 (job_id, "queued", dataset, json.dumps(params), json.dumps(progress),
                                  None, None, None, stamp, stamp, None, None))
        except sqlite3.IntegrityError as exc:
            raise ConflictError(f"a job with id '{job_id}' already exists", job=job_id) from exc
        return self.get(job_id)

    def get(self, job_id: str) -> JobRecord:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM cim_jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job with id '{job_id}'", job=job_id)
        return _record(row)

    def list(self, states: Iterable[str] | None = None, limit: int | None = None) -> list[JobRecord]:
        sql, args = f"SELECT {_COLUMNS} FROM cim_jobs", []  # type: str, list[Any]
        if states is not None:
            wanted = list(states)
            sql += f" WHERE state IN ({','.join('?' * len(wanted))})"
            args += wanted
        sql += " ORDER BY created DESC, rowid DESC LIMIT ?"
        args.append(-1 if limit is None else limit)
        return [_record(r) for r in self._conn().execute(sql, args)]

    def update(self, job_id: str, only_if: Iterable[str] | None = None, **changes: Any) -> bool:
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise InputError(f"unknown job fields: {sorted(unknown)}")
        if "state" in changes and changes["state"] not in JOB_STATES:
            raise InputError(f"unknown job state '{changes['state']}'")
        sets, args = ["updated = ?"], [now()]  # type: list[str], list[Any]
        for name, value in changes.items():
            sets.append(f"{name} = ?")
            args.append(json.dumps(value, ensure_ascii=False) if name in _JSON_FIELDS and value is not None else value)
        sql = f"UPDATE cim_jobs SET {', '.join(sets)} WHERE id = ?"
        args.append(job_id)
        if only_if is not None:
            allowed = list(only_if)
            sql += f" AND state IN ({','.join('?' * len(allowed))})"
            args += allowed
        changed = self._conn().execute(sql, args).rowcount > 0
        if not changed:
            self.get(job_id)  # JobNotFoundError for an unknown job; False for a state mismatch
        return changed

    def delete(self, job_id: str) -> None:
        if self._conn().execute("DELETE FROM cim_jobs WHERE id = ?", (job_id,)).rowcount == 0:
            raise JobNotFoundError(f"no job with id '{job_id}'", job=job_id)


def _record(r: tuple[Any, ...]) -> JobRecord:
    return JobRecord(id=r[0], state=r[1], dataset=r[2], params=json.loads(r[3]), progress=json.loads(r[4]),
                     report=json.loads(r[5]) if r[5] else None, error=json.loads(r[6]) if r[6] else None,
                     pid=r[7], created=r[8], updated=r[9], started=r[10], finished=r[11])
