"""Streaming CityGML reading: :class:`CityGmlReading` yields features as the file is parsed.

``lxml.etree.iterparse`` reports the start of the root ``CityModel`` (where a DTD is refused) and
the end of each top-level member (``cityObjectMember``, ``gml:featureMember``,
``gml:featureMembers``); the member's city object is read, then the member is cleared and its
preceding siblings deleted, so memory stays flat whatever the file size.
Polygons of several members are triangulated together (:mod:`converters.citygml.tessellation`),
and their features are yielded in document order, parents before children.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import shapely
from lxml import etree
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from cim.classes import SurfaceType
from cim.conversion import ConversionReport
from cim.crs import Frame
from cim.errors import InputError
from cim.feature import Feature, Source
from cim.footprint import footprint_from_meshes
from cim.mesh import Mesh
from converters.base import ConvertOptions
from converters.citygml import namespaces as ns
from converters.citygml import safety
from converters.citygml.city_object import CityObjectWalker, Draft
from converters.citygml.mapping import COMPOSITE_CLASSES
from converters.citygml.srs import SrsTracker
from converters.citygml.tessellation import build_meshes
from converters.citygml.polygons import PolygonRecord
from converters.citygml.xlinks import SeenPolygons

BATCH_POLYGONS = 4096     # polygons triangulated together
BATCH_FEATURES = 512
CRS_SEARCH_FEATURES = 1000  # city objects read while looking for a first srsName
_XMLNS = re.compile(r"xmlns(?::[\w.-]+)?\s*=\s*[\"']([^\"']+)[\"']")


class _Batch:
    def __init__(self) -> None:
        self.drafts: list[Draft] = []
        self.items: list[PolygonRecord] = []
        self.weight = 0

    def full(self) -> bool:
        return self.weight >= BATCH_POLYGONS or len(self.drafts) >= BATCH_FEATURES


class CityGmlReading:
    """See :class:`cim.conversion.Reading`."""

    def __init__(self, path: Path, options: ConvertOptions) -> None:
        self.path = Path(path)
        self.report = ConversionReport(source=self.path.name)
        try:
            self.total_bytes = self.path.stat().st_size
            with open(self.path, "rb") as fh:
                root_tag = safety.check_prolog(fh, self.path.name)
        except OSError as exc:
            raise InputError(f"cannot read {self.path}: {exc.strerror}", file=str(self.path)) from exc
        self.bytes_read = 0
        self.report.format = _format_from_root_tag(root_tag)
        self._srs = SrsTracker(self.path.name, self.report, options.frame)
        self._walker = CityObjectWalker(self.path.name, self.path.stem, self.report, self._srs, SeenPolygons())
        self._root_seen = False
        self._started = False

    @property
    def frame(self) -> Frame:
        return self._srs.frame()

    # --- streaming -------------------------------------------------------------------------
    def features(self) -> Iterator[Feature]:
        if self._started:
            raise InputError(f"{self.path.name} is already being read; open it again to read it twice",
                             file=str(self.path))
        self._started = True
        batch = _Batch()
        read_objects = 0
        with open(self.path, "rb") as fh:
            parser = safety.iterparse(fh, ns.MEMBER_TAGS | ns.CITY_MODEL, events=("start", "end"))
            try:
                for event, member in parser:
                    tag = member.tag
                    if event == "start":
                        if tag in ns.CITY_MODEL:  # refuse a DTD before reading any content
                            safety.check_docinfo(member.getroottree(), self.path.name)
                        continue
                    if tag in ns.CITY_MODEL:
                        continue
                    if not self._root_seen:
                        self._inspect_root(member.getroottree())
                    if tag in ns.SKIPPED_MEMBERS:
                        self.report.skip(f"{ns.split_tag(tag)[1]} (not a city object)")
                    else:
                        for child in member:
                            if isinstance(child.tag, str):
                                read_objects += self._read(child, batch)
                        if len(member) == 0 and member.get(ns.XLINK_HREF):
                            self.report.skip("member given by xlink:href (not resolved)")
                    self.bytes_read = fh.tell()
                    member.clear(keep_tail=False)
                    parent = member.getparent()
                    if parent is not None:
                        while member.getprevious() is not None:
                            del parent[0]
                    if batch.full() and (self._srs.known or self._srs.user_frame is not None
                                         or read_objects >= CRS_SEARCH_FEATURES):
                        yield from self._flush(batch)
                        batch = _Batch()
                if parser.root is not None and not self._root_seen:
                    self._inspect_root(parser.root.getroottree())
            except etree.XMLSyntaxError as exc:
                raise safety.syntax_error(exc, self.path, fh.tell() >= self.total_bytes) from exc
        self.bytes_read = self.total_bytes
        yield from self._flush(batch)
        if self._walker.derived_ids > 3:
            self.report.warn(f"{self._walker.derived_ids} city objects in all have no gml:id; their ids were derived "
                             f"as '{self.path.stem}:<class>:<n>' (stable as long as the file does not change)")
        if self._walker.geometry.flat_rings:
            self.report.warn(f"{self._walker.geometry.flat_rings} rings have 2D coordinates (srsDimension 2); "
                             "their heights were set to 0")

    def _inspect_root(self, tree: "etree._ElementTree") -> None:
        self._root_seen = True
        safety.check_docinfo(tree, self.path.name)
        root = tree.getroot()
        root_ns = ns.split_tag(root.tag)[0]
        version = ns.citygml_version({root_ns}) or ns.citygml_version({v for v in root.nsmap.values() if v})
        if version:
            self.report.format = f"CityGML {version}"
        for child in root:
            if child.tag in ns.GML_BOUNDED_BY:
                for env in child:
                    srs = env.get("srsName")
                    if srs:
                        self._srs.seen(srs, "root gml:Envelope")

    def _read(self, el: etree._Element, batch: _Batch) -> int:
        obj = self._walker.walk(el, len(batch.drafts))
        if obj is None:
            return 0
        batch.drafts.extend(obj.drafts)
        batch.items.extend(obj.items)
        batch.weight += len(obj.items) + sum(len(i.mesh[1]) // 8 for i in obj.items if i.mesh is not None)
        return 1

    def _flush(self, batch: _Batch) -> Iterator[Feature]:
        if not batch.drafts:
            return
        self._srs.frame()  # the frame is known before the first feature leaves (or CrsMissingError)
        meshes = build_meshes(batch.items)
        geometry: list[dict[int, Mesh]] = [{} for _ in batch.drafts]
        for bucket, mesh in meshes.items():
            if not mesh.is_empty:
                geometry[bucket >> 3][bucket & 7] = mesh
        source_file = self.path.name
        for draft in batch.drafts:
            footprint = None
            if draft.parent is None and draft.city_class in COMPOSITE_CLASSES and draft.children:
                footprint = _composite_footprint(draft, geometry)
            self.report.count(draft.city_class.value)
            yield Feature(id=draft.id, city_class=draft.city_class,
                          source=Source(file=source_file, original_class=draft.original_class),
                          parent=draft.parent.id if draft.parent is not None else None, name=draft.name,
                          attributes=draft.attributes, geometry=geometry[draft.index], footprint=footprint)


def _composite_footprint(draft: Draft, geometry: list[dict[int, Mesh]]) -> BaseGeometry | None:
    """The union of the footprints of a building (bridge, tunnel) and of all its parts."""
    part_class = COMPOSITE_CLASSES[draft.city_class]
    parts, stack = [], list(draft.children)
    while stack:
        d = stack.pop()
        if d.city_class == part_class:
            parts.append(d)
            stack.extend(d.children)
    if not parts:
        return None
    meshes = [geo[max(geo)] for geo in (geometry[d.index] for d in [draft, *parts]) if geo]
    if not meshes:
        return None
    grounds = {bool((m.surfaces == SurfaceType.GROUND).any()) for m in meshes}
    if len(grounds) == 1:  # all with ground surfaces, or none: one union does it
        return footprint_from_meshes(meshes)
    shapes = [fp for fp in (footprint_from_meshes([m]) for m in meshes) if fp is not None]
    if not shapes:
        return None
    merged = shapely.union_all(shapes)
    polys = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon)]
    return MultiPolygon(polys) if polys else None


def _format_from_root_tag(root_tag: str) -> str:
    version = ns.citygml_version(set(_XMLNS.findall(root_tag)))
    return f"CityGML {version}" if version else "XML"

