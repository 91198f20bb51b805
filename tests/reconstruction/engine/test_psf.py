"""Zone-plate optics and PSF model."""

from __future__ import annotations

import numpy as np
import pytest

from reconstruction.engine.psf import ZonePlate, defocus_psf, otf, psf_half_width, wavelength_nm


def test_optics_of_a_25nm_zone_plate():
    zp = ZonePlate(energy_ev=520.0, outer_zone_width_nm=25.0, zones=500)
    assert wavelength_nm(520.0) == pytest.approx(2.3843, rel=1e-3)
    assert zp.numerical_aperture == pytest.approx(2.3843 / 50, rel=1e-3)
    assert zp.depth_of_field_um == pytest.approx(1.049, rel=2e-3)  # λ/NA², "about 1 µm"
    assert zp.rayleigh_resolution_nm == pytest.approx(30.5, rel=1e-3)
    assert zp.diameter_nm == pytest.approx(50_000)
    assert zp.focal_length_mm == pytest.approx(0.5243, rel=1e-3)
    same = ZonePlate(energy_ev=520.0, outer_zone_width_nm=25.0, diameter_um=50.0)
    assert same.focal_length_mm == pytest.approx(zp.focal_length_mm)
    assert "DOF" in zp.describe()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"energy_ev": -1.0},
        {"outer_zone_width_nm": 0.0},
        {"zones": 10, "diameter_um": 5.0},
        {"zones": 0},
        {"central_stop": 1.0},
        {"outer_zone_width_nm": 1.0},  # NA >= 0.5
    ],
)
def test_bad_zone_plates_are_refused(kwargs):
    with pytest.raises(ValueError):
        ZonePlate(**kwargs)


@pytest.mark.parametrize("pixel", [0.01, 0.02, 0.05])
def test_psf_is_normalised_symmetric_and_spreads_with_defocus(pixel):
    zp = ZonePlate(520.0, 25.0)
    widths = []
    peaks = []
    for z in (0.0, 0.5, 1.0, 2.0):
        k = defocus_psf(zp, z, pixel)
        assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert k.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)
        np.testing.assert_allclose(defocus_psf(zp, -z, pixel), k, atol=1e-6)
        hw = k.shape[0] // 2
        y, x = np.mgrid[-hw : hw + 1, -hw : hw + 1]
        widths.append(np.sqrt((k * (x**2 + y**2)).sum()))
        peaks.append(k.max())
    assert np.all(np.diff(peaks) < 0)
    # at twice the DOF the blur is much wider than in focus
    assert widths[3] > 1.8 * widths[0]


def test_psf_within_half_the_depth_of_field_stays_close_to_focus():
    zp = ZonePlate(520.0, 25.0)
    half = zp.depth_of_field_um / 2
    k0 = defocus_psf(zp, 0.0, 0.02, half_width=10)
    kh = defocus_psf(zp, half, 0.02, half_width=10)
    k2 = defocus_psf(zp, 2 * zp.depth_of_field_um, 0.02, half_width=10)
    assert np.abs(kh - k0).sum() < 0.5 * np.abs(k2 - k0).sum()


def test_otf_is_the_transform_of_the_centred_kernel():
    zp = ZonePlate(520.0, 25.0)
    h = otf(zp, 0.8, 0.02, (64, 64))
    assert h.shape == (64, 33)
    assert h[0, 0] == pytest.approx(1.0)
    assert np.abs(h.imag).max() < 1e-9  # centred symmetric kernel: real OTF
    assert psf_half_width(zp, 0.8, 0.02) > psf_half_width(zp, 0.0, 0.02)
