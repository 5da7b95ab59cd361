"""The data directory (docs/layout.md): the store file and the published tiles."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cim.store import SqliteStore, open_store

STORE_FILE = "city.gpkg"
TILES_DIR = "tiles"


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def store_path(self) -> Path:
        return self.root / STORE_FILE

    @property
    def tiles_root(self) -> Path:
        return self.root / TILES_DIR

    def open_store(self) -> SqliteStore:
        return open_store(self.store_path)
