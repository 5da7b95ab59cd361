"""Server settings: a frozen dataclass made from the environment by a pure function.

=================  ==========================================  ===================================
variable           meaning                                     default
=================  ==========================================  ===================================
CIM_DATA           data directory (store + published tiles)    ``./city-data``
CIM_CESIUM_DIR     folder with CesiumJS's built files          ``<server package>/static/vendor/cesium``
CIM_CORS_ORIGINS   allowed origins, comma-separated, or ``*``  ``*``
CIM_CACHE_BYTES    in-memory tile cache budget (``512M`` ok)   ``256M``
CIM_WRITE_TOKENS   bearer tokens with write scope (comma-sep.) none: uploads are refused (401)
CIM_READ_TOKENS    bearer tokens with read scope (comma-sep.)  none: reads are public
CIM_UPLOAD_MAX_BYTES  upload size cap, enforced while streaming   ``1G``
CIM_ZIP_MAX_BYTES  total uncompressed size of an archive       ``4G``
CIM_ZIP_MAX_ENTRIES  entries in an archive                     ``10000``
CIM_ZIP_MAX_RATIO  uncompressed/compressed size of an archive  ``200``
CIM_JOB_TIME_LIMIT seconds a conversion job may run            ``3600``
CIM_JOB_CONCURRENCY  jobs converting at the same time (1-2)     ``1``
CIM_STAGING_DIR    where uploads are staged (not served)       ``$CIM_DATA/uploads``
=================  ==========================================  ===================================
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cim.errors import InputError
from server.layout import DataDir

DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_UPLOAD_MAX_BYTES = 1024 ** 3
DEFAULT_ZIP_MAX_BYTES = 4 * 1024 ** 3
_SIZE = re.compile(r"\s*(\d+)\s*([KMG]?)i?B?\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}


def default_cesium_dir() -> Path:
    """Where ``server/viewer/install-cesium.sh`` puts CesiumJS's ``Build/Cesium``."""
    return Path(__file__).resolve().parent / "static" / "vendor" / "cesium"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    cesium_dir: Path
    cors_origins: tuple[str, ...] = ("*",)
    cache_bytes: int = DEFAULT_CACHE_BYTES
    write_tokens: tuple[str, ...] = ()
    read_tokens: tuple[str, ...] = ()
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    zip_max_bytes: int = DEFAULT_ZIP_MAX_BYTES
    zip_max_entries: int = 10_000
    zip_max_ratio: float = 200.0
    job_time_limit: float = 3600.0  # seconds
    job_concurrency: int = 1
    staging_dir: Path | None = None  # None: <data_dir>/uploads

    def __repr__(self) -> str:  # never print tokens in logs or tracebacks
        return (f"Settings(data_dir={self.data_dir!r}, write_tokens=<{len(self.write_tokens)}>, "
                f"read_tokens=<{len(self.read_tokens)}>, upload_max_bytes={self.upload_max_bytes})")

    @property
    def uploads_dir(self) -> Path:
        """Staging area of uploads and job inputs; outside the served tiles folder."""
        return self.staging_dir if self.staging_dir is not None else self.data_dir / "uploads"

    @property
    def store_path(self) -> Path:
        return DataDir(self.data_dir).store_path

    @property
    def tiles_root(self) -> Path:
        return DataDir(self.data_dir).tiles_root


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings from environment variables (pass ``os.environ``); raises
    :class:`cim.errors.InputError` for a malformed value."""
    origins = tuple(o.strip() for o in env.get("CIM_CORS_ORIGINS", "*").split(",") if o.strip())
    return Settings(
        data_dir=Path(env.get("CIM_DATA") or "city-data"),
        cesium_dir=Path(env["CIM_CESIUM_DIR"]) if env.get("CIM_CESIUM_DIR") else default_cesium_dir(),
        cors_origins=origins,
        cache_bytes=parse_size(env.get("CIM_CACHE_BYTES", ""), DEFAULT_CACHE_BYTES),
        write_tokens=_tokens(env, "CIM_WRITE_TOKENS"),
        read_tokens=_tokens(env, "CIM_READ_TOKENS"),
        upload_max_bytes=parse_size(env.get("CIM_UPLOAD_MAX_BYTES", ""), DEFAULT_UPLOAD_MAX_BYTES,
                                    "CIM_UPLOAD_MAX_BYTES"),
        zip_max_bytes=parse_size(env.get("CIM_ZIP_MAX_BYTES", ""), DEFAULT_ZIP_MAX_BYTES, "CIM_ZIP_MAX_BYTES"),
        zip_max_entries=int(_number(env, "CIM_ZIP_MAX_ENTRIES", 10_000, minimum=1)),
        zip_max_ratio=_number(env, "CIM_ZIP_MAX_RATIO", 200.0, minimum=1.0),
        job_time_limit=_number(env, "CIM_JOB_TIME_LIMIT", 3600.0, minimum=0.001),
        job_concurrency=int(_number(env, "CIM_JOB_CONCURRENCY", 1, minimum=1)),
        staging_dir=Path(env["CIM_STAGING_DIR"]) if env.get("CIM_STAGING_DIR") else None,
    )


def _tokens(env: Mapping[str, str], variable: str) -> tuple[str, ...]:
    tokens = tuple(t.strip() for t in env.get(variable, "").split(",") if t.strip())
    for token in tokens:
        if len(token) < 8 or not token.isprintable() or " " in token:
            raise InputError(f"{variable}: every token must be at least 8 printable characters without spaces",
                             variable=variable)
    return tokens


def _number(env: Mapping[str, str], variable: str, default: float, minimum: float) -> float:
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= minimum:
        raise InputError(f"{variable} must be a number >= {minimum:g}, not '{text}'", variable=variable, value=text)
    return value


def parse_size(text: str, default: int, variable: str = "CIM_CACHE_BYTES") -> int:
    """``"268435456"``, ``"256M"``, ``"1G"``, ``"512KiB"`` -> bytes; empty -> ``default``."""
    if not text.strip():
        return default
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InputError(f"{variable} must be a byte count such as 268435456 or 256M, not '{text}'",
                         variable=variable, value=text)
    return int(match.group(1)) * _UNITS[match.group(2).upper()]
