"""GML 3.1.1 / 3.2 surface geometry -> polygon records (rings as numpy arrays).

:class:`GeometryCollector` walks the geometry under one CityGML geometry property
(``bldg:lod2MultiSurface``, ``lod1Solid``, ``dem:tin`` ...) and appends, for the current
*bucket* (one feature at one LOD):

* a :class:`PolygonRecord` per Polygon / Triangle / Rectangle / PolygonPatch (exterior ring first,
  then interior rings), with the semantic surface type, the orientation (``OrientableSurface
  orientation="-"`` flips) and the ``gml:id`` path that xlinks may point at;
* a :class:`RefRecord` per ``xlink:href`` pointing at geometry defined elsewhere (resolved per city
  object by :mod:`converters.citygml.xlinks`);
* one pre-triangulated record per ``TriangulatedSurface``/``Tin`` (vectorised fast path).

Most geometry is plain: polygons with ``posList`` rings in multi-surfaces, composites, shells and
solids, perhaps with ``xlink`` members. :meth:`GeometryCollector._fast` reads those in one flat
C-level ``iter()`` pass; anything else (orientable surfaces, patches, ``pos``/``coordinates``,
ids or ``srsName`` on inner aggregates ...) goes through the general recursive walk. Curves and
points are ignored; anything else unsupported is counted in the report. Coordinates are parsed
with numpy, one call per ring.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from lxml import etree

from cim.conversion import ConversionReport
from cim.errors import ParseError
from converters.citygml.namespaces import GML_NAMESPACES, XLINK_HREF, gml_tags, split_tag
from converters.citygml.polygons import DIRECT, Array, IdPath, PolygonRecord, RefRecord

try:  # the compiled scan of plain geometry (setup.py builds it; optional)
    from converters.citygml.gml_scan import scan as compiled_scan
except ImportError:  # pragma: no cover - an install without a C compiler
    compiled_scan = None

_EXTERIOR = gml_tags("exterior", "outerBoundaryIs")
_INTERIOR = gml_tags("interior", "innerBoundaryIs")
_LINEAR_RING = gml_tags("LinearRing")
_POSLIST = gml_tags("posList")
_POS = gml_tags("pos")
_COORDINATES = gml_tags("coordinates")
_PATCHES = gml_tags("patches", "trianglePatches")
_NON_GEOMETRY_PROPS = gml_tags("name", "description", "boundedBy", "metaDataProperty", "identifier",
                               "descriptionReference", "controlPoint", "stopLines", "breakLines", "maxLength")
_ID_ATTR = {ns: f"{{{ns}}}id" for ns in GML_NAMESPACES}
_POLYGON = gml_tags("Polygon")
_MEMBER = gml_tags("surfaceMember")
_AGGREGATE = gml_tags("MultiSurface", "CompositeSurface", "Shell", "Solid")
_FAST_ROOTS = _AGGREGATE | _POLYGON
_ID_OF = {tag: _ID_ATTR[tag[1:tag.index("}")]] for tag in _FAST_ROOTS}
#: what the fast pass does with each tag; any other tag sends the geometry to the general walk
_F_POSLIST, _F_POLYGON, _F_INTERIOR, _F_MEMBER, _F_AGGREGATE, _F_SKIP = range(1, 7)
_FAST_CODES: dict[str, int] = {
    **{t: _F_POSLIST for t in _POSLIST}, **{t: _F_POLYGON for t in _POLYGON},
    **{t: _F_INTERIOR for t in _INTERIOR if t.endswith("}interior")}, **{t: _F_MEMBER for t in _MEMBER},
    **{t: _F_AGGREGATE for t in _AGGREGATE}, **{t: _F_SKIP for t in gml_tags("exterior", "LinearRing")},
}


class GeometryCollector:
    """Collects the polygons of one city object (see the module docstring)."""

    def __init__(self, file_name: str, report: ConversionReport, srs_seen: Callable[[str, int], None],
                 line_offset: int = 0) -> None:
        self.file_name = file_name
        self.report = report
        self.srs_seen = srs_seen
        self.line_offset = line_offset  # lines of the file before the part being parsed
        self.records: list[PolygonRecord] = []
        self.refs: list[RefRecord] = []
        self.flat_rings = 0
        self._bucket = 0
        self._stype = 0
        self._origin = DIRECT
        #: tag -> (handler, tag of its gml:id attribute)
        self._handlers: dict[str, tuple[Callable[[etree._Element, bool, IdPath, int, str | None], None], str]] = {}
        for name, handler in (
                ("Polygon", self._polygon), ("Triangle", self._polygon), ("Rectangle", self._polygon),
                ("PolygonPatch", self._polygon),
                ("MultiSurface", self._aggregate), ("CompositeSurface", self._aggregate),
                ("Shell", self._aggregate), ("Solid", self._aggregate), ("CompositeSolid", self._aggregate),
                ("MultiSolid", self._aggregate), ("MultiGeometry", self._aggregate),
                ("GeometricComplex", self._aggregate), ("Surface", self._aggregate),
                ("MultiPolygon", self._aggregate),
                ("TriangulatedSurface", self._tin), ("Tin", self._tin),
                ("OrientableSurface", self._orientable),
                ("Point", self._ignored), ("MultiPoint", self._ignored), ("LineString", self._ignored),
                ("MultiCurve", self._ignored), ("CompositeCurve", self._ignored), ("Curve", self._ignored),
                ("OrientableCurve", self._ignored), ("MultiLineString", self._ignored)):
            for ns in GML_NAMESPACES:
                self._handlers[f"{{{ns}}}{name}"] = (handler, _ID_ATTR[ns])

    def reset(self) -> None:
        self.records = []
        self.refs = []

    # --- entry point -------------------------------------------------------------------------
    def collect(self, prop: etree._Element, bucket: int, stype: int, origin: int) -> None:
        """Collect the geometry held by property element ``prop`` into ``bucket``."""
        self._bucket, self._stype, self._origin = bucket, stype, origin
        href = prop.get(XLINK_HREF)
        if href is not None:
            self._ref(href, False, (), prop)
            return
        scan = compiled_scan  # the compiled scan (:mod:`gml_scan`) when it is built
        for child in prop:
            if scan is not None:
                found = scan(child, self.records, PolygonRecord, bucket, stype, origin)
                if found is not None:
                    self.scanned(*found)
                    continue
            self.read_unscanned(child)

    def scanned(self, srs: str | None, line: int, refs: list[tuple[str, int]], base: IdPath) -> None:
        """The rest of a compiled scan's result (its records are already added): the srsName
        it found and its references, for the current bucket."""
        if srs is not None:
            self.srs_seen(srs, line + self.line_offset)
        for href, ref_line in refs:
            self._ref_at(href, False, base, max(ref_line, 0) + self.line_offset)

    def read_unscanned(self, geometry: etree._Element) -> None:
        """A geometry the compiled scan declined (or without it): the fast pass, else the general walk."""
        if not self._fast(geometry):
            self._geometry(geometry, False, (), 3)

    def _fast(self, root: etree._Element) -> bool:
        """The common case in one C-level pass over the geometry: polygons with posList rings in
        surfaces, shells and solids, maybe referenced with xlinks. Returns False (having added
        nothing) when the geometry needs the general walk: orientable surfaces, patches, pos or
        coordinates, ids or srsName on inner aggregates, ..."""
        root_tag = root.tag
        id_attr = _ID_OF.get(root_tag)
        if id_attr is None:
            return False
        get = root.get
        srs = get("srsName")
        if srs is not None:
            self.srs_seen(srs, (root.sourceline or 0) + self.line_offset)
        d = get("srsDimension")
        dim = _dimension(d, 3) if d is not None else 3
        gid = get(id_attr)
        base: IdPath = ((gid, False),) if gid is not None else ()
        n_records, n_refs, n_flat = len(self.records), len(self.refs), self.flat_rings
        records, bucket, stype, origin = self.records, self._bucket, self._stype, self._origin
        rings: list[Array] | None = None
        pid: str | None = None
        interior = ok = False
        for el in root.iter():
            code = _FAST_CODES.get(el.tag)
            if code == _F_POSLIST:
                if rings is None:
                    if ok:
                        continue  # the exterior of this polygon was unusable
                    break
                d = el.get("srsDimension")
                text = el.text
                if (d is None or d == "3") and dim == 3 and text:  # the common case, inlined
                    try:
                        values = np.array(text.split(), dtype=np.float64)
                    except ValueError:
                        values = self._numbers(text, el)
                    ring = values.reshape(-1, 3) if values.size % 3 == 0 else self._coords(text, 3, el)
                else:
                    ring = self._coords(text, _dimension(d, dim) if d is not None else dim, el)
                if interior:
                    if ring is not None:
                        rings.append(ring)
                    interior = False
                elif ring is None or rings:
                    rings = None  # no exterior (or two): the polygon is skipped
                    ok = True
                else:
                    rings.append(ring)
            elif code == _F_SKIP:
                continue
            elif code == _F_POLYGON:
                if rings:
                    records.append(PolygonRecord(bucket, rings, stype, False,
                                                 base + ((pid, False),) if pid is not None else base, origin, pid))
                if el.get("srsName") is not None or el.get("srsDimension") is not None:
                    break
                rings, pid, interior, ok = [], el.get(id_attr), False, False
            elif code == _F_MEMBER:
                if len(el) == 0:
                    href = el.get(XLINK_HREF)
                    if href is not None:
                        self._ref(href, False, base, el)
            elif code == _F_INTERIOR:
                parent = el.getparent()
                if parent is None or parent.tag not in _POLYGON:
                    break  # a solid's inner shell
                interior = True
            elif code == _F_AGGREGATE:
                if el is not root and (el.get(id_attr) is not None or el.get("srsName") is not None
                                       or el.get("srsDimension") is not None):
                    break
            else:
                break  # anything else: the general walk handles (or reports) it
        else:
            if rings:
                records.append(PolygonRecord(bucket, rings, stype, False,
                                             base + ((pid, False),) if pid is not None else base, origin, pid))
            return True
        del self.records[n_records:]
        del self.refs[n_refs:]
        self.flat_rings = n_flat
        return False

    # --- dispatch ----------------------------------------------------------------------------
    def _geometry(self, el: etree._Element, flip: bool, path: IdPath, dim: int) -> None:
        entry = self._handlers.get(el.tag)
        if entry is None:
            if isinstance(el.tag, str):
                self.report.skip(f"unsupported geometry {split_tag(el.tag)[1]}")
            return
        get = el.get
        srs = get("srsName")
        if srs is not None:
            self.srs_seen(srs, (el.sourceline or 0) + self.line_offset)
        d = get("srsDimension")
        if d is not None:
            dim = _dimension(d, dim)
        entry[0](el, flip, path, dim, get(entry[1]))

    def _ref(self, href: str, flip: bool, path: IdPath, el: etree._Element) -> None:
        self._ref_at(href, flip, path, (el.sourceline or 0) + self.line_offset)

    def _ref_at(self, href: str, flip: bool, path: IdPath, line: int) -> None:
        if not href.startswith("#"):
            self.report.skip("xlink:href to another document (not resolved)")
            return
        self.refs.append(RefRecord(self._bucket, href[1:].strip(), self._stype, flip, path, self._origin, line))

    def _polygon(self, el: etree._Element, flip: bool, path: IdPath, dim: int, gid: str | None) -> None:
        rings: list[Array] = []
        for boundary in el:
            tag = boundary.tag
            exterior = tag in _EXTERIOR
            if not exterior and tag not in _INTERIOR:
                continue
            ring = None
            for lr in boundary:
                if lr.tag in _LINEAR_RING:
                    first = lr[0] if len(lr) else None
                    if first is not None and first.tag in _POSLIST:  # the common case, inlined
                        d = first.get("srsDimension")
                        ring = self._coords(first.text, _dimension(d, dim) if d is not None else dim, first)
                    else:
                        ring = self._ring(lr, dim)
                elif isinstance(lr.tag, str):
                    self.report.skip(f"ring type {split_tag(lr.tag)[1]} (only LinearRing is supported)")
                break
            if ring is None:
                if exterior:
                    return
            elif exterior:
                rings.insert(0, ring)
            else:
                rings.append(ring)
        if not rings:
            return
        if gid is not None:
            path = path + ((gid, flip),)
        self.records.append(PolygonRecord(self._bucket, rings, self._stype, flip, path, self._origin, gid))

    def _aggregate(self, el: etree._Element, flip: bool, path: IdPath, dim: int, gid: str | None) -> None:
        if gid is not None:
            path = path + ((gid, flip),)
        for prop in el:
            if prop.tag in _NON_GEOMETRY_PROPS or not isinstance(prop.tag, str):
                continue
            if prop.tag in self._handlers:  # a geometry directly inside (e.g. PolygonPatch in patches)
                self._geometry(prop, flip, path, dim)
                continue
            href = prop.get(XLINK_HREF)
            if href is not None:
                self._ref(href, flip, path, prop)
                continue
            for child in prop:
                self._geometry(child, flip, path, dim)

    def _orientable(self, el: etree._Element, flip: bool, path: IdPath, dim: int, gid: str | None) -> None:
        if gid is not None:
            path = path + ((gid, flip),)
        inner = flip ^ (el.get("orientation", "+").strip() == "-")
        for prop in el:
            if prop.tag in _NON_GEOMETRY_PROPS or not isinstance(prop.tag, str):
                continue
            href = prop.get(XLINK_HREF)
            if href is not None:
                self._ref(href, inner, path, prop)
                continue
            for child in prop:
                self._geometry(child, inner, path, dim)

    def _ignored(self, el: etree._Element, flip: bool, path: IdPath, dim: int, gid: str | None) -> None:
        self.report.skip("curve and point geometry (ignored)")

    def _tin(self, el: etree._Element, flip: bool, path: IdPath, dim: int, gid: str | None) -> None:
        """Triangles of a TriangulatedSurface/Tin, parsed in one numpy call when every triangle
        is a plain posList ring; otherwise triangle by triangle."""
        patches = next((c for c in el if c.tag in _PATCHES), None)
        if patches is None:
            self.report.skip("gml:Tin without triangles (control points only, not supported)")
            return
        if gid is not None:
            path = path + ((gid, flip),)
        n = len(patches)
        texts = [p.text or "" for p in patches.iter(*_POSLIST)]
        mesh = None
        if n and len(texts) == n and dim == 3 and not any(t.get("srsDimension") not in (None, "3")
                                                          for t in patches.iter(*_POSLIST)):
            values = self._numbers(" ".join(texts), patches)
            if values.size == n * 12:
                tri = values.reshape(n, 4, 3)
                mesh = _triangle_mesh(tri[:, :3, :])
        if mesh is None:
            self._aggregate(patches, flip, path, dim, None)
            return
        self.records.append(PolygonRecord(self._bucket, None, self._stype, flip, path, self._origin, gid, mesh))

    # --- rings and coordinates ---------------------------------------------------------------
    def _ring(self, ring: etree._Element, dim: int) -> Array | None:
        """Coordinates of a LinearRing given by ``gml:pos`` elements or ``gml:coordinates``."""
        pos_texts: list[str] = []
        pos_dim = dim
        for c in ring:
            tag = c.tag
            if tag in _POSLIST:
                d = c.get("srsDimension")
                return self._coords(c.text, _dimension(d, dim) if d is not None else dim, c)
            if tag in _POS:
                if not pos_texts:
                    d = c.get("srsDimension")
                    pos_dim = _dimension(d, dim) if d is not None else len((c.text or "").split()) or dim
                pos_texts.append(c.text or "")
            elif tag in _COORDINATES:
                return self._gml_coordinates(c)
        if pos_texts:
            return self._coords(" ".join(pos_texts), pos_dim, ring)
        return None

    def _numbers(self, text: str, el: etree._Element) -> Array:
        try:
            return np.array(text.split(), dtype=np.float64)
        except ValueError as exc:
            line = (el.sourceline or 0) + self.line_offset
            raise ParseError(f"{self.file_name} line {line}: coordinates are not numbers ({exc})",
                             file=self.file_name, line=line) from exc

    def _coords(self, text: str | None, dim: int, el: etree._Element) -> Array | None:
        if not text:
            return None
        try:
            values = np.array(text.split(), dtype=np.float64)
        except ValueError:
            values = self._numbers(text, el)
        n = values.size
        if dim == 3 and n % 3 == 0:
            return values.reshape(-1, 3)
        if n % dim:
            if dim == 3 and n % 2 == 0:
                dim = 2
            else:
                self.report.skip("ring whose coordinate count does not match srsDimension")
                return None
        if dim == 3:
            return values.reshape(-1, 3)
        if dim == 2:
            self.flat_rings += 1
            out = np.zeros((n // 2, 3))
            out[:, :2] = values.reshape(-1, 2)
            return out
        if dim > 3:
            return np.ascontiguousarray(values.reshape(-1, dim)[:, :3])
        return None

    def _gml_coordinates(self, el: etree._Element) -> Array | None:
        text = el.text or ""
        cs, ts, dec = el.get("cs", ","), el.get("ts", " "), el.get("decimal", ".")
        tuples = text.split() if ts.isspace() else [t for t in text.split(ts) if t.strip()]
        if not tuples:
            return None
        dim = tuples[0].count(cs) + 1
        flat = " ".join(tuples).replace(cs, " ")
        if dec != ".":
            flat = flat.replace(dec, ".")
        return self._coords(flat, dim, el)


def _dimension(text: str, default: int) -> int:
    try:
        d = int(text)
    except ValueError:
        return default
    return d if 2 <= d <= 4 else default


def _triangle_mesh(tri: Array) -> tuple[Array, npt.NDArray[np.uint32]]:
    """(n, 3, 3) triangle corners -> (vertices, triangles), degenerate triangles dropped."""
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    keep = area2 > 1e-12
    tri = tri[keep] if not keep.all() else tri
    n = len(tri)
    return tri.reshape(-1, 3), np.arange(n * 3, dtype=np.uint32).reshape(n, 3)
