"""One error hierarchy for the whole product, rooted at :class:`CimError`.

Errors carry data (``details``) and a message a user can act on. The CLI maps them to exit codes
and the server maps them to HTTP status codes, each in one table (``server/errors.py``).
"""
from __future__ import annotations

from typing import Any


class CimError(Exception):
    """Root of every error the library raises on purpose."""

    code = "cim_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **{k: _plain(v) for k, v in self.details.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


# --- input problems: the user can fix them -------------------------------------------------

class InputError(CimError):
    """The input (file, option) is unusable as given."""

    code = "invalid_input"


class UnsupportedFormatError(InputError):
    """No converter recognises the file."""

    code = "unsupported_format"


class ParseError(InputError):
    """The file is recognised but cannot be read (syntax error, truncation, bad values)."""

    code = "parse_error"


class TruncatedFileError(ParseError):
    code = "truncated_file"


class HostileInputError(ParseError):
    """The file uses constructs refused for safety (DTDs, entities, external references)."""

    code = "hostile_input"


class ConverterCrashError(ParseError):
    """The library reading the file crashed on it (e.g. ifcopenshell on a placement that refers to
    itself); the crash was contained in a child process and nothing was imported."""

    code = "converter_crashed"


class ConversionTimeoutError(InputError):
    """Reading the file took longer than the time limit; nothing was imported."""

    code = "conversion_timeout"


class UnsafeArchiveError(HostileInputError):
    """An archive (e.g. ``.ifczip``) breaks a safety limit: entry or total size, compression
    ratio, entry count, or a path that escapes the extraction folder."""

    code = "unsafe_archive"


class CrsError(InputError):
    """Base of coordinate reference system problems."""

    code = "crs_error"


class CrsUnknownError(CrsError):
    """A CRS name or code that cannot be resolved."""

    code = "crs_unknown"


class CrsMissingError(CrsError):
    """The data has no usable CRS and the user gave no placement."""

    code = "crs_missing"


class CrsContradictionError(CrsError):
    """Two CRS declarations disagree, or the coordinates do not fit the declared CRS."""

    code = "crs_contradiction"


class PlacementError(InputError):
    """A user-given placement (``--crs``, ``--origin``, ``--rotation``) is malformed."""

    code = "invalid_placement"


class InvalidParameterError(InputError):
    """A request or command parameter (bbox, limit, offset, format...) is malformed or out of range."""

    code = "invalid_parameter"


class CrsParameterError(InvalidParameterError, CrsUnknownError):
    """A ``crs``/``bbox-crs`` parameter names no usable CRS (a parameter error: HTTP 400)."""

    code = "invalid_parameter"


class EmptyInputError(InputError):
    """The input holds no feature to import."""

    code = "empty_input"


# --- store and lookups ---------------------------------------------------------------------

class NotFoundError(CimError):
    code = "not_found"


class DatasetNotFoundError(NotFoundError):
    code = "dataset_not_found"


class TilesetNotFoundError(NotFoundError):
    code = "tileset_not_found"


class StoreError(CimError):
    """The store cannot be opened or written (corrupt file, wrong schema version, disk full)."""

    code = "store_error"


class ConflictError(CimError):
    """The operation conflicts with the current state (e.g. a dataset that already exists)."""

    code = "conflict"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class PayloadTooLargeError(InputError):
    """An upload (or an archive's content) is larger than the configured cap."""

    code = "payload_too_large"


# --- access --------------------------------------------------------------------------------

class AuthenticationError(CimError):
    """No credentials, or credentials that match no configured token."""

    code = "unauthorized"


class PermissionDeniedError(CimError):
    """Valid credentials without the scope the operation needs (e.g. a read token on an upload)."""

    code = "forbidden"
