"""Phantoms and the forward model."""

from __future__ import annotations

import argparse

import mrcfile
import numpy as np
import pytest
from skimage.transform import radon

from reconstruction.engine.phantoms import cell_phantom, shepp_logan_2d, shepp_logan_3d
from reconstruction.engine.psf import ZonePlate
from reconstruction.engine.simulate import (
    add_noise,
    misalign,
    project,
    register_cli,
    simulate_tilt_series,
    tilt_angles,
)


def test_tilt_angles_cover_the_range_inclusive():
    a = tilt_angles(65, 1)
    assert a.size == 131 and a[0] == -65 and a[-1] == 65
    with pytest.raises(ValueError):
        tilt_angles(60, 0)


# odd sizes: scikit-image rotates about n // 2, the engine (as ASTRA) about the geometric centre
# (n - 1) / 2; only there are they the same pixel (for even n radon is half a pixel off)
@pytest.mark.parametrize("shape", [(49, 49), (41, 57)])
def test_ideal_projection_matches_skimage_radon(shape):
    sl = shepp_logan_2d(shape).astype(np.float64)
    if shape[0] != shape[1]:
        sl = np.pad(sl, ((0, 0), (0, 0)))
    ang = tilt_angles(60, 7.5)
    n = max(shape)
    square = np.zeros((n, n))
    square[
        (n - shape[0]) // 2 : (n - shape[0]) // 2 + shape[0], (n - shape[1]) // 2 : (n - shape[1]) // 2 + shape[1]
    ] = sl
    ref = radon(square, ang)
    c = ref.shape[0] // 2
    ref = ref[c - n // 2 : c - n // 2 + n].T
    ours = project(square[None], ang)[:, 0]
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_projection_scales_with_pixel_size_and_is_lac_times_length():
    vol = np.zeros((2, 32, 32), np.float32)
    vol[:, 8:24, 8:24] = 0.3  # µm⁻¹, a 16-pixel square
    proj = project(vol, [0.0], pixel_size_um=0.02)
    assert proj[0, 0, 16] == pytest.approx(0.3 * 16 * 0.02, rel=1e-5)


def test_cell_phantom_holds_known_absorption_values():
    ph = cell_phantom((16, 96, 96), 0.03, thickness_um=2.4, seed=3)
    assert ph.volume.shape == (16, 96, 96) and ph.volume.dtype == np.float32
    values = {round(float(v), 3) for v in np.unique(ph.volume)}
    assert {0.0, 0.109, 0.3, 0.4}.issubset(values)
    assert ph.volume.max() <= 0.8
    # thickness along the thickness axis is the requested one (within a voxel or two)
    z_extent = np.flatnonzero(ph.cell_mask.any(axis=(0, 2)))
    assert (z_extent[-1] - z_extent[0] + 1) * 0.03 == pytest.approx(2.4, abs=0.07)
    again = cell_phantom((16, 96, 96), 0.03, thickness_um=2.4, seed=3)
    np.testing.assert_array_equal(ph.labels, again.labels)
    with pytest.raises(ValueError):
        cell_phantom((16, 96, 96), 0.03, thickness_um=10.0)


def test_shepp_logan_3d_shape_and_range():
    v = shepp_logan_3d((20, 32, 32))
    assert v.shape == (20, 32, 32) and 0 <= v.min() and v.max() <= 1.0 + 1e-6


def test_blur_depends_on_depth_not_on_the_whole_projection():
    """A sharp bead in focus stays sharp; the same bead far from focus is spread."""
    p = 0.02
    zp = ZonePlate(520.0, 25.0)
    vol = np.zeros((31, 121, 41), np.float32)
    vol[15, 60, 20] = 1.0  # at the tilt axis
    far = np.zeros_like(vol)
    far[15, 60 + 50, 20] = 1.0  # 1 µm (about one DOF) towards the detector
    near_img = project(vol, [0.0], p, zone_plate=zp, focal_planes_um=0.0)[0]
    far_img = project(far, [0.0], p, zone_plate=zp, focal_planes_um=0.0)[0]
    refocused = project(far, [0.0], p, zone_plate=zp, focal_planes_um=[0.0, 1.0])[0, 1]
    assert near_img.sum() == pytest.approx(p, rel=1e-3)
    assert far_img.sum() == pytest.approx(p, rel=1e-3)
    assert far_img.max() < 0.7 * near_img.max()
    assert refocused.max() == pytest.approx(near_img.max(), rel=0.05)
    # the ray through both beads at 0° mixes a sharp and a blurred image
    both = project(vol + far, [0.0], p, zone_plate=zp)[0]
    np.testing.assert_allclose(both, near_img + far_img, atol=1e-6)


def test_noise_and_misalignment_are_seeded():
    proj = np.full((5, 8, 8), 0.5, np.float32)
    a = add_noise(proj, photons=1000, seed=1)
    b = add_noise(proj, photons=1000, seed=1)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 0.5) < 0.02 and a.std() > 0.01
    shifted, shifts = misalign(np.random.default_rng(0).random((4, 2, 16, 16)), 2.0, seed=0)
    assert shifted.shape == (4, 2, 16, 16) and shifts.shape == (4, 2)
    assert np.abs(shifts).max() <= 2.0


def test_simulate_tilt_series_bundle():
    ph = cell_phantom((8, 48, 48), 0.05, thickness_um=1.8, seed=0)
    s = simulate_tilt_series(
        ph.volume,
        tilt_angles(60, 15),
        0.05,
        zone_plate=ZonePlate(),
        photons=2000,
        max_shift_px=1.0,
        seed=4,
        focal_planes_um=[-0.5, 0.5],
    )
    assert s.projections.shape == (9, 2, 8, 48)
    assert s.shifts.shape == (9, 2)
    with pytest.raises(ValueError):
        project(ph.volume, [[0.0]])
    with pytest.raises(ValueError):
        project(ph.volume[0], [0.0])


def test_simulate_command_writes_series_tlt_and_truth(tmp_path):
    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    out = tmp_path / "series.mrc"
    truth = tmp_path / "truth.mrc"
    args = parser.parse_args(
        [
            "simulate",
            "-o",
            str(out),
            "--truth",
            str(truth),
            "--shape",
            "4",
            "32",
            "32",
            "--pixel-size-um",
            "0.05",
            "--thickness-um",
            "1.2",
            "--max-angle",
            "60",
            "--step",
            "20",
            "--photons",
            "1000",
            "--misalign-px",
            "1",
        ]
    )
    assert args.func(args) == 0
    with mrcfile.open(out) as m:
        assert m.data.shape == (7, 4, 32)
        assert m.voxel_size.x == pytest.approx(500.0)
    assert len(out.with_suffix(".tlt").read_text().split()) == 7
    with mrcfile.open(truth) as m:
        assert m.data.shape == (4, 32, 32)
