"""The member loop shared by the sequential reader and the chunk workers of the parallel reader.

:class:`MemberStream` parses one XML byte stream (the whole file, or the root start tag plus a
run of top-level members: :mod:`converters.citygml.chunks`) with the hardened ``iterparse``: the
start of the root ``CityModel`` (where a DTD is refused) and the end of each top-level member
(``cityObjectMember``, ``gml:featureMember``, ``gml:featureMembers``). The member's city object is
read (:class:`CityObjectWalker`), then the member is cleared and its preceding siblings deleted,
so memory stays flat whatever the file size. Polygons of several members are triangulated
together (:mod:`converters.citygml.tessellation`) and come out as batches of finished features in
document order, parents before children, top-level ones with their footprint.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import shapely
from lxml import etree
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from cim.classes import SurfaceType
from cim.feature import Feature, Source
from cim.footprint import (
    footprint_from_meshes,
    footprints_from_rings,
    ground_polygons_many,
)
from cim.mesh import Mesh
from converters.citygml import namespaces as ns
from converters.citygml import safety
from converters.citygml.city_object import CityObjectWalker, Draft, derived_id_warning
from converters.citygml.mapping import COMPOSITE_CLASSES
from converters.citygml.notes import Notes
from converters.citygml.polygons import Array, PolygonRecord
from converters.citygml.srs import SrsTracker
from converters.citygml.tessellation import build_meshes
from converters.citygml.xlinks import SeenPolygons

#: one feature's polygons for its footprint: (rings of each polygon, GroundSurface?, flipped?)
PolygonGroup = tuple[list[Sequence[Array]], list[bool], list[bool]]

BATCH_POLYGONS = 4096     # polygons triangulated together
BATCH_FEATURES = 512
_GROUND = int(SurfaceType.GROUND)


class ByteSource(Protocol):
    """What the parser reads: an open binary file, or a chunk of one (:class:`chunks.ChunkSource`)."""

    def read(self, n: int = -1) -> bytes: ...

    def tell(self) -> int: ...


class _Batch:
    def __init__(self) -> None:
        self.drafts: list[Draft] = []
        self.items: list[PolygonRecord] = []
        self.weight = 0

    def full(self) -> bool:
        return self.weight >= BATCH_POLYGONS or len(self.drafts) >= BATCH_FEATURES


class MemberStream:
    """Reads the members of one XML stream into features (see the module docstring).

    ``line_offset`` is the number of lines of the file before the part being parsed, so that
    warnings and errors name lines of the file. With ``defer_derived_ids`` (a chunk worker), ids
    derived for city objects without ``gml:id`` are numbered within the part and listed in
    :attr:`derived` (position in the output, line) for the parallel reader to renumber;
    otherwise their warnings are given here.
    """

    def __init__(self, path: Path, notes: Notes, srs: SrsTracker, seen: SeenPolygons, *,
                 line_offset: int = 0, defer_derived_ids: bool = False) -> None:
        self.path = path
        self.notes = notes
        self.report = notes.report
        self.srs = srs
        self.line_offset = line_offset
        self.defer_derived_ids = defer_derived_ids
        self.walker = CityObjectWalker(path.name, path.stem, notes, srs, seen, line_offset)
        self.bytes_read = 0
        self.read_objects = 0
        self.emitted = 0
        self.derived: list[tuple[int, int]] = []
        self._root_seen = False

    def batches(self, fh: ByteSource, may_flush: Callable[[], bool],
                at_end: Callable[[], bool]) -> Iterator[list[Feature]]:
        """Parse ``fh`` and yield its features batch by batch. A full batch is only flushed when
        ``may_flush()`` (the sequential reader holds features while it looks for a CRS);
        ``at_end()`` tells a syntax error at the end of the data (truncation) from others."""
        batch = _Batch()
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
                            self._read(child, batch)
                    if len(member) == 0 and member.get(ns.XLINK_HREF):
                        self.report.skip("member given by xlink:href (not resolved)")
                self.bytes_read = fh.tell()
                member.clear(keep_tail=False)
                parent = member.getparent()
                if parent is not None:
                    while member.getprevious() is not None:
                        del parent[0]
                if batch.full() and may_flush():
                    yield self._flush(batch)
                    batch = _Batch()
            if parser.root is not None and not self._root_seen:
                self._inspect_root(parser.root.getroottree())
        except etree.XMLSyntaxError as exc:
            raise safety.syntax_error(exc, self.path, at_end(), self.line_offset) from exc
        if batch.drafts:
            yield self._flush(batch)

    def finish(self) -> None:
        """The warnings about the whole file (after the last batch of a sequential read)."""
        finish_warnings(self.notes, self.walker.derived_ids, self.walker.geometry.flat_rings, self.path.stem)

    def _inspect_root(self, tree: etree._ElementTree) -> None:
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
                        self.srs.seen(srs, "root gml:Envelope")

    def _read(self, el: etree._Element, batch: _Batch) -> None:
        obj = self.walker.walk(el, len(batch.drafts))
        if obj is None:
            return
        self.read_objects += 1
        batch.drafts.extend(obj.drafts)
        batch.items.extend(obj.items)
        batch.weight += len(obj.items) + sum(len(i.mesh[1]) // 8 for i in obj.items if i.mesh is not None)

    def _flush(self, batch: _Batch) -> list[Feature]:
        meshes = build_meshes(batch.items)
        geometry: list[dict[int, Mesh]] = [{} for _ in batch.drafts]
        for bucket, mesh in meshes.items():
            if not mesh.is_empty:
                mesh.bounds()  # cached on the mesh (and sent with it to the main process): ingestion needs them
                geometry[bucket >> 3][bucket & 7] = mesh
        source_file = self.path.name
        by_bucket: dict[int, list[PolygonRecord]] = {}
        for it in batch.items:
            by_bucket.setdefault(it.bucket, []).append(it)
        # footprints of the top-level features: what ingestion would derive, done here (in the workers)
        footprints: dict[int, BaseGeometry | None] = {}
        from_rings: list[int] = []
        groups: list[PolygonGroup] = []
        group_owner: list[int] = []  # position in from_rings
        for draft in batch.drafts:
            if draft.parent is None:
                found = _footprint(draft, geometry, by_bucket)
                if isinstance(found, list):
                    groups += found
                    group_owner += [len(from_rings)] * len(found)
                    from_rings.append(draft.index)
                else:
                    footprints[draft.index] = found
        ring_inputs: list[list[Sequence[Array]]] = [[] for _ in from_rings]
        for owner, picked in zip(group_owner, ground_polygons_many(groups)):
            ring_inputs[owner] += picked
        footprints.update(zip(from_rings, footprints_from_rings(ring_inputs)))
        out: list[Feature] = []
        for draft in batch.drafts:
            geo = geometry[draft.index]
            footprint = footprints.get(draft.index)
            if draft.derived_line:
                if self.defer_derived_ids:
                    self.derived.append((self.emitted + len(out), draft.derived_line))
                else:
                    self.notes.warn("derived", derived_id_warning(draft.original_class, draft.derived_line, draft.id), 3)
            self.report.count(draft.city_class.value)
            out.append(Feature(id=draft.id, city_class=draft.city_class,
                               source=Source(file=source_file, original_class=draft.original_class),
                               parent=draft.parent.id if draft.parent is not None else None, name=draft.name,
                               attributes=draft.attributes, geometry=geo, footprint=footprint))
        self.emitted += len(out)
        return out


def finish_warnings(notes: Notes, derived_ids: int, flat_rings: int, file_stem: str) -> None:
    if derived_ids > 3:
        notes.report.warn(f"{derived_ids} city objects in all have no gml:id; their ids were derived "
                          f"as '{file_stem}:<class>:<n>' (stable as long as the file does not change)")
    if flat_rings:
        notes.report.warn(f"{flat_rings} rings have 2D coordinates (srsDimension 2); their heights were set to 0")


def _footprint(draft: Draft, geometry: list[dict[int, Mesh]],
               by_bucket: dict[int, list[PolygonRecord]]) -> BaseGeometry | list[PolygonGroup] | None:
    """The footprint of a top-level feature: of its best-LOD geometry and, for a building (bridge,
    tunnel) with parts, the union with all its parts'. Built from the polygons' rings (returned as
    one group of polygons per feature, whose ground polygons
    :func:`cim.footprint.ground_polygons_many` picks and
    :func:`cim.footprint.footprints_from_rings` merges, for a batch at once), or from the meshes
    when some of that geometry came pre-triangulated (TINs)."""
    members = [draft]
    if draft.city_class in COMPOSITE_CLASSES and draft.children:
        part_class = COMPOSITE_CLASSES[draft.city_class]
        stack = list(draft.children)
        while stack:
            d = stack.pop()
            if d.city_class == part_class:
                members.append(d)
                stack.extend(d.children)
    groups: list[PolygonGroup] = []
    meshes: list[Mesh] = []
    from_rings = True
    for d in members:
        geo = geometry[d.index]
        if not geo:
            continue
        lod = max(geo)
        meshes.append(geo[lod])
        if from_rings:
            recs = by_bucket.get(d.index * 8 + lod, [])
            if any(r.mesh is not None for r in recs):
                from_rings = False
                continue
            recs = [r for r in recs if r.rings]
            groups.append(([r.rings for r in recs], [r.stype == _GROUND for r in recs],  # type: ignore[misc]
                           [r.flip for r in recs]))
    if not meshes:
        return None
    if from_rings:
        return groups
    if len(meshes) == 1:
        return footprint_from_meshes(meshes)
    grounds = {bool((m.surfaces == SurfaceType.GROUND).any()) for m in meshes}
    if len(grounds) == 1:  # all with ground surfaces, or none: one union does it
        return footprint_from_meshes(meshes)
    shapes = [fp for fp in (footprint_from_meshes([m]) for m in meshes) if fp is not None]
    if not shapes:
        return None
    merged = shapely.union_all(shapes)
    polys = [g for g in getattr(merged, "geoms", [merged]) if isinstance(g, Polygon)]
    return MultiPolygon(polys) if polys else None
