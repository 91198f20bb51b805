"""The regularised (model-based) method and the noise-aware defaults."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from reconstruction.engine import METHOD_INFO, METHODS, reconstruct, value_note
from reconstruction.engine import io as eio
from reconstruction.engine.noise import estimate_noise_sigma, sirt_iterations_for
from reconstruction.engine.phantoms import cell_phantom
from reconstruction.engine.simulate import add_noise, project

N = 64
PIXEL_UM = 0.04
WEDGE = np.arange(-65.0, 66.0, 1.3)


@pytest.fixture(scope="module")
def cell():
    ph = cell_phantom((16, N, N), PIXEL_UM, seed=3)
    truth = ph.volume[6:9] * PIXEL_UM  # per voxel length
    # the ideal projections of the simulator: scikit-image radon's discretisation (bilinear samples along
    # each ray) on the engine's grid. radon itself rotates about n // 2, half a pixel off the engine's (and
    # the phantom's) geometric centre (n - 1) / 2 for this even size.
    series = project(truth, WEDGE)
    return truth, series


def _scores(truth, rec):
    s = float(np.vdot(rec, truth) / np.vdot(rec, rec))
    r = truth.max()
    psnr = peak_signal_noise_ratio(truth, s * rec, data_range=r)
    ssim = np.mean([structural_similarity(t, s * x, data_range=r) for t, x in zip(truth, rec, strict=True)])
    return psnr, ssim


def test_mbir_is_listed_and_explained():
    assert "mbir" in METHODS
    assert all(METHOD_INFO[m]["help"].endswith(".") for m in METHODS)


@pytest.mark.parametrize("photons", [1e4, 2e3])
def test_mbir_beats_sirt_and_wbp_on_noisy_missing_wedge(cell, photons):
    truth, clean = cell
    noisy = add_noise(clean, photons=photons, seed=1)
    ours = _scores(truth, reconstruct(noisy, WEDGE, "mbir"))
    sirt = _scores(truth, reconstruct(noisy, WEDGE, "sirt"))
    wbp = _scores(truth, reconstruct(noisy, WEDGE, "wbp"))
    assert ours[0] >= sirt[0] + 2 and ours[1] >= sirt[1] + 0.1, (ours, sirt)
    assert ours[0] >= wbp[0] + 3 and ours[1] >= wbp[1] + 0.15, (ours, wbp)


def test_mbir_poisson_weights_do_not_hurt(cell):
    truth, clean = cell
    noisy = add_noise(clean, photons=2e3, seed=2)
    plain = _scores(truth, reconstruct(noisy, WEDGE, "mbir"))
    weighted = _scores(truth, reconstruct(noisy, WEDGE, "mbir", photons=2e3))
    assert weighted[0] >= plain[0] - 0.3, (weighted, plain)


def test_mbir_strength_smooths(cell):
    truth, clean = cell
    noisy = add_noise(clean, photons=1e4, seed=1)
    soft = reconstruct(noisy, WEDGE, "mbir", strength=0.1, iterations=8)
    hard = reconstruct(noisy, WEDGE, "mbir", strength=10, iterations=8)
    tv = [float(np.abs(np.diff(v, axis=2)).sum()) for v in (soft, hard)]
    assert tv[1] < 0.7 * tv[0]
    assert soft.min() >= 0 and hard.min() >= 0


def test_mbir_slabs_identical(cell):
    _, clean = cell
    noisy = add_noise(clean, photons=1e4, seed=1)
    whole = reconstruct(noisy, WEDGE, "mbir", iterations=4)
    slabs = reconstruct(noisy, WEDGE, "mbir", iterations=4, slab_size=1)
    # Equal up to float32 summation order (the vectorised kernels sum a slab's slices in another order than the
    # whole volume's: differences of ~5e-8 seen here, six orders below the values).
    np.testing.assert_allclose(whole, slabs, rtol=0, atol=1e-5 * float(np.abs(whole).max()))


def test_mbir_progress_and_bad_options(cell):
    _, clean = cell
    done = []
    reconstruct(clean, WEDGE, "mbir", iterations=3, callback=done.append)
    assert sum(done) == clean.shape[1] * 4
    with pytest.raises(ValueError, match="strength"):
        reconstruct(clean, WEDGE, "mbir", strength=-1)
    with pytest.raises(ValueError, match="photons"):
        reconstruct(clean, WEDGE, "mbir", photons=0)
    with pytest.raises(ValueError, match="mbir only"):
        reconstruct(clean, WEDGE, "wbp", strength=2)


def test_noise_estimate_exact_on_pure_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.03, (20, 40, 50)).astype(np.float32)
    assert estimate_noise_sigma(noise) == pytest.approx(0.03, rel=0.05)
    smooth = np.tile(np.sin(np.linspace(0, 3, 50)), (20, 40, 1)).astype(np.float32)
    assert estimate_noise_sigma(smooth) < 1e-3


def test_sirt_iterations_follow_the_noise(cell):
    _, clean = cell
    assert sirt_iterations_for(clean) >= 45
    assert sirt_iterations_for(add_noise(clean, photons=1e4, seed=1)) < 40
    done = []
    noisy = add_noise(clean, photons=2e3, seed=1)
    reconstruct(noisy, WEDGE, "sirt", callback=done.append)
    assert sum(done) == noisy.shape[1] * sirt_iterations_for(noisy) < noisy.shape[1] * 50


def test_value_note_says_when_values_are_not_absolute():
    assert value_note("mbir", WEDGE)["absolute"]
    assert value_note("wbp", WEDGE)["absolute"]
    assert not value_note("wbp", WEDGE, correct_wedge=False)["absolute"]
    assert value_note("wbp", np.arange(0.0, 180.0), correct_wedge=False)["absolute"]


def test_cli_runs_mbir_with_only_data_and_angles(tmp_path, cell):
    from reconstruction.engine.cli import main

    truth, clean = cell
    eio.write_mrc(tmp_path / "s.mrc", clean, PIXEL_UM)
    eio.write_tlt(tmp_path / "s.tlt", WEDGE)
    out = tmp_path / "v.mrc"
    args = ["reconstruct", str(tmp_path / "s.mrc"), "--method", "mbir", "--iterations", "3", "-q", "-o", str(out)]
    assert main(args) == 0
    rec, px = eio.read_mrc(out)
    assert rec.shape == truth.shape and px == pytest.approx(PIXEL_UM)
    # the angles as the command line reads them back from the .tlt: WEDGE's -1.4e-13 is written as -0,
    # which changes float32 rounding in the ray-driven residual that mbir's WBP start corrects its wedge
    # with (up to ~1e-3 relative after the correction's CGLS), so compare on the same angles
    angles = eio.read_tlt(tmp_path / "s.tlt")
    np.testing.assert_allclose(rec, reconstruct(clean, angles, "mbir", iterations=3), rtol=1e-5, atol=1e-6)


def test_mbir_gives_its_pinned_numbers(cell):
    """mbir's default stop, momentum and restart, per-slice sums and a 4x4 grid of one slice, pinned so that
    a change of the solver or the projectors that moves them is seen (bit-identical on the machine that
    pinned them; the tolerance allows other CPUs' float32 summation order). First pinned from the code
    before ``solve_os_sqs`` was extracted (issue 13, psf-mbir), which gave the same numbers; re-pinned when
    the engine's rotation centre moved from ``n // 2`` to the geometric centre ``(n - 1) / 2`` (projectors,
    phantom and the simulated data of ``cell`` all moved half a pixel), the solver unchanged; and again when
    mbir's forward model became Joseph's pair instead of the pixel-driven one (the solver unchanged)."""
    _, clean = cell
    done = []
    rec = reconstruct(add_noise(clean, photons=1e4, seed=1), WEDGE, "mbir", callback=done.append)
    sums = [30.6556435, 31.5359154, 31.834898]
    grid = [
        [0.000000000e00, 6.928638089e-03, 5.625594407e-03, 1.674768646e-05],
        [1.176861301e-02, 1.181535050e-02, 1.653394289e-02, 1.237917133e-02],
        [1.171671599e-02, 1.167155616e-02, 1.628009602e-02, 1.178632770e-02],
        [2.154325193e-04, 4.975818563e-03, 5.467824172e-03, 2.229200763e-04],
    ]
    np.testing.assert_allclose(rec.sum(axis=(1, 2)), sums, rtol=1e-4)
    np.testing.assert_allclose(rec[1, 8::16, 8::16], grid, rtol=1e-3, atol=1e-6)
    assert done == [3] * 23 + [24]  # 23 passes until every slice changed by < 0.2%, then the rest at once
