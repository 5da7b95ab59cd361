"""Atomic, versioned publication of dataset tilesets (see docs/layout.md).

::

    tiles_root/<dataset>/CURRENT             one line, e.g. "v3": the published version
    tiles_root/<dataset>/v3/tileset.json     ...
    tiles_root/<dataset>/.staging-<random>/  a build in progress, never served

A build goes into a fresh ``.staging-*`` folder, which is renamed to the next ``v<N>``; then
``CURRENT`` is replaced in one step (temporary file + ``os.replace``). Readers resolve
``CURRENT`` per request, so they see either the old or the new tileset, never a partial one. A
failed build removes its staging folder and leaves ``CURRENT`` untouched. The two newest
versions are kept (the previous one keeps serving requests that resolved ``CURRENT`` just before
the switch); older ones are removed.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: publishes are not serialised
    fcntl = None  # type: ignore[assignment]

from cim.errors import InputError
from cim.store.base import Store
from tiling.build import TilesetSummary, build_tileset

CURRENT = "CURRENT"
STAGING_PREFIX = ".staging-"
LOCK_FILE = ".lock"
KEEP_VERSIONS = 2
PUBLISHED_MODE = 0o755  # readable by a web server running as another user
STALE_STAGING_SECONDS = 24 * 3600
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RESERVED_NAMES = frozenset({"city"})
_VERSION = re.compile(r"v([0-9]{1,9})")


def is_dataset_name(name: str) -> bool:
    """True for a name that can be a tiles folder (docs/layout.md): no path separators, no
    leading dot, not ``city``."""
    return bool(DATASET_NAME.fullmatch(name)) and name not in RESERVED_NAMES and name not in (".", "..")


def _check_name(dataset: str) -> None:
    if not is_dataset_name(dataset):
        raise InputError(f"'{dataset}' is not a valid dataset name for publishing tiles: use 1-64 letters, digits, "
                         "'_', '-' or '.', starting with a letter or digit (and not 'city')", dataset=dataset)


def versions(dataset_dir: Path) -> list[int]:
    """The published version numbers present in ``dataset_dir``, ascending."""
    if not dataset_dir.is_dir():
        return []
    found = []
    for entry in dataset_dir.iterdir():
        m = _VERSION.fullmatch(entry.name)
        if m and entry.is_dir():
            found.append(int(m.group(1)))
    return sorted(found)


def publish_tileset(store: Store, dataset: str, tiles_root: Path, *, format: str = "1.1",
                    progress: Callable[[int, int], None] | None = None) -> Path:
    """Build the tileset of ``dataset`` and publish it as the next version; returns its folder."""
    _, published = publish_tileset_with_summary(store, dataset, tiles_root, format=format, progress=progress)
    return published


def publish_tileset_with_summary(store: Store, dataset: str, tiles_root: Path, *, format: str = "1.1",
                                 progress: Callable[[int, int], None] | None = None) -> tuple[TilesetSummary, Path]:
    """:func:`publish_tileset`, also returning the build summary (with ``out_dir`` the
    published folder)."""
    _check_name(dataset)
    dataset_dir = Path(tiles_root) / dataset
    dataset_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(dataset_dir)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=dataset_dir))
    os.chmod(staging, PUBLISHED_MODE)  # mkdtemp makes 0700; a front end (nginx) must read it
    try:
        summary = build_tileset(store, dataset, staging, format=format, progress=progress)
        with _publish_lock(dataset_dir):  # concurrent publishes switch CURRENT in version order
            published = _rename_to_next_version(staging, dataset_dir)
            _write_current(dataset_dir, published.name)
            _prune(dataset_dir, keep=KEEP_VERSIONS)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.out_dir = published
    return summary, published


@contextmanager
def _publish_lock(dataset_dir: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``dataset_dir/.lock`` (POSIX), held while switching versions."""
    with open(dataset_dir / LOCK_FILE, "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _rename_to_next_version(staging: Path, dataset_dir: Path) -> Path:
    """Rename ``staging`` to ``v<max+1>``; retried if a concurrent publish took that number."""
    for _ in range(100):
        target = dataset_dir / f"v{max(versions(dataset_dir), default=0) + 1}"
        try:
            os.mkdir(target)  # claim the number (fails if taken), then move the build onto it
        except FileExistsError:
            continue
        try:
            os.replace(staging, target)  # an empty directory target is replaced atomically
        except OSError:
            os.rmdir(target)
            raise
        return target
    raise OSError(f"could not find a free version folder in {dataset_dir}")


def _write_current(dataset_dir: Path, version: str) -> None:
    tmp = dataset_dir / f".{CURRENT}-{secrets.token_hex(6)}"
    try:
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dataset_dir / CURRENT)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _prune(dataset_dir: Path, keep: int) -> None:
    current = _read_current(dataset_dir)
    for number in versions(dataset_dir)[:-keep]:
        name = f"v{number}"
        if name != current:
            shutil.rmtree(dataset_dir / name, ignore_errors=True)


def _remove_stale_staging(dataset_dir: Path) -> None:
    """Staging folders left by crashed builds, older than a day (younger ones may be running)."""
    now = time.time()
    for entry in dataset_dir.glob(STAGING_PREFIX + "*"):
        try:
            if now - entry.stat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def _read_current(dataset_dir: Path) -> str | None:
    try:
        text = (dataset_dir / CURRENT).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _VERSION.fullmatch(text) else None


def current_tileset_dir(tiles_root: Path, dataset: str) -> Path | None:
    """The published tileset folder of ``dataset`` (resolving ``CURRENT``), or None when there is
    none. Names that could escape ``tiles_root`` (``..``, separators, symlinks pointing out)
    give None."""
    if not is_dataset_name(dataset):
        return None
    root = Path(tiles_root).resolve()
    dataset_dir = root / dataset
    version = _read_current(dataset_dir)
    if version is None:
        return None
    folder = (dataset_dir / version).resolve()
    if folder.parent != dataset_dir.resolve() or not folder.is_relative_to(root):
        return None
    if not (folder / "tileset.json").is_file():
        return None
    return folder
