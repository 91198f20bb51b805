"""The engine's rotation centre is the geometric centre ``(n − 1) / 2``, as ASTRA, svmbir and mbirjax.

The data here are exact line integrals of discs at known positions, computed analytically in that
convention (no ASTRA needed): detector centre ``(columns − 1) / 2`` (plus ``axis_offset``), slice
centre ``((thickness − 1) / 2, (columns − 1) / 2)``. Sizes are even, where ``n // 2`` (scikit-image's
convention, the engine's before) would put everything half a pixel off.
"""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.engine import align, forward_project, reconstruct
from reconstruction.engine.phantoms import LABELS, cell_phantom, shepp_logan_3d
from reconstruction.engine.projectors import centre
from reconstruction.engine.simulate import project
from reconstruction.engine.wbp import circle_mask

FULL = np.arange(0.0, 180.0, 1.0)
WEDGE = np.arange(-65.0, 66.0, 1.0)


def disc_series(angles, columns, discs, *, rows=2, axis_offset=0.0, sub=16):
    """Exact line integrals of discs ``(x0, z0, radius, value)`` (offsets in pixels from the slice's
    geometric centre), averaged over each detector pixel (``sub`` samples), ``(tilts, rows, columns)``."""
    th = np.deg2rad(np.asarray(angles, float))
    u = np.arange(columns) - centre(columns) - axis_offset
    u = (u[:, None] + (np.arange(sub) + 0.5) / sub - 0.5).ravel()  # sub-pixel samples
    out = np.zeros((th.size, u.size))
    for x0, z0, r, value in discs:
        s0 = np.cos(th) * x0 - np.sin(th) * z0  # the disc centre's detector offset
        out += value * 2 * np.sqrt(np.maximum(r**2 - (u[None, :] - s0[:, None]) ** 2, 0))
    out = out.reshape(th.size, columns, sub).mean(axis=2)
    return np.repeat(out[:, None, :], rows, axis=1).astype(np.float32)


def centroid(image):
    """Centre of mass (z, x) of the voxels above half the maximum (weighted by value)."""
    w = np.where(image > 0.5 * image.max(), image, 0.0)
    zz, xx = np.indices(image.shape)
    return float((w * zz).sum() / w.sum()), float((w * xx).sum() / w.sum())


@pytest.mark.parametrize("thickness", [64, 48])
@pytest.mark.parametrize(
    "method,angles,options",
    [
        ("wbp", FULL, {}),
        ("sirt", FULL, {}),
        # WBP's missing-wedge correction smooths the residual with an even box (scipy's window of 4 is
        # centred half a fine pixel left of its index) and moves this centroid 0.1-0.15 px in x, in either
        # centre convention; the back projection itself is tested here
        ("wbp", WEDGE, {"correct_wedge": False}),
        ("sirt", WEDGE, {}),
    ],
    ids=["wbp-180", "sirt-180", "wbp-wedge", "sirt-wedge"],
)
def test_disc_is_reconstructed_at_its_geometric_position(method, angles, options, thickness):
    n, x0, z0 = 64, 7.3, -4.6
    series = disc_series(angles, n, [(x0, z0, 6.0, 1.0)])
    rec = reconstruct(series, angles, method, thickness=thickness, **options)[0]
    z, x = centroid(rec)
    assert x == pytest.approx(centre(n) + x0, abs=0.1)
    assert z == pytest.approx(centre(thickness) + z0, abs=0.1)


def test_axis_offset_is_relative_to_the_detector_centre():
    n, d = 64, 2.5
    series = disc_series(FULL, n, [(-5.2, 3.1, 6.0, 1.0)], axis_offset=d)
    rec = reconstruct(series, FULL, "wbp", axis_offset=d)[0]
    z, x = centroid(rec)
    assert (z, x) == pytest.approx((centre(n) + 3.1, centre(n) - 5.2), abs=0.1)
    # and align measures it from there
    discs = [(-5.2, 3.1, 6.0, 1.0), (8.0, -6.0, 4.0, 0.5)]
    found = align(disc_series(WEDGE, n, discs, rows=16, axis_offset=d), WEDGE)
    assert found.axis_offset == pytest.approx(d, abs=0.05)


def test_projectors_and_simulator_agree_with_the_analytic_projections():
    n = 64
    discs = [(7.3, -4.6, 6.0, 1.0), (-10.0, 5.0, 8.0, 0.5)]
    ref = disc_series(WEDGE, n, discs, rows=1)
    zz, xx = np.indices((n, n)) - centre(n)
    # the discs on the pixel grid, antialiased (area fraction from 8x8 sub-samples per pixel)
    img = np.zeros((n, n))
    s = (np.arange(8) + 0.5) / 8 - 0.5
    for x0, z0, r, value in discs:
        for dz in s:
            for dx in s:
                img += value * ((zz + dz - z0) ** 2 + (xx + dx - x0) ** 2 <= r**2) / 64
    vol = img[None].astype(np.float32)
    # the same discs in the n // 2 convention (scikit-image's): pixel i at offset i - n/2, i.e. every disc
    # half a pixel nearer the origin, and the detector centre at n/2 (axis_offset 0.5)
    old = disc_series(WEDGE, n, [(x0 - 0.5, z0 - 0.5, r, v) for x0, z0, r, v in discs], rows=1, axis_offset=0.5)
    for proj in (forward_project(vol, WEDGE), project(vol, WEDGE)):
        err = np.linalg.norm(proj - ref) / np.linalg.norm(ref)  # interpolation error of the discretisations
        assert err < 0.03
        assert np.linalg.norm(proj - old) / np.linalg.norm(ref) > 3 * err


@pytest.mark.parametrize("n", [64, 65])
def test_circle_mask_and_phantoms_are_symmetric_about_the_geometric_centre(n):
    m = circle_mask(n, n)
    np.testing.assert_array_equal(m, m[::-1, ::-1])
    np.testing.assert_array_equal(m, m.T)
    assert m[:, 0].any() and m[:, n - 1].any() and not m[0, 0]
    sl = shepp_logan_3d((n, n, n))
    np.testing.assert_array_equal(sl[0], sl[0, ::-1])  # the phantom's outline, left-right symmetric
    ph = cell_phantom((8, n, n), 0.05, seed=1)
    support = ph.labels != LABELS["background"]
    np.testing.assert_array_equal(support, support[::-1, ::-1, ::-1])
    # a centred disc projects symmetrically about the detector centre
    p = project(ph.volume * (ph.labels == LABELS["ice"]), [0.0, 90.0])
    np.testing.assert_allclose(p, p[..., ::-1], atol=1e-6)


@pytest.mark.parametrize("n", [96, 99])
def test_wbp_flat_disc_is_flat_for_any_detector_width(n):
    # 99 columns pad to an FFT of 250 (not a multiple of 4): the ramp filter's taps must still be right
    series = disc_series(FULL, n, [(0.0, 0.0, n / 2 - 4, 1.0)])
    rec = reconstruct(series, FULL, "wbp")[0]
    zz, xx = np.indices(rec.shape) - centre(n)
    inner = zz**2 + xx**2 <= (n / 2 - 10) ** 2
    assert rec[inner].mean() == pytest.approx(1.0, abs=0.01)
    assert rec[inner].std() < 0.02
