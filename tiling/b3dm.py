"""Batched 3D Model (b3dm), the 3D Tiles 1.0 mesh content: a 28-byte header, a feature table
(JSON ``{"BATCH_LENGTH": n}``), a batch table (JSON, one array per property) and a glb whose
``_BATCHID`` attribute indexes the batch.

Every section starts and ends on an 8-byte boundary (JSON padded with spaces), as the
specification requires for the glb.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

MAGIC = b"b3dm"
VERSION = 1
HEADER = struct.Struct("<4sIIIIII")  # magic, version, byteLength, ftJSON, ftBin, btJSON, btBin


def _json_padded(obj: Any, start: int) -> bytes:
    """JSON text padded with spaces so that ``start + len`` is a multiple of 8."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return text + b" " * ((-(start + len(text))) % 8)


def write_b3dm(glb: bytes, batch_length: int, batch_table: dict[str, list[Any]]) -> bytes:
    """A b3dm holding ``glb`` (a multiple of 8 bytes, as :mod:`tiling.glb` writes it)."""
    if len(glb) % 8:
        glb += b"\x00" * ((-len(glb)) % 8)
    for key, column in batch_table.items():
        if len(column) != batch_length:
            raise ValueError(f"batch table column {key!r} has {len(column)} values for {batch_length} features")
    feature_table = _json_padded({"BATCH_LENGTH": batch_length}, HEADER.size)
    batch = _json_padded(batch_table, HEADER.size + len(feature_table)) if batch_table else b""
    length = HEADER.size + len(feature_table) + len(batch) + len(glb)
    header = HEADER.pack(MAGIC, VERSION, length, len(feature_table), 0, len(batch), 0)
    return header + feature_table + batch + glb


@dataclass
class B3dm:
    feature_table: dict[str, Any]
    batch_table: dict[str, Any]
    glb: bytes


def read_b3dm(data: bytes) -> B3dm:
    """Parse a b3dm written with JSON-only feature and batch tables."""
    if len(data) < HEADER.size:
        raise ValueError("b3dm shorter than its header")
    magic, version, length, ft_json, ft_bin, bt_json, bt_bin = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION or length != len(data):
        raise ValueError(f"bad b3dm header: {magic!r} v{version}, byteLength {length} for {len(data)} bytes")
    pos = HEADER.size
    ft = json.loads(data[pos:pos + ft_json].decode("utf-8"))
    pos += ft_json + ft_bin
    bt = json.loads(data[pos:pos + bt_json].decode("utf-8")) if bt_json else {}
    pos += bt_json + bt_bin
    return B3dm(ft, bt, data[pos:])
