"""The CIM store: datasets of features with geometry and footprints.

``open_store(path)`` opens (or creates) the embedded GeoPackage-compatible SQLite store.
"""
from __future__ import annotations

from pathlib import Path

from cim.store.base import ACTIVE_JOB_STATES, JOB_STATES, DatasetInfo, DatasetWriter, FeatureIndex, FootprintRow, JobRecord, Store
from cim.store.sqlite import SqliteStore

__all__ = ["ACTIVE_JOB_STATES", "JOB_STATES", "DatasetInfo", "DatasetWriter", "FeatureIndex", "FootprintRow", "JobRecord", "SqliteStore", "Store", "open_store"]


def open_store(location: str | Path) -> SqliteStore:
    """Open the store at ``location`` (a ``.gpkg``/``.sqlite`` file path)."""
    return SqliteStore(location)
