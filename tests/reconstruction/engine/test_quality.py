"""Calibration, even/odd FSC resolution and previews."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from reconstruction.engine.focus import reconstruct_focal_series
from reconstruction.engine.phantoms import cell_phantom
from reconstruction.engine.quality import (
    fourier_shell_correlation,
    half_volumes,
    orthoslice_preview,
    psnr,
    resolution_from_fsc,
    to_lac,
)
from reconstruction.engine.simulate import project


def test_calibration_recovers_the_phantom_lac():
    """Projections in absorbance of a LAC phantom, WBP, divide by pixel size: µm⁻¹ back."""
    p = 0.05
    ph = cell_phantom((8, 64, 64), p, thickness_um=2.0, seed=0)
    angles = np.arange(0.0, 180.0, 1.0)
    proj = project(ph.volume, angles, p)
    vol = reconstruct_focal_series(proj[:, None], angles, focal_planes_um=[0.0], pixel_size_um=p)
    lac = to_lac(vol, p)
    cyto = ph.labels == 2
    inner = ndimage.binary_erosion(cyto, structure=np.ones((1, 3, 3)), iterations=2)
    assert np.median(lac[inner]) == pytest.approx(0.30, abs=0.02)
    with pytest.raises(ValueError):
        to_lac(vol, 0.0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_fsc_of_identical_halves_is_one_and_of_noise_is_low(ndim):
    rng = np.random.default_rng(2)
    shape = (32,) * ndim
    x = rng.normal(size=shape)
    same = fourier_shell_correlation(x, x, pixel_size_um=0.02)
    np.testing.assert_allclose(same.fsc, 1.0, atol=1e-9)
    assert same.resolution_nm[0.143] is None  # never drops: better than Nyquist
    other = fourier_shell_correlation(x, rng.normal(size=shape))
    assert np.abs(other.fsc[2:]).max() < 0.5


def test_fsc_resolution_tracks_the_signal_bandwidth():
    rng = np.random.default_rng(3)
    signal = ndimage.gaussian_filter(rng.normal(size=(48, 48, 48)), 2.0)
    signal /= signal.std()
    a = signal + 1.0 * rng.normal(size=signal.shape)
    b = signal + 1.0 * rng.normal(size=signal.shape)
    res = fourier_shell_correlation(a, b, pixel_size_um=0.02)
    r05, r0143 = res.resolution_nm[0.5], res.resolution_nm[0.143]
    assert r05 is not None and r0143 is not None
    assert 40 < r0143 < r05 < 400  # pixel 20 nm: Nyquist 40 nm
    assert res.frequency_per_nm[-1] == pytest.approx(0.5 / 20, rel=0.05)
    cleaner = fourier_shell_correlation(
        signal + 0.2 * rng.normal(size=signal.shape),
        signal + 0.2 * rng.normal(size=signal.shape),
        pixel_size_um=0.02,
    )
    assert cleaner.resolution_nm[0.5] < r05


def test_resolution_interpolates_the_crossing():
    f = np.array([0.1, 0.2, 0.3])
    c = np.array([0.9, 0.6, 0.2])
    assert resolution_from_fsc(f, c, 0.5) == pytest.approx(1 / 0.225)
    assert resolution_from_fsc(f, c, 0.1) is None


def test_half_volumes_split_even_and_odd_tilts():
    seen = []

    def rec(proj, angles):
        seen.append(angles.copy())
        return proj.mean(axis=0)

    proj = np.arange(6 * 2 * 3, dtype=float).reshape(6, 2, 3)
    even, odd = half_volumes(proj, np.arange(6.0), rec)
    np.testing.assert_array_equal(seen[0], [0, 2, 4])
    np.testing.assert_array_equal(seen[1], [1, 3, 5])
    assert even.shape == odd.shape == (2, 3)
    with pytest.raises(ValueError, match="angles"):
        half_volumes(proj, np.arange(5.0), rec)


def test_fsc_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        fourier_shell_correlation(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="NaN"):
        fourier_shell_correlation(np.full((8, 8), np.nan), np.zeros((8, 8)))


def test_psnr():
    t = np.zeros((4, 4))
    t[0, 0] = 1.0
    e = t + 0.1
    assert psnr(e, t) == pytest.approx(20.0)
    assert psnr(t, t) == float("inf")


def test_orthoslice_preview_png(tmp_path):
    vol = np.random.default_rng(0).random((10, 12, 14)).astype(np.float32)
    img = orthoslice_preview(vol, tmp_path / "p.png")
    assert img.dtype == np.uint8 and img.shape == (12, 14 + 14 + 10 + 8)
    assert img.max() == 255 and img.min() == 0
    with Image.open(tmp_path / "p.png") as im:
        assert im.size == (img.shape[1], img.shape[0]) and im.mode == "L"
    with pytest.raises(ValueError):
        orthoslice_preview(vol[0])
