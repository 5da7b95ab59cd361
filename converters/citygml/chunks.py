"""Splitting a CityGML file into runs of top-level members that parse on their own.

A chunk is read as ``file[0:header_end]`` (the prolog and the root start tag, with every
namespace declaration) + ``file[start:end]`` (whole top-level members) + the root end tag (not for
the last chunk, which holds the file's own). Boundaries are found on bytes: the start tag of a
member (``<`` + a prefix bound to the CityGML core or GML namespace in the root tag +
``cityObjectMember``/``featureMember``, then whitespace or ``>``) right after the end of an
element. A boundary that is not really between two top-level members (one inside a comment or
CDATA section) makes its chunk ill-formed, and the parallel reader then reads the rest of the file
in one piece, so a wrong guess costs time, never correctness.

Only ASCII-compatible encodings are split (UTF-16/32 files are read sequentially).
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

from lxml import etree

from converters.citygml import namespaces as ns
from converters.citygml import safety

_XMLNS = re.compile(rb"xmlns(?::([\w.-]+))?\s*=\s*[\"']([^\"']+)[\"']")
_QNAME = re.compile(rb"<([\w.:-]+)")
_WINDOW = 1 << 20
_HEAD_LIMIT = 1 << 20  # the root start tag must be within the first MB
_ROOT_CHILDREN_LIMIT = 1 << 20  # root children before the first member read for the root srsName


@dataclass(frozen=True)
class Layout:
    """Where the root start tag ends, how the root ends, what members start with."""

    total: int
    header_end: int
    closing: bytes
    member_starts: tuple[bytes, ...]
    first_member: int
    root_srs: str | None


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int
    end: int
    line_offset: int  # newlines of the file between header_end and start
    last: bool


def layout(path: Path, root_tag: str) -> Layout | None:
    """The layout of ``path`` (whose root start tag :func:`safety.check_prolog` returned), or
    None when the file cannot be split (not ASCII-compatible, no members found ...)."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD_LIMIT)
        if not root_tag.endswith(">") or root_tag.endswith("/>") or _wide(head):
            return None
        tag = root_tag.encode("utf-8" if head.startswith(codecs.BOM_UTF8) else "latin-1")
        at = head.find(tag)
        name = _QNAME.match(tag)
        if at < 0 or name is None:
            return None
        header_end = at + len(tag)
        starts = _member_starts(tag)
        total = fh.seek(0, 2)
        first = _find_member(fh, header_end, starts, total, require_element_before=False)
        if first is None:
            return None
        root_srs = None
        if first - header_end <= _ROOT_CHILDREN_LIMIT:
            fh.seek(header_end)
            root_srs = _root_srs(head[:header_end] + fh.read(first - header_end) + b"</" + name.group(1) + b">")
    return Layout(total, header_end, b"</" + name.group(1) + b">", starts, first, root_srs)


def chunks(path: Path, lay: Layout, chunk_bytes: int) -> Iterator[Chunk]:
    """The chunks of about ``chunk_bytes``, found lazily (the file is read once, to count lines)."""
    with open(path, "rb") as fh:
        start, offset, index = lay.header_end, 0, 0
        while True:
            target = max(start + chunk_bytes, lay.first_member + 1)
            end = _find_member(fh, target, lay.member_starts, lay.total) if target < lay.total else None
            if end is None:
                yield Chunk(index, start, lay.total, offset, True)
                return
            yield Chunk(index, start, end, offset, False)
            offset += _count_newlines(fh, start, end)
            start, index = end, index + 1


class ChunkSource:
    """A file-like object (``read``, ``tell``) giving the XML of one chunk; ``tell`` is the
    position in the file."""

    def __init__(self, path: Path, lay: Layout, chunk: Chunk) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 (closed by close() / the context manager)
        self._fh.seek(0)
        self._header = self._fh.read(lay.header_end)
        self._fh.seek(chunk.start)
        self._pos, self._end = chunk.start, chunk.end
        self._closing = b"" if chunk.last else lay.closing

    def read(self, n: int = -1) -> bytes:
        n = n if n and n > 0 else 1 << 16
        if self._header:
            out, self._header = self._header[:n], self._header[n:]
            return out
        if self._pos < self._end:
            data = self._fh.read(min(n, self._end - self._pos))
            self._pos += len(data)
            if data:
                return data
            self._end = self._pos
        out, self._closing = self._closing, b""
        return out

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wide(head: bytes) -> bool:
    """UTF-16/32: bytes of markup are not ASCII."""
    return head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or head[:4] in (b"<\x00?\x00", b"\x00<\x00?")


def _member_starts(root_tag: bytes) -> tuple[bytes, ...]:
    """``<prefix:cityObjectMember`` ... for every prefix the root binds to the core or GML namespace."""
    out: list[bytes] = []
    for prefix, uri in _XMLNS.findall(root_tag):
        text = uri.decode("latin-1")
        pre = prefix + b":" if prefix else b""
        module = ns.citygml_module(text)
        if module is not None and module[0] == "core":
            out += [b"<" + pre + b"cityObjectMember", b"<" + pre + b"featureMember"]
        elif ns.is_gml(text):
            out.append(b"<" + pre + b"featureMember")
    return tuple(dict.fromkeys(out))


def _find_member(fh: IO[bytes], pos: int, starts: tuple[bytes, ...], total: int,
                 require_element_before: bool = True) -> int | None:
    """The offset of the first member start tag at or after ``pos``, or None."""
    if not starts:
        return None
    keep = max(len(s) for s in starts) + 1
    while pos < total:
        fh.seek(max(0, pos - 64))
        before = pos - max(0, pos - 64)
        data = fh.read(before + _WINDOW + keep)
        best = -1
        for s in starts:
            i = data.find(s, before)
            while i >= 0 and not _is_boundary(data, i, len(s), require_element_before):
                i = data.find(s, i + 1)
            if i >= 0 and (best < 0 or i < best):
                best = i
        if best >= 0:
            return pos - before + best
        if len(data) < before + _WINDOW + keep:
            return None
        pos += _WINDOW
    return None


def _is_boundary(data: bytes, i: int, n: int, require_element_before: bool) -> bool:
    nxt = data[i + n:i + n + 1]
    if nxt not in (b" ", b">", b"\t", b"\r", b"\n"):
        return False  # another name, or the end of the window (the next window sees it)
    if not require_element_before:
        return True
    prev = data[max(0, i - 64):i].rstrip()
    return prev.endswith(b">")


def _count_newlines(fh: IO[bytes], start: int, end: int) -> int:
    fh.seek(start)
    n, left = 0, end - start
    while left > 0:
        block = fh.read(min(left, 1 << 22))
        if not block:
            break
        n += block.count(b"\n")
        left -= len(block)
    return n


def _root_srs(xml: bytes) -> str | None:
    """The srsName of the root gml:boundedBy/gml:Envelope in the XML before the first member."""
    try:
        root = etree.fromstring(xml, etree.XMLParser(**safety.PARSER_OPTIONS))
    except etree.XMLSyntaxError:
        return None
    for child in root:
        if child.tag in ns.GML_BOUNDED_BY:
            for env in child:
                srs = env.get("srsName")
                if srs:
                    return str(srs)
    return None
