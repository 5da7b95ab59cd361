"""glTF 2.0 binary (GLB) writer and reader.

Layout rules the writer keeps (checked by the Khronos validator and 3D Tiles clients):

* every bufferView starts on an 8-byte boundary of the buffer (4 is required for vertex data,
  8 for FLOAT64/INT64 metadata values);
* the JSON chunk is padded with spaces so that the BIN chunk's data starts on an 8-byte boundary
  of the file, and the buffer is zero-padded to a multiple of 8, so the whole GLB is a multiple
  of 8 bytes and can be embedded in a b3dm as is;
* ``buffers[0].byteLength`` is the exact (padded) length of the BIN chunk data.
"""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import numpy.typing as npt

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

BYTE, UNSIGNED_BYTE, SHORT, UNSIGNED_SHORT, UNSIGNED_INT, FLOAT = 5120, 5121, 5122, 5123, 5125, 5126
_COMPONENT_DTYPE = {BYTE: np.int8, UNSIGNED_BYTE: np.uint8, SHORT: np.int16, UNSIGNED_SHORT: np.uint16,
                    UNSIGNED_INT: np.uint32, FLOAT: np.float32}
_TYPE_SIZE = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _pad(data: bytes, multiple: int, fill: bytes = b"\x00") -> bytes:
    return data + fill * ((-len(data)) % multiple)


class GltfBuilder:
    """Accumulates one glTF document and its single binary buffer."""

    def __init__(self, generator: str) -> None:
        self.doc: dict[str, Any] = {"asset": {"version": "2.0", "generator": generator}}
        self._bin = bytearray()

    def _list(self, key: str) -> list[Any]:
        return self.doc.setdefault(key, [])  # type: ignore[no-any-return]

    def buffer_view(self, data: bytes | memoryview, *, target: int | None = None, alignment: int = 8) -> int:
        """Append ``data`` as a new bufferView; returns its index."""
        if len(data) == 0:
            raise ValueError("a glTF bufferView cannot be empty")
        self._bin.extend(b"\x00" * ((-len(self._bin)) % alignment))
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self._bin), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self._bin.extend(data)
        views = self._list("bufferViews")
        views.append(view)
        return len(views) - 1

    def accessor(self, array: npt.NDArray[Any], component_type: int, kind: str, *, target: int | None = None,
                 normalized: bool = False, min_max: bool = False,
                 bounds: tuple[npt.NDArray[Any], npt.NDArray[Any]] | None = None) -> int:
        """Append a tightly packed accessor over ``array`` ((count,) or (count, components)).
        ``min_max`` writes the accessor's min and max: ``bounds`` when the caller knows them
        (exact values of the array's dtype), else computed."""
        data = np.ascontiguousarray(array, dtype=_COMPONENT_DTYPE[component_type])
        count = len(data)
        view = self.buffer_view(memoryview(data).cast("B"), target=target)  # copied once, into the buffer
        acc: dict[str, Any] = {"bufferView": view, "componentType": component_type, "count": count, "type": kind}
        if normalized:
            acc["normalized"] = True
        if min_max:
            if bounds is None:
                flat = data.reshape(count, -1)
                bounds = flat.min(axis=0), flat.max(axis=0)
            acc["min"] = [_number(v) for v in np.asarray(bounds[0], data.dtype)]
            acc["max"] = [_number(v) for v in np.asarray(bounds[1], data.dtype)]
        accessors = self._list("accessors")
        accessors.append(acc)
        return len(accessors) - 1

    def add(self, key: str, item: dict[str, Any]) -> int:
        """Append ``item`` to the top-level array ``key`` (meshes, materials, nodes...)."""
        items = self._list(key)
        items.append(item)
        return len(items) - 1

    def use_extension(self, name: str, required: bool = False) -> None:
        used = self._list("extensionsUsed")
        if name not in used:
            used.append(name)
        if required:
            req = self._list("extensionsRequired")
            if name not in req:
                req.append(name)

    def to_glb(self) -> bytes:
        return b"".join(self.glb_parts())

    def glb_parts(self) -> list[bytes | bytearray]:
        """The GLB as consecutive pieces (header, JSON chunk, BIN chunk header, buffer), to
        write without joining them into one copy of the buffer."""
        self._bin.extend(b"\x00" * ((-len(self._bin)) % 8))  # the BIN chunk: a multiple of 8
        body = self._bin
        doc = dict(self.doc)
        if body:
            doc["buffers"] = [{"byteLength": len(body)}]
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        # header (12) + JSON chunk header (8) + JSON + BIN chunk header (8): BIN data 8-aligned
        text = _pad(text, 4, b" ")
        if (28 + len(text)) % 8:
            text += b"    "
        length = 12 + 8 + len(text) + (8 + len(body) if body else 0)
        parts: list[bytes | bytearray] = [struct.pack("<4sII", GLB_MAGIC, 2, length),
                                          struct.pack("<I4s", len(text), b"JSON"), text]
        if body:
            parts += [struct.pack("<II", len(body), CHUNK_BIN), body]
        return parts


def _number(v: Any) -> float | int:
    return int(v) if isinstance(v, np.integer) else float(v)


def read_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """(glTF JSON, BIN chunk data) of a GLB; raises ValueError when it is not one."""
    if len(data) < 20 or data[:4] != GLB_MAGIC:
        raise ValueError("not a GLB (bad magic)")
    _, version, length = struct.unpack_from("<4sII", data, 0)
    if version != 2 or length != len(data):
        raise ValueError(f"bad GLB header: version {version}, length {length} for {len(data)} bytes")
    json_len, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON:
        raise ValueError("first GLB chunk is not JSON")
    doc = json.loads(data[20:20 + json_len].decode("utf-8"))
    pos = 20 + json_len
    binary = b""
    if pos + 8 <= len(data):
        bin_len, bin_type = struct.unpack_from("<II", data, pos)
        if bin_type == CHUNK_BIN:
            binary = data[pos + 8:pos + 8 + bin_len]
    return doc, binary


def read_accessor(doc: dict[str, Any], binary: bytes, index: int) -> npt.NDArray[Any]:
    """The values of accessor ``index`` as an array of shape (count,) or (count, components)."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype(_COMPONENT_DTYPE[acc["componentType"]])
    n = _TYPE_SIZE[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    stride = view.get("byteStride", dtype.itemsize * n)
    rows = np.ndarray((acc["count"], n), dtype=dtype, buffer=binary, offset=start, strides=(stride, dtype.itemsize))
    out = np.array(rows)
    return out.reshape(-1) if n == 1 else out


def read_view(doc: dict[str, Any], binary: bytes, index: int) -> bytes:
    view = doc["bufferViews"][index]
    start = view.get("byteOffset", 0)
    return binary[start:start + view["byteLength"]]
