# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled scan of plain GML surface geometry (the common case of :mod:`gml_geometry`), and a
compiled walk of city objects over it (:func:`walk`, see "city objects" below).

:func:`scan` reads the geometry under one element (``MultiSurface``, ``CompositeSurface``,
``Shell``, ``Solid`` or ``Polygon``) by walking libxml2's nodes directly through lxml's public C
API: no Python object per element, coordinates parsed with ``strtod`` into one float64 array.
It accepts exactly what :meth:`GeometryCollector._fast` accepts, restricted further to
three-dimensional ``posList`` rings whose text is one text node of plain decimal numbers, and it
gives the same records. Anything else (and any doubt) returns None having changed nothing; the
caller then runs the Python reader, which is the reference.
"""
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdlib cimport strtod
from libc.string cimport memcpy, strcmp

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree
from lxml.includes.etreepublic cimport _Document, _Element
from lxml.includes.tree cimport const_xmlChar

import numpy as np

cetree.import_lxml__etree()

cdef const char* GML311 = b"http://www.opengis.net/gml"
cdef const char* GML32 = b"http://www.opengis.net/gml/3.2"
cdef const char* XLINK = b"http://www.w3.org/1999/xlink"

# what the scan does with each GML element (by local name)
cdef enum Code:
    C_OTHER, C_POSLIST, C_POLYGON, C_INTERIOR, C_MEMBER, C_AGGREGATE, C_SKIP


cdef inline bint _is_gml(tree.xmlNode* n) noexcept:
    if n.ns is NULL or n.ns.href is NULL:
        return False
    cdef const char* h = <const char*> n.ns.href
    return strcmp(h, GML311) == 0 or strcmp(h, GML32) == 0


cdef inline Code _code(tree.xmlNode* n) noexcept:
    if not _is_gml(n):
        return C_OTHER
    cdef const char* s = <const char*> n.name
    if strcmp(s, b"posList") == 0:
        return C_POSLIST
    if strcmp(s, b"surfaceMember") == 0:
        return C_MEMBER
    if strcmp(s, b"exterior") == 0 or strcmp(s, b"LinearRing") == 0:
        return C_SKIP
    if strcmp(s, b"Polygon") == 0:
        return C_POLYGON
    if strcmp(s, b"interior") == 0:
        return C_INTERIOR
    if (strcmp(s, b"MultiSurface") == 0 or strcmp(s, b"CompositeSurface") == 0 or strcmp(s, b"Shell") == 0
            or strcmp(s, b"Solid") == 0):
        return C_AGGREGATE
    return C_OTHER


cdef int _attr(tree.xmlNode* n, const char* name, const char* ns, const char** value) noexcept:
    """0: absent; 1: present, ``value`` set; -1: present but not one plain text node."""
    cdef tree.xmlAttr* a = n.properties
    cdef tree.xmlNode* t
    while a is not NULL:
        if strcmp(<const char*> a.name, name) == 0:
            if ns is NULL:
                if a.ns is NULL:
                    break
            elif a.ns is not NULL and a.ns.href is not NULL and strcmp(<const char*> a.ns.href, ns) == 0:
                break
        a = a.next
    if a is NULL:
        return 0
    t = a.children
    if t is NULL:
        value[0] = b""
        return 1
    if t.next is not NULL or t.type != tree.XML_TEXT_NODE or t.content is NULL:
        return -1
    value[0] = <const char*> t.content
    return 1


cdef inline bint _space(char c) noexcept:
    return c == 32 or c == 10 or c == 9 or c == 13


cdef inline bint _number_char(char c) noexcept:
    return (48 <= c <= 57) or c == 46 or c == 45 or c == 43 or c == 101 or c == 69  # 0-9 . - + e E


cdef struct Buffer:
    double* data
    Py_ssize_t size
    Py_ssize_t capacity


cdef int _push(Buffer* b, double v) except -1:
    cdef Py_ssize_t cap
    cdef double* grown
    if b.size == b.capacity:
        cap = b.capacity * 2 if b.capacity else 3072
        grown = <double*> PyMem_Realloc(b.data, cap * sizeof(double))
        if grown is NULL:
            raise MemoryError()
        b.data, b.capacity = grown, cap
    b.data[b.size] = v
    b.size += 1
    return 0


cdef int _parse(const char* p, Buffer* b) except -2:
    """Append the numbers of ``p``; returns how many, or -1 when a token is not a plain decimal
    number (left to the Python reader, which reports what is wrong)."""
    cdef Py_ssize_t before = b.size
    cdef const char* start
    cdef char* end
    cdef double v
    while True:
        while _space(p[0]):
            p += 1
        if p[0] == 0:
            break
        start = p
        while p[0] != 0 and not _space(p[0]):
            if not _number_char(p[0]):
                b.size = before
                return -1
            p += 1
        v = strtod(start, &end)
        if end != p:
            b.size = before
            return -1
        _push(b, v)
    return <int> (b.size - before)


cdef const char* _text(tree.xmlNode* n) noexcept:
    """The text of ``n`` when it is one text node (else NULL)."""
    cdef tree.xmlNode* t = n.children
    if t is NULL or t.type != tree.XML_TEXT_NODE or t.content is NULL:
        return NULL
    if t.next is not NULL and (t.next.type == tree.XML_TEXT_NODE or t.next.type == tree.XML_CDATA_SECTION_NODE):
        return NULL
    return <const char*> t.content


cdef inline bint _has_element_children(tree.xmlNode* n) noexcept:
    """lxml's ``len(el) > 0``: elements, comments, processing instructions or entity references."""
    cdef tree.xmlNode* c = n.children
    while c is not NULL:
        if cetree._isElement(c):
            return True
        c = c.next
    return False


cdef long _line(_Document doc, tree.xmlNode* n):
    """lxml's ``sourceline`` (libxml2 keeps lines above 65534 outside the node: ask lxml then)."""
    if n.line < 65535:
        return n.line
    return cetree.elementFactory(doc, n).sourceline or 0


def scan(_Element root, list records, object record_type, long bucket, long stype, long origin):
    """Append a ``record_type(bucket, rings, stype, False, path, origin, pid)`` per polygon of the
    plain geometry ``root`` to ``records`` and return ``(srsName or None, root line, refs, base
    path)`` with ``refs`` a list of ``(xlink:href, line)`` of empty ``surfaceMember``s; or return None, having
    appended nothing, when the geometry is not plain (see the module docstring)."""
    return _scan(root._doc, root._c_node, records, record_type, bucket, stype, origin)


cdef object _scan(_Document doc, tree.xmlNode* top, list records, object record_type, long bucket, long stype,
                  long origin):
    cdef tree.xmlNode* n
    cdef tree.xmlNode* parent
    cdef Code code = _code(top)
    cdef const char* root_ns
    cdef const char* value
    cdef const char* srs = NULL
    cdef const char* gid = NULL
    cdef const char* text
    cdef int state, count
    cdef Py_ssize_t first
    cdef double[:, ::1] out
    cdef bint interior = False, ok = False, have_rings = False, in_polygon = False, failed = False
    cdef Py_ssize_t ring_count = 0
    cdef Buffer buf
    buf.data = NULL
    buf.size = buf.capacity = 0
    # polygons: (pid or None, first ring, ring count); rings: vertex offsets (start, end)
    cdef list polygons = []
    cdef list ring_bounds = []
    cdef list refs = []
    cdef object pid = None
    cdef Py_ssize_t first_ring = 0
    if code != C_AGGREGATE and code != C_POLYGON:
        return None
    root_ns = <const char*> top.ns.href
    state = _attr(top, b"srsName", NULL, &srs)
    if state < 0:
        return None
    state = _attr(top, b"srsDimension", NULL, &value)
    if state < 0 or (state == 1 and strcmp(value, b"3") != 0):
        return None
    state = _attr(top, b"id", root_ns, &gid)
    if state < 0:
        return None
    try:
        n = top
        while n is not NULL:
            if n.type == tree.XML_ELEMENT_NODE:
                code = _code(n)
                if code == C_POSLIST:
                    if not have_rings:
                        if not ok:
                            failed = True
                            break
                    else:
                        state = _attr(n, b"srsDimension", NULL, &value)
                        if state < 0 or (state == 1 and strcmp(value, b"3") != 0):
                            failed = True
                            break
                        text = _text(n)
                        if text is NULL:
                            failed = True
                            break
                        first = buf.size
                        count = _parse(text, &buf)
                        if count <= 0 or count % 3 != 0:
                            failed = True
                            break
                        if interior:
                            ring_bounds.append((first // 3, buf.size // 3))
                            ring_count += 1
                            interior = False
                        elif ring_count:  # a second exterior: the polygon is skipped
                            have_rings = False
                            ok = True
                            ring_count = 0
                        else:
                            ring_bounds.append((first // 3, buf.size // 3))
                            ring_count += 1
                elif code == C_SKIP:
                    pass
                elif code == C_POLYGON:
                    if have_rings and ring_count:
                        polygons.append((pid, len(ring_bounds) - ring_count, ring_count))
                    if _attr(n, b"srsName", NULL, &value) != 0 or _attr(n, b"srsDimension", NULL, &value) != 0:
                        failed = True
                        break
                    state = _attr(n, b"id", root_ns, &value)
                    if state < 0:
                        failed = True
                        break
                    pid = (<bytes> value).decode("utf-8") if state == 1 else None
                    have_rings, ring_count, interior, ok = True, 0, False, False
                elif code == C_MEMBER:
                    if not _has_element_children(n):
                        state = _attr(n, b"href", XLINK, &value)
                        if state < 0:
                            failed = True
                            break
                        if state == 1:
                            refs.append(((<bytes> value).decode("utf-8"), _line(doc, n)))
                elif code == C_INTERIOR:
                    parent = n.parent
                    if parent is NULL or parent.type != tree.XML_ELEMENT_NODE or not _is_gml(parent) \
                            or strcmp(<const char*> parent.name, b"Polygon") != 0:
                        failed = True
                        break
                    interior = True
                elif code == C_AGGREGATE:
                    if n is not top and (_attr(n, b"id", root_ns, &value) != 0 or _attr(n, b"srsName", NULL, &value) != 0
                                         or _attr(n, b"srsDimension", NULL, &value) != 0):
                        failed = True
                        break
                else:
                    failed = True
                    break
                if n.children is not NULL:
                    n = n.children
                    continue
            elif n.type != tree.XML_TEXT_NODE and n.type != tree.XML_CDATA_SECTION_NODE:
                failed = True  # a comment, processing instruction or entity reference
                break
            # next node in document order within ``top``
            if n is top:
                break
            while n.next is NULL:
                n = n.parent
                if n is top or n is NULL:
                    n = NULL
                    break
            if n is not NULL:
                n = n.next
        if failed:
            return None
        if have_rings and ring_count:
            polygons.append((pid, len(ring_bounds) - ring_count, ring_count))
        coords = np.empty((buf.size // 3, 3), np.float64)
        if buf.size:
            out = coords
            memcpy(&out[0, 0], buf.data, buf.size * sizeof(double))
    finally:
        PyMem_Free(buf.data)
    base = (((<bytes> gid).decode("utf-8"), False),) if gid is not NULL else ()
    for pid, first_ring, ring_count in polygons:
        rings = [coords[s:e] for s, e in ring_bounds[first_ring:first_ring + ring_count]]
        path = base + ((pid, False),) if pid is not None else base
        records.append(record_type(bucket, rings, stype, False, path, origin, pid))
    srs_text = (<bytes> srs).decode("utf-8") if srs is not NULL else None
    return srs_text, _line(doc, top) if srs is not NULL else 0, refs, base


# --- city objects -----------------------------------------------------------------------------------
# A port of :class:`converters.citygml.city_object.CityObjectWalker` (``_object``, ``_properties``,
# ``_value``, ``_surface``) and of the common attribute readers over libxml2's nodes: no Python
# object per element for the usual properties. Whatever it does not read natively (a city object
# without gml:id or of unknown class, addresses, envelopes, 3.0 generic attributes, measures,
# structured properties, non-plain geometry ...) it hands to the same Python methods with an lxml
# element, in document order, so the result is the Python walker's.

from cim.classes import CityClass, SurfaceType
from converters.citygml.attributes import INT_PROPERTIES, _int_or_str, _put
from converters.citygml.mapping import DEFAULT_SURFACE, OPENING_CLASSES, Kind, Role, element_kind, property_role
from converters.citygml.polygons import DIRECT, OPENING, SEMANTIC, PolygonRecord

cdef int R_GEOMETRY = Role.GEOMETRY, R_BOUNDARY = Role.BOUNDARY, R_OPENING = Role.OPENING
cdef int R_OTHER = Role.OTHER, R_NAME = Role.NAME, R_GENERIC = Role.GENERIC, R_IMPLICIT = Role.IMPLICIT
cdef int K_FEATURE = Kind.FEATURE, K_UNKNOWN = Kind.UNKNOWN, K_SURFACE = Kind.SURFACE, K_SPACE = Kind.SPACE
cdef int K_DATA = Kind.DATA, K_GML = Kind.GML, K_OTHER = Kind.OTHER
cdef object GENERIC_CLASS = CityClass.GENERIC_CITY_OBJECT
cdef object UNDEFINED = SurfaceType.UNDEFINED
cdef int I_DIRECT = DIRECT, I_OPENING = OPENING, I_SEMANTIC = SEMANTIC

cdef dict _roles = {}   # tag -> (role, lod, implied surface type or -1, local name)
cdef dict _kinds = {}   # (tag, prefix) -> (kind, surface type, ElementKind)


cdef tuple _role_of(str tag):
    hit = _roles.get(tag)
    if hit is None:
        r = property_role(tag)
        hit = (int(r.role), r.lod, int(r.surface) if r.surface else -1, r.local)
        if len(_roles) < 20000:
            _roles[tag] = hit
    return <tuple> hit


cdef tuple _kind_of(tree.xmlNode* n):
    tag = cetree.namespacedName(n)
    prefix = None
    if n.ns is not NULL and n.ns.prefix is not NULL:
        prefix = cetree.pyunicode(n.ns.prefix)
    key = (tag, prefix)
    hit = _kinds.get(key)
    if hit is None:
        k = element_kind(tag, prefix)
        hit = (int(k.kind), int(k.surface), k)
        if len(_kinds) < 20000:
            _kinds[key] = hit
    return <tuple> hit


cdef inline tree.xmlNode* _first_child(tree.xmlNode* n) noexcept:
    """lxml's ``el[0]``: the first element, comment, PI or entity reference."""
    cdef tree.xmlNode* c = n.children
    while c is not NULL and not cetree._isElement(c):
        c = c.next
    return c


cdef class _Walk:
    cdef object walker, geometry, attrs, report, drafts, records, draft_type
    cdef _Document doc
    cdef long first_index

    cdef object proxy(self, tree.xmlNode* n):
        return cetree.elementFactory(self.doc, n)

    cdef int obj(self, tree.xmlNode* n, object kind, object parent) except -1:
        cdef int kcode = kind.kind
        gid = None
        if kcode == K_FEATURE:
            gid = cetree.attributeValueFromNsName(n, <const_xmlChar*> GML311, <const_xmlChar*> b"id")
            if not gid:
                gid = cetree.attributeValueFromNsName(n, <const_xmlChar*> GML32, <const_xmlChar*> b"id")
        if not gid:  # unknown class or no gml:id: warnings and derived ids come from the Python walker
            self.walker._object(self.proxy(n), kind, parent)
            return 0
        city_class = kind.city_class or GENERIC_CLASS
        draft = self.draft_type(self.first_index + len(self.drafts), gid, city_class, kind.qualified, parent,
                                int(DEFAULT_SURFACE.get(city_class, UNDEFINED)))
        self.drafts.append(draft)
        if parent is not None:
            parent.children.append(draft)
        self.properties(n, draft, I_OPENING if city_class in OPENING_CLASSES else I_DIRECT, draft.stype,
                        draft.attributes)
        return 0

    cdef int properties(self, tree.xmlNode* n, object draft, int origin, int stype, dict attrs) except -1:
        cdef list tins = []
        cdef tree.xmlNode* c = n.children
        while c is not NULL:
            if c.type == tree.XML_ELEMENT_NODE:
                self.prop(c, draft, origin, stype, attrs, tins)
            c = c.next
        if tins:
            self.walker._tins(tins, draft, origin)
        return 0

    cdef int prop(self, tree.xmlNode* c, object draft, int origin, int stype, dict attrs, list tins) except -1:
        cdef tuple r = _role_of(cetree.namespacedName(c))
        cdef int role = r[0], surface = r[2]
        cdef tree.xmlNode* x
        if role == R_GEOMETRY:
            self.collect(c, draft.index * 8 + <long> r[1], surface if surface >= 0 else stype, origin)
        elif role == R_BOUNDARY or role == R_OPENING:
            self.values(c, draft)
        elif role == R_OTHER:
            x = _first_child(c)
            if x is NULL:
                self.simple(c, r[3], attrs)
            elif x.type != tree.XML_ELEMENT_NODE:
                self.walker._property(self.proxy(c), draft, origin, stype, attrs, tins)
            elif (<int> _kind_of(x)[0]) in (K_DATA, K_GML, K_OTHER):
                self.attrs.flatten(self.proxy(c), r[3], attrs)
            else:
                self.values(c, draft)
        elif role == R_NAME:
            text = cetree.textOf(c)
            if draft.name is None and attrs is draft.attributes and text and text.strip():
                draft.name = text.strip()
        elif role == R_GENERIC:
            if not self.generic(c, r[3], attrs):
                self.attrs.generic(self.proxy(c), attrs)
        else:
            self.walker._property(self.proxy(c), draft, origin, stype, attrs, tins)
        return 0

    cdef int values(self, tree.xmlNode* prop, object owner) except -1:
        cdef tree.xmlNode* x = prop.children
        while x is not NULL:
            if x.type == tree.XML_ELEMENT_NODE:
                self.value(x, owner)
            x = x.next
        return 0

    cdef int value(self, tree.xmlNode* x, object owner) except -1:
        cdef tuple k = _kind_of(x)
        cdef int kcode = k[0]
        if kcode == K_FEATURE or kcode == K_UNKNOWN:
            self.obj(x, k[2], owner)
        elif kcode == K_SURFACE:
            self.surface(x, owner, k[1])
        elif kcode == K_SPACE:
            self.properties(x, owner, I_DIRECT, k[1], {})
        elif cetree.attributeValueFromNsName(x, <const_xmlChar*> XLINK, <const_xmlChar*> b"href") is None:
            self.report.skip(f"{k[2].qualified} (not a city object)")
        return 0

    cdef int surface(self, tree.xmlNode* n, object owner, int stype) except -1:
        cdef tree.xmlNode* c = n.children
        cdef tuple r
        cdef int role
        while c is not NULL:
            if c.type == tree.XML_ELEMENT_NODE:
                r = _role_of(cetree.namespacedName(c))
                role = r[0]
                if role == R_GEOMETRY:
                    self.collect(c, owner.index * 8 + <long> r[1], stype, I_SEMANTIC)
                elif role == R_OPENING:
                    self.values(c, owner)
                elif role == R_IMPLICIT:
                    self.walker._skip_once(f"implicit geometry ({r[3]}, not supported)")
            c = c.next
        return 0

    cdef int collect(self, tree.xmlNode* prop, long bucket, long stype, long origin) except -1:
        """:meth:`GeometryCollector.collect`, with the compiled scan called on the nodes."""
        geometry = self.geometry
        if cetree.attributeValueFromNsName(prop, <const_xmlChar*> XLINK, <const_xmlChar*> b"href") is not None:
            geometry.collect(self.proxy(prop), bucket, stype, origin)
            return 0
        geometry._bucket, geometry._stype, geometry._origin = bucket, stype, origin
        cdef tree.xmlNode* child = prop.children
        while child is not NULL:
            if child.type == tree.XML_ELEMENT_NODE:
                found = _scan(self.doc, child, self.records, PolygonRecord, bucket, stype, origin)
                if found is not None:
                    geometry.scanned(*found)
                else:
                    geometry.read_unscanned(self.proxy(child))
            child = child.next
        return 0

    cdef int simple(self, tree.xmlNode* c, str name, dict attrs) except -1:
        """:meth:`AttributeReader.simple`."""
        text = cetree.textOf(c)
        if text is not None:
            text = text.strip() or None
        if text is None:
            href = cetree.attributeValueFromNsName(c, <const_xmlChar*> XLINK, <const_xmlChar*> b"href")
            if href:
                _put(attrs, name, href)
            return 0
        uom = cetree.attributeValueFromNsName(c, NULL, <const_xmlChar*> b"uom")
        if uom is not None:
            value = self.attrs._measure(text, uom, name, attrs)
        elif name in INT_PROPERTIES:
            value = _int_or_str(text)
        elif text == "true" or text == "false":
            value = text == "true"
        else:
            value = text
        _put(attrs, name, value)
        return 0

    cdef bint generic(self, tree.xmlNode* c, str local, dict attrs) except -1:
        """:meth:`AttributeReader.generic` for a 1.0/2.0 string, int, double, date, uri or code
        attribute; False (nothing done) for any other kind or shape."""
        cdef tree.xmlNode* x
        cdef tree.xmlNode* value_el = NULL
        if local not in ("stringAttribute", "intAttribute", "doubleAttribute", "dateAttribute", "uriAttribute",
                         "codeAttribute"):
            return False
        x = c.children
        while x is not NULL:
            if cetree._isElement(x):
                if x.type != tree.XML_ELEMENT_NODE:
                    return False
                if value_el is NULL and strcmp(<const char*> x.name, b"value") == 0:
                    value_el = x
            x = x.next
        name = cetree.attributeValueFromNsName(c, NULL, <const_xmlChar*> b"name")
        if not name or value_el is NULL:
            return True
        text = cetree.textOf(value_el)
        if text is None:
            return True
        text = text.strip()
        if not text:
            return True
        if local == "intAttribute":
            value = _int_or_str(text)
        elif local == "doubleAttribute":
            try:
                value = float(text)
            except ValueError:
                value = text
        else:
            value = text
        _put(attrs, name, value)
        return True


def walk(walker, _Element el, kind, draft_type):
    """Read the city object ``el`` of class ``kind`` (an :class:`ElementKind`) into ``walker``'s
    drafts and geometry, as :meth:`CityObjectWalker._object` does."""
    cdef _Walk w = _Walk()
    w.walker = walker
    w.geometry = walker.geometry
    w.attrs = walker.attrs
    w.report = walker.report
    w.drafts = walker._drafts
    w.records = walker.geometry.records
    w.draft_type = draft_type
    w.doc = el._doc
    w.first_index = walker._first_index
    w.obj(el._c_node, kind, None)
