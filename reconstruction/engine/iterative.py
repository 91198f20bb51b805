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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.noise import sirt_iterations_for
from reconstruction.engine.operators import LinearOperator, ParallelBeamProjector, RayDrivenProjector
from reconstruction.engine.projectors import HAVE_NUMBA
from reconstruction.engine.slabs import iter_slabs, slab_size_for
from reconstruction.engine.validate import check_series
from reconstruction.engine.wbp import circle_mask

if HAVE_NUMBA:
    import numba

__all__ = [
    "CGLS_DEFAULTS",
    "SIRT_DEFAULTS",
    "CGLSOptions",
    "IterativeOptions",
    "cgls",
    "sirt",
    "solve_cgls",
    "solve_sirt",
]


@dataclass(frozen=True)
class IterativeOptions:
    """Settings of SIRT (:func:`sirt`); ``None`` takes :data:`SIRT_DEFAULTS`.

    Attributes
    ----------
    iterations : int, optional
        Full passes over all tilts (default: noise aware, at most 50, see
        :func:`reconstruction.engine.noise.sirt_iterations_for`).
    subsets : int, optional
        Ordered subsets of interleaved tilts (1 = plain SIRT).
    nonnegative : bool, optional
        Clip negative voxels after each update.
    relaxation : float, optional
        Step factor λ, in (0, 2).
    ray_iterations : int, optional
        The last ``ray_iterations`` iterations use the ray-driven bilinear forward projector
        (:class:`~reconstruction.engine.operators.RayDrivenProjector`, the discretisation of
        ``skimage.transform.radon``); the earlier ones the faster pixel-driven one, whose
        converged solutions keep a fine texture that costs SSIM.
    """

    iterations: int | None = None
    subsets: int | None = None
    nonnegative: bool | None = None
    relaxation: float | None = None
    ray_iterations: int | None = None


@dataclass(frozen=True)
class CGLSOptions:
    """Settings of CGLS (:func:`cgls`): the iteration count (default 20), its regulariser."""

    iterations: int | None = None


SIRT_DEFAULTS = IterativeOptions(iterations=50, subsets=4, nonnegative=True, relaxation=1.0, ray_iterations=15)
CGLS_DEFAULTS = CGLSOptions(iterations=20)


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


def _inverse(v: NDArray[np.float32], numerator: float = 1.0) -> NDArray[np.float32]:
    """``numerator / v`` where ``v`` is clearly positive (above 10⁻⁶ of its largest value), else 0."""
    tiny = np.float32(1e-6 * max(float(v.max()), 1.0)) if v.size else np.float32(1e-6)
    return np.where(v > tiny, np.float32(numerator) / np.maximum(v, tiny), np.float32(0)).astype(np.float32)


def solve_sirt(
    schedule: Sequence[LinearOperator],
    data: NDArray[np.float32],
    x: NDArray[np.float32],
    *,
    subsets: int = 1,
    relaxation: float = 1.0,
    nonnegative: bool = True,
    shared_column_weights: bool = False,
    callback: Callable[[int], None] | None = None,
    progress: int = 1,
) -> NDArray[np.float32]:
    """SIRT / OS-SIRT over linear operators: the engine's one SIRT loop.

    For each iteration ``k`` and each subset ``S`` of interleaved tilts, with ``A = schedule[k]``::

        x ← max(0, x + λ · C_S · A_Sᵀ · R_S · (b_S − A_S x))

    with ``R_S = 1 / A_S 1`` and ``C_S = 1 / A_Sᵀ 1`` (or, with ``shared_column_weights``,
    ``C = subsets / Aᵀ 1`` for every subset: one unknowns-sized array instead of one per subset,
    the same for interleaved subsets that see the unknowns alike). The weights are computed once
    per distinct operator of the schedule.

    Parameters
    ----------
    schedule : sequence of LinearOperator
        The forward model of each iteration (its length is the iteration count); the same object
        repeated for a fixed model, e.g. pixel-driven then ray-driven projectors.
    data : ndarray, tilts first
        Measured data ``b`` of all tilts, in the operators' data layout.
    x : ndarray
        Starting unknowns, updated in place and returned.
    subsets : int
        Ordered subsets of interleaved tilts (1 = plain SIRT).
    relaxation : float
        ``λ``, in (0, 2).
    nonnegative : bool
        Clip at zero after each update.
    shared_column_weights : bool
        See above.
    callback : callable, optional
        Called with ``progress`` after each iteration.

    Returns
    -------
    ndarray
        ``x``.
    """
    if not schedule:
        return x
    n_t = schedule[0].n_tilts
    groups = _subsets(n_t, subsets)
    lam = float(relaxation)
    weights: dict[int, tuple[list, list]] = {}
    for op in schedule:
        if id(op) in weights:
            continue
        ones = op.ones_volume()
        rows = [_inverse(op.forward(ones, g)) for g in groups]
        if shared_column_weights:
            back = op.adjoint(op.ones_data(groups[0]), groups[0])
            for g in groups[1:]:
                back += op.adjoint(op.ones_data(g), g)
            shared = _inverse(back, len(groups))
            del back
            if lam != 1.0:
                shared *= np.float32(lam)
            cols = [shared] * len(groups)
        else:
            cols = [_inverse(op.adjoint(op.ones_data(g), g), lam) for g in groups]
        weights[id(op)] = (rows, cols)
    bs = [np.ascontiguousarray(data[g]) for g in groups]
    if nonnegative:
        np.maximum(x, 0, out=x)
    for op in schedule:
        rows, cols = weights[id(op)]
        for g, bg, inv_row, scale in zip(groups, bs, rows, cols, strict=True):
            resid = op.forward(x, g)
            np.subtract(bg, resid, out=resid)
            resid *= inv_row
            op.back_update(resid, g, x, scale, nonnegative)
        if callback is not None:
            callback(progress)
    return x


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
        Tilt-axis position relative to the detector centre ``(columns − 1) / 2``, in pixels.
    circle : bool
        Restrict the unknowns to the circle of radius ``columns // 2`` about the axis
        (:func:`~reconstruction.engine.wbp.circle_mask`).
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

    Notes
    -----
    :func:`solve_sirt` over :class:`~reconstruction.engine.operators.ParallelBeamProjector`
    (then :class:`~reconstruction.engine.operators.RayDrivenProjector` for the last
    ``ray_iterations``), slab by slab.
    """
    d = SIRT_DEFAULTS
    if iterations is None:
        iterations = sirt_iterations_for(check_series(projections, angles)[0], maximum=d.iterations)
    n_iter = _check_iterations(iterations)
    n_sub = d.subsets if subsets is None else int(subsets)
    if n_sub < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    nonneg = d.nonnegative if nonnegative is None else bool(nonnegative)
    lam = d.relaxation if relaxation is None else float(relaxation)
    if not 0 < lam < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation}")
    n_ray = _check_iterations(d.ray_iterations if ray_iterations is None else ray_iterations)
    p, a, nt, nr, nc, nz, step = _prepare(projections, angles, thickness, slab_size, 4)
    if out is None:
        out = np.empty((nr, nz, nc), dtype=np.float32)
    mask = circle_mask(nz, nc) if circle else None
    geo = {"axis_offset": axis_offset, "mask": mask, "backend": backend}
    pixel, ray = ParallelBeamProjector(a, nz, nc, **geo), RayDrivenProjector(a, nz, nc, **geo)
    schedule = [ray if it >= n_iter - n_ray else pixel for it in range(n_iter)]
    for r0, r1 in iter_slabs(nr, step):
        b = np.ascontiguousarray(p[:, r0:r1, :].transpose(0, 2, 1), dtype=np.float32)
        x = np.zeros((nz, nc, r1 - r0), dtype=np.float32)
        solve_sirt(
            schedule,
            b,
            x,
            subsets=n_sub,
            relaxation=lam,
            nonnegative=nonneg,
            callback=callback,
            progress=r1 - r0,
        )
        del b
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


def solve_cgls(
    op: LinearOperator,
    residual: NDArray[np.float32],
    x: NDArray[np.float32],
    *,
    iterations: int,
    callback: Callable[[int], None] | None = None,
    progress: int = 1,
) -> NDArray[np.float32]:
    """CGLS over a linear operator whose unknowns and data have independent slices innermost.

    Minimises ``‖A x − b‖²`` from ``x`` with ``residual = b − A x`` given (both updated in
    place); step lengths are computed per slice (last axis), so slices stay independent and slab
    boundaries never show. ``op.adjoint`` must be the exact transpose of ``op.forward``.
    """
    s = op.adjoint(residual)
    d = s.copy()
    gamma = _sumsq(s)
    for _ in range(int(iterations)):
        q = op.forward(d)
        alpha = _ratio(gamma, _sumsq(q))
        x += alpha * d
        residual -= alpha * q
        s = op.adjoint(residual)
        gamma_new = _sumsq(s)
        beta = _ratio(gamma_new, gamma)
        gamma = gamma_new
        d *= beta
        d += s
        if callback is not None:
            callback(progress)
    return x


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
    op = ParallelBeamProjector(
        a, nz, nc, axis_offset=axis_offset, mask=circle_mask(nz, nc) if circle else None, backend=backend
    )
    for r0, r1 in iter_slabs(nr, step):
        # a copy even where the transpose is already contiguous: the residual is updated in place
        r = np.array(p[:, r0:r1, :].transpose(0, 2, 1), dtype=np.float32, order="C", copy=True)
        x = np.zeros((nz, nc, r1 - r0), dtype=np.float32)
        solve_cgls(op, r, x, iterations=n_iter, callback=callback, progress=r1 - r0)
        out[r0:r1] = x.transpose(2, 0, 1)
    return out
