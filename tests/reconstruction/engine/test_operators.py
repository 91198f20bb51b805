"""One SIRT over linear operators, one angle weighting, one angle check, per-method options."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.engine import (
    METHOD_INFO,
    METHOD_OPTIONS,
    METHODS,
    IterativeOptions,
    MBIROptions,
    WBPOptions,
    forward_project,
    method_options,
    reconstruct,
)
from reconstruction.engine.iterative import solve_cgls, solve_sirt
from reconstruction.engine.operators import LinearOperator, ParallelBeamProjector, RayDrivenProjector
from reconstruction.engine.phantoms import shepp_logan_2d
from reconstruction.engine.validate import check_angles
from reconstruction.engine.wbp import angle_weights, circle_mask

WEDGE = np.arange(-60.0, 61.0, 3.0)


class DenseOperator(LinearOperator):
    """A forward model that is just a matrix: rows grouped by tilt (4 rays per tilt)."""

    def __init__(self, matrix):
        self.m = matrix.astype(np.float32)
        self.n_tilts = matrix.shape[0] // 4

    def _rows(self, tilts):
        tilts = np.arange(self.n_tilts) if tilts is None else tilts
        return (4 * np.asarray(tilts)[:, None] + np.arange(4)).ravel()

    def forward(self, x, tilts=None):
        return (self.m[self._rows(tilts)] @ x).reshape(-1, 4, x.shape[-1])

    def adjoint(self, y, tilts=None):
        return self.m[self._rows(tilts)].T @ y.reshape(-1, y.shape[-1])

    def ones_volume(self):
        return np.ones((self.m.shape[1], 1), np.float32)

    def ones_data(self, tilts):
        return np.ones((len(tilts), 4, 1), np.float32)


def test_a_new_forward_model_is_one_class_and_the_same_sirt_solves_it():
    rng = np.random.default_rng(0)
    matrix = rng.random((48, 10)) + 0.1  # 12 "tilts" of 4 rays, 10 unknowns, consistent data
    truth = rng.random((10, 2)).astype(np.float32)
    op = DenseOperator(matrix)
    data = op.forward(truth)
    x = np.zeros_like(truth)
    solve_sirt([op] * 300, data, x, subsets=3)
    np.testing.assert_allclose(x, truth, atol=2e-3)
    # CGLS over the same operator: least squares, per column (slice) step lengths
    x = np.zeros_like(truth)
    solve_cgls(op, data.copy(), x, iterations=30)
    np.testing.assert_allclose(x, truth, atol=1e-3)


@pytest.mark.parametrize("mask", [None, "circle"])
def test_parallel_beam_projector_pair_is_adjoint(mask):
    rng = np.random.default_rng(1)
    support = circle_mask(20, 24) if mask else None
    op = ParallelBeamProjector(WEDGE, 20, 24, axis_offset=0.3, mask=support)
    x = rng.random((20, 24, 3)).astype(np.float32)
    if support is not None:
        x *= support[..., None]
    y = rng.random((WEDGE.size, 24, 3)).astype(np.float32)
    t = np.arange(0, WEDGE.size, 2)
    lhs = np.sum(op.forward(x, t).astype(np.float64) * y[t])
    rhs = np.sum(op.adjoint(y[t], t).astype(np.float64) * x)
    assert lhs == pytest.approx(rhs, rel=1e-5)


def test_fused_update_equals_the_plain_one():
    rng = np.random.default_rng(2)
    op = ParallelBeamProjector(WEDGE, 16, 16)
    y = rng.standard_normal((WEDGE.size, 16, 4)).astype(np.float32)
    scale = rng.random((16, 16, 1)).astype(np.float32)
    x0 = rng.random((16, 16, 4)).astype(np.float32)
    fused, plain = x0.copy(), x0.copy()
    op.back_update(y, np.arange(WEDGE.size), fused, scale, True)
    LinearOperator.back_update(op, y, np.arange(WEDGE.size), plain, scale, True)
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-5)
    assert fused.min() >= 0 and np.any(fused == 0)


def test_ray_driven_model_differs_from_the_pixel_driven_one_but_shares_its_back_projection():
    rng = np.random.default_rng(3)
    x = rng.random((16, 16, 1)).astype(np.float32)
    pix, ray = ParallelBeamProjector(WEDGE, 16, 16), RayDrivenProjector(WEDGE, 16, 16)
    assert not np.allclose(pix.forward(x), ray.forward(x))
    y = rng.random((WEDGE.size, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(pix.adjoint(y), ray.adjoint(y))


def test_one_angle_weighting_for_wbp_and_the_focus_stack():
    half = angle_weights(WEDGE)
    real = angle_weights(WEDGE, half_turn=False)
    assert half.sum() == pytest.approx(np.pi, rel=1e-6)
    assert real.sum() == pytest.approx(np.deg2rad(123.0), rel=1e-6)  # ±60° at 3°: 41 tilts × 3°
    np.testing.assert_allclose(half / real, np.pi / np.deg2rad(123.0), rtol=1e-6)
    full = np.arange(0.0, 360.0, 2.0)  # no wedge: the two are one and the same, opposite views folded
    np.testing.assert_array_equal(angle_weights(full), angle_weights(full, half_turn=False))
    assert angle_weights(full).sum() == pytest.approx(np.pi, rel=1e-6)


def test_one_angle_check_with_projection_at_any_order():
    with pytest.raises(ValueError, match="not monotonic"):
        check_angles([0.0, 2.0, 1.0])
    np.testing.assert_array_equal(check_angles([0.0, 2.0, 1.0], monotonic=False), [0.0, 2.0, 1.0])
    sl = shepp_logan_2d((16, 16)).astype(np.float32)
    p = forward_project(sl, [30.0, -10.0, 0.0])
    np.testing.assert_allclose(p[1], forward_project(sl, [-10.0])[0])
    with pytest.raises(ValueError, match="NaN"):
        forward_project(sl, [0.0, np.nan])


@pytest.fixture(scope="module")
def series():
    sl = shepp_logan_2d((32, 32)).astype(np.float32)
    return np.repeat(forward_project(sl, WEDGE)[:, None], 2, axis=1), WEDGE


def test_reconstruct_takes_options_or_keywords_alike(series):
    p, a = series
    np.testing.assert_array_equal(
        reconstruct(p, a, "sirt", options=IterativeOptions(iterations=4, subsets=2)),
        reconstruct(p, a, "sirt", 4, subsets=2),
    )
    np.testing.assert_array_equal(
        reconstruct(p, a, "wbp", options=WBPOptions(filter_name="hann")), reconstruct(p, a, filter_name="hann")
    )
    # keywords apply over the options; None means the default
    base = MBIROptions(iterations=3, strength=4.0)
    np.testing.assert_array_equal(
        reconstruct(p, a, "mbir", options=base, strength=0.5, photons=None),
        reconstruct(p, a, "mbir", 3, strength=0.5),
    )
    assert method_options("sirt", IterativeOptions(subsets=2), 7) == IterativeOptions(iterations=7, subsets=2)


def test_options_of_another_method_are_refused_naming_who_takes_them(series):
    p, a = series
    with pytest.raises(ValueError, match="must be IterativeOptions, got WBPOptions"):
        reconstruct(p, a, "sirt", options=WBPOptions())
    with pytest.raises(ValueError, match="subsets applies to sirt, mbir, psf-sirt, psf-mbir only, not cgls"):
        reconstruct(p, a, "cgls", subsets=3)
    with pytest.raises(ValueError, match="iterations applies to .* not wbp"):
        reconstruct(p, a, "wbp", 5)
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        reconstruct(p, a, "sirt", colour="blue")


def test_every_method_has_its_options_and_its_sentence():
    assert set(METHOD_OPTIONS) == set(METHODS) == set(METHOD_INFO)
    for info in METHOD_INFO.values():
        assert info["label"] and info["help"].count(".") >= 1 and isinstance(info["absolute"], bool)


@pytest.mark.parametrize("kind", ["forward", "forward_ray", "back"])
def test_a_slice_alone_and_small_work_on_one_thread_give_the_numbers_of_the_parallel_stack(kind, monkeypatch):
    """One slice runs its own kernels and small work runs on the calling thread (issue 13): same numbers as
    the slice inside a stack projected by the parallel kernels."""
    from reconstruction.engine import projectors

    rng = np.random.default_rng(7)
    angles = np.deg2rad(np.arange(-60.0, 61.0, 2.0))
    cos, sin = np.cos(angles), np.sin(angles)
    n, slices = 96, 5  # 61 tilts × 96² × 5 slices: above SERIAL_WORK, so the stack goes parallel
    assert len(angles) * n * n * slices >= projectors.SERIAL_WORK
    if kind == "back":
        data = rng.random((len(angles), n, slices), dtype=np.float32)

        def run(d):
            return projectors.back_slab(np.ascontiguousarray(d), cos, sin, n, axis_offset=0.3)
    else:
        data = rng.random((n, n, slices), dtype=np.float32)
        function = projectors.forward_slab if kind == "forward" else projectors.forward_slab_ray

        def run(d):
            return function(np.ascontiguousarray(d), cos, sin, axis_offset=0.3)

    stack = run(data)
    for k in range(slices):
        np.testing.assert_allclose(run(data[..., k : k + 1])[..., 0], stack[..., k], rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(projectors, "SERIAL_WORK", 10**12)  # the same stack on the calling thread
    np.testing.assert_allclose(run(data), stack, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["forward", "forward_ray", "back"])
def test_eight_slice_lanes_give_the_numbers_of_one_slice_alone(kind):
    """The explicit 8-lane updates (issue 8) do each slice's arithmetic in the scalar loop's order: 13 slices
    (one block of 8 lanes, 5 in the scalar remainder) equal each slice projected alone, bit for bit, edges
    of the detector and of the volume included; an ``out`` that is not C-contiguous gets the same numbers."""
    from reconstruction.engine import projectors

    if not projectors.HAVE_NUMBA:
        pytest.skip("numba kernels only")
    rng = np.random.default_rng(11)
    cos, sin = projectors.geometry(np.arange(-65.0, 66.0, 5.0))
    nz, nx, slices = 40, 48, 13
    if kind == "back":
        data = rng.random((len(cos), nx + 6, slices), dtype=np.float32)  # a wider detector than the volume

        def run(d, out=None):
            return projectors.back_slab(np.ascontiguousarray(d), cos, sin, nz, columns=nx, axis_offset=3.3, out=out)
    else:
        data = rng.random((nz, nx, slices), dtype=np.float32)
        function = projectors.forward_slab if kind == "forward" else projectors.forward_slab_ray

        def run(d, out=None):
            return function(np.ascontiguousarray(d), cos, sin, axis_offset=0.3, out=out)

    stack = run(data)
    for k in range(slices):
        np.testing.assert_array_equal(run(data[..., k : k + 1])[..., 0], stack[..., k])
    base = rng.random(stack.shape[:2] + (2 * slices,), dtype=np.float32)
    strided, contiguous = base[..., ::2], np.ascontiguousarray(base[..., ::2])
    run(data, out=strided)
    run(data, out=contiguous)
    np.testing.assert_array_equal(strided, contiguous)


def test_fused_sirt_update_in_eight_slice_lanes_gives_the_numbers_of_one_slice_alone():
    """The fused back projection and update of SIRT (8-lane rows, issue 8), 13 slices against each alone."""
    from reconstruction.engine.operators import ParallelBeamProjector

    rng = np.random.default_rng(12)
    angles = np.arange(-65.0, 66.0, 5.0)
    nz, nx, slices = 40, 48, 13
    op = ParallelBeamProjector(angles, nz, nx, axis_offset=0.3)
    tilts = np.arange(1, len(angles), 2)
    resid = rng.standard_normal((len(tilts), nx, slices)).astype(np.float32)
    start = rng.random((nz, nx, slices), dtype=np.float32)
    scale = rng.random((nz, nx, 1), dtype=np.float32)
    x = start.copy()
    op.back_update(resid, tilts, x, scale, True)
    for k in range(slices):
        xk = np.ascontiguousarray(start[..., k : k + 1])
        op.back_update(np.ascontiguousarray(resid[..., k : k + 1]), tilts, xk, scale, True)
        np.testing.assert_array_equal(xk[..., 0], x[..., k])


@pytest.mark.parametrize("rows_per_band", [1, 3, 7])
def test_ray_projection_in_bands_of_rows_gives_the_numbers_of_one_pass(monkeypatch, rows_per_band):
    """The ray-driven projector takes a volume that does not fit the cache one band of rows at a time (issue 8):
    every ray still adds its samples in order along the ray, so the sinograms equal the single pass bit for bit,
    for tilts whose rays climb the rows (|θ| < 90°), descend them (beyond 90°) or run along them (±90°), with
    the tilt axis off centre and a last band shorter than the others."""
    from reconstruction.engine import projectors

    if not projectors.HAVE_NUMBA:
        pytest.skip("numba kernels only")
    rng = np.random.default_rng(13)
    nz, nx, slices = 37, 29, 11
    volume = rng.random((nz, nx, slices), dtype=np.float32)
    angles = np.concatenate([np.arange(-65.0, 66.0, 10.0), [-90.0, 90.0, 100.0, 135.0, 180.0, 225.0]])
    cos, sin = projectors.geometry(angles)
    one_pass = projectors.forward_slab_ray(volume, cos, sin, axis_offset=1.7)
    assert projectors.ray_band_rows(nx, slices) >= nz  # the default takes this small volume in one pass
    monkeypatch.setattr(projectors, "RAY_BAND_BYTES", rows_per_band * 4 * nx * slices)
    assert projectors.ray_band_rows(nx, slices) == rows_per_band
    banded = projectors.forward_slab_ray(volume, cos, sin, axis_offset=1.7)
    np.testing.assert_array_equal(banded, one_pass)
    assert np.count_nonzero(banded) > 0.5 * banded.size


@pytest.mark.parametrize("columns, slices", [(256, 32), (256, 64), (250, 13), (2048, 1)])
def test_a_ray_band_is_as_many_rows_as_fit_the_cache_budget(columns, slices):
    from reconstruction.engine.projectors import RAY_BAND_BYTES, ray_band_rows

    row = 4 * columns * slices  # one z row of float32 voxels
    rows = ray_band_rows(columns, slices)
    assert rows * row <= RAY_BAND_BYTES < (rows + 1) * row


def test_a_ray_band_is_one_row_when_a_row_alone_is_past_the_budget():
    from reconstruction.engine.projectors import ray_band_rows

    assert ray_band_rows(4096, 4096) == 1
