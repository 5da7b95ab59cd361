"""One conversion job in its own process: ``python -m server.job_worker DATA_DIR JOB_ID``.

Started by :class:`server.jobs.JobManager`. Reads the job's parameters from the store, imports the
files (one transaction, ``server.pipeline.import_files``), publishes the tileset (versioned folder
+ ``CURRENT`` switch, ``server.pipeline.publish``) and writes progress, the conversion report and
the final state into the store. Every write is a compare-and-set on state ``running``, so a job the
server has already cancelled or failed (time limit) stays so. If the server dies, this process
notices (its parent changes) and exits.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cim.errors import CimError
from cim.store import SqliteStore
from cim.store.sqlite_jobs import now
from server.layout import DataDir

MAX_MESSAGES = 50
WRITE_EVERY_S = 0.25
AFTER_IMPORT = ("the new data was imported into the store but its tiles were not published: the previous "
                "tileset is still served; run 'cim tile <dataset>' or upload again")


class ProgressWriter:
    """Throttled progress in the store: ``{"stage", "percent", "messages"}``."""

    def __init__(self, store: SqliteStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.progress: dict[str, Any] = {"stage": "starting", "percent": 0.0, "messages": []}
        self._last = 0.0

    def set(self, stage: str, percent: float, message: str | None = None, force: bool = True) -> None:
        self.progress["stage"] = stage
        self.progress["percent"] = round(min(100.0, max(0.0, percent)), 1)
        if message:
            self.progress["messages"] = (self.progress["messages"] + [message])[-MAX_MESSAGES:]
        if force or time.monotonic() - self._last >= WRITE_EVERY_S:
            self._last = time.monotonic()
            self.store.update_job(self.job_id, only_if=["running"], progress=self.progress)

    def span(self, stage: str, start: float, end: float) -> Any:
        """A ``progress(done, total)`` callback mapping onto [start, end] percent of the job."""
        def callback(done: int, total: int) -> None:
            self.set(stage, start + (end - start) * (done / total if total else 1.0), force=done >= total)
        return callback


def run(data_dir: Path, job_id: str) -> int:
    from cim.placement import user_frame
    from server import pipeline

    data = DataDir(data_dir)
    store = data.open_store()
    try:
        job = store.get_job(job_id)
        writer = ProgressWriter(store, job_id)
        imported = False
        try:
            placement = job.params.get("placement", {})
            frame = user_frame(crs=placement.get("crs"), origin=placement.get("origin"),
                               rotation=placement.get("rotation"))
            paths = [Path(p) for p in job.params["files"]]
            writer.set("import", 1.0, f"reading {len(paths)} file(s) into dataset '{job.dataset}'")
            info = pipeline.import_files(store, job.dataset, paths, frame=frame, progress=writer.span("import", 1, 60))
            imported = True
            classes = ", ".join(f"{v} {k}" for k, v in sorted(info.class_counts.items(), key=lambda kv: -kv[1]))
            writer.set("tiles", 60.0, f"imported {info.feature_count} features ({classes}); building tiles")
            folder = pipeline.publish(data, store, job.dataset, format=job.params.get("format", "1.1"),
                                      progress=writer.span("tiles", 60, 99))
            writer.progress["messages"].append(f"published tileset {folder.name} of '{job.dataset}'")
            writer.progress.update(stage="done", percent=100.0)
            report = {**info.report, "dataset": job.dataset, "feature_count": info.feature_count,
                      "class_counts": info.class_counts, "tileset_version": folder.name}
            store.update_job(job_id, only_if=["running"], state="done", progress=writer.progress, report=report,
                             finished=now())
            return 0
        except CimError as exc:
            error = exc.to_dict()
            if imported:
                error["message"] += f"; {AFTER_IMPORT}"
            writer.progress["messages"].append(f"failed: {error['message']}")
            store.update_job(job_id, only_if=["running"], state="failed", error=error,
                             progress=writer.progress, finished=now())
            return 0
        except Exception as exc:  # reported as a failed job; the traceback goes to the worker log
            import traceback
            traceback.print_exc()
            store.update_job(job_id, only_if=["running"], state="failed", progress=writer.progress, finished=now(),
                             error={"error": "internal_error", "message": f"the conversion failed unexpectedly: "
                                    f"{type(exc).__name__}: {exc}" + (f"; {AFTER_IMPORT}" if imported else "")})
            return 1
    finally:
        store.close()


def _exit_with_parent() -> None:
    """Exit as soon as the server that started this worker is gone (we were re-parented)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m server.job_worker DATA_DIR JOB_ID", file=sys.stderr)
        return 2
    _exit_with_parent()
    return run(Path(argv[0]), argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
