"""The job queue: conversion jobs run one per subprocess (``python -m server.job_worker``), at most
``CIM_JOB_CONCURRENCY`` at a time, each within ``CIM_JOB_TIME_LIMIT`` (docs/jobs.md).

The queue *is* the store's jobs table: an upload adds a ``queued`` job and wakes the dispatcher
thread, which starts the oldest queued jobs while a slot is free, reaps finished workers and kills
those over the time limit or cancelled. A worker that dies without writing its final state (crash,
``SIGKILL``, out of memory) becomes a ``failed`` job with the reason; the server is unaffected.

At start-up, jobs left ``running`` by a server that was killed are marked ``failed`` (their worker
exited with the server); ``queued`` jobs are resumed (their upload is still in the staging area).
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cim.errors import ConflictError
from cim.store import JobRecord, SqliteStore
from cim.store.sqlite_jobs import now
from server.settings import Settings

log = logging.getLogger("server.jobs")

POLL_S = 0.1
WORKER_LOG = "worker.log"
_SECRET_VARIABLES = ("CIM_WRITE_TOKENS", "CIM_READ_TOKENS")


@dataclass
class _Running:
    proc: subprocess.Popen[bytes]
    started: float
    log: IO[bytes]


class JobManager:
    def __init__(self, store: SqliteStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._running: dict[str, _Running] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def staging(self, job_id: str) -> Path:
        return self.settings.uploads_dir / job_id

    # --- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="cim-jobs", daemon=True)
        self._thread.start()

    def recover(self) -> None:
        """Fail the jobs a killed server left running; keep queued ones (they resume)."""
        for job in self.store.list_jobs(states=["running"]):
            reason = (f"the server stopped while this job was running (worker pid {job.pid}); "
                      "upload the file again")
            self._fail(job, "server_restarted", reason)
        for job in self.store.list_jobs(states=["queued"]):
            if not all(Path(p).is_file() for p in job.params.get("files", [])):
                self._fail(job, "upload_missing", "the uploaded file of this queued job is gone; upload it again")

    def stop(self) -> None:
        """Stop dispatching; kill running workers (their jobs fail: the server stopped)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._lock:
            for job_id in list(self._running):
                self._kill(job_id)
                job = self.store.get_job(job_id)
                self._fail(job, "server_stopped", "the server stopped while this job was running; upload it again")

    def wake(self) -> None:
        self._wake.set()

    # --- cancel ------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (its worker is killed; the dataset's previous version
        stays, in the store and in the tiles). ConflictError for a finished job."""
        with self._lock:
            job = self.store.get_job(job_id)
            if job.state == "queued":
                if self.store.update_job(job_id, only_if=["queued"], state="cancelled", finished=now()):
                    self._cleanup(job_id)
            elif job.state == "running":
                self._kill(job_id)
                if self.store.update_job(job_id, only_if=["running"], state="cancelled", finished=now()):
                    self._cleanup(job_id)
            job = self.store.get_job(job_id)
            if job.state != "cancelled":
                raise ConflictError(f"job '{job_id}' has already finished ({job.state}); it cannot be cancelled",
                                    job=job_id, state=job.state)
            return job

    # --- the dispatcher thread ---------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._reap()
                    self._dispatch()
            except Exception:  # never let the dispatcher die; the next round retries
                log.exception("job dispatcher")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _dispatch(self) -> None:
        free = self.settings.job_concurrency - len(self._running)
        if free <= 0:
            return
        for job in reversed(self.store.list_jobs(states=["queued"])):  # oldest first
            if free <= 0 or self._stop.is_set():
                return
            if self._spawn(job):
                free -= 1

    def _spawn(self, job: JobRecord) -> bool:
        if not self.store.update_job(job.id, only_if=["queued"], state="running", started=now(),
                                     progress={"stage": "starting", "percent": 0.0, "messages": []}):
            return False
        folder = self.staging(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARIABLES}
        worker_log = open(folder / WORKER_LOG, "ab")
        try:
            proc = subprocess.Popen([sys.executable, "-m", "server.job_worker", str(self.settings.data_dir), job.id],
                                    stdin=subprocess.DEVNULL, stdout=worker_log, stderr=worker_log, env=env,
                                    start_new_session=True)  # its own process group: killed as a whole
        except OSError as exc:
            worker_log.close()
            self._fail(self.store.get_job(job.id), "worker_failed", f"the conversion worker could not start: {exc}")
            return False
        self._running[job.id] = _Running(proc, time.monotonic(), worker_log)
        self.store.update_job(job.id, pid=proc.pid)
        log.info("job %s: worker pid %d converting into dataset '%s'", job.id, proc.pid, job.dataset)
        return True

    def _reap(self) -> None:
        for job_id, run in list(self._running.items()):
            code = run.proc.poll()
            if code is None:
                if time.monotonic() - run.started > self.settings.job_time_limit:
                    self._kill(job_id)
                    self._fail(self.store.get_job(job_id), "time_limit",
                               f"the conversion took longer than the time limit of "
                               f"{self.settings.job_time_limit:g} s (CIM_JOB_TIME_LIMIT) and was stopped")
                continue
            self._forget(job_id)
            job = self.store.get_job(job_id)
            if job.state == "running":  # the worker died without saying how it ended
                self._fail(job, "worker_crashed", _exit_reason(code, self.staging(job_id) / WORKER_LOG))
            else:
                log.info("job %s: %s", job_id, job.state)
                self._cleanup(job_id)

    # --- helpers -----------------------------------------------------------------------------
    def _kill(self, job_id: str) -> None:
        run = self._running.get(job_id)
        if run is None:
            return
        try:
            os.killpg(run.proc.pid, signal.SIGKILL)  # the worker and its reader processes
        except ProcessLookupError:
            pass
        run.proc.wait()
        self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        run = self._running.pop(job_id, None)
        if run is not None:
            run.log.close()

    def _fail(self, job: JobRecord, code: str, message: str) -> None:
        progress = dict(job.progress)
        progress["messages"] = list(progress.get("messages", [])) + [f"failed: {message}"]
        if self.store.update_job(job.id, only_if=["queued", "running"], state="failed", finished=now(),
                                 error={"error": code, "message": message}, progress=progress):
            log.warning("job %s failed: %s", job.id, message)
        self._cleanup(job.id)

    def _cleanup(self, job_id: str) -> None:
        shutil.rmtree(self.staging(job_id), ignore_errors=True)


def _exit_reason(code: int, worker_log: Path) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        reason = f"the conversion worker was killed by {name}"
        if -code == signal.SIGKILL:
            reason += " (killed from outside, or out of memory)"
    else:
        reason = f"the conversion worker crashed (exit code {code})"
    try:
        tail = [line for line in worker_log.read_text("utf-8", "replace").splitlines() if line.strip()][-1:]
    except OSError:
        tail = []
    return reason + (f": {tail[0][:300]}" if tail else "") + "; the previous version of the dataset is still served"
