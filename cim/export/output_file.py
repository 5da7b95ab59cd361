"""Export files appear complete or not at all: written under a temporary name in the target
folder, then renamed into place (readable by others, 0644); a failure leaves no file behind."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from cim.errors import InputError


@contextmanager
def atomic_output(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an exception the
    temporary file replaces ``path``, otherwise it is removed."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; --out needs a file name", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, write: Callable[[TextIO], int]) -> int:
    """Write a UTF-8 text file with ``write(fh)`` (which returns a count) atomically."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        return write(fh)
