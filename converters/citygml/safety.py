"""Hardened XML parsing: no DTDs, no entities, no network, bounded text nodes; and XML syntax
errors turned into the library's typed errors with file name and line number.

Two independent defences refuse DTDs and entity declarations:

1. :func:`check_prolog` reads the bytes before the root element and refuses any ``<!DOCTYPE``
   before lxml sees the file;
2. :func:`check_docinfo` refuses a document whose parsed ``docinfo`` has a DTD (in case the first
   check is ever bypassed), and the parser itself never loads DTDs, never resolves entities and
   never touches the network (lxml >= 6.1.0).
"""
from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import IO, Any, Iterable

from lxml import etree

from cim.errors import HostileInputError, ParseError, TruncatedFileError

_CHUNK = 65536
_PROLOG_LIMIT = 8 * 1024 * 1024  # bytes of comments/PIs scanned before giving up on the prolog
_DTD_MESSAGE = "XML DTDs / entity declarations are not allowed"

PARSER_OPTIONS: dict[str, Any] = dict(resolve_entities=False, load_dtd=False, no_network=True,
                                      dtd_validation=False, huge_tree=False, remove_comments=True,
                                      remove_pis=True, remove_blank_text=True)


def _decoder_for(head: bytes) -> "codecs.IncrementalDecoder":
    for bom, encoding in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                          (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            return codecs.getincrementaldecoder(encoding)(errors="replace")
    if head[:4] == b"<\x00?\x00":
        return codecs.getincrementaldecoder("utf-16-le")(errors="replace")
    if head[:4] == b"\x00<\x00?":
        return codecs.getincrementaldecoder("utf-16-be")(errors="replace")
    # every other encoding XML allows without a BOM is ASCII-compatible for markup characters
    return codecs.getincrementaldecoder("latin-1")()


_LINE_IN_MESSAGE = re.compile(r"\bline (\d+)")
_NAME_START = re.compile(r"[A-Za-z_:\u00c0-\uffff]")


def check_prolog(fh: IO[bytes], name: str) -> str:
    """Scan the prolog (XML declaration, comments, processing instructions) of an open binary
    file and refuse a document type declaration. Returns the text of the root start tag (up to
    a few KB), or ``""`` if the prolog is longer than the scan limit (the docinfo check then
    covers it). The file position is left at the start."""
    fh.seek(0)
    first = fh.read(_CHUNK)
    decoder = _decoder_for(first)
    text = decoder.decode(first)
    consumed = len(first)
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n\ufeff":
            pos += 1
        need_more = pos >= len(text)
        if not need_more and text.startswith("<", pos):
            if text.startswith("<?", pos) or text.startswith("<!--", pos):
                end = text.find("?>" if text[pos + 1] == "?" else "-->", pos + 2)
                if end >= 0:
                    pos = end + (2 if text[pos + 1] == "?" else 3)
                    continue
                need_more = True
            elif text.startswith("<!", pos):
                if len(text) - pos < 9:
                    need_more = True
                else:
                    what = text[pos:pos + 60].split("[")[0].strip()
                    fh.seek(0)
                    if text[pos:pos + 9].upper() == "<!DOCTYPE":
                        raise HostileInputError(
                            f"{_DTD_MESSAGE}: {name} starts with a document type declaration ({what} ...); "
                            "DTDs can declare entities that expand without bound (billion laughs) or read local "
                            "files and URLs (XXE). Remove the DOCTYPE and import again.",
                            file=name, construct="DOCTYPE")
                    raise HostileInputError(f"{_DTD_MESSAGE}: {name} has '{what}' before its root element",
                                            file=name, construct=what)
            elif len(text) - pos > 1 and _NAME_START.match(text, pos + 1):
                end = text.find(">", pos)
                fh.seek(0)
                return text[pos:end + 1 if end >= 0 else pos + 4096]
            elif len(text) - pos <= 1:
                need_more = True
            else:
                fh.seek(0)
                return ""  # not well-formed: the parser reports it with a line number
        elif not need_more:
            fh.seek(0)
            return ""  # text before the root element: the parser reports it
        if need_more:
            if consumed >= _PROLOG_LIMIT:
                fh.seek(0)
                return ""
            chunk = fh.read(_CHUNK)
            if not chunk:
                fh.seek(0)
                return ""
            consumed += len(chunk)
            text = text[pos:] + decoder.decode(chunk)
            pos = 0


def check_docinfo(tree: "etree._ElementTree", name: str) -> None:
    """Refuse a parsed document that has a DTD (internal subset, external DTD or DOCTYPE line)."""
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise HostileInputError(f"{_DTD_MESSAGE}: {name} declares a document type ({info.doctype or 'DTD'})",
                                file=name, construct="DOCTYPE")


def iterparse(source: "IO[bytes] | str | Path | Any", tags: Iterable[str],
              events: tuple[str, ...] = ("end",)) -> "etree.iterparse":
    """``lxml.etree.iterparse`` with the safe options, reporting ``events`` of ``tags``."""
    return etree.iterparse(source, events=events, tag=sorted(tags), **PARSER_OPTIONS)


def syntax_error(exc: etree.XMLSyntaxError, path: Path, at_end_of_file: bool, line_offset: int = 0) -> ParseError:
    """The typed error for an lxml syntax error: :class:`TruncatedFileError` when the parser
    stopped at the end of the file with elements still open, :class:`ParseError` otherwise.
    ``line_offset`` is added to the parser's line numbers (a part of the file was parsed)."""
    line, code = exc.lineno or 0, exc.code
    column = exc.position[1] if exc.position else 0
    message = str(exc.msg or exc).split(", line ")[0]
    if line == 0:  # lxml's generic "no element found": the real error is the last one logged
        fatal = [e for e in exc.error_log if e.level_name == "FATAL"]  # type: ignore[attr-defined]
        if fatal:
            line, column, code, message = fatal[-1].line, fatal[-1].column, fatal[-1].type, fatal[-1].message.strip()
    if line > 0 and line_offset:
        line += line_offset
        message = _LINE_IN_MESSAGE.sub(lambda m: f"line {int(m.group(1)) + line_offset}", message)
    truncated = code == 77 or "Premature end of data" in message or (
        at_end_of_file and _is_end_of_file(path, line, column))
    if truncated and line > 0:
        return TruncatedFileError(
            f"{path.name} is truncated or incomplete: the XML ends at line {line} with elements still open "
            f"({message}); the file was probably cut off during download or copy", file=path.name, line=line)
    if line == 0:
        return ParseError(f"{path.name} is not well-formed XML: {message}", file=path.name, line=line)
    return ParseError(f"{path.name} line {line}: not well-formed XML: {message}", file=path.name, line=line)


def _is_end_of_file(path: Path, line: int, column: int) -> bool:
    """Whether (line, column) is the very end of the file: where a parser stops on a file cut
    in the middle of a tag or attribute."""
    count, tail = 1, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
            tail = (tail + chunk)[-65536:]
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    return line >= count and column >= len(last)
