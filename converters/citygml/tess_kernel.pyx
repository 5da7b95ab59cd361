# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled kernel of :func:`converters.citygml.tessellation._triangulate_batch`.

Same steps and the same arithmetic, in the same order, as the numpy code there (which stays the
reference and the path used without a C compiler): rings gathered straight from the polygon
records' arrays (buffer protocol, no per-record numpy calls), non-finite vertices zeroed (their
polygon gives no triangles), consecutive duplicates and the closing vertex dropped, Newell normals
in ring-local coordinates summed as ``np.add.reduceat`` sums them (first term, then numpy's pairwise
sum of the rest), fan triangles for convex single-ring polygons, earcut (the same library call)
for the others, then orientation, ``flip`` and the degenerate-triangle test.

``triangulate(polygons)`` returns None for input it does not take (a ring that is not an
(n, 3) float64 array, an empty ring, a ring that is not an array at all); the caller then uses
the numpy path.
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_STRIDES, PyBUF_FORMAT
from libc.math cimport sqrt, isfinite, fabs
from libc.stdlib cimport malloc, free

import mapbox_earcut
import numpy as np

cdef double CONVEX_TOLERANCE = -1e-6
cdef double MIN_AREA2 = 1e-12


cdef inline double _pairwise(const double* a, Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    """numpy's pairwise sum (loops_utils.h: DOUBLE_pairwise_sum) of n values ``stride`` apart."""
    cdef Py_ssize_t i, n2
    cdef double res
    cdef double r[8]
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i * stride]
        return res
    elif n <= 128:
        for i in range(8):
            r[i] = a[i * stride]
        i = 8
        while i < n - (n % 8):
            r[0] += a[(i + 0) * stride]
            r[1] += a[(i + 1) * stride]
            r[2] += a[(i + 2) * stride]
            r[3] += a[(i + 3) * stride]
            r[4] += a[(i + 4) * stride]
            r[5] += a[(i + 5) * stride]
            r[6] += a[(i + 6) * stride]
            r[7] += a[(i + 7) * stride]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[i * stride]
            i += 1
        return res
    else:
        n2 = n // 2
        n2 -= n2 % 8
        return _pairwise(a, n2, stride) + _pairwise(a + n2 * stride, n - n2, stride)


cdef inline double _norm3(double x, double y, double z) noexcept nogil:
    # np.linalg.norm(axis=1): add.reduce of the squares = x² + pairwise(y², z²)
    return sqrt(x * x + (y * y + z * z))


def triangulate(list polygons):
    """(verts, starts, counts, first_ring, ring_counts, tris, tri_poly) for ``polygons`` (records
    with rings, in bucket order), as ``_triangulate_batch`` computes them, or None."""
    cdef Py_ssize_t n_poly = len(polygons), n_rings = 0, n_raw = 0, p, r, k, s
    cdef Py_buffer view
    cdef list ring_objs = []
    cdef object rings, ring
    ring_counts = np.empty(n_poly, np.int64)
    cdef long long[:] rc = ring_counts
    for p in range(n_poly):
        rings = (<object>polygons[p]).rings
        k = len(rings)
        rc[p] = k
        n_rings += k
        for ring in rings:
            ring_objs.append(ring)

    first_ring = np.empty(n_poly, np.int64)
    cdef long long[:] fr = first_ring
    s = 0
    for p in range(n_poly):
        fr[p] = s
        s += rc[p]

    # ring sizes, then the vertices: zeroed when not finite, consecutive duplicates and the closing one dropped
    cdef Py_ssize_t* raw_n = <Py_ssize_t*>malloc(max(n_rings, 1) * sizeof(Py_ssize_t))
    if raw_n == NULL:
        raise MemoryError()
    cdef char fmt_ok
    try:
        for r in range(n_rings):
            ring = ring_objs[r]
            try:
                PyObject_GetBuffer(ring, &view, PyBUF_STRIDES | PyBUF_FORMAT)
            except (TypeError, BufferError):  # not an array: the numpy path takes it
                return None
            fmt_ok = (view.ndim == 2 and view.shape[1] == 3 and view.format != NULL
                      and (view.format[0] == b'd' and view.format[1] == 0
                           or view.format[0] in (b'<', b'=', b'@') and view.format[1] == b'd' and view.format[2] == 0))
            k = view.shape[0] if view.ndim >= 1 else 0
            PyBuffer_Release(&view)
            if not fmt_ok or k == 0:
                return None
            raw_n[r] = k
            n_raw += k
        verts = np.empty((n_raw, 3), np.float64)
        starts = np.empty(n_rings, np.int64)
        counts = np.empty(n_rings, np.int64)
        bad = np.zeros(n_poly, np.uint8)
        ring_poly = np.repeat(np.arange(n_poly, dtype=np.int64), ring_counts)
        return _fill_and_triangulate(polygons, ring_objs, raw_n, verts, starts, counts, bad, ring_poly,
                                     first_ring, ring_counts)
    finally:
        free(raw_n)


cdef object _fill_and_triangulate(list polygons, list ring_objs, Py_ssize_t* raw_n, verts, starts, counts, bad,
                                  ring_poly, first_ring, ring_counts):
    cdef double[:, ::1] v = verts
    cdef long long[:] st = starts, ct = counts, rp = ring_poly
    cdef unsigned char[:] bd = bad
    cdef Py_ssize_t n_rings = len(ring_objs), r, i, n = 0, s, c
    cdef Py_buffer view
    cdef char* base
    cdef Py_ssize_t s0, s1
    cdef double x, y, z
    for r in range(n_rings):
        PyObject_GetBuffer(ring_objs[r], &view, PyBUF_STRIDES | PyBUF_FORMAT)
        base = <char*>view.buf
        s0, s1 = view.strides[0], view.strides[1]
        s = n
        for i in range(raw_n[r]):
            x = (<double*>(base + i * s0))[0]
            y = (<double*>(base + i * s0 + s1))[0]
            z = (<double*>(base + i * s0 + 2 * s1))[0]
            if not (isfinite(x) and isfinite(y) and isfinite(z)):
                bd[rp[r]] = 1
                x = y = z = 0.0
            if n > s and x == v[n - 1, 0] and y == v[n - 1, 1] and z == v[n - 1, 2]:
                continue
            v[n, 0] = x
            v[n, 1] = y
            v[n, 2] = z
            n += 1
        PyBuffer_Release(&view)
        c = n - s
        if c > 1 and v[n - 1, 0] == v[s, 0] and v[n - 1, 1] == v[s, 1] and v[n - 1, 2] == v[s, 2]:
            n -= 1
            c -= 1
        st[r] = s
        ct[r] = c
    verts = verts[:n]
    v = verts

    # Newell normal of every ring in ring-local coordinates: np.add.reduceat(contrib, starts)
    cdef double* contrib = <double*>malloc(max(n, 1) * 3 * sizeof(double))
    unit = np.empty((n_rings, 3), np.float64)
    length = np.empty(n_rings, np.float64)
    convex_ring = np.empty(n_rings, np.uint8)
    cdef double[:, ::1] un = unit
    cdef double[:] ln = length
    cdef unsigned char[:] cv = convex_ring
    cdef double ax, ay, az, bx, by, bz, nx, ny, nz, L, d, ex, ey, ez, fx, fy, fz, cx, cy, cz, turn, scale, sine, low
    cdef Py_ssize_t nxt, prv
    cdef bint nan_seen
    if contrib == NULL:
        raise MemoryError()
    try:
        for r in range(n_rings):
            s, c = st[r], ct[r]
            for i in range(c):
                nxt = s + i + 1 if i + 1 < c else s
                ax, ay, az = v[s + i, 0] - v[s, 0], v[s + i, 1] - v[s, 1], v[s + i, 2] - v[s, 2]
                bx, by, bz = v[nxt, 0] - v[s, 0], v[nxt, 1] - v[s, 1], v[nxt, 2] - v[s, 2]
                contrib[3 * (s + i)] = (ay - by) * (az + bz)
                contrib[3 * (s + i) + 1] = (az - bz) * (ax + bx)
                contrib[3 * (s + i) + 2] = (ax - bx) * (ay + by)
            nx = contrib[3 * s] + _pairwise(contrib + 3 * (s + 1), c - 1, 3)
            ny = contrib[3 * s + 1] + _pairwise(contrib + 3 * (s + 1) + 1, c - 1, 3)
            nz = contrib[3 * s + 2] + _pairwise(contrib + 3 * (s + 1) + 2, c - 1, 3)
            L = _norm3(nx, ny, nz)
            ln[r] = L
            d = L if L > 0 else 1.0
            un[r, 0], un[r, 1], un[r, 2] = nx / d, ny / d, nz / d
            # convexity: every turn has the sense of the ring's normal (sine of the turn >= tolerance)
            low = 0.0
            nan_seen = False
            for i in range(c):
                nxt = s + i + 1 if i + 1 < c else s
                prv = s + i - 1 if i > 0 else s + c - 1
                # edge (this vertex -> next) and the incoming edge (previous -> this), in local coordinates
                fx = (v[nxt, 0] - v[s, 0]) - (v[s + i, 0] - v[s, 0])
                fy = (v[nxt, 1] - v[s, 1]) - (v[s + i, 1] - v[s, 1])
                fz = (v[nxt, 2] - v[s, 2]) - (v[s + i, 2] - v[s, 2])
                ex = (v[s + i, 0] - v[s, 0]) - (v[prv, 0] - v[s, 0])
                ey = (v[s + i, 1] - v[s, 1]) - (v[prv, 1] - v[s, 1])
                ez = (v[s + i, 2] - v[s, 2]) - (v[prv, 2] - v[s, 2])
                cx = ey * fz - ez * fy
                cy = ez * fx - ex * fz
                cz = ex * fy - ey * fx
                turn = (cx * un[r, 0] + cy * un[r, 1]) + cz * un[r, 2]
                scale = _norm3(ex, ey, ez) * _norm3(fx, fy, fz)
                sine = turn / (scale if scale > 0 else 1.0)
                if sine != sine:
                    nan_seen = True
                elif i == 0 or sine < low:
                    low = sine
            cv[r] = (not nan_seen) and low >= CONVEX_TOLERANCE
    finally:
        free(contrib)
    return _fan_and_earcut(polygons, verts, starts, counts, first_ring, ring_counts, unit, length, convex_ring, bad)


cdef object _fan_and_earcut(list polygons, verts, starts, counts, first_ring, ring_counts, unit, length,
                            convex_ring, bad):
    cdef double[:, ::1] v = verts, un = unit
    cdef long long[:] st = starts, ct = counts, fr = first_ring, rc = ring_counts
    cdef double[:] ln = length
    cdef unsigned char[:] cv = convex_ring, bd = bad
    cdef Py_ssize_t n_poly = len(polygons), p, e, j, q, m = 0, a0, k, n_ear = 0, n_flat = 0, n_ends = 0
    cdef Py_ssize_t cap = 0, i, at, pos, x0, x1
    cdef int axis
    # fan triangles of convex single-ring polygons; the others are noted for earcut
    for p in range(n_poly):
        e = fr[p]
        if ct[e] >= 3:
            cap += ct[e] - 2
    fan = np.empty((cap, 3), np.int64)
    fan_owner = np.empty(cap, np.int64)
    ear = np.empty((n_poly, 4), np.int64)  # polygon, fan position, first flat vertex, first ring end
    cdef long long[:, ::1] fv = fan, ev = ear
    cdef long long[:] fo = fan_owner
    for p in range(n_poly):
        e = fr[p]
        if not (ct[e] >= 3 and ln[e] > MIN_AREA2 and not bd[p]):
            continue
        if rc[p] == 1 and cv[e]:
            a0 = st[e]
            for j in range(1, ct[e] - 1):
                fv[m, 0], fv[m, 1], fv[m, 2] = a0, a0 + j, a0 + j + 1
                fo[m] = p
                m += 1
            continue
        ev[n_ear, 0], ev[n_ear, 1], ev[n_ear, 2], ev[n_ear, 3] = p, m, n_flat, n_ends
        n_ear += 1
        for q in range(e, e + rc[p]):
            if q == e or ct[q] >= 3:  # degenerate holes are left out
                n_flat += ct[q]
                n_ends += 1
    if n_ear == 0:
        return _orient(polygons, verts, fan[:m], fan_owner[:m], unit, first_ring, starts, counts, ring_counts)

    # earcut on the coordinate plane each normal is closest to (np.argmax: the first on ties)
    flat = np.empty((n_flat, 2), np.float64)
    vmap = np.empty(n_flat, np.int64)
    ends = np.empty(n_ends, np.uint32)
    cdef double[:, ::1] fl = flat
    cdef long long[:] vm = vmap
    cdef unsigned int[:] en = ends
    cdef Py_ssize_t f = 0, r_end = 0, c0, c1
    for k in range(n_ear):
        p = ev[k, 0]
        e = fr[p]
        axis = 0
        if fabs(un[e, 1]) > fabs(un[e, axis]):
            axis = 1
        if fabs(un[e, 2]) > fabs(un[e, axis]):
            axis = 2
        c0 = 1 if axis == 0 else 0
        c1 = 1 if axis == 2 else 2
        a0 = f
        for q in range(e, e + rc[p]):
            if q == e or ct[q] >= 3:
                for i in range(st[q], st[q] + ct[q]):
                    fl[f, 0] = v[i, c0]
                    fl[f, 1] = v[i, c1]
                    vm[f] = i
                    f += 1
                en[r_end] = f - a0
                r_end += 1
    results = []
    cdef Py_ssize_t total = m
    for k in range(n_ear):
        x0 = ev[k, 2]
        x1 = ev[k + 1, 2] if k + 1 < n_ear else n_flat
        tri = mapbox_earcut.triangulate_float64(flat[x0:x1], ends[ev[k, 3]:(ev[k + 1, 3] if k + 1 < n_ear else n_ends)])
        tri = np.ascontiguousarray(tri, dtype=np.uint32)
        results.append(tri)
        total += len(tri) // 3

    # splice the earcut triangles in polygon order (the numpy path's stable sort by polygon)
    tris_all = np.empty((total, 3), np.int64)
    tri_poly = np.empty(total, np.int64)
    cdef long long[:, ::1] tv = tris_all
    cdef long long[:] tp = tri_poly
    cdef const unsigned int[:] rv
    cdef Py_ssize_t out = 0
    at = 0
    for k in range(n_ear + 1):
        pos = ev[k, 1] if k < n_ear else m
        for i in range(at, pos):
            tv[out, 0], tv[out, 1], tv[out, 2] = fv[i, 0], fv[i, 1], fv[i, 2]
            tp[out] = fo[i]
            out += 1
        at = pos
        if k == n_ear:
            break
        rv = results[k]
        x0 = ev[k, 2]
        for i in range(len(rv) // 3):
            tv[out, 0] = vm[x0 + rv[3 * i]]
            tv[out, 1] = vm[x0 + rv[3 * i + 1]]
            tv[out, 2] = vm[x0 + rv[3 * i + 2]]
            tp[out] = ev[k, 0]
            out += 1
    return _orient(polygons, verts, tris_all, tri_poly, unit, first_ring, starts, counts, ring_counts)


cdef object _orient(list polygons, verts, tris_all, tri_poly, unit, first_ring, starts, counts, ring_counts):
    """Turn every triangle like its polygon's exterior ring (then ``flip``), drop degenerate ones."""
    cdef double[:, ::1] v = verts, un = unit
    cdef long long[:, ::1] tv = tris_all
    cdef long long[:] tp = tri_poly, fr = first_ring
    cdef Py_ssize_t n = len(tri_poly), t, out = 0, p, e, a, b, c
    cdef Py_ssize_t n_poly = len(polygons)
    flips = np.empty(n_poly, np.uint8)
    cdef unsigned char[:] fl = flips
    for p in range(n_poly):
        fl[p] = bool((<object>polygons[p]).flip)
    cdef double d1x, d1y, d1z, d2x, d2y, d2z, cx, cy, cz, area2
    cdef bint turn_over
    for t in range(n):
        a, b, c = tv[t, 0], tv[t, 1], tv[t, 2]
        p = tp[t]
        e = fr[p]
        d1x, d1y, d1z = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
        d2x, d2y, d2z = v[c, 0] - v[a, 0], v[c, 1] - v[a, 1], v[c, 2] - v[a, 2]
        cx = d1y * d2z - d1z * d2y
        cy = d1z * d2x - d1x * d2z
        cz = d1x * d2y - d1y * d2x
        area2 = (cx * un[e, 0] + cy * un[e, 1]) + cz * un[e, 2]
        if not fabs(area2) > MIN_AREA2:
            continue
        turn_over = (fl[p] != 0) != (area2 < 0)
        tv[out, 0] = a
        tv[out, 1] = c if turn_over else b
        tv[out, 2] = b if turn_over else c
        tp[out] = p
        out += 1
    return verts, starts, counts, first_ring, ring_counts, tris_all[:out], tri_poly[:out]
