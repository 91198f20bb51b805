"""Iterative reconstruction: SIRT (ordered subsets, non-negativity) and CGLS, in slabs of slices.

SIRT update for a subset ``S`` of the tilts (``A_S`` its projector, ``b_S`` its data)::

    x ← max(0, x + λ · C_S · A_Sᵀ · R_S · (b_S − A_S x))

with ``R_S = 1 / A_S 1`` (inverse ray lengths) and ``C_S = 1 / A_Sᵀ 1`` (inverse back-projected
weights). With one subset this is classic SIRT; with several (interleaved tilts) it is OS-SIRT, which
for the same cost per iteration (one forward and one back projection of all tilts) converges about
as many times faster as there are subsets.

Defaults (chosen by measurement, see docs/engine.md): 50 iterations on quiet data and fewer on
noisy data (:func:`reconstruction.engine.noise.sirt_iterations_for`), 4 ordered subsets,
non-negativity on, λ = 1, the last 15 iterations with the ray-driven forward projector
(:data:`SIRT_DEFAULTS`).

CGLS minimises ``‖A x − b‖²`` per slice with conjugate gradients (no constraint); stop early
(10–20 iterations) on noisy data, it is the regularisation. Step lengths are computed for each slice
separately, so slices stay independent and slab boundaries never show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.noise import sirt_iterations_for
from reconstruction.engine.projectors import (
    HAVE_NUMBA,
    _use_numba,
    back_slab,
    forward_slab,
    forward_slab_ray,
    geometry,
)
from reconstruction.engine.slabs import iter_slabs, slab_size_for
from reconstruction.engine.validate import check_series
from reconstruction.engine.wbp import circle_mask

if HAVE_NUMBA:
    import numba

    from reconstruction.engine.projectors import _nb_back_update

__all__ = ["CGLS_DEFAULTS", "SIRT_DEFAULTS", "IterativeOptions", "cgls", "sirt"]


@dataclass(frozen=True)
class IterativeOptions:
    """Settings of an iterative method.

    Attributes
    ----------
    iterations : int
        Full passes over all tilts.
    subsets : int
        Ordered subsets of interleaved tilts (SIRT only; 1 = plain SIRT).
    nonnegative : bool
        Clip negative voxels after each update (SIRT only).
    relaxation : float
        Step factor λ (SIRT only).
    ray_iterations : int
        The last ``ray_iterations`` iterations (SIRT only) use the ray-driven bilinear forward
        projector (:func:`~reconstruction.engine.projectors.forward_slab_ray`, the discretisation
        of ``skimage.transform.radon``); the earlier ones the faster pixel-driven one, whose
        converged solutions keep a fine texture that costs SSIM.
    """

    iterations: int = 50
    subsets: int = 4
    nonnegative: bool = True
    relaxation: float = 1.0
    ray_iterations: int = 15


SIRT_DEFAULTS = IterativeOptions()
CGLS_DEFAULTS = IterativeOptions(iterations=20, subsets=1, nonnegative=False, ray_iterations=0)


def _subsets(n: int, k: int) -> list[NDArray[np.intp]]:
    k = max(1, min(int(k), n))
    return [np.arange(i, n, k) for i in range(k)]


def _prepare(projections, angles, thickness, slab_size, arrays):
    p, a = check_series(projections, angles)
    nt, nr, nc = p.shape
    nz = nc if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be positive, got {thickness}")
    step = slab_size_for(nt, nz, nc, nr, slab_size, arrays=arrays)
    return p, a, nt, nr, nc, nz, step


def _check_iterations(iterations: int) -> int:
    if int(iterations) != iterations or iterations < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations}")
    return int(iterations)


def sirt(
    projections: ArrayLike,
    angles: ArrayLike,
    *,
    iterations: int | None = None,
    subsets: int | None = None,
    nonnegative: bool | None = None,
    relaxation: float | None = None,
    ray_iterations: int | None = None,
    thickness: int | None = None,
    slab_size: int | None = None,
    axis_offset: float = 0.0,
    circle: bool = False,
    backend: str = "auto",
    out: NDArray[np.float32] | None = None,
    callback: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """SIRT / OS-SIRT reconstruction of a tilt series.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
        Tilt series (absorption), tilt axis along the rows.
    angles : array_like, shape (tilts,)
        Tilt angles in degrees, strictly monotonic.
    iterations, subsets, nonnegative, relaxation, ray_iterations : optional
        See :class:`IterativeOptions`; ``None`` takes :data:`SIRT_DEFAULTS`, except the
        iterations: by default noise aware (:func:`reconstruction.engine.noise.sirt_iterations_for`:
        50 on quiet data, fewer on noisy data, where the count is the regulariser).
    thickness : int, optional
        Volume thickness (default: the column count).
    slab_size : int, optional
        Slices per slab; results do not depend on it.
    axis_offset : float
        Tilt-axis position relative to ``columns // 2``, in pixels.
    circle : bool
        Restrict the unknowns to the circle of radius ``columns // 2``.
    backend : {"auto", "numba", "numpy"}
        Projector kernels.
    out : ndarray, float32, shape (rows, thickness, columns), optional
        Output array.
    callback : callable, optional
        Called after each iteration with the number of slices in the slab (progress in units of
        slice-iterations: the total is ``rows * iterations``).

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns)
    """
    d = SIRT_DEFAULTS
    if iterations is None:
        iterations = sirt_iterations_for(check_series(projections, angles)[0], maximum=d.iterations)
    n_iter = _check_iterations(iterations)
    n_sub = d.subsets if subsets is None else int(subsets)
    if n_sub < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    nonneg = d.nonnegative if nonnegative is None else bool(nonnegative)
    lam = np.float32(d.relaxation if relaxation is None else relaxation)
    if not 0 < lam < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation}")
    n_ray = _check_iterations(d.ray_iterations if ray_iterations is None else ray_iterations)
    p, a, nt, nr, nc, nz, step = _prepare(projections, angles, thickness, slab_size, 4)
    if out is None:
        out = np.empty((nr, nz, nc), dtype=np.float32)
    cos, sin = geometry(a)
    groups = _subsets(nt, n_sub)
    mask = circle_mask(nz, nc)[..., None].astype(np.float32) if circle else None

    # Weights from one slice; identical for every slice (and so for every slab).
    ones_v = np.ones((nz, nc, 1), dtype=np.float32) if mask is None else mask.copy()
    weights = []
    for g in groups:
        cg, sg = cos[g], sin[g]
        inv_row = []
        for fwd in (forward_slab, forward_slab_ray):
            row = fwd(ones_v, cg, sg, axis_offset=axis_offset, backend=backend)
            inv_row.append(np.where(row > 1e-6, 1.0 / np.maximum(row, 1e-6), 0.0).astype(np.float32))
        col = back_slab(
            np.ones((len(g), nc, 1), np.float32),
            cg,
            sg,
            nz,
            axis_offset=axis_offset,
            backend=backend,
        )
        inv_col = np.where(col > 1e-6, lam / np.maximum(col, 1e-6), 0.0).astype(np.float32)
        if mask is not None:
            inv_col *= mask
        weights.append((cg, sg, inv_row, inv_col))

    fused = _use_numba(backend)
    cx, cz, dc = float(nc // 2), float(nz // 2), float(axis_offset)
    ones_w = np.ones(nt, dtype=np.float32)
    weights = [(cg, sg, ir, np.ascontiguousarray(ic)) for cg, sg, ir, ic in weights]

    for r0, r1 in iter_slabs(nr, step):
        b = np.ascontiguousarray(p[:, r0:r1, :].transpose(0, 2, 1), dtype=np.float32)
        bs = [np.ascontiguousarray(b[g]) for g in groups]
        del b
        x = np.zeros((nz, nc, r1 - r0), dtype=np.float32)
        for it in range(n_iter):
            ray = it >= n_iter - n_ray
            fwd = forward_slab_ray if ray else forward_slab
            for (cg, sg, inv_rows, inv_col), bg in zip(weights, bs, strict=True):
                resid = fwd(x, cg, sg, axis_offset=axis_offset, backend=backend)
                np.subtract(bg, resid, out=resid)
                resid *= inv_rows[int(ray)]
                if fused:
                    # back projection, scaling, update and clipping in one pass over x
                    _nb_back_update(resid, cg, sg, x, inv_col[..., 0], cx, cz, dc, ones_w[: len(cg)], nonneg)
                    continue
                upd = back_slab(resid, cg, sg, nz, axis_offset=axis_offset, backend=backend)
                upd *= inv_col
                x += upd
                if nonneg:
                    np.maximum(x, 0, out=x)
            if callback is not None:
                callback(r1 - r0)
        out[r0:r1] = x.transpose(2, 0, 1)
    return out


if HAVE_NUMBA:

    @numba.njit(cache=True, nogil=True)
    def _nb_sumsq(a):  # pragma: no cover - compiled
        n, s = a.shape
        acc = np.zeros(s, dtype=np.float64)
        for i in range(n):
            for k in range(s):
                v = np.float64(a[i, k])
                acc[k] += v * v
        return acc


def _sumsq(a: NDArray[np.float32]) -> NDArray[np.float64]:
    """Per-slice sum of squares of a slices-innermost array, in a fixed order."""
    flat = a.reshape(-1, a.shape[-1])
    if HAVE_NUMBA:
        return _nb_sumsq(flat)
    acc = np.zeros(flat.shape[1])
    for i in range(0, flat.shape[0], 4096):  # row-wise accumulation, independent of slab width
        blk = flat[i : i + 4096].astype(np.float64)
        for row in blk:
            acc += row * row
    return acc


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float32]:
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0).astype(np.float32)


def cgls(
    projections: ArrayLike,
    angles: ArrayLike,
    *,
    iterations: int | None = None,
    thickness: int | None = None,
    slab_size: int | None = None,
    axis_offset: float = 0.0,
    circle: bool = False,
    backend: str = "auto",
    out: NDArray[np.float32] | None = None,
    callback: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """CGLS reconstruction (conjugate gradients on the normal equations), slice by slice.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
        Tilt series (absorption), tilt axis along the rows.
    angles : array_like, shape (tilts,)
        Tilt angles in degrees, strictly monotonic.
    iterations : int, optional
        Number of iterations (default :data:`CGLS_DEFAULTS`, 20).
    thickness, slab_size, axis_offset, circle, backend, out, callback
        As in :func:`sirt`.

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns)
    """
    n_iter = _check_iterations(CGLS_DEFAULTS.iterations if iterations is None else iterations)
    p, a, nt, nr, nc, nz, step = _prepare(projections, angles, thickness, slab_size, 5)
    if out is None:
        out = np.empty((nr, nz, nc), dtype=np.float32)
    cos, sin = geometry(a)
    mask = circle_mask(nz, nc)[..., None].astype(np.float32) if circle else None

    def A(v):
        return forward_slab(v, cos, sin, axis_offset=axis_offset, backend=backend)

    def At(r):
        g = back_slab(r, cos, sin, nz, axis_offset=axis_offset, backend=backend)
        if mask is not None:
            g *= mask
        return g

    for r0, r1 in iter_slabs(nr, step):
        # a copy even where the transpose is already contiguous: r is updated in place
        r = np.array(p[:, r0:r1, :].transpose(0, 2, 1), dtype=np.float32, order="C", copy=True)
        x = np.zeros((nz, nc, r1 - r0), dtype=np.float32)
        s = At(r)
        d = s.copy()
        gamma = _sumsq(s)
        for _ in range(n_iter):
            q = A(d)
            alpha = _ratio(gamma, _sumsq(q))
            x += alpha * d
            r -= alpha * q
            s = At(r)
            gamma_new = _sumsq(s)
            beta = _ratio(gamma_new, gamma)
            gamma = gamma_new
            d *= beta
            d += s
            if callback is not None:
                callback(r1 - r0)
        out[r0:r1] = x.transpose(2, 0, 1)
    return out
