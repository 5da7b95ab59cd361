"""LAS header sanity, checked against the file size before any point is read.

A header that lies (a point count the file cannot hold, absurd scales, a point data offset past
the end) or a truncated file gives a clear typed error instead of a long read or a memory
blow-up. Readers stream in chunks, so a lying count cannot allocate memory either way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cim.errors import EmptyInputError, ParseError, TruncatedFileError

#: a LAZ file needs at least this many bytes per point (LAZ of real scans is 5-20 bytes/point;
#: even constant points cost more than this in the chunked arithmetic coder)
MIN_LAZ_BYTES_PER_POINT = 0.25
SCALE_RANGE = (1e-12, 1e4)
POINT_FORMATS = range(0, 11)


@dataclass(frozen=True)
class HeaderFacts:
    """What the rest of the reader needs from the header."""

    version: str
    point_format: int
    point_count: int
    record_length: int
    compressed: bool
    scales: tuple[float, float, float]
    offsets: tuple[float, float, float]
    mins: tuple[float, float, float]
    maxs: tuple[float, float, float]
    file_size: int


def check_header(path: Path, header: Any, file_size: int) -> HeaderFacts:
    """Validate a ``laspy.LasHeader`` against the file size; returns the checked facts."""
    name = path.name
    pf = int(header.point_format.id)
    version = f"{header.version.major}.{header.version.minor}"
    if pf not in POINT_FORMATS:
        raise ParseError(f"{name}: point format {pf} is not a LAS 1.0-1.4 point format (0-10)", file=str(path))
    count = int(header.point_count)
    offset = int(header.offset_to_point_data)
    record = int(header.point_format.size)
    compressed = bool(header.are_points_compressed)
    if offset > file_size:
        raise TruncatedFileError(f"{name}: the header puts the points at byte {offset} but the file has only "
                                 f"{file_size} bytes: the file is truncated or its header is damaged",
                                 file=str(path), offset=offset, size=file_size)
    available = file_size - offset
    if count == 0:
        raise EmptyInputError(f"{name}: the header says the file holds no point", file=str(path))
    if not compressed and count * record > available:
        held = available // record
        raise TruncatedFileError(
            f"{name}: the header announces {count:,} points of {record} bytes ({count * record:,} bytes) but only "
            f"{available:,} bytes ({held:,} points) follow the header: the file is truncated or the header lies",
            file=str(path), header_points=count, points_in_file=held)
    if compressed and count * MIN_LAZ_BYTES_PER_POINT > available:
        raise TruncatedFileError(
            f"{name}: the header announces {count:,} compressed points but only {available:,} bytes of point data "
            f"follow (under {MIN_LAZ_BYTES_PER_POINT} bytes per point): the file is truncated or the header lies",
            file=str(path), header_points=count, bytes=available)
    scales = tuple(float(v) for v in header.scales)
    offsets = tuple(float(v) for v in header.offsets)
    lo, hi = SCALE_RANGE
    if not all(math.isfinite(s) and lo <= s <= hi for s in scales):
        raise ParseError(f"{name}: the header's scale factors {scales} are not usable (each must be in {lo:g}..{hi:g})",
                         file=str(path), scales=list(scales))
    if not all(math.isfinite(o) for o in offsets):
        raise ParseError(f"{name}: the header's offsets {offsets} are not finite numbers", file=str(path))
    mins = tuple(float(v) for v in header.mins)
    maxs = tuple(float(v) for v in header.maxs)
    return HeaderFacts(version, pf, count, record, compressed, scales, offsets, mins, maxs,  # type: ignore[arg-type]
                       file_size)


def header_bounds_ok(facts: HeaderFacts) -> bool:
    """True when the header's min/max are finite, ordered and representable with its
    scales and offsets (int32 coordinates)."""
    for lo, hi, s, o in zip(facts.mins, facts.maxs, facts.scales, facts.offsets):
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            return False
        if max(abs((lo - o) / s), abs((hi - o) / s)) > 2**31:
            return False
    return True
