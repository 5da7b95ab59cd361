"""Server settings: a frozen dataclass made from the environment by a pure function.

=================  ==========================================  ===================================
variable           meaning                                     default
=================  ==========================================  ===================================
CIM_DATA           data directory (store + published tiles)    ``./city-data``
CIM_CESIUM_DIR     folder with CesiumJS's built files          ``<server package>/static/vendor/cesium``
CIM_CORS_ORIGINS   allowed origins, comma-separated, or ``*``  ``*``
CIM_CACHE_BYTES    in-memory tile cache budget (``512M`` ok)   ``256M``
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
    )


def parse_size(text: str, default: int) -> int:
    """``"268435456"``, ``"256M"``, ``"1G"``, ``"512KiB"`` -> bytes; empty -> ``default``."""
    if not text.strip():
        return default
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InputError(f"CIM_CACHE_BYTES must be a byte count such as 268435456 or 256M, not '{text}'",
                         variable="CIM_CACHE_BYTES", value=text)
    return int(match.group(1)) * _UNITS[match.group(2).upper()]
