"""Streaming an upload body to a staging file with a size cap (nothing is held in memory).

``multipart/form-data``: the part named ``file`` goes to disk, other parts are small text fields.
``application/octet-stream``: the body is the file. The cap is checked on every chunk, so an
oversize upload stops as soon as it passes the cap (uvicorn and Starlette set no limit).
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from cim.errors import InputError, PayloadTooLargeError, UnsupportedFormatError

MAX_FIELDS = 20
MAX_FIELD_BYTES = 4096
FILE_FIELD = "file"


def safe_filename(name: str | None) -> str:
    """The last path segment, reduced to ``[A-Za-z0-9._-]`` (never a dotfile); ``upload`` if empty."""
    base = re.split(r"[/\\]", name or "")[-1]
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:128]
    return clean or "upload"


@dataclass
class Received:
    path: Path | None = None
    filename: str = ""
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(cap: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the upload is larger than this server's cap of {cap} bytes (CIM_UPLOAD_MAX_BYTES)",
                                limit=cap)


class _FileSink:
    def __init__(self, folder: Path, cap: int) -> None:
        self.folder = folder
        self.cap = cap
        self.out: IO[bytes] | None = None
        self.received = Received()

    def open(self, filename: str | None) -> None:
        if self.received.path is not None:
            raise InputError(f"send one file per upload (one '{FILE_FIELD}' field)")
        self.received.filename = safe_filename(filename)
        self.received.path = self.folder / self.received.filename
        self.out = open(self.received.path, "xb")

    def write(self, data: bytes) -> None:
        self.received.size += len(data)
        if self.received.size > self.cap:
            raise _too_large(self.cap)
        assert self.out is not None
        self.out.write(data)

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


class _MultipartSink(_FileSink):
    """python-multipart callbacks: headers of each part, then its data."""

    def __init__(self, folder: Path, cap: int, boundary: bytes) -> None:
        super().__init__(folder, cap)
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field,
            "on_header_value": self._header_value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end})
        self._header: list[bytes] = [b"", b""]
        self._disposition = b""
        self._field: str | None = None
        self._value = bytearray()
        self._in_file = False

    def feed(self, chunk: bytes) -> None:
        try:
            self.parser.write(chunk)
        except MultipartParseError as exc:
            raise InputError(f"the multipart body is malformed: {exc}") from exc

    def _part_begin(self) -> None:
        self._disposition, self._field, self._in_file = b"", None, False
        self._value.clear()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def _header_end(self) -> None:
        if self._header[0].lower() == b"content-disposition":
            self._disposition = self._header[1]
        self._header = [b"", b""]

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        name = params.get(b"name", b"").decode("utf-8", "replace")
        if name == FILE_FIELD:
            self._in_file = True
            self.open(params.get(b"filename", b"").decode("utf-8", "replace"))
        else:
            if len(self.received.fields) >= MAX_FIELDS:
                raise InputError(f"too many form fields (at most {MAX_FIELDS})")
            self._field = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise InputError(f"the form field '{self._field}' is longer than {MAX_FIELD_BYTES} bytes")

    def _part_end(self) -> None:
        if self._in_file:
            self.close()
            self._in_file = False
        elif self._field:
            self.received.fields[self._field] = self._value.decode("utf-8", "replace").strip()

    def finish(self) -> None:
        self.parser.finalize()
        self.close()


async def receive_upload(content_type: str, filename_header: str | None, body: AsyncIterator[bytes],
                         folder: Path, cap: int) -> Received:
    """Stream the body into ``folder`` (which must exist); raises InputError, UnsupportedFormatError
    (a content type that is neither multipart nor octet-stream) or PayloadTooLargeError. The caller
    removes ``folder`` on error."""
    media, params = parse_options_header(content_type)
    if media == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise InputError("multipart/form-data without a boundary")
        sink: _FileSink = _MultipartSink(folder, cap, boundary)
        try:
            async for chunk in body:
                if chunk:
                    await run_in_threadpool(sink.feed, chunk)  # type: ignore[attr-defined]
            await run_in_threadpool(sink.finish)  # type: ignore[attr-defined]
        finally:
            sink.close()
        if sink.received.path is None:
            raise InputError(f"the multipart form has no '{FILE_FIELD}' field with the file to convert")
        return sink.received
    if media == b"application/octet-stream":
        if not filename_header:
            raise InputError("a raw upload (application/octet-stream) needs the file name in the X-Filename header")
        sink = _FileSink(folder, cap)
        sink.open(filename_header)
        try:
            async for chunk in body:
                if chunk:
                    await run_in_threadpool(sink.write, chunk)
        finally:
            sink.close()
        return sink.received
    raise UnsupportedFormatError("send the file as multipart/form-data (field 'file') or as "
                                 "application/octet-stream with an X-Filename header",
                                 content_type=media.decode("latin-1"))
