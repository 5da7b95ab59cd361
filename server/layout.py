"""The data directory (docs/layout.md): the store file and the published tiles."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store (numpy, shapely) is imported when opened: keeps `cim` start-up light
    from cim.store import SqliteStore

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
        from cim.store import open_store

        return open_store(self.store_path)
