"""Focus-stack reconstruction of focal series and Wiener deconvolution."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import iradon, radon

from reconstruction.engine.focus import (
    focus_stack_backproject,
    mean_defocus_um,
    ramp_filter,
    reconstruct_focal_series,
    wiener_deconvolve,
)
from reconstruction.engine.phantoms import cell_phantom, shepp_logan_2d
from reconstruction.engine.psf import ZonePlate, defocus_psf
from reconstruction.engine.quality import psnr, to_lac
from reconstruction.engine.simulate import project


@pytest.mark.parametrize("angles", [np.arange(0, 180, 2.0), np.arange(-60, 61, 3.0)])
def test_one_plane_is_plain_wbp_like_iradon(angles):
    sl = shepp_logan_2d((64, 64)).astype(np.float64)
    r = radon(sl, angles)
    c = r.shape[0] // 2
    proj = r[c - 32 : c + 32].T[:, None, None, :]
    ours = reconstruct_focal_series(proj, angles, focal_planes_um=[0.0], pixel_size_um=1.0)[0]
    ref = iradon(r, angles, filter_name="ramp", output_size=64)
    # iradon scales as if the angles covered 180°; we weight by the real angular step
    ref *= (np.deg2rad(np.ptp(angles) + np.diff(angles)[0])) / np.pi
    inside = np.hypot(*np.mgrid[-32:32, -32:32]) < 30
    np.testing.assert_allclose(ours[inside], ref[inside], atol=1e-4)


def test_identical_planes_give_the_single_plane_result():
    rng = np.random.default_rng(0)
    proj = rng.random((7, 1, 3, 24)).astype(np.float32)
    angles = np.linspace(-60, 60, 7)
    one = reconstruct_focal_series(proj, angles, focal_planes_um=[0.0], pixel_size_um=0.02)
    many = reconstruct_focal_series(
        np.repeat(proj, 3, axis=1), angles, focal_planes_um=[-0.5, 0.0, 0.5], pixel_size_um=0.02
    )
    np.testing.assert_allclose(many, one, atol=1e-5)
    lin = reconstruct_focal_series(
        np.repeat(proj, 3, axis=1),
        angles,
        focal_planes_um=[-0.5, 0.0, 0.5],
        pixel_size_um=0.02,
        blend="linear",
    )
    np.testing.assert_allclose(lin, one, atol=1e-5)


def test_each_voxel_reads_the_plane_nearest_its_depth():
    """Planes filled with constants: the back-projection tells which plane each voxel used."""
    n, angles = 21, np.array([0.0, 90.0])
    planes = np.array([-0.21, 0.0, 0.21])  # µm; pixel 0.02 µm: boundaries at ±5.25 pixels
    filt = np.zeros((2, 3, 1, n), np.float32)
    filt[:, 0], filt[:, 1], filt[:, 2] = 1.0, 10.0, 100.0
    vol = focus_stack_backproject(
        filt, angles, focal_planes_um=planes, pixel_size_um=0.02, weights=np.array([1.0, 0.0])
    )[0]
    z = np.arange(n) - n // 2
    expected = np.where(z * 0.02 < -0.105, 1.0, np.where(z * 0.02 > 0.105, 100.0, 10.0))
    np.testing.assert_allclose(vol[:, n // 2], expected)
    # at 90° the depth runs along the columns (d = x sin θ)
    vol90 = focus_stack_backproject(
        filt, angles, focal_planes_um=planes, pixel_size_um=0.02, weights=np.array([0.0, 1.0])
    )[0]
    np.testing.assert_allclose(vol90[n // 2, 1:-1], expected[1:-1])


def test_wiener_deconvolution_restores_a_blurred_image():
    zp = ZonePlate(520.0, 25.0)
    rng = np.random.default_rng(1)
    img = np.zeros((64, 64), np.float32)
    img[rng.integers(8, 56, 40), rng.integers(8, 56, 40)] = 1.0
    from scipy.ndimage import convolve

    blurred = convolve(img, defocus_psf(zp, 0.0, 0.02), mode="constant")
    restored = wiener_deconvolve(blurred, zp, 0.02, snr=1e4)
    assert np.abs(restored - img).mean() < 0.5 * np.abs(blurred - img).mean()
    with pytest.raises(ValueError):
        wiener_deconvolve(blurred, zp, 0.02, snr=0)


@pytest.mark.parametrize(
    ("shape", "angles", "planes", "message"),
    [
        ((5, 2, 4, 8), np.arange(4.0), [0, 1], "angles"),
        ((5, 2, 4, 8), np.arange(5.0), [0.0], "focal plane"),
        ((5, 2, 4, 8), np.arange(5.0), [0.0, 0.0], "distinct"),
        ((5, 4, 8), np.arange(5.0), [0.0], "4-D"),
        ((5, 2, 4, 8), np.array([0, 1, 1, 2, 3.0]), [0, 1], "duplicate"),
    ],
)
def test_bad_focal_series_inputs(shape, angles, planes, message):
    with pytest.raises(ValueError, match=message):
        reconstruct_focal_series(np.zeros(shape, np.float32), angles, focal_planes_um=planes, pixel_size_um=0.02)


def test_bad_options():
    proj = np.zeros((3, 1, 2, 8), np.float32)
    with pytest.raises(ValueError, match="filter"):
        ramp_filter(proj, "nope")
    with pytest.raises(ValueError, match="method"):
        reconstruct_focal_series(proj, [0, 1, 2], focal_planes_um=[0], pixel_size_um=1, method="x")
    with pytest.raises(ValueError, match="NaN"):
        reconstruct_focal_series(np.full((3, 1, 2, 8), np.nan), [0, 1, 2], focal_planes_um=[0], pixel_size_um=1)


def test_focal_series_beats_single_focus_far_from_focus():
    """Scaled-down depth-of-focus target (the full one is in bench/focus.py).

    Realistic optics (25 nm outer zone, 520 eV, DOF 1.05 µm), 20 nm pixels, a 4.5 µm cell
    (4.3 DOF thick) rotated over 180° in 1° steps (capillary geometry), noise-free, blurred by
    the depth-dependent zone-plate model; graded against the ground truth in LAC.
    """
    p = 0.02
    zp = ZonePlate(520.0, 25.0, zones=500)
    dof = zp.depth_of_field_um
    rows, n, margin = 4, 256, 14
    ph = cell_phantom((rows + 2 * margin, n, n), p, thickness_um=4.5, seed=1)
    angles = np.arange(-90.0, 90.0, 1.0)
    planes = np.arange(-3, 4) * dof
    series = project(ph.volume, angles, p, zone_plate=zp, focal_planes_um=planes)
    series = series[:, :, margin:-margin]
    truth = ph.volume[margin:-margin]
    cell = ph.cell_mask[margin:-margin]
    md = mean_defocus_um(n, n, angles, p)[None]
    far = cell & (md > dof)
    focused = cell & (md < dof / 2)
    assert far.sum() > 10_000 and focused.sum() > 2_000

    centre = int(np.argmin(np.abs(planes)))
    single = to_lac(
        reconstruct_focal_series(series[:, centre : centre + 1], angles, focal_planes_um=[0.0], pixel_size_um=p),
        p,
    )
    focal = to_lac(reconstruct_focal_series(series, angles, focal_planes_um=planes, pixel_size_um=p), p)
    focal_w = to_lac(
        reconstruct_focal_series(
            series,
            angles,
            focal_planes_um=planes,
            pixel_size_um=p,
            zone_plate=zp,
            wiener_snr=300.0,
        ),
        p,
    )
    single_w = to_lac(
        reconstruct_focal_series(
            series[:, centre : centre + 1],
            angles,
            focal_planes_um=[0.0],
            pixel_size_um=p,
            zone_plate=zp,
            wiener_snr=300.0,
        ),
        p,
    )
    rng = float(truth.max() - truth.min())
    score = {
        name: (psnr(v, truth, mask=far, data_range=rng), psnr(v, truth, mask=focused, data_range=rng))
        for name, v in [("single", single), ("focal", focal), ("focal_w", focal_w), ("single_w", single_w)]
    }
    # Measured on this case: single 30.1, focal 30.4, single+Wiener 30.9, focal+Wiener 32.2 dB.
    # The 3 dB target is met by the larger bench case (bench/focus.py), not here: this
    # smaller cell gains about 2.1 dB, so the test guards the ordering with margin.
    assert score["focal_w"][0] >= score["single"][0] + 1.5
    assert score["focal"][0] > score["single"][0] + 0.15
    assert score["focal_w"][0] > score["single_w"][0] + 0.8
    # in focus, the focal series is no worse than the single focus
    assert score["focal"][1] > score["single"][1] - 0.2


def test_cli_reconstructs_a_simulated_focal_series(tmp_path):
    """simulate (focal series, tilt-major MRC + .focal.json) -> reconstruct -> MRC with voxel size."""
    from reconstruction.engine.cli import main
    from reconstruction.engine.io import read_mrc

    series = tmp_path / "s.mrc"
    rc = main(
        [
            "simulate",
            "-o",
            str(series),
            "--shape",
            "6",
            "48",
            "48",
            "--pixel-size-um",
            "0.04",
            "--thickness-um",
            "1.6",
            "--max-angle",
            "60",
            "--step",
            "10",
            "--focal-planes-um",
            "-0.8",
            "0",
            "0.8",
            "--truth",
            str(tmp_path / "t.mrc"),
        ]
    )
    assert rc == 0 and (tmp_path / "s.focal.json").is_file()
    assert read_mrc(series)[0].shape[0] == 13 * 3  # tilt-major sections
    out = tmp_path / "v.mrc"
    # the sidecar next to the series is found without --focal-json
    assert main(["reconstruct", str(series), "--angles", str(tmp_path / "s.tlt"), "-q", "-o", str(out)]) == 0
    vol, px = read_mrc(out)
    truth, _ = read_mrc(tmp_path / "t.mrc")
    assert vol.shape == (6, 48, 48) and px == pytest.approx(0.04)
    # calibrated: LAC per voxel length; correlates with the truth
    lac = vol / 0.04
    assert np.corrcoef(lac[2:4].ravel(), truth[2:4].ravel())[0, 1] > 0.6
    # explicit sidecar, and a sidecar that does not fit the stack
    assert main(["reconstruct", str(series), "--focal-json", str(tmp_path / "s.focal.json"), "-q", "-o", str(out)]) == 0
    (tmp_path / "bad.focal.json").write_text('{"focal_planes_um": [0, 1, 2, 3, 4, 5, 6, 7]}')
    assert (
        main(["reconstruct", str(series), "--focal-json", str(tmp_path / "bad.focal.json"), "-q", "-o", str(out)]) == 2
    )
