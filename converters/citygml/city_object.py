"""One top-level city object (with its parts, rooms, openings ...) -> feature drafts and polygons.

:class:`CityObjectWalker` walks the element tree of one ``cityObjectMember`` after the parser has
built it. Each city object becomes a :class:`Draft` (parents before children); thematic surfaces
(``WallSurface`` ...) are not features: their polygons go into the owning feature's bucket with
their semantic type; openings (``Window``/``Door``) are features whose parent is the feature that
owns the wall. Geometry goes through :class:`GeometryCollector`, references through
:func:`resolve_member`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lxml import etree

from cim.classes import CityClass, SurfaceType
from cim.feature import AttributeValue
from converters.citygml.attributes import AttributeReader
from converters.citygml.gml_geometry import GeometryCollector
from converters.citygml.mapping import (DEFAULT_SURFACE, OPENING_CLASSES, ElementKind, Kind, Role,
                                        element_kind, property_role)
from converters.citygml.namespaces import GML_ENVELOPE, GML_ID, XLINK_HREF
from converters.citygml.notes import Notes
from converters.citygml.polygons import DIRECT, OPENING, SEMANTIC, PolygonRecord
from converters.citygml.srs import SrsTracker
from converters.citygml.xlinks import SeenPolygons, resolve_member

try:  # the compiled walk of city objects (setup.py builds it with the geometry scan; optional)
    from converters.citygml.gml_scan import walk as compiled_walk
except ImportError:  # pragma: no cover - an install without a C compiler
    compiled_walk = None

_ID311, _ID32 = GML_ID


@dataclass(slots=True, eq=False)
class Draft:
    """A feature being read: ``index`` is its position in the city object (buckets are
    ``index * 8 + lod``)."""

    index: int
    id: str
    city_class: CityClass
    original_class: str
    parent: "Draft | None"
    stype: int
    name: str | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    relief_lod: int = 1
    children: list["Draft"] = field(default_factory=list)
    derived_line: int = 0  # the line of a city object without gml:id (its id was derived), else 0


@dataclass(slots=True)
class CityObject:
    drafts: list[Draft]
    items: list[PolygonRecord]


def _srs_callback(srs: SrsTracker) -> Callable[[str, int], None]:
    """The collector's report of an ``srsName`` (not a method of the walker: the walker holds
    the collector, and a cycle would keep every chunk's polygons alive until the cyclic
    garbage collector runs)."""
    def seen(text: str, line: int) -> None:
        srs.seen(text, f"line {line}")
    return seen


class CityObjectWalker:
    def __init__(self, file_name: str, file_stem: str, notes: Notes, srs: SrsTracker,
                 seen: SeenPolygons, line_offset: int = 0) -> None:
        self.file_stem = file_stem
        self.report = notes.report
        self.notes = notes
        self.srs = srs
        self.seen = seen
        #: added to lxml's line numbers: lines of the file before the part being parsed
        self.line_offset = line_offset
        self.attrs = AttributeReader(notes)
        self.geometry = GeometryCollector(file_name, self.report, _srs_callback(srs), line_offset)
        self._drafts: list[Draft] = []
        self._first_index = 0
        self.derived_counts: dict[str, int] = {}
        self.derived_ids = 0

    def walk(self, el: etree._Element, first_index: int = 0) -> CityObject | None:
        """Read the city object ``el`` (the child of a member element); None if it is not one.
        Its drafts are numbered from ``first_index`` (their position in the reader's batch)."""
        kind = element_kind(el.tag, el.prefix)
        if kind.kind not in (Kind.FEATURE, Kind.UNKNOWN):
            self.report.skip(f"{kind.qualified or 'non-element'} member (not a city object)")
            return None
        self._drafts = []
        self._first_index = first_index
        self.geometry.reset()
        if compiled_walk is not None:
            compiled_walk(self, el, kind, Draft)
        else:
            self._object(el, kind, None)
        items = resolve_member(self.geometry.records, self.geometry.refs, self.seen, self.notes)
        return CityObject(self._drafts, items)

    # --- features ------------------------------------------------------------------------------
    def _object(self, el: etree._Element, kind: ElementKind, parent: Draft | None) -> None:
        city_class = kind.city_class or CityClass.GENERIC_CITY_OBJECT
        if kind.kind == Kind.UNKNOWN:
            self.notes.warn(("class", kind.qualified),
                            f"unknown city object class {kind.qualified} (line {self._line(el)}) was read as "
                            "GenericCityObject; its original class is kept in the feature's source")
        gid = el.get(_ID311) or el.get(_ID32)
        derived_line = 0
        if not gid:
            n = self.derived_counts.get(kind.local, 0) + 1
            self.derived_counts[kind.local] = n
            gid = derived_id(self.file_stem, kind.local, n)
            self.derived_ids += 1
            derived_line = self._line(el) or -1
        draft = Draft(self._first_index + len(self._drafts), gid, city_class, kind.qualified, parent,
                      int(DEFAULT_SURFACE.get(city_class, SurfaceType.UNDEFINED)), derived_line=derived_line)
        self._drafts.append(draft)
        if parent is not None:
            parent.children.append(draft)
        origin = OPENING if city_class in OPENING_CLASSES else DIRECT
        self._properties(el, draft, origin, draft.stype, draft.attributes)

    def _properties(self, el: etree._Element, draft: Draft, origin: int, stype: int,
                    attrs: dict[str, AttributeValue]) -> None:
        """Read the properties of a feature into ``draft`` and ``attrs``; a merged space passes its
        owner as ``draft`` and a scratch dict as ``attrs`` (its attributes are not kept)."""
        tins: list[etree._Element] = []
        for prop in el:
            if isinstance(prop.tag, str):
                self._property(prop, draft, origin, stype, attrs, tins)
        self._tins(tins, draft, origin)

    def _tins(self, tins: list[etree._Element], draft: Draft, origin: int) -> None:
        for tin in tins:
            self.geometry.collect(tin, draft.index * 8 + draft.relief_lod, int(SurfaceType.TERRAIN), origin)

    def _property(self, prop: etree._Element, draft: Draft, origin: int, stype: int,
                  attrs: dict[str, AttributeValue], tins: list[etree._Element]) -> None:
        """One property of a feature (``tins`` collects TIN geometry, read after the relief's LOD)."""
        r = property_role(prop.tag)
        role = r.role
        if role == Role.GEOMETRY:
            self.geometry.collect(prop, draft.index * 8 + r.lod, int(r.surface) if r.surface else stype, origin)
        elif role == Role.BOUNDARY or role == Role.OPENING:
            for child in prop:
                self._value(child, draft)
        elif role == Role.OTHER:
            if len(prop) == 0:
                self.attrs.simple(prop, r.local, attrs)
            else:
                first = prop[0]
                if element_kind(first.tag, first.prefix).kind in (Kind.DATA, Kind.GML, Kind.OTHER):
                    self.attrs.flatten(prop, r.local, attrs)
                else:
                    for child in prop:
                        self._value(child, draft)
        elif role == Role.NAME:
            if draft.name is None and attrs is draft.attributes and prop.text and prop.text.strip():
                draft.name = prop.text.strip()
        elif role == Role.GENERIC:
            self.attrs.generic(prop, attrs)
        elif role == Role.DESCRIPTION:
            if prop.text and prop.text.strip():
                attrs["description"] = prop.text.strip()
        elif role == Role.ENVELOPE:
            for env in prop:
                if env.tag in GML_ENVELOPE and env.get("srsName"):
                    self.srs.seen(env.get("srsName", ""), f"line {self._line(env)}")
        elif role == Role.ADDRESS:
            self.attrs.address(prop, attrs)
        elif role == Role.HEIGHT:
            self.attrs.height(prop, attrs)
        elif role == Role.EXTERNAL_REFERENCE:
            self.attrs.flatten(prop, r.local, attrs)
        elif role == Role.RELIEF_LOD:
            try:
                draft.relief_lod = min(4, max(0, int((prop.text or "").strip())))
            except ValueError:  # the relief keeps its default LOD; the report says why
                self._skip_once(f"unreadable {r.local} value '{(prop.text or '').strip()[:20]}'")
        elif role == Role.TIN:
            tins.append(prop)
        elif role == Role.IMPLICIT:
            self._skip_once(f"implicit geometry ({r.local}, not supported)")
        elif role == Role.APPEARANCE:
            self._skip_once("appearances (textures and materials, not supported)")
        elif role == Role.IGNORED_GEOMETRY:
            self.report.skip("curve and point geometry (ignored)")

    def _value(self, el: etree._Element, owner: Draft) -> None:
        """An element held by a property of ``owner``: a child feature, a thematic surface or a
        merged space."""
        if not isinstance(el.tag, str):
            return
        kind = element_kind(el.tag, el.prefix)
        if kind.kind in (Kind.FEATURE, Kind.UNKNOWN):
            self._object(el, kind, owner)
        elif kind.kind == Kind.SURFACE:
            self._surface(el, owner, int(kind.surface))
        elif kind.kind == Kind.SPACE:
            self._properties(el, owner, DIRECT, int(kind.surface), {})
        elif el.get(XLINK_HREF) is None:
            self.report.skip(f"{kind.qualified} (not a city object)")

    def _surface(self, el: etree._Element, owner: Draft, stype: int) -> None:
        for prop in el:
            if not isinstance(prop.tag, str):
                continue
            r = property_role(prop.tag)
            if r.role == Role.GEOMETRY:
                self.geometry.collect(prop, owner.index * 8 + r.lod, stype, SEMANTIC)
            elif r.role == Role.OPENING:
                for child in prop:
                    self._value(child, owner)
            elif r.role == Role.IMPLICIT:
                self._skip_once(f"implicit geometry ({r.local}, not supported)")

    def _skip_once(self, reason: str) -> None:
        self.notes.warn(("skip", reason), f"skipped: {reason}")
        self.report.skip(reason)

    def _line(self, el: etree._Element) -> int:
        return (el.sourceline or 0) + self.line_offset


def derived_id(file_stem: str, local: str, n: int) -> str:
    """The id of the ``n``-th city object of class ``local`` without a ``gml:id``."""
    return f"{file_stem}:{local}:{n}"


def derived_id_warning(qualified: str, line: int, gid: str) -> str:
    return f"{qualified} at line {line} has no gml:id; it was given the id '{gid}'"
