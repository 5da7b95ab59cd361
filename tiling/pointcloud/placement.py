"""Source coordinates -> the dataset plane (ENU metres), fast and checked.

Transforming every point through pyproj costs as much as decoding LAZ. A frame maps a source
point (x, y, z) to ECEF *linearly in z* (ellipsoidal height along the normal; geocentric and
local frames are affine), so plane(x, y, z) = A(x, y) + z * B(x, y) with A and B smooth in x, y.
:func:`to_plane` evaluates A and B exactly (``Frame.to_ecef``) on control points over the block's
x/y extent and approximates them: first a cubic (A) and linear (B) polynomial fitted by least
squares (over a block of a few km, Earth curvature and map projections are cubic to
micrometres; over one km a quadratic is, and is tried first), else bilinear interpolation on
a 128 x 128 grid. Every block is checked against
the exact transform on a sample of its points and falls back to the next method (finally the
exact transform) when the sample disagrees by more than :data:`TOLERANCE_M`.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cim.crs import Frame

Array = npt.NDArray[np.float64]
CELLS = 128  # control grid cells per side
MIN_POINTS = 50_000  # smaller blocks are transformed exactly
TOLERANCE_M = 1e-4
SAMPLE = 257
CACHE_POINTS = 16_384


def ecef_to_plane(world: Array, ecef: Array) -> Array:
    """ECEF (n, 3) -> (3, n) in the plane whose ENU->ECEF matrix is ``world`` (the rotation as
    1-D operations: faster than a BLAS call on (n, 3) and no thread pool)."""
    d = [ecef[:, a] - world[a, 3] for a in range(3)]
    r = world[:3, :3]
    out = np.empty((3, len(ecef)), np.float64)
    for k in range(3):
        out[k] = d[0] * r[0, k] + d[1] * r[1, k] + d[2] * r[2, k]
    return out


def exact_plane(frame: Frame, world: Array, xyz: Array) -> Array:
    return ecef_to_plane(world, frame.to_ecef(xyz))


def _cubic_terms(u: Array, v: Array, count: int = 10) -> list[Array]:
    """The first ``count`` monomials of a bivariate cubic: 1, u, v, u², uv, v² (a quadratic),
    then u³, u²v, uv², v³."""
    uu, vv = u * u, v * v
    terms = [np.ones_like(u), u, v, uu, u * v, vv]
    if count > 6:
        terms += [uu * u, uu * v, u * vv, vv * v]
    return terms[:count]


def _polynomial(frame: Frame, world: Array, x: Array, y: Array, z: Array,
                box: tuple[float, float, float, float]) -> Array | None:
    """A(x, y) as a quadratic or, when that is not within tolerance, a cubic, and B(x, y) as a
    linear polynomial of the normalised x, y, fitted to exact values on a 17 x 17 control grid;
    None when the fit is not within tolerance there. (Over 1 km of UTM the quadratic is within
    a micrometre; a cubic over 20 km within 5.)"""
    x0, x1, y0, y1 = box
    cx, cy, sx, sy = (x0 + x1) / 2, (y0 + y1) / 2, 2 / (x1 - x0), 2 / (y1 - y0)
    g = np.linspace(-1, 1, 17)
    gu, gv = (m.ravel() for m in np.meshgrid(g, g))
    flat = np.column_stack([cx + gu / sx, cy + gv / sy, np.zeros(gu.size)])
    with np.errstate(all="ignore"):
        a = exact_plane(frame, world, flat)
        flat[:, 2] = 1.0
        b = exact_plane(frame, world, flat) - a
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return None
    design = np.column_stack(_cubic_terms(gu, gv))
    cb = np.linalg.lstsq(design[:, :3], b.T, rcond=None)[0]  # (3, 3)
    if np.abs(design[:, :3] @ cb - b.T).max() * max(1.0, float(np.abs(z).max())) > TOLERANCE_M / 4:
        return None
    for count in (6, 10):
        ca = np.linalg.lstsq(design[:, :count], a.T, rcond=None)[0]  # (count, 3)
        if np.abs(design[:, :count] @ ca - a.T).max() <= TOLERANCE_M / 4:
            break
    else:
        return None
    out = np.empty((3, len(x)), np.float64)
    for start in range(0, len(x), CACHE_POINTS):  # pieces that stay in cache: several times faster
        sl = slice(start, start + CACHE_POINTS)
        u = (x[sl] - cx) * sx
        v = (y[sl] - cy) * sy
        zz = z[sl]
        terms = _cubic_terms(u, v, count)
        for k in range(3):
            acc = ca[0, k] + zz * cb[0, k]
            acc += u * (ca[1, k] + zz * cb[1, k])
            acc += v * (ca[2, k] + zz * cb[2, k])
            for t in range(3, count):
                acc += ca[t, k] * terms[t]
            out[k, sl] = acc
    return out


def to_plane(frame: Frame, world: Array, xyz: Array | tuple[Array, Array, Array]) -> tuple[Array, bool]:
    """(3, n) plane coordinates of source points ``xyz`` ((n, 3), or its three columns as
    contiguous arrays), and whether an approximation was used (False: exact transform)."""
    if isinstance(xyz, tuple):
        x, y, z = xyz
    else:
        x, y, z = (np.ascontiguousarray(xyz[:, k]) for k in range(3))

    def exact(index: slice | npt.NDArray[np.int64] = slice(None)) -> Array:
        return exact_plane(frame, world, np.column_stack([x[index], y[index], z[index]]))

    n = len(x)
    if n < MIN_POINTS:
        return exact(), False
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    if not (x1 > x0 and y1 > y0):
        return exact(), False
    sample = np.linspace(0, n - 1, SAMPLE).astype(np.int64)
    at_sample = exact(sample)
    fitted = _polynomial(frame, world, x, y, z, (x0, x1, y0, y1))
    if fitted is not None and float(np.abs(at_sample - fitted[:, sample]).max()) <= TOLERANCE_M:
        return fitted, True
    gx, gy = np.linspace(x0, x1, CELLS + 1), np.linspace(y0, y1, CELLS + 1)
    mx, my = np.meshgrid(gx, gy)  # row = y index
    flat = np.column_stack([mx.ravel(), my.ravel(), np.zeros(mx.size)])
    with np.errstate(all="ignore"):
        a = exact_plane(frame, world, flat)
        flat[:, 2] = 1.0
        b = exact_plane(frame, world, flat) - a
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return exact(), False
    fx = (x - x0) * (CELLS / (x1 - x0))
    fy = (y - y0) * (CELLS / (y1 - y0))
    ix = np.minimum(fx.astype(np.int64), CELLS - 1)
    iy = np.minimum(fy.astype(np.int64), CELLS - 1)
    tx, ty = fx - ix, fy - iy
    i00 = iy * (CELLS + 1) + ix
    i10, i01, i11 = i00 + 1, i00 + CELLS + 1, i00 + CELLS + 2
    w00, w10, w01, w11 = (1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty
    out = np.empty((3, n), np.float64)
    for k in range(3):
        ak, bk = a[k], b[k]
        out[k] = (w00 * (ak[i00] + z * bk[i00]) + w10 * (ak[i10] + z * bk[i10])
                  + w01 * (ak[i01] + z * bk[i01]) + w11 * (ak[i11] + z * bk[i11]))
    if float(np.abs(at_sample - out[:, sample]).max()) > TOLERANCE_M:
        return exact(), False
    return out, True
