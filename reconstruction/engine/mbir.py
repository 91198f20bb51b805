"""Regularised (model-based) reconstruction: noise-weighted least squares + Huber prior, x ≥ 0.

Each slice solves::

    min_{x ≥ 0}  ½ Σ_i (A x − b)_i² / v_i  +  λ Σ_{neighbours j, k} w_jk δ² h((x_j − x_k) / δ)

with ``h`` the Huber function (quadratic below δ, linear above: edge preserving, like total
variation for jumps larger than δ) over the 8 neighbours in the slice (``w`` = 1 along the axes,
1/√2 on the diagonals), ``v_i`` each ray's noise variance (Poisson ``exp(b)/I0`` when
the incident photons are known, ``photons=``; the estimated σ² otherwise), solved by ordered-subset
separable quadratic surrogates with Nesterov momentum (OS-SQS, Erdogan & Fessler 1999; Kim, Ramani
& Fessler 2015) on Joseph's projector pair (:mod:`reconstruction.engine.joseph`: line integrals, as
ASTRA's ``linear`` projector computes them; the pixel-driven pair fits only its own projections and
gave 3 dB less on noise-free data) (adaptive momentum restart; at least 12 tilts per subset),
started from the wedge-corrected WBP, stopped per slice once a pass changes it by less than 0.2%.

Data-driven defaults: σ is estimated from the projections themselves (median absolute deviation of
the second difference across each image, where a smooth projection leaves almost nothing but
noise; at least 0.9% of the signal, the projector's model error), ``c`` is the object's contrast (99th percentile of the starting WBP), ``δ = c / 100`` and
``λ = 600 · strength / c²`` (scale invariant; the constants measured on cell phantoms). ``strength`` is the one knob a user may move: larger gives
smoother volumes with cleaner flat regions, smaller keeps finer detail and more noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.noise import estimate_noise_sigma
from reconstruction.engine.operators import JosephProjector, LinearOperator
from reconstruction.engine.slabs import iter_slabs, slab_size_for
from reconstruction.engine.validate import check_series
from reconstruction.engine.wbp import circle_mask, wbp

__all__ = [
    "MBIR_DEFAULTS",
    "PRIOR_CURVATURE",
    "MBIROptions",
    "estimate_noise_sigma",
    "mbir",
    "poisson_weights",
    "prior_from_data",
    "regularisation_weight",
    "solve_os_sqs",
    "tilt_subsets",
]

#: Defaults chosen by measurement (docs/engine.md): iterations, strength, TV balance.
MBIR_DEFAULTS = {"iterations": 30, "strength": 1.0, "subsets": 8, "delta": 0.01}


@dataclass(frozen=True)
class MBIROptions:
    """Settings of :func:`mbir`; ``None`` takes :data:`MBIR_DEFAULTS` or the data-driven choice.

    Attributes
    ----------
    iterations : int, optional
        Passes over all tilts. Default: until a pass changes a slice by less than 0.2% (at most
        30); a number given runs exactly that many.
    strength : float, optional
        Multiplies the data-driven regularisation weight (default 1; larger = smoother).
    weight : float, optional
        The prior weight λ itself, bypassing the data-driven choice.
    photons : float, optional
        Incident photons per pixel (from the flats): rays weighted by their Poisson variance.
    subsets : int, optional
        Ordered subsets of interleaved tilts (default 8, at least 12 tilts each).
    """

    iterations: int | None = None
    strength: float | None = None
    weight: float | None = None
    photons: float | None = None
    subsets: int | None = None


#: λ = strength · _SCALE / c² (measured best on a cell phantom at ±65°, 10⁴ and 2·10³ photons,
#: with the 8-neighbour prior: 1000 suited the 4 neighbours alone).
_SCALE = 600.0
#: Noise floor relative to the data's 99th percentile: projector and data never agree better than
#: this (discretisation and model mismatch). Noise-free data reads about 0.0013 and 10⁴ photons 0.01
#: on the peers' cell slice. Chosen when mbir ran on the pixel-driven pair, whose mismatch with
#: ASTRA's projections made σ ≈ 0.009 the best noise-free weight. On Joseph's pair lower floors gave
#: more on noise-free phantoms (0.004: +1.0 dB on strip integrals of a 4× finer slice, +3.7 dB on
#: ASTRA's own projections, nothing at 10⁴ photons), but real series carry model errors phantoms do
#: not (alignment, the zone plate's blur, the detector), so the floor stays until real data measure it.
_MODEL_ERROR = 0.009


def regularisation_weight(contrast: float, strength: float = 1.0) -> float:
    """Prior weight ``λ = strength · 600 / contrast²`` (the data term is in units of its noise variance)."""
    if contrast <= 0:
        return 0.0
    return float(strength * _SCALE / contrast**2)


#: Default stop: a slice is done once a pass changes it by less than this share of its norm
#: (measured on the peers' cell slice: 2·10⁻³ after 18–22 passes from clean to 2·10³ photons, where
#: PSNR is within 0.1 dB of 40 passes; :data:`MBIR_DEFAULTS` ``iterations`` is the most passes).
_TOLERANCE = 2e-3
#: Weight of the diagonal neighbours' differences in the prior (1/√2, their distance): with the
#: 4 neighbours alone, edges at 45° cost less than along the axes and flat regions keep a
#: diagonal texture; measured on the peers' cell slice, +0.8 dB / +0.02 SSIM noise-free, −0.1 to +0.05 dB noisy.
_DIAGONAL = float(np.sqrt(0.5))


def _huber_grad(x: NDArray[np.float32], delta: float, support: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
    """Gradient of Σ w δ² h(Δ/δ) over the 8-neighbour differences in the (z, x) plane (w = 1, or
    :data:`_DIAGONAL` for the diagonals) of ``x`` shaped ``(z, x, slices)``.

    With ``support`` (a ``(z, x)`` mask) only pairs of voxels both inside it count: the voxels
    outside are not unknowns (e.g. the disc of :class:`~reconstruction.engine.focus.FocalSeriesOperator`),
    and a difference to their zeros would pull the rim of the support down.
    """

    def pairs(d: NDArray[np.float32], a: tuple, b: tuple) -> NDArray[np.float32]:
        if support is not None:
            d *= (support[a] & support[b])[..., None]
        return d

    g = np.zeros_like(x)
    d = pairs(np.clip(x[1:] - x[:-1], -delta, delta), np.s_[1:], np.s_[:-1])
    g[1:] += d
    g[:-1] -= d
    d = pairs(np.clip(x[:, 1:] - x[:, :-1], -delta, delta), np.s_[:, 1:], np.s_[:, :-1])
    g[:, 1:] += d
    g[:, :-1] -= d
    if _DIAGONAL:  # a module constant: 0 gives the 4-neighbour prior
        wd = np.float32(_DIAGONAL)
        d = pairs(wd * np.clip(x[1:, 1:] - x[:-1, :-1], -delta, delta), np.s_[1:, 1:], np.s_[:-1, :-1])
        g[1:, 1:] += d
        g[:-1, :-1] -= d
        d = pairs(wd * np.clip(x[1:, :-1] - x[:-1, 1:], -delta, delta), np.s_[1:, :-1], np.s_[:-1, 1:])
        g[1:, :-1] += d
        g[:-1, 1:] -= d
    return g


#: Curvature of the prior's majoriser per unit λ: every voxel has at most 8 axis and 8 diagonal
#: half-pairs (Huber's second derivative is at most 1), so ``λ · 8 (1 + w_diag)`` bounds it.
PRIOR_CURVATURE = 8.0 + 8.0 * _DIAGONAL


def tilt_subsets(n: int, k: int) -> list[NDArray[np.intp]]:
    """``k`` interleaved subsets of ``n`` tilts (at most ``n``, at least one)."""
    k = max(1, min(int(k), n))
    return [np.arange(i, n, k) for i in range(k)]


def poisson_weights(absorbance: NDArray[np.float32], photons: float) -> NDArray[np.float32]:
    """Inverse Poisson variance of each ray's absorbance, ``photons · exp(−b)``, at least one count."""
    w = (np.float32(photons) * np.exp(-np.clip(absorbance, -20, 20))).astype(np.float32)
    return np.maximum(w, 1.0)


def _per_slice_dot(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float64]:
    """Σ a·b over every axis but the last (the slices), in float64."""
    axes = "abcdefgh"[: a.ndim - 1] + "s"
    return np.einsum(f"{axes},{axes}->s", a, b, dtype=np.float64)


def solve_os_sqs(
    op: LinearOperator,
    groups: Sequence[NDArray[np.intp]],
    data: Sequence[NDArray[np.float32]],
    weights: Sequence[NDArray[np.float32]],
    x: NDArray[np.float32],
    *,
    prior_weight: float,
    prior_gradient: Callable[[NDArray[np.float32]], NDArray[np.float32]],
    prior_curvature: float = PRIOR_CURVATURE,
    iterations: int,
    tolerance: float = 0.0,
    ones_projections: Sequence[NDArray[np.float32]] | None = None,
    support: NDArray[np.float32] | None = None,
    callback: Callable[[int], None] | None = None,
    progress: int = 1,
) -> NDArray[np.float32]:
    """OS-SQS with Nesterov momentum over a linear operator: the engine's one model-based loop.

    Minimises ``½ Σ_i w_i (A x − b)_i² + λ R(x)`` over ``x ≥ 0``. For each subset ``S`` of
    tilts, with ``D_S = n_subsets · A_Sᵀ W_S A_S 1 + λ · prior_curvature`` the separable quadratic
    surrogate's curvature (a majoriser for a non-negative ``A``)::

        x⁺ = max(0, z − D_S⁻¹ (n_subsets · A_Sᵀ W_S (A_S z − b_S) + λ ∇R(z)))
        z  = x⁺ + (t − 1)/t⁺ · (x⁺ − x)

    with the momentum dropped for a slice whose step points uphill (adaptive restart,
    O'Donoghue & Candès), and a slice frozen once a pass changes it by less than ``tolerance``
    of its norm (0: run every pass). Everything per slice is computed per slice, so slabs of a
    slice-independent operator give the numbers of one piece.

    Parameters
    ----------
    op : LinearOperator
        The forward model (:mod:`reconstruction.engine.operators`); its unknowns have the
        slices on the last axis (``(thickness, columns, slices)`` for the parallel-beam pair,
        ``(disc voxels, rows)`` for the depth-of-focus model).
    groups : sequence of index arrays
        The ordered subsets of tilts.
    data, weights : sequences of ndarray
        ``b_S`` and ``W_S`` (inverse noise variances, broadcastable against ``b_S``) per subset.
    x : ndarray
        Starting unknowns (clipped at zero in place).
    prior_weight : float
        ``λ`` (0: weighted least squares alone).
    prior_gradient : callable
        ``∇R(z)`` in the unknowns' layout.
    prior_curvature : float
        Upper bound of ``R``'s curvature per voxel (default: the 8-neighbour Huber prior's).
    iterations : int
        Most passes over all subsets.
    tolerance : float
        Per-slice stopping threshold (relative change of a pass).
    ones_projections : sequence of ndarray, optional
        ``A_S 1`` per subset, when the caller already has them (computed otherwise).
    support : ndarray, optional
        Multiplies the step (zero where the voxels are not unknowns).
    callback : callable, optional
        Called with ``progress`` after every pass, and with the remaining passes' share once all
        slices have stopped (in all ``progress · iterations``).

    Returns
    -------
    ndarray
        The solution, in the layout of ``x``.
    """
    lam = float(prior_weight)
    n_sub = len(groups)
    if ones_projections is None:
        ones_v = op.ones_volume()
        ones_projections = [op.forward(ones_v, g) for g in groups]
    # SQS denominators: n_sub · A_Sᵀ W_S A_S 1 + prior curvature (8 λ, 8 w λ for the diagonals)
    dens = []
    for g, row, wg in zip(groups, ones_projections, weights, strict=True):
        d = op.adjoint(wg * row, g)
        d *= n_sub
        d += np.float32(prior_curvature * lam)
        inv = np.where(d > 0, 1.0 / np.maximum(d, 1e-30), 0.0).astype(np.float32)
        if support is not None:
            inv *= support
        dens.append(inv)
    np.maximum(x, 0, out=x)
    n_s = x.shape[-1]
    z = x.copy()
    t = np.ones(n_s)
    active = np.ones(n_s, bool)
    passes = 0
    while passes < iterations:
        x_pass = x
        for g, bg, wg, inv in zip(groups, data, weights, dens, strict=True):
            r = op.forward(z, g)
            np.subtract(r, bg, out=r)
            r *= wg
            grad = op.adjoint(r, g)
            grad *= n_sub
            if lam > 0:
                grad += np.float32(lam) * prior_gradient(z)
            grad *= inv
            x_new = np.maximum(z - grad, 0.0)
            if not active.all():  # converged slices keep their values (slabs = one piece)
                x_new[..., ~active] = x[..., ~active]
            # adaptive restart (O'Donoghue & Candès): drop the momentum when it points uphill
            # (per slice, so slabs give the same numbers as one piece)
            uphill = _per_slice_dot(z - x_new, x_new - x) > 0
            t = np.where(uphill, 1.0, t)
            t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
            z = x_new + ((t - 1) / t_new).astype(np.float32) * (x_new - x)
            x, t = x_new, t_new
        passes += 1
        if callback is not None:
            callback(progress)
        if tolerance > 0:
            change = np.sqrt(_per_slice_dot(x - x_pass, x - x_pass))
            size = np.sqrt(_per_slice_dot(x, x))
            active &= change > tolerance * size
            if not active.any():
                break
    if callback is not None and passes < iterations:
        callback((iterations - passes) * progress)  # the passes converged slices did not need
    return x


def regularised_options(
    defaults: dict,
    *,
    iterations: int | None,
    strength: float | None,
    weight: float | None,
    photons: float | None,
    subsets: int | None,
    least_iterations: int = 1,
) -> tuple[int, float, float, int]:
    """The checked settings of a regularised method (mbir, psf-mbir): ``(passes, stop tolerance,
    strength, subsets)``, each ``None`` taken from ``defaults``. An explicit pass count runs exactly
    (tolerance 0); the default stops each slice once a pass barely moves it."""
    n_iter = defaults["iterations"] if iterations is None else iterations
    if int(n_iter) != n_iter or n_iter < least_iterations:
        kind = "non-negative" if least_iterations == 0 else "positive"
        raise ValueError(f"iterations must be a {kind} integer, got {iterations!r}")
    tol = _TOLERANCE if iterations is None else 0.0
    k = defaults["strength"] if strength is None else float(strength)
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"strength must be a non-negative number, got {strength!r}")
    if weight is not None and not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"weight must be a non-negative number, got {weight!r}")
    if photons is not None and not (np.isfinite(photons) and photons > 0):
        raise ValueError(f"photons must be a positive number, got {photons!r}")
    n_sub = defaults["subsets"] if subsets is None else int(subsets)
    if n_sub < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets!r}")
    return int(n_iter), tol, k, n_sub


def prior_from_data(
    projections: NDArray[np.float32], start: NDArray[np.float32], *, strength: float, weight: float | None
) -> tuple[float, float, float]:
    """The data-driven settings of a regularised method: ``(σ, λ, δ)``.

    σ is the projections' noise (at least the model-error floor, about 0.9% of the signal: projector
    and data never agree better), the contrast ``c`` the 99th percentile of the starting volume
    ``(rows, thickness, columns)``, ``λ = regularisation_weight(c, strength)`` unless ``weight`` is
    given, and ``δ = c / 100``.
    """
    n_t, n_r = projections.shape[0], start.shape[0]
    top = float(np.percentile(np.abs(projections[:: max(1, n_t // 32)]), 99))
    sigma = max(estimate_noise_sigma(projections), _MODEL_ERROR * top, 1e-12)
    contrast = float(np.percentile(np.abs(start[:: max(1, n_r // 16)]), 99))
    lam = regularisation_weight(contrast, strength) if weight is None else float(weight)
    delta = float(np.float32(MBIR_DEFAULTS["delta"] * max(contrast, 1e-12)))
    return sigma, lam, delta


def mbir(
    projections: ArrayLike,
    angles: ArrayLike,
    *,
    iterations: int | None = None,
    strength: float | None = None,
    weight: float | None = None,
    photons: float | None = None,
    subsets: int | None = None,
    thickness: int | None = None,
    slab_size: int | None = None,
    axis_offset: float = 0.0,
    circle: bool = False,
    backend: str = "auto",
    out: NDArray[np.float32] | None = None,
    callback: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """Regularised (Huber prior, non-negative, noise-weighted) reconstruction of a tilt series.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
        Absorbance, tilt axis along the rows.
    angles : array_like, shape (tilts,)
        Tilt angles in degrees, strictly monotonic.
    iterations : int, optional
        Passes over all tilts, each one forward and one back projection. Default: each slice
        stops once a pass changes it by less than 0.2% of its norm (at most 30 passes); a number
        given runs exactly that many.
    strength : float, optional
        Multiplies the data-driven regularisation weight (default 1; larger = smoother).
    weight : float, optional
        The prior weight λ itself, bypassing the data-driven choice.
    photons : float, optional
        Incident photons per pixel (from the flats): rays weighted by their Poisson variance.
    subsets : int, optional
        Ordered subsets of interleaved tilts (default 8, fewer when a subset would hold under 12
        tilts).
    thickness, slab_size, axis_offset, circle, backend, out, callback
        As in :func:`reconstruction.engine.iterative.sirt` (progress in slice-iterations, total
        ``rows * (iterations + 1)``: the starting WBP counts one).

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns)
    """
    n_iter, tol, k, n_sub = regularised_options(
        MBIR_DEFAULTS, iterations=iterations, strength=strength, weight=weight, photons=photons, subsets=subsets,
        least_iterations=0,
    )  # fmt: skip
    p, a = check_series(projections, angles)
    nt, nr, nc = p.shape
    nz = nc if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be positive, got {thickness}")
    if out is None:
        out = np.empty((nr, nz, nc), dtype=np.float32)
    # starting point (and the object's contrast): the wedge-corrected WBP
    wbp(p, a, thickness=nz, slab_size=slab_size, axis_offset=axis_offset, backend=backend, out=out)
    if callback is not None:
        callback(nr)
    sigma, lam, delta = prior_from_data(p, out, strength=k, weight=weight)

    # at least ~12 tilts per subset: smaller subsets make the accelerated iteration unstable
    groups = tilt_subsets(nt, min(n_sub, max(1, nt // 12)))
    mask = circle_mask(nz, nc) if circle else None
    # Joseph's pair: line integrals, as the data are (the pixel-driven pair agrees only with its own
    # projections), and exact transposes, which the momentum needs
    op = JosephProjector(a, nz, nc, axis_offset=axis_offset, mask=mask, backend=backend)
    ones_v = op.ones_volume()
    rows = [op.forward(ones_v, g) for g in groups]  # slices are independent: one A_S 1 serves every slab
    step = slab_size_for(nt, nz, nc, nr, slab_size, arrays=6)
    for r0, r1 in iter_slabs(nr, step):
        b = np.ascontiguousarray(p[:, r0:r1, :].transpose(0, 2, 1), dtype=np.float32)
        if photons is not None:
            w = poisson_weights(b, photons)
        else:
            w = np.full((1, 1, r1 - r0), 1.0 / sigma**2, np.float32)
        bs = [np.ascontiguousarray(b[g]) for g in groups]
        ws = [np.ascontiguousarray(np.broadcast_to(w, b.shape)[g]) for g in groups]
        del b
        x = solve_os_sqs(
            op,
            groups,
            bs,
            ws,
            np.ascontiguousarray(out[r0:r1].transpose(1, 2, 0)),
            prior_weight=lam,
            prior_gradient=lambda v: _huber_grad(v, delta),
            iterations=n_iter,
            tolerance=tol,
            ones_projections=rows,
            support=op.mask,
            callback=callback,
            progress=r1 - r0,
        )
        out[r0:r1] = x.transpose(2, 0, 1)
    return out
