"""Safe extraction of uploaded ``.zip``/``.ifczip`` archives (docs/http-api.md, Uploads).

Refused before anything is written: more entries than the cap, a declared total size over the cap,
a compression ratio over the cap (a zip bomb), names that escape the target folder (absolute
paths, ``..``, backslashes, drive letters: zip-slip), symbolic links, encrypted entries. The caps are
enforced again on the bytes actually decompressed, so a lying header does not help.
"""
from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cim.errors import HostileInputError, InputError, PayloadTooLargeError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an archive (or an empty one)
RATIO_MIN_BYTES = 1024 * 1024  # ratios of entries smaller than this are harmless
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int  # total uncompressed bytes
    max_entries: int
    max_ratio: float  # uncompressed / compressed


def is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in ZIP_MAGIC


def _member_path(name: str, archive: str) -> PurePosixPath:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\x00" in name:
        raise HostileInputError(f"{archive}: the entry '{name}' has an absolute or non-portable path; "
                                "archives must hold relative paths only", file=archive, entry=name)
    parts = PurePosixPath(name).parts
    if any(p == ".." for p in parts):
        raise HostileInputError(f"{archive}: the entry '{name}' points outside the archive's folder ('..')",
                                file=archive, entry=name)
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def _check(infos: list[zipfile.ZipInfo], archive: str, limits: ArchiveLimits) -> None:
    if len(infos) > limits.max_entries:
        raise PayloadTooLargeError(f"{archive} holds {len(infos)} entries; this server accepts at most "
                                   f"{limits.max_entries} (CIM_ZIP_MAX_ENTRIES)", file=archive, limit=limits.max_entries)
    total = sum(i.file_size for i in infos)
    if total > limits.max_bytes:
        raise PayloadTooLargeError(f"{archive} unpacks to {total} bytes; this server accepts at most "
                                   f"{limits.max_bytes} (CIM_ZIP_MAX_BYTES)", file=archive, limit=limits.max_bytes)
    packed = sum(i.compress_size for i in infos)
    for info in infos:
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise HostileInputError(f"{archive}: the entry '{info.filename}' is a symbolic link; links are refused",
                                    file=archive, entry=info.filename)
        if info.flag_bits & 0x1:
            raise InputError(f"{archive}: the entry '{info.filename}' is encrypted; upload an unencrypted archive",
                             file=archive, entry=info.filename)
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            _bomb(archive, info.file_size, info.compress_size, limits)
        _member_path(info.filename, archive)
    if total >= RATIO_MIN_BYTES and total > limits.max_ratio * max(packed, 1):
        _bomb(archive, total, packed, limits)


def _bomb(archive: str, size: int, packed: int, limits: ArchiveLimits) -> None:
    raise HostileInputError(f"{archive}: {packed} compressed bytes unpack to {size} bytes, a ratio over "
                            f"{limits.max_ratio:g} (CIM_ZIP_MAX_RATIO); refused as a possible zip bomb",
                            file=archive, ratio=round(size / max(packed, 1), 1))


def extract(path: Path, dest: Path, limits: ArchiveLimits, archive_name: str | None = None) -> list[Path]:
    """Extract the regular files of the archive ``path`` into ``dest`` (created); returns them.

    Raises InputError (not a valid archive, encrypted), HostileInputError (paths, links, ratio) or
    PayloadTooLargeError (entries, size). On any error ``dest`` is removed.
    """
    name = archive_name or path.name
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            _check(infos, name, limits)
            dest.mkdir(parents=True, exist_ok=True)
            root = dest.resolve()
            written, out = 0, []
            for info in infos:
                member = _member_path(info.filename, name)
                if info.is_dir() or not member.parts or member.parts[0] == "__MACOSX" or member.name.startswith("."):
                    continue
                target = (root / member).resolve()
                if root not in target.parents:
                    raise HostileInputError(f"{name}: the entry '{info.filename}' points outside the archive's folder",
                                            file=name, entry=info.filename)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as dst:
                    while chunk := src.read(CHUNK):
                        written += len(chunk)
                        if written > limits.max_bytes:
                            raise PayloadTooLargeError(f"{name} unpacks to more than {limits.max_bytes} bytes "
                                                       "(CIM_ZIP_MAX_BYTES)", file=name, limit=limits.max_bytes)
                        dst.write(chunk)
                out.append(target)
            return out
    except zipfile.BadZipFile as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise InputError(f"{name} is not a readable zip archive: {exc}", file=name) from exc
    except FileExistsError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise InputError(f"{name} holds the same file name twice", file=name) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
