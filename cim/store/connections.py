"""One SQLite connection per thread for a store file, opened on first use with the store's
settings (WAL, autocommit mode: transactions are explicit) and all closed together."""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path


class ThreadConnections:
    """``get()`` returns the calling thread's connection to ``path``; ``setup`` runs once on
    each new connection (pragmas, SQL functions)."""

    def __init__(self, path: Path, setup: Callable[[sqlite3.Connection], None] | None = None) -> None:
        self.path = path
        self._setup = setup
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._setup is not None:
                self._setup(conn)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
