"""Starting the IFC conversion child (:mod:`converters.ifc.worker`), early if the caller can.

Standard library only (no numpy, shapely, pyproj, ifcopenshell), so that the ``cim convert`` CLI
can start the child *before* its own heavy imports: the child's interpreter start, ifcopenshell
import, file parse and property reading then run on the second core while the parent imports
the store and the tiler (about 0.3 s each on this machine; see docs/benchmarks.md "IFC").

:func:`prestart` starts a child and parks it under the exact arguments it was started with;
:class:`converters.ifc.reading.IfcReading` calls :func:`take` with its own arguments and adopts
the parked child only if every argument matches, else starts its own. A parked child that
nobody adopts is killed (on the next :func:`take` for the same file, or at interpreter exit),
so an early start never changes what is converted, only when it starts.
"""
from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cim.cpus import usable_cpus

_REPO_ROOT = Path(__file__).resolve().parents[2]
_END = b"END-ISO-10303-21;"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass
class Child:
    """A running conversion child: its process and the temporary file that collects its stderr."""
    proc: subprocess.Popen[bytes]
    stderr: IO[bytes]

    def discard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


Key = tuple[str, str, str, int]
_PARKED: dict[Key, Child] = {}


def default_threads() -> int:
    """Geometry kernel threads: ``CIM_IFC_THREADS`` or the CPUs this process may use."""
    return int(os.environ.get("CIM_IFC_THREADS", "0")) or usable_cpus()


def start(source: Path, display_name: str, frame_json: str, threads: int) -> Child:
    """Start ``python -m converters.ifc.worker`` on ``source`` (a plain .ifc file)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    stderr = tempfile.TemporaryFile()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "converters.ifc.worker", str(source), display_name, frame_json, str(threads)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, env=env)
    except BaseException:
        stderr.close()
        raise
    return Child(proc, stderr)


def _key(source: Path, display_name: str, frame_json: str, threads: int) -> Key:
    return (str(Path(source).resolve()), display_name, frame_json, int(threads))


def prestart(path: Path, frame_json: str = "", threads: int | None = None) -> bool:
    """Start the child for ``path`` now if it is a plain, complete IFC file (by its first bytes
    and its end marker); anything else (an .ifczip, a truncated file, another format) is left to
    the normal path, which reports it. Returns whether a child was parked."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(64)
            fh.seek(max(0, size - 4096))
            tail = fh.read()
    except OSError:
        return False
    if head.startswith(_ZIP_MAGIC) or not head.lstrip().upper().startswith(b"ISO-10303-21;") or _END not in tail.upper():
        return False
    threads = threads or default_threads()
    key = _key(path, path.name, frame_json, threads)
    if key in _PARKED:
        return True
    try:
        _PARKED[key] = start(path, path.name, frame_json, threads)
    except OSError:
        return False
    return True


def take(source: Path, display_name: str, frame_json: str, threads: int) -> Child | None:
    """The parked child started with exactly these arguments (None if there is none); any other
    child parked for the same file is killed."""
    key = _key(source, display_name, frame_json, threads)
    child = _PARKED.pop(key, None)
    for other in [k for k in _PARKED if k[0] == key[0]]:
        _PARKED.pop(other).discard()
    return child


@atexit.register
def discard_all() -> None:
    """Kill every parked child nobody adopted (a failed command, a different placement...)."""
    while _PARKED:
        _PARKED.popitem()[1].discard()
