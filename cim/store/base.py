"""The store's narrow interface, implemented by the embedded SQLite/GeoPackage store and, later,
by PostGIS. Contract tests in ``tests/test_store_contract.py`` run against every implementation."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from shapely.geometry.base import BaseGeometry

from cim.feature import Feature


@dataclass
class DatasetInfo:
    """A dataset: one import of one or more files that share a source frame."""

    name: str
    frame: dict[str, Any]
    sources: list[str]
    feature_count: int
    class_counts: dict[str, int]
    bbox: tuple[float, float, float, float] | None  # lon/lat (west, south, east, north)
    height_range: tuple[float, float] | None  # metres
    report: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    updated: str = ""
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "frame": self.frame, "sources": self.sources,
            "feature_count": self.feature_count, "class_counts": self.class_counts,
            "bbox": list(self.bbox) if self.bbox else None,
            "height_range": list(self.height_range) if self.height_range else None,
            "report": self.report, "created": self.created, "updated": self.updated, "version": self.version,
        }


@dataclass
class FeatureIndex:
    """Light per-feature data for partitioning, as parallel arrays (one row per feature that has
    geometry): store keys, source-frame bounds (n, 6: min xyz, max xyz) and triangle counts."""

    keys: npt.NDArray[np.int64]
    bounds: npt.NDArray[np.float64]
    triangles: npt.NDArray[np.int64]
    classes: list[str]

    def __len__(self) -> int:
        return int(len(self.keys))


@dataclass
class FootprintRow:
    feature_id: str
    dataset: str
    city_class: str
    name: str | None
    geometry: BaseGeometry  # lon/lat (EPSG:4326)
    height_min: float | None
    height_max: float | None
    attributes: dict[str, Any]


JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE_JOB_STATES = ("queued", "running")


@dataclass
class JobRecord:
    """A conversion job (docs/jobs.md). ``params`` is what the worker needs (files, dataset,
    placement); ``progress`` is ``{"stage", "percent", "messages"}``; ``report`` the conversion
    report of a finished import; ``error`` the error (``{"error", "message", ...}``) of a failed job.
    Timestamps are ISO 8601 UTC."""

    id: str
    state: str
    dataset: str
    params: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    pid: int | None = None
    created: str = ""
    updated: str = ""
    started: str | None = None
    finished: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "dataset": self.dataset, "progress": self.progress,
                "report": self.report, "error": self.error, "created": self.created, "updated": self.updated,
                "started": self.started, "finished": self.finished,
                "source": self.params.get("filename"), "placement": self.params.get("placement", {})}


class DatasetWriter(Protocol):
    """Writes one dataset inside a transaction (use as a context manager). Nothing is visible to
    readers until :meth:`commit`; leaving the block without it, or with an exception, discards
    everything and leaves the previous version of the dataset in place."""

    def add(self, feature: Feature, footprint_lonlat: BaseGeometry | None,
            height_range: tuple[float, float] | None) -> None: ...

    def add_many(self, features: Sequence[Feature], footprints_lonlat: Sequence[BaseGeometry | None],
                 height_ranges: Sequence[tuple[float, float] | None]) -> None:
        """:meth:`add` for a batch (the same rows, with the footprints encoded together)."""
        ...

    def add_point_block(self, block: bytes, points: int) -> None:
        """Append an encoded block of points (:mod:`cim.points`) to a point-cloud dataset."""
        ...

    def extend_bbox(self, west: float, south: float, east: float, north: float) -> None:
        """Widen the dataset's lon/lat extent (for features without footprints)."""
        ...

    def commit(self, frame_spec: dict[str, Any], *, sources: list[str], report: dict[str, Any]) -> DatasetInfo: ...

    def __enter__(self) -> "DatasetWriter": ...

    def __exit__(self, *exc: object) -> None: ...


class Store(Protocol):
    """What converters' output goes into and what the tiler, exporter and server read."""

    def list_datasets(self) -> list[DatasetInfo]: ...

    def get_dataset(self, name: str) -> DatasetInfo: ...

    def dataset_writer(self, name: str) -> DatasetWriter:
        """A writer that replaces dataset ``name`` atomically (see :class:`DatasetWriter`)."""
        ...

    def delete_dataset(self, name: str) -> None: ...

    def feature_index(self, dataset: str, lod: int | None = None) -> FeatureIndex: ...

    def load_features(self, keys: Iterable[int], lod: int | None = None) -> list[Feature]:
        """Features by store key with their geometry (all LODs, or only ``lod`` / the best one
        when ``lod`` is -1)."""
        ...

    def iter_features(self, dataset: str, with_geometry: bool = False) -> Iterator[Feature]: ...

    def footprints(self, bbox: tuple[float, float, float, float] | None = None, *, dataset: str | None = None,
                   limit: int | None = None, offset: int = 0) -> Iterator[FootprintRow]: ...

    # --- jobs (docs/jobs.md) ---------------------------------------------------------------
    def create_job(self, job_id: str, dataset: str, params: dict[str, Any]) -> JobRecord:
        """A new job in state ``queued``; ConflictError if ``job_id`` exists."""
        ...

    def get_job(self, job_id: str) -> JobRecord:
        """The job; :class:`cim.errors.JobNotFoundError` if unknown."""
        ...

    def list_jobs(self, states: Iterable[str] | None = None, limit: int | None = None) -> list[JobRecord]:
        """Jobs, newest first (or only those in ``states``)."""
        ...

    def update_job(self, job_id: str, *, only_if: Iterable[str] | None = None, **changes: Any) -> bool:
        """Change ``state``, ``progress``, ``report``, ``error``, ``pid``, ``started`` or
        ``finished`` of a job. With ``only_if``, only when the job's state is one of those (an
        atomic compare-and-set). True if the job was changed. Must not wait for a dataset import
        that is in progress (progress is written while a dataset transaction is open)."""
        ...

    def delete_job(self, job_id: str) -> None: ...

    def point_block_count(self, dataset: str) -> tuple[int, int]:
        """(blocks, points) stored for a point-cloud dataset (0, 0 for other datasets)."""
        ...

    def point_blocks(self, dataset: str) -> Iterator[bytes]:
        """The encoded point blocks of ``dataset``, one at a time, in write order."""
        ...

    def close(self) -> None: ...
