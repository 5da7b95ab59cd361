"""Converters are found by content: sniff the first bytes, fall back to the file extension, and
import the converter (and its heavy library) only when that format is used."""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cim.conversion import Reading
from cim.points import PointReading
from cim.errors import InputError, UnsupportedFormatError
from converters.base import ConvertOptions, Converter

HEAD_BYTES = 4096


def _xml_root_namespace(head: bytes) -> str | None:
    text = head.decode("latin-1")
    text = re.sub(r"<\?.*?\?>|<!--.*?-->", "", text, flags=re.S)
    m = re.search(r"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)\b([^>]*)", text, flags=re.S)
    if not m or m.group(1) == "!" or text.lstrip().startswith("<!"):
        # a DOCTYPE before the root: let the CityGML reader refuse it with a clear message
        m2 = re.search(r"xmlns(?::\w+)?=[\"']([^\"']*citygml[^\"']*)[\"']", text)
        return m2.group(1) if m2 else None
    prefix = (m.group(1) or "")[:-1]
    attrs = m.group(3)
    ns = re.search(r"xmlns%s=[\"']([^\"']+)[\"']" % (":" + prefix if prefix else ""), attrs)
    return ns.group(1) if ns else None


def _is_citygml(head: bytes) -> bool:
    ns = _xml_root_namespace(head)
    return ns is not None and "citygml" in ns.lower()


def _is_cityjson(head: bytes) -> bool:
    """A JSON object whose head says ``"type": "CityJSON"`` or holds a ``"CityObjects"`` object
    (writers put the members in any order: the Delft sample starts with CityObjects)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text.startswith(b"{"):
        return False
    return re.search(rb'"type"\s*:\s*"CityJSON"', text) is not None or \
        re.search(rb'"CityObjects"\s*:\s*\{', text) is not None


@dataclass(frozen=True)
class _Entry:
    name: str
    sniff: Callable[[bytes], bool]
    extensions: tuple[str, ...]
    target: str  # "module:Class"

    def load(self) -> Converter:
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)()  # type: ignore[no-any-return]


def _is_ifc(head: bytes) -> bool:
    from converters.ifc.archive import sniff  # stdlib only: ifcopenshell is imported by the reader's child

    return sniff(head)
def _is_las(head: bytes) -> bool:
    return head[:4] == b"LASF"


_REGISTRY: list[_Entry] = [
    _Entry("citygml", _is_citygml, (".gml", ".citygml", ".xml"), "converters.citygml:CityGmlConverter"),
    _Entry("cityjson", _is_cityjson, (".json",), "converters.cityjson:CityJsonConverter"),
    _Entry("ifc", _is_ifc, (".ifc", ".ifczip"), "converters.ifc:IfcConverter"),
    _Entry("las", _is_las, (".las", ".laz", ".copc.laz"), "converters.las:LasConverter"),
]


def registered_formats() -> list[str]:
    return [e.name for e in _REGISTRY]


def detect(path: Path) -> Converter:
    """The converter for ``path``, by content first and extension second."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
    if not head:
        raise UnsupportedFormatError(f"{path.name} is empty", file=str(path))
    for entry in _REGISTRY:
        if entry.sniff(head):
            return entry.load()
    suffix = path.suffix.lower()
    for entry in _REGISTRY:
        if suffix in entry.extensions and head.lstrip()[:1] == b"<":
            return entry.load()
    tried = ", ".join(f"{e.name} ({'/'.join(e.extensions)})" for e in _REGISTRY)
    raise UnsupportedFormatError(f"{path.name}: not a format this server reads; tried {tried}",
                                 file=str(path), tried=[e.name for e in _REGISTRY])


def open_input(path: str | Path, options: ConvertOptions | None = None) -> Reading | PointReading:
    """Find the converter for ``path`` and start reading it: a :class:`Reading` of features, or a
    :class:`cim.points.PointReading` of point chunks for point clouds."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist or is not a file", file=str(p))
    return detect(p).open(p, options or ConvertOptions())
