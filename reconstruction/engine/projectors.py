"""Parallel-beam forward and back projection of stacks of slices.

Geometry (the engine's conventions, see :mod:`reconstruction.engine`):

* a tilt series is ``(tilts, rows, columns)``; the tilt axis runs along the rows, so row ``i`` of
  every projection is the sinogram of slice ``i``;
* a volume is ``(rows, thickness, columns)``; slice ``i`` is the x–z plane of row ``i``;
* angles are in degrees; at 0° the beam runs along the thickness axis (``z``);
* detector coordinate of voxel ``(z, x)`` at angle ``θ``::

      s = cos θ · (x − cx) − sin θ · (z − cz) + cx + axis_offset

  with ``cx = (columns − 1) / 2`` and ``cz = (thickness − 1) / 2`` (:func:`centre`): the
  geometric centres of the detector and of the slice, as ASTRA, svmbir and mbirjax place them,
  so ``axis_offset`` is measured from the middle of the detector. ``forward_project`` of a volume whose slices are square images gives the line
  integrals of ``skimage.transform.radon(slice, angles, circle=True)`` (transposed to
  ``(tilts, columns)``) up to interpolation error for odd sizes; scikit-image centres at
  ``n // 2``, half a pixel beyond the geometric centre in x and z for even sizes, so there its
  sinograms are half a pixel off the engine's (and ASTRA's).

The projector pair is pixel driven with linear interpolation on the detector, and the forward
projector is the exact adjoint (transpose) of the back projector, which Krylov methods need.

Internally the kernels work on a *slices-innermost* layout: volumes ``(thickness, columns, slices)``
and sinogram stacks ``(tilts, detector, slices)``, so that one detector coordinate is computed per
pixel and angle and then applied to all slices at once (vectorised). With numba installed the
kernels are compiled, parallel over x–z rows (back projection: angle loop outside the x loop, so the
output row stays in cache) or over blocks of whole tilts (forward projection: each thread owns its
tilts' sinogram rows, no write conflicts; tilts innermost inside a block); otherwise a numpy implementation vectorised over slices is used.
The compiled kernels update the slices eight at a time with explicit vector intrinsics
(:mod:`reconstruction.engine._simd`, same numbers as the scalar loop), the rest one by one: left to
LLVM, the slice loop paid an aliasing check and a trip-count dispatch per sample, which on slabs of
8–32 slices cost more than the update (issue 8). The slab forward projector computes a voxel's
detector coordinates for all its tilts in one vectorised loop before the updates; the ray-driven
one walks a volume larger than :data:`RAY_BAND_BYTES` one band of rows at a time (every tilt's
rays take their samples in the band before the next band), so the band stays in cache instead of
the volume being streamed once per tilt, which a second worker process on the other core slowed
further. Neither changes the order of any sum. Precomputed geometry tables (per tilt and ray:
sample index and weights, 97 MB for 131 tilts of 256²) and branch-free per-row geometry were
measured too and were no faster (docs/benchmarks.md, bench.reconstruction).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.validate import check_angles

try:  # numba is optional: the numpy kernels below give the same numbers, slower.
    import numba

    from reconstruction.engine._simd import LANES, v8_axpy2, v8_bilerp, v8_lerp

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None
    HAVE_NUMBA = False

__all__ = [
    "HAVE_NUMBA",
    "back_project",
    "back_slab",
    "centre",
    "forward_project",
    "forward_slab",
    "forward_slab_ray",
    "geometry",
]


def centre(n: int) -> float:
    """Geometric centre ``(n − 1) / 2`` of ``n`` pixels: the engine's rotation centre on the detector
    and in the slice (``centre(columns)`` in x, ``centre(thickness)`` in z), as ASTRA's."""
    return (int(n) - 1) / 2.0


def geometry(angles_deg: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(cos θ, sin θ)`` for angles in degrees, as float64 arrays."""
    theta = np.deg2rad(np.asarray(angles_deg, dtype=np.float64).ravel())
    return np.cos(theta), np.sin(theta)


# --------------------------------------------------------------------------------------------
# numpy kernels (fallback and reference)
# --------------------------------------------------------------------------------------------


def _np_back(sino, cos, sin, out, cx, cz, dc, weights):
    """out[z, x, :] += sum_a weights[a] * interp(sino[a], s(z, x, a))."""
    nt, nc, ns = sino.shape
    nz, nx, _ = out.shape
    x = np.arange(nx, dtype=np.float64) - cx
    z = np.arange(nz, dtype=np.float64) - cz
    padded = np.zeros((nc + 2, ns), dtype=sino.dtype)
    for a in range(nt):
        s = cos[a] * x[None, :] - sin[a] * z[:, None] + (cx + dc)
        i0 = np.floor(s)
        w = (s - i0).astype(sino.dtype)[..., None]
        idx = np.clip(i0.astype(np.int64) + 1, 0, nc + 1)
        idx1 = np.clip(i0.astype(np.int64) + 2, 0, nc + 1)
        padded[1:-1] = sino[a] * weights[a]
        out += (1 - w) * padded[idx] + w * padded[idx1]
    return out


def _np_forward(vol, cos, sin, out, cx, cz, dc):
    """out[a, i, :] += sum_{z,x} weight(z, x, a, i) * vol[z, x, :] (adjoint of _np_back)."""
    nt, nc, ns = out.shape
    nz, nx, _ = vol.shape
    x = np.arange(nx, dtype=np.float64) - cx
    z = np.arange(nz, dtype=np.float64) - cz
    flat = vol.reshape(nz * nx, ns)
    for a in range(nt):
        s = (cos[a] * x[None, :] - sin[a] * z[:, None] + (cx + dc)).ravel()
        i0 = np.floor(s)
        w = (s - i0).astype(vol.dtype)[:, None]
        i0 = i0.astype(np.int64) + 1
        acc = np.zeros((nc + 3, ns), dtype=out.dtype)
        np.add.at(acc, np.clip(i0, 0, nc + 2), (1 - w) * flat)
        np.add.at(acc, np.clip(i0 + 1, 0, nc + 2), w * flat)
        out[a] += acc[1 : nc + 1]
    return out


def _np_forward_ray(vol, cos, sin, out, cx, cz, dc, half):
    """numpy version of the ray-driven forward projector (same sampling, vectorised)."""
    nt, nc, ns = out.shape
    nz, nx, _ = vol.shape
    u = np.arange(nc, dtype=np.float64) - cx - dc
    pad = np.zeros((nz + 2, nx + 2, ns), dtype=np.float32)
    pad[1:-1, 1:-1] = vol
    for a in range(nt):
        for t in range(-half, half + 1):
            xf = cx + cos[a] * u + sin[a] * t
            zf = cz - sin[a] * u + cos[a] * t
            ok = (xf > -1.0) & (zf > -1.0) & (xf < nx) & (zf < nz)
            if not ok.any():
                continue
            fx, fz = np.floor(xf[ok]), np.floor(zf[ok])
            wx = (xf[ok] - fx).astype(np.float32)[:, None]
            wz = (zf[ok] - fz).astype(np.float32)[:, None]
            ix, iz = fx.astype(np.int64) + 1, fz.astype(np.int64) + 1
            out[a, ok] += ((1 - wz) * (1 - wx) * pad[iz, ix] + (1 - wz) * wx * pad[iz, ix + 1]) + (
                wz * (1 - wx) * pad[iz + 1, ix] + wz * wx * pad[iz + 1, ix + 1]
            )
    return out


# --------------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------------

if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _nb_back_row(sino, cos, sin, orow, z, cx, cz, dc, weights):  # pragma: no cover
        """orow[x, :] += sum_a weights[a] * interp(sino[a], s(z, x, a)), angles in order.

        Angle-outer, x-inner: the output row stays in cache while each tilt's sinogram row is
        streamed, and consecutive updates touch different voxels (no dependency chain).
        """
        nt, nc, ns = sino.shape
        nx = orow.shape[0]
        n8 = ns - ns % LANES
        zz = z - cz
        for a in range(nt):
            wa = weights[a]
            sa = sino[a]
            ca = cos[a]
            b = sin[a] * zz
            for x in range(nx):
                s = ca * (x - cx) - b + (cx + dc)
                fi = np.floor(s)
                i0 = int(fi)
                w = np.float32(s - fi) * wa
                w0 = wa - w
                if i0 >= 0 and i0 + 1 < nc:
                    # eight slices at a time (see _simd: the per-voxel loop set-up dominated small slabs)
                    ox = x * ns
                    si = i0 * ns
                    for k in range(0, n8, LANES):
                        v8_lerp(orow, ox + k, sa, si + k, si + ns + k, w0, w)
                    r0 = sa[i0]
                    r1 = sa[i0 + 1]
                    o = orow[x]
                    for k in range(n8, ns):
                        o[k] += w0 * r0[k] + w * r1[k]
                elif i0 == -1:
                    for k in range(ns):
                        orow[x, k] += w * sa[0, k]
                elif i0 == nc - 1:
                    for k in range(ns):
                        orow[x, k] += w0 * sa[i0, k]

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_back(sino, cos, sin, out, cx, cz, dc, weights):  # pragma: no cover - compiled
        nz = out.shape[0]
        for z in numba.prange(nz):
            _nb_back_row(sino, cos, sin, out[z], z, cx, cz, dc, weights)
        return out

    @numba.njit(cache=True, nogil=True)
    def _nb_back_serial(sino, cos, sin, out, cx, cz, dc, weights):  # pragma: no cover - compiled
        """:func:`_nb_back` on the calling thread (same numbers): small work, no thread hand-off."""
        for z in range(out.shape[0]):
            _nb_back_row(sino, cos, sin, out[z], z, cx, cz, dc, weights)
        return out

    @numba.njit(cache=True, nogil=True)
    def _nb_back1_rows(sino, cos, sin, out, z0, z1, cx, cz, dc, weights):  # pragma: no cover - compiled
        """One slice (``sino`` (tilts, detector), ``out`` (thickness, columns)), rows z0..z1.

        The arithmetic and the order of the sums of :func:`_nb_back_row`, without its loop over
        slices: on a single slice that loop of length one costs more than the update itself.
        """
        nt, nc = sino.shape
        nx = out.shape[1]
        for z in range(z0, z1):
            zz = z - cz
            orow = out[z]
            for a in range(nt):
                wa = weights[a]
                sa = sino[a]
                ca = cos[a]
                b = sin[a] * zz
                for x in range(nx):
                    s = ca * (x - cx) - b + (cx + dc)
                    fi = np.floor(s)
                    i0 = int(fi)
                    w = np.float32(s - fi) * wa
                    w0 = wa - w
                    if i0 >= 0 and i0 + 1 < nc:
                        orow[x] += w0 * sa[i0] + w * sa[i0 + 1]
                    elif i0 == -1:
                        orow[x] += w * sa[0]
                    elif i0 == nc - 1:
                        orow[x] += w0 * sa[i0]

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_back1(sino, cos, sin, out, cx, cz, dc, weights, nblocks):  # pragma: no cover - compiled
        nz = out.shape[0]
        for blk in numba.prange(nblocks):
            _nb_back1_rows(sino, cos, sin, out, blk * nz // nblocks, (blk + 1) * nz // nblocks, cx, cz, dc, weights)
        return out

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_back_update(resid, cos, sin, x, scale, cx, cz, dc, weights, nonneg):  # pragma: no cover - compiled
        """Fused SIRT update: x = max(0, x + scale * A^T resid), one x–z row at a time."""
        nz, nx, ns = x.shape
        for z in numba.prange(nz):
            tmp = np.zeros((nx, ns), dtype=np.float32)
            _nb_back_row(resid, cos, sin, tmp, z, cx, cz, dc, weights)
            for xi in range(nx):
                c = scale[z, xi]
                xr = x[z, xi]
                tr = tmp[xi]
                if nonneg:
                    for k in range(ns):
                        v = xr[k] + tr[k] * c
                        xr[k] = v if v > 0 else np.float32(0.0)
                else:
                    for k in range(ns):
                        xr[k] = xr[k] + tr[k] * c
        return x

    @numba.njit(cache=True, nogil=True)
    def _nb_forward_tilts(vol, cos, sin, out, cx, cz, dc, a0, a1):  # pragma: no cover - compiled
        """out[a, i, :] += sum_{z, x} hat(s - i) vol[z, x, :] for the tilts a0..a1, sums in (z, x) order.

        The tilts are the innermost loop, so consecutive scattered updates go to different
        sinogram rows (no store-to-load dependency chain) while each voxel row is read once. Per
        voxel, the detector coordinates of all the block's tilts are computed first, in one loop
        LLVM vectorises (the same IEEE operations as one by one), then the updates run; and the
        tilts are taken in interleaved order (a0, a0 + h, a0 + 1, ...), which measured faster than
        tilt order at 8–64 slices: consecutive updates then land on bins far apart rather than on
        the same bin of neighbouring tilts, whose rows lie a multiple of 4 KiB apart (likely
        false store-to-load aliasing; not confirmed with counters). Neither changes a sum: each
        sinogram value still receives its voxels in (z, x) order.
        """
        nt, nc, ns = out.shape
        nz, nx, _ = vol.shape
        n8 = ns - ns % LANES
        na = a1 - a0
        half = (na + 1) // 2
        order = np.empty(na, np.int64)
        for j in range(na):
            order[j] = a0 + (j // 2 if j % 2 == 0 else half + j // 2)
        ca = np.empty(na)
        sb = np.empty(na)
        first = np.empty(na, np.int64)
        frac = np.empty(na, np.float32)
        for j in range(na):
            ca[j] = cos[order[j]]
        centre_dc = cx + dc
        for z in range(nz):
            zz = z - cz
            for j in range(na):
                sb[j] = sin[order[j]] * zz
            for x in range(nx):
                xc = x - cx
                for j in range(na):  # vectorised: the coordinates of every tilt of the block
                    s = ca[j] * xc - sb[j] + centre_dc
                    fi = np.floor(s)
                    first[j] = int(fi)
                    frac[j] = np.float32(s - fi)
                v = vol[z, x]
                vb = (z * nx + x) * ns
                for j in range(na):
                    a = order[j]
                    i0 = first[j]
                    w = frac[j]
                    w0 = np.float32(1.0) - w
                    if i0 >= 0 and i0 + 1 < nc:
                        ob = (a * nc + i0) * ns
                        for k in range(0, n8, LANES):  # eight slices at a time, see _simd
                            v8_axpy2(out, ob + k, ob + ns + k, w0, w, vol, vb + k)
                        o0 = out[a, i0]
                        o1 = out[a, i0 + 1]
                        for k in range(n8, ns):
                            o0[k] += w0 * v[k]
                            o1[k] += w * v[k]
                    elif i0 == -1:
                        for k in range(ns):
                            out[a, 0, k] += w * v[k]
                    elif i0 == nc - 1:
                        for k in range(ns):
                            out[a, i0, k] += w0 * v[k]

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_forward(vol, cos, sin, out, cx, cz, dc, nblocks):  # pragma: no cover - compiled
        """Threads own blocks of whole tilts (no write conflicts), see :func:`_nb_forward_tilts`."""
        nt = out.shape[0]
        for blk in numba.prange(nblocks):
            _nb_forward_tilts(vol, cos, sin, out, cx, cz, dc, blk * nt // nblocks, (blk + 1) * nt // nblocks)
        return out

    @numba.njit(cache=True, nogil=True)
    def _nb_forward1_tilts(vol, cos, sin, out, cx, cz, dc, a0, a1):  # pragma: no cover - compiled
        """One slice (``vol`` (thickness, columns), ``out`` (tilts, detector)), tilts a0..a1.

        Each tilt's sinogram row is summed in (z, x) order as in :func:`_nb_forward_tilts` (same
        numbers); the tilt loop is outermost so the row stays in registers' reach and the detector
        coordinate advances by a constant step along x.
        """
        nc = out.shape[1]
        nz, nx = vol.shape
        for a in range(a0, a1):
            ca = cos[a]
            sa = sin[a]
            o = out[a]
            for z in range(nz):
                zz = z - cz
                vz = vol[z]
                for x in range(nx):
                    v = vz[x]
                    if v == 0:
                        continue  # adds exactly nothing (outside the support, clipped voxels)
                    s = ca * (x - cx) - sa * zz + (cx + dc)
                    fi = np.floor(s)
                    i0 = int(fi)
                    w = np.float32(s - fi)
                    w0 = np.float32(1.0) - w
                    if i0 >= 0 and i0 + 1 < nc:
                        o[i0] += w0 * v
                        o[i0 + 1] += w * v
                    elif i0 == -1:
                        o[0] += w * v
                    elif i0 == nc - 1:
                        o[i0] += w0 * v

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_forward1(vol, cos, sin, out, cx, cz, dc, nblocks):  # pragma: no cover - compiled
        nt = out.shape[0]
        for blk in numba.prange(nblocks):
            _nb_forward1_tilts(vol, cos, sin, out, cx, cz, dc, blk * nt // nblocks, (blk + 1) * nt // nblocks)
        return out

    @numba.njit(cache=True, nogil=True)
    def _ray_range(start, step, n, lo, hi):  # pragma: no cover - compiled
        """Narrow [lo, hi] to the t whose ``start + step·t`` lies within (-5, n + 4) along one axis, with one
        sample of slack: every sample of four neighbouring rays from ``start`` that can fall in the volume."""
        if step > 1e-12:
            lo = max(lo, int(np.floor((-1.0 - start - 4.0) / step)) - 1)
            hi = min(hi, int(np.ceil((n - start + 4.0) / step)) + 1)
        elif step < -1e-12:
            lo = max(lo, int(np.floor((n - start + 4.0) / step)) - 1)
            hi = min(hi, int(np.ceil((-1.0 - start - 4.0) / step)) + 1)
        return lo, hi

    @numba.njit(cache=True, nogil=True, inline="always")
    def _ray_sample(vol, o, xf, zf, nx, nz, ns):  # pragma: no cover - compiled
        """o += bilinear sample of vol at (zf, xf) (zero outside)."""
        if xf <= -1.0 or zf <= -1.0 or xf >= nx or zf >= nz:
            return
        fx = np.floor(xf)
        fz = np.floor(zf)
        ix = int(fx)
        iz = int(fz)
        wx = np.float32(xf - fx)
        wz = np.float32(zf - fz)
        w00 = (np.float32(1.0) - wz) * (np.float32(1.0) - wx)
        w01 = (np.float32(1.0) - wz) * wx
        w10 = wz * (np.float32(1.0) - wx)
        w11 = wz * wx
        if ix >= 0 and iz >= 0 and ix + 1 < nx and iz + 1 < nz:
            # eight slices at a time (see _simd): the per-sample loop set-up dominated small slabs
            n8 = ns - ns % LANES
            b0 = (iz * nx + ix) * ns
            b1 = b0 + nx * ns
            for k in range(0, n8, LANES):
                v8_bilerp(o, k, vol, b0 + k, b0 + ns + k, b1 + k, b1 + ns + k, w00, w01, w10, w11)
            for k in range(n8, ns):
                o[k] += (w00 * vol[iz, ix, k] + w01 * vol[iz, ix + 1, k]) + (
                    w10 * vol[iz + 1, ix, k] + w11 * vol[iz + 1, ix + 1, k]
                )
        else:
            for dz in range(2):
                for dx in range(2):
                    jz = iz + dz
                    jx = ix + dx
                    if 0 <= jz < nz and 0 <= jx < nx:
                        ww = (wz if dz else np.float32(1.0) - wz) * (wx if dx else np.float32(1.0) - wx)
                        for k in range(ns):
                            o[k] += ww * vol[jz, jx, k]

    @numba.njit(cache=True, nogil=True)
    def _quad_range(ca, sa, x0, z0, nx, nz, half):  # pragma: no cover - compiled
        """The t range covering four neighbouring rays from (z0, x0) (the samples outside are skipped per ray)."""
        lo, hi = _ray_range(x0, sa, nx, -half, half)
        return _ray_range(z0, ca, nz, lo, hi)

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_forward_ray(vol, cos, sin, out, cx, cz, dc, half):  # pragma: no cover - compiled
        """Ray-driven forward projection: unit-step samples along each ray, bilinear in (z, x).

        Work items are four neighbouring rays of one tilt, sampled in lockstep: four independent
        accumulation chains (each ray's samples are still summed in order along the ray).
        """
        nt, nc, ns = out.shape
        nz, nx, _ = vol.shape
        nq = (nc + 3) // 4
        for aq in numba.prange(nt * nq):
            iq = aq // nt
            a = aq - iq * nt
            i0 = iq * 4
            nr = min(4, nc - i0)
            ca = cos[a]
            sa = sin[a]
            u = i0 - cx - dc
            x0 = cx + ca * u
            z0 = cz - sa * u
            lo, hi = _quad_range(ca, sa, x0, z0, nx, nz, half)
            if nr == 4:
                o0 = out[a, i0]
                o1 = out[a, i0 + 1]
                o2 = out[a, i0 + 2]
                o3 = out[a, i0 + 3]
                for t in range(lo, hi + 1):
                    xt = sa * t
                    zt = ca * t
                    _ray_sample(vol, o0, x0 + xt, z0 + zt, nx, nz, ns)
                    u1 = i0 + 1 - cx - dc
                    _ray_sample(vol, o1, cx + ca * u1 + xt, cz - sa * u1 + zt, nx, nz, ns)
                    u2 = i0 + 2 - cx - dc
                    _ray_sample(vol, o2, cx + ca * u2 + xt, cz - sa * u2 + zt, nx, nz, ns)
                    u3 = i0 + 3 - cx - dc
                    _ray_sample(vol, o3, cx + ca * u3 + xt, cz - sa * u3 + zt, nx, nz, ns)
            else:
                for r in range(nr):
                    o = out[a, i0 + r]
                    ur = i0 + r - cx - dc
                    xr = cx + ca * ur
                    zr = cz - sa * ur
                    for t in range(lo, hi + 1):
                        _ray_sample(vol, o, xr + sa * t, zr + ca * t, nx, nz, ns)
        return out

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _nb_forward_ray_banded(vol, cos, sin, out, cx, cz, dc, half, band):  # pragma: no cover - compiled
        """:func:`_nb_forward_ray` one band of ``band`` volume rows (z) at a time, the same numbers.

        One tilt's rays cross the whole volume, so the single pass streams the volume from memory
        once per tilt; a volume larger than the core's cache then waits on memory, and waits
        longer when another process shares it (a second worker). Here every ray of every tilt
        takes its samples that fall in the current band before the next band: the band stays in
        cache while all tilts use it. Along a ray z = z0 + t cos θ is monotonic in t, so each
        ray's samples are still added in t order, across bands as within one (bands ascend in z
        for cos θ ≥ 0, descend otherwise); ``nxt`` keeps where each ray stopped.
        """
        nt, nc, ns = out.shape
        nz, nx, _ = vol.shape
        nq = (nc + 3) // 4
        n = nt * nq
        nb = (nz + band - 1) // band
        his = np.empty(n, np.int64)
        nxt = np.empty((n, 4), np.int64)
        for aq in range(n):
            iq = aq // nt
            a = aq - iq * nt
            u = iq * 4 - cx - dc
            lo, hi = _quad_range(cos[a], sin[a], cx + cos[a] * u, cz - sin[a] * u, nx, nz, half)
            his[aq] = hi
            for r in range(4):
                nxt[aq, r] = lo
        for step in range(nb):
            for aq in numba.prange(n):
                iq = aq // nt
                a = aq - iq * nt
                i0 = iq * 4
                ca = cos[a]
                sa = sin[a]
                hi = his[aq]
                ascending = ca >= 0.0
                if ascending:  # the samples with z below the band's top (the last band: all the rest)
                    limit = (step + 1) * band if step < nb - 1 else np.inf
                else:
                    limit = (nb - 1 - step) * band if step < nb - 1 else -np.inf
                for r in range(min(4, nc - i0)):
                    o = out[a, i0 + r]
                    ur = i0 + r - cx - dc
                    xr = cx + ca * ur
                    zr = cz - sa * ur
                    t = nxt[aq, r]
                    while t <= hi:
                        zf = zr + ca * t
                        if (ascending and not zf < limit) or (not ascending and not zf >= limit):
                            break
                        _ray_sample(vol, o, xr + sa * t, zf, nx, nz, ns)
                        t += 1
                    nxt[aq, r] = t
        return out


if HAVE_NUMBA:
    _PIXEL_FORWARD = (_nb_forward1_tilts, _nb_forward1, _nb_forward_tilts, _nb_forward)
    _PIXEL_BACK = (_nb_back1_rows, _nb_back1, _nb_back_serial, _nb_back)


def _angle_blocks(n_tilts: int) -> int:
    """Blocks of at most 8 tilts, a multiple of the thread count (balanced forward projection)."""
    threads = numba.get_num_threads() if HAVE_NUMBA else 1
    per = -(-n_tilts // (threads * 8))
    return max(1, min(n_tilts, threads * per))


#: Voxel-angle updates below which a projection runs on the calling thread. Handing a parallel
#: region to numba's threads costs tens of microseconds on a quiet machine and whole scheduler
#: slices on a loaded one (every thread must be scheduled before the call returns); one subset
#: of a 128² slice (16 tilts, 2.6·10⁵ updates) takes about 0.3 ms on one core.
SERIAL_WORK = 2_000_000

#: Bytes of volume per band of the ray-driven forward projector: half the L2 cache of one core on the
#: machines measured (1 MiB), so a band and the tilts' sinogram rows it feeds stay there.
RAY_BAND_BYTES = 512 * 1024


def ray_band_rows(columns: int, slices: int) -> int:
    """Volume rows (z) per band of :func:`forward_slab_ray` for a volume ``columns`` wide of ``slices`` slices."""
    return max(1, RAY_BAND_BYTES // max(1, 4 * columns * slices))


def _serial(n_tilts: int, nz: int, nx: int, ns: int) -> bool:
    return n_tilts * nz * nx * ns < SERIAL_WORK or numba.get_num_threads() == 1


def _c_out(out: NDArray[np.float32]) -> NDArray[np.float32]:
    """``out`` itself, or a C-contiguous float32 copy to accumulate into (the 8-lane updates need one)."""
    if out.flags.c_contiguous and out.dtype == np.float32:
        return out
    return np.ascontiguousarray(out, dtype=np.float32)


def _copy_back(work: NDArray[np.float32], out: NDArray[np.float32]) -> NDArray[np.float32]:
    if work is not out:
        out[...] = work
    return out


def _forward_numba(kernels, vol, geo, out, cx, cz, dc):
    """Run a compiled forward projector: ``kernels`` = (one slice on this thread, one slice
    threaded, slab on this thread, slab threaded), each called as ``k(vol, *geo, out, cx, cz, dc,
    tilt range or block count)``. Shared by every pair (pixel-driven here, Joseph's in
    :mod:`~reconstruction.engine.joseph`), which differ only in the per-voxel weights."""
    one, one_threaded, slab, slab_threaded = kernels
    nz, nx, ns = vol.shape
    nt = out.shape[0]
    vol = np.ascontiguousarray(vol, np.float32)
    serial = _serial(nt, nz, nx, ns)
    if ns == 1 and out.flags.c_contiguous:
        v1, o1 = vol.reshape(nz, nx), out.reshape(nt, nx)
        if serial:
            one(v1, *geo, o1, cx, cz, dc, 0, nt)
        else:
            one_threaded(v1, *geo, o1, cx, cz, dc, _angle_blocks(nt))
        return out
    work = _c_out(out)
    if serial:
        slab(vol, *geo, work, cx, cz, dc, 0, nt)
    else:
        slab_threaded(vol, *geo, work, cx, cz, dc, _angle_blocks(nt))
    return _copy_back(work, out)


def _back_numba(kernels, sino, geo, tail, out, cx, cz, dc):
    """Run a compiled back projector (see :func:`_forward_numba`): one slice as ``k(sino, *geo,
    out, z0, z1, cx, cz, dc, *tail)`` or threaded ``k(sino, *geo, out, cx, cz, dc, *tail, blocks)``,
    a slab as ``k(sino, *geo, out, cx, cz, dc, *tail)``."""
    one, one_threaded, slab, slab_threaded = kernels
    nt, nc, ns = sino.shape
    nz, nx = out.shape[:2]
    sino = np.ascontiguousarray(sino, np.float32)
    serial = _serial(nt, nz, nx, ns)
    if ns == 1 and out.flags.c_contiguous:
        o1, s1 = out.reshape(nz, nx), sino.reshape(nt, nc)
        if serial:
            one(s1, *geo, o1, 0, nz, cx, cz, dc, *tail)
        else:
            one_threaded(s1, *geo, o1, cx, cz, dc, *tail, numba.get_num_threads())
        return out
    kernel = slab if serial else slab_threaded
    return _copy_back(kernel(sino, *geo, _c_out(out), cx, cz, dc, *tail), out)


def back_slab(
    sino: NDArray[np.float32],
    cos: NDArray[np.float64],
    sin: NDArray[np.float64],
    thickness: int,
    *,
    columns: int | None = None,
    axis_offset: float = 0.0,
    weights: NDArray[np.float32] | None = None,
    out: NDArray[np.float32] | None = None,
    backend: str = "auto",
) -> NDArray[np.float32]:
    """Back project a slices-innermost sinogram stack ``(tilts, detector, slices)``.

    Parameters
    ----------
    sino : ndarray, float32, shape (tilts, detector, slices)
        C-contiguous sinogram stack.
    cos, sin : ndarray, float64, shape (tilts,)
        From :func:`geometry`.
    thickness : int
        Number of voxels along the thickness axis.
    columns : int, optional
        Number of voxels along x (default: the detector width). With a wider (padded) detector,
        pass the volume width and shift ``axis_offset`` by the padding on the left.
    axis_offset : float
        Detector position of the tilt axis relative to the detector centre ``(columns − 1) / 2``, in pixels.
    weights : ndarray, float32, shape (tilts,), optional
        Per-tilt weights (default 1).
    out : ndarray, float32, shape (thickness, columns, slices), optional
        Accumulated into (``out += ...``); a new zero array if omitted.
    backend : {"auto", "numba", "numpy"}
        Kernel implementation.

    Returns
    -------
    ndarray, float32, shape (thickness, columns, slices)
    """
    nt, nc, ns = sino.shape
    nx = nc if columns is None else int(columns)
    if out is None:
        out = np.zeros((thickness, nx, ns), dtype=np.float32)
    if weights is None:
        weights = np.ones(nt, dtype=np.float32)
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    cx, cz = centre(nx), centre(thickness)
    if _use_numba(backend):
        return _back_numba(_PIXEL_BACK, sino, (cos, sin), (weights,), out, cx, cz, float(axis_offset))
    return _np_back(sino, cos, sin, out, cx, cz, float(axis_offset), weights)


def forward_slab(
    vol: NDArray[np.float32],
    cos: NDArray[np.float64],
    sin: NDArray[np.float64],
    *,
    axis_offset: float = 0.0,
    out: NDArray[np.float32] | None = None,
    backend: str = "auto",
) -> NDArray[np.float32]:
    """Forward project a slices-innermost volume ``(thickness, columns, slices)``.

    Returns (or accumulates into ``out``) the sinogram stack ``(tilts, columns, slices)``;
    the exact adjoint of :func:`back_slab` with unit weights.
    """
    nz, nx, ns = vol.shape
    nt = len(cos)
    if out is None:
        out = np.zeros((nt, nx, ns), dtype=np.float32)
    cx, cz = centre(nx), centre(nz)
    if _use_numba(backend):
        return _forward_numba(_PIXEL_FORWARD, vol, (cos, sin), out, cx, cz, float(axis_offset))
    return _np_forward(vol, cos, sin, out, cx, cz, float(axis_offset))


def forward_slab_ray(
    vol: NDArray[np.float32],
    cos: NDArray[np.float64],
    sin: NDArray[np.float64],
    *,
    axis_offset: float = 0.0,
    out: NDArray[np.float32] | None = None,
    backend: str = "auto",
) -> NDArray[np.float32]:
    """Ray-driven forward projection of a slices-innermost volume ``(thickness, columns, slices)``.

    Each detector ray is sampled at unit steps, the volume interpolated bilinearly in (z, x) (zero
    outside): the discretisation of ``skimage.transform.radon`` (rotate, then sum). SIRT uses it as
    its forward model (the pixel-driven :func:`forward_slab`, the exact adjoint of
    :func:`back_slab`, leaves high-frequency texture in converged solutions); not the adjoint of
    :func:`back_slab`.
    """
    nz, nx, ns = vol.shape
    nt = len(cos)
    if out is None:
        out = np.zeros((nt, nx, ns), dtype=np.float32)
    cx, cz = centre(nx), centre(nz)
    half = int(np.ceil(np.hypot(nx, nz) / 2)) + 1
    v = np.ascontiguousarray(vol, np.float32)
    if _use_numba(backend):
        band = ray_band_rows(nx, ns)
        if band >= nz:  # fits one band: the single pass, whose four rays in lockstep are faster on few slices
            return _copy_back(_nb_forward_ray(v, cos, sin, _c_out(out), cx, cz, float(axis_offset), half), out)
        ray = _nb_forward_ray_banded(v, cos, sin, _c_out(out), cx, cz, float(axis_offset), half, band)
        return _copy_back(ray, out)
    return _np_forward_ray(v, cos, sin, out, cx, cz, float(axis_offset), half)


def _use_numba(backend: str) -> bool:
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'numpy', not {backend!r}")
    if backend == "numba" and not HAVE_NUMBA:
        raise ValueError("backend 'numba' requested but numba is not installed")
    return HAVE_NUMBA and backend != "numpy"


def forward_project(
    volume: ArrayLike,
    angles_deg: ArrayLike,
    *,
    axis_offset: float = 0.0,
    backend: str = "auto",
) -> NDArray[np.float32]:
    """Project a volume to a parallel-beam tilt series.

    Parameters
    ----------
    volume : array_like, shape (rows, thickness, columns) or (thickness, columns)
        Volume in the engine's convention (a 2-D input is one slice).
    angles_deg : array_like, shape (tilts,)
        Tilt angles in degrees.
    axis_offset : float, optional
        Tilt-axis position on the detector relative to the detector centre ``(columns − 1) / 2``, in pixels.
    backend : {"auto", "numba", "numpy"}, optional

    Returns
    -------
    ndarray, float32, shape (tilts, rows, columns) (or (tilts, columns) for a 2-D input)
        Line integrals in voxel units (same scale as ``skimage.transform.radon``).
    """
    vol = np.asarray(volume)
    squeeze = vol.ndim == 2
    if squeeze:
        vol = vol[None]
    if vol.ndim != 3:
        raise ValueError(f"volume must be 2-D or 3-D, got {vol.ndim}-D")
    angles = check_angles(angles_deg, monotonic=False)
    cos, sin = geometry(angles)
    internal = np.ascontiguousarray(vol.transpose(1, 2, 0), dtype=np.float32)
    sino = forward_slab(internal, cos, sin, axis_offset=axis_offset, backend=backend)
    proj = np.ascontiguousarray(sino.transpose(0, 2, 1))
    return proj[:, 0] if squeeze else proj


def back_project(
    projections: ArrayLike,
    angles_deg: ArrayLike,
    thickness: int | None = None,
    *,
    weights: ArrayLike | None = None,
    axis_offset: float = 0.0,
    backend: str = "auto",
) -> NDArray[np.float32]:
    """Back project a tilt series (adjoint of :func:`forward_project`, no filtering).

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns) or (tilts, columns)
        Tilt series (a 2-D input is one sinogram).
    angles_deg : array_like, shape (tilts,)
        Tilt angles in degrees.
    thickness : int, optional
        Volume thickness in voxels; defaults to the column count.
    weights : array_like, shape (tilts,), optional
        Per-tilt weights (default 1, the plain adjoint).
    axis_offset : float, optional
        Tilt-axis position on the detector relative to the detector centre ``(columns − 1) / 2``, in pixels.
    backend : {"auto", "numba", "numpy"}, optional

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns) (or (thickness, columns) for 2-D input)
    """
    proj = np.asarray(projections)
    squeeze = proj.ndim == 2
    if squeeze:
        proj = proj[:, None, :]
    if proj.ndim != 3:
        raise ValueError(f"projections must be 2-D or 3-D, got {proj.ndim}-D")
    angles = check_angles(angles_deg, proj.shape[0], monotonic=False)
    nz = proj.shape[2] if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be positive, got {thickness}")
    cos, sin = geometry(angles)
    w = None if weights is None else np.asarray(weights, dtype=np.float32)
    sino = np.ascontiguousarray(proj.transpose(0, 2, 1), dtype=np.float32)
    vol = back_slab(sino, cos, sin, nz, axis_offset=axis_offset, weights=w, backend=backend)
    out = np.ascontiguousarray(vol.transpose(2, 0, 1))
    return out[0] if squeeze else out
