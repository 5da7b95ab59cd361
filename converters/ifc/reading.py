"""IFC reading in the parent process: :class:`IfcReading` starts the conversion child
(:mod:`converters.ifc.worker`, ``spawn`` context: never fork after threads), streams its
feature batches to ingestion, and turns a crash, a time limit or a truncated file into a typed
error. Ingestion is one transaction, so nothing of a failed file is imported.
"""
from __future__ import annotations

import json
import os
import pickle
import queue
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from cim import errors
from cim.conversion import ConversionReport
from cim.crs import Frame, frame_from_spec
from cim.errors import ConversionTimeoutError, ConverterCrashError, InputError, ParseError, TruncatedFileError
from cim.feature import Feature
from converters.base import ConvertOptions
from converters.ifc import archive, spawn

DEFAULT_TIMEOUT = float(os.environ.get("CIM_IFC_TIMEOUT", "3600"))  # seconds per file
_END = b"END-ISO-10303-21;"
_LENGTH = struct.Struct("<Q")


def _read_messages(stream: IO[bytes] | None, out: "queue.Queue[tuple[Any, ...] | None]") -> None:
    """Reader thread: length-prefixed pickles from the child's stdout; None at the end."""
    try:
        while stream is not None:
            head = stream.read(_LENGTH.size)
            if len(head) < _LENGTH.size:
                break
            (size,) = _LENGTH.unpack(head)
            data = stream.read(size)
            if len(data) < size:
                break
            out.put(pickle.loads(data))  # noqa: S301 - our own child process, not user input
    except (OSError, ValueError, pickle.UnpicklingError):
        pass
    out.put(None)


class IfcReading:
    """See :class:`cim.conversion.Reading`. ``timeout``: seconds the child may take for the
    whole file; ``threads``: geometry kernel threads (default: all CPUs)."""

    def __init__(self, path: Path, options: ConvertOptions, *, timeout: float | None = None,
                 threads: int | None = None) -> None:
        self.path = Path(path)
        self.report = ConversionReport(source=self.path.name, format="IFC")
        self.options = options
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.threads = threads or spawn.default_threads()
        self.bytes_read = 0
        self._frame: Frame | None = None
        self._started = False
        try:
            self.total_bytes = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                self._zipped = archive.is_ifczip(fh.read(64))
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}", file=str(self.path)) from exc
        if not self._zipped:
            check_complete(self.path, self.path.name)

    @property
    def frame(self) -> Frame:
        if self._frame is None:
            raise errors.CrsMissingError(f"{self.path.name}: the placement is known once reading has started",
                                         file=str(self.path))
        return self._frame

    def features(self) -> Iterator[Feature]:
        if self._started:
            raise InputError(f"{self.path.name} is already being read; open it again to read it twice", file=str(self.path))
        self._started = True
        with tempfile.TemporaryDirectory(prefix="cim-ifc-") as tmp:
            source = self.path
            if self._zipped:
                source = archive.extract_ifc(self.path, Path(tmp))
                check_complete(source, f"{self.path.name}/{source.name}")
            yield from self._run_child(source)
        self.bytes_read = self.total_bytes

    def _run_child(self, source: Path) -> Iterator[Feature]:
        spec = json.dumps(self.options.frame.spec()) if self.options.frame is not None else ""
        child = spawn.take(source, self.path.name, spec, self.threads)  # started early by the CLI?
        if child is None:
            child = spawn.start(source, self.path.name, spec, self.threads)
        proc, stderr = child.proc, child.stderr
        with stderr:
            messages: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=8)
            reader = threading.Thread(target=_read_messages, args=(proc.stdout, messages), daemon=True)
            reader.start()
            deadline = time.monotonic() + self.timeout
            try:
                while True:
                    message = self._receive(messages, proc, deadline, stderr)
                    kind = message[0]
                    if kind == "frame":
                        self._frame = frame_from_spec(message[1])
                        self._merge_report(message[2])
                    elif kind == "progress":
                        self.bytes_read = int(self.total_bytes * 0.9 * float(message[1]))
                    elif kind == "features":
                        yield from message[1]
                    elif kind == "done":
                        self._merge_report(message[1])
                        return
                    elif kind == "error":
                        raise _error(message[1], message[2], message[3])
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                end = time.monotonic() + 5
                while reader.is_alive() and time.monotonic() < end:  # unblock a reader waiting on a full queue
                    try:
                        messages.get(timeout=0.05)
                    except queue.Empty:
                        pass
                if proc.stdout is not None:
                    proc.stdout.close()

    def _receive(self, messages: "queue.Queue[tuple[Any, ...] | None]", proc: subprocess.Popen[bytes],
                 deadline: float, stderr: IO[bytes]) -> tuple[Any, ...]:
        remaining = deadline - time.monotonic()
        try:
            message = messages.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            proc.kill()
            raise ConversionTimeoutError(
                f"{self.path.name}: reading the IFC file took longer than the limit of {self.timeout:g} s; "
                "nothing was imported (raise CIM_IFC_TIMEOUT for very large models)",
                file=str(self.path), timeout=self.timeout) from None
        if message is not None:
            return message
        code = proc.wait()
        stderr.seek(0)
        tail = stderr.read()[-600:].decode("utf-8", "replace").strip()
        signal = f", signal {-code}" if code < 0 else ""
        raise ConverterCrashError(
            f"{self.path.name}: the IFC reader crashed on this file (exit code {code}{signal}); the file is "
            "malformed or hostile (e.g. a placement that refers to itself); nothing was imported",
            file=str(self.path), exit_code=code, stderr=tail)

    def _merge_report(self, data: dict[str, Any]) -> None:
        self.report.format = data.get("format") or self.report.format
        self.report.georeferencing = data.get("georeferencing", "")
        self.report.warnings = list(data.get("warnings", []))
        self.report.counts = dict(data.get("counts", {}))
        self.report.skipped = dict(data.get("skipped", {}))


def check_complete(path: Path, display_name: str) -> None:
    """Refuse a file whose end marker is missing: ifcopenshell parses truncated files silently."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    if _END not in tail.upper():
        raise TruncatedFileError(
            f"{display_name} is truncated: it does not end with {_END.decode()} (an incomplete download or "
            "export?); nothing was imported", file=display_name, size=size)


def _error(name: str, message: str, details: dict[str, Any]) -> errors.CimError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.CimError)):
        cls = ParseError
    details = {k: v for k, v in details.items() if k != "traceback"}
    return cls(message, **details)
