"""Recognising IFC files by content and unpacking ``.ifczip`` archives safely.

An IFC-SPF file starts with ``ISO-10303-21;`` (after an optional byte-order mark and blank
space). An ``.ifczip`` is a zip archive holding exactly one ``.ifc`` file; it is recognised by the
zip signature and the name of its first entry (in the local file header), so sniffing stays
constant-time. Unpacking counts the bytes actually written (sizes in the zip directory are not
trusted) and stops at the first broken limit with :class:`cim.errors.UnsafeArchiveError`.
"""
from __future__ import annotations

import re
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cim.errors import InputError, UnsafeArchiveError

SPF_MAGIC = b"ISO-10303-21;"
ZIP_MAGIC = b"PK\x03\x04"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra length


def is_ifc_spf(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) is an IFC STEP physical file."""
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    return text.lstrip()[:len(SPF_MAGIC)].upper() == SPF_MAGIC


def is_ifczip(head: bytes) -> bool:
    """True when ``head`` is a zip archive whose first entry is an ``.ifc`` file."""
    if not head.startswith(ZIP_MAGIC) or len(head) < _LOCAL_HEADER.size:
        return False
    _, name_len, _ = _LOCAL_HEADER.unpack_from(head, 0)
    name = head[_LOCAL_HEADER.size:_LOCAL_HEADER.size + name_len].decode("utf-8", "replace")
    return name.lower().endswith(".ifc")


def sniff(head: bytes) -> bool:
    return is_ifc_spf(head) or is_ifczip(head)


@dataclass(frozen=True)
class ArchiveLimits:
    """Safety limits for ``.ifczip`` archives (bytes are uncompressed sizes)."""

    max_entries: int = 64
    max_entry_bytes: int = 4 * 1024**3
    max_total_bytes: int = 4 * 1024**3
    max_ratio: float = 200.0  # IFC text compresses 5-30x; zip bombs reach 1000x and more


def extract_ifc(archive: Path, dest_dir: Path, limits: ArchiveLimits | None = None) -> Path:
    """Unpack the one ``.ifc`` file of ``archive`` into ``dest_dir`` and return its path.

    Raises :class:`UnsafeArchiveError` when the archive breaks a limit and :class:`InputError`
    when it is not a readable zip or does not hold exactly one ``.ifc`` file.
    """
    limits = limits or ArchiveLimits()
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{archive.name} is not a readable zip archive: {exc}", file=str(archive)) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchiveError(f"{archive.name} has {len(infos)} entries; at most {limits.max_entries} are accepted",
                                     file=str(archive), entries=len(infos))
        for info in infos:
            _check_name(archive, info.filename)
        ifcs = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".ifc")]
        if len(ifcs) != 1:
            raise InputError(f"{archive.name} must hold exactly one .ifc file, it holds {len(ifcs)}",
                             file=str(archive), ifc_entries=[i.filename for i in ifcs])
        info = ifcs[0]
        declared = sum(i.file_size for i in infos)
        if declared > limits.max_total_bytes:
            raise UnsafeArchiveError(f"{archive.name} would unpack to {declared} bytes; the limit is {limits.max_total_bytes}",
                                     file=str(archive), total=declared)
        target = dest_dir / (re.sub(r"[^A-Za-z0-9_.-]+", "_", PurePosixPath(info.filename).name) or "model.ifc")
        written = 0
        cap = min(limits.max_entry_bytes, limits.max_total_bytes,
                  int(max(info.compress_size, 1) * limits.max_ratio))
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > cap:
                        raise UnsafeArchiveError(
                            f"{archive.name}: {info.filename} unpacks to more than {cap} bytes (limit: "
                            f"{limits.max_entry_bytes} bytes per entry, compression ratio {limits.max_ratio:g})",
                            file=str(archive), entry=info.filename, limit=cap)
                    dst.write(chunk)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
            target.unlink(missing_ok=True)
            raise InputError(f"{archive.name}: cannot unpack {info.filename}: {exc}", file=str(archive)) from exc
        except UnsafeArchiveError:
            target.unlink(missing_ok=True)
            raise
    return target


def _check_name(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive.name}: entry '{name}' points outside the archive folder",
                                 file=str(archive), entry=name)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
