"""Focus-stack reconstruction of focal series and Wiener deconvolution."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.transform import iradon, radon

from reconstruction.engine.focus import (
    FocalSeriesOperator,
    estimate_noise_power,
    focus_stack_backproject,
    mean_defocus_um,
    reconstruct_focal_series,
    refocus_depths,
    wiener_deconvolve,
)
from reconstruction.engine.phantoms import cell_phantom, shepp_logan_2d
from reconstruction.engine.psf import ZonePlate, defocus_psf
from reconstruction.engine.quality import psnr, to_lac
from reconstruction.engine.simulate import add_noise, project
from reconstruction.engine.wbp import angle_weights, filter_projections


@pytest.mark.parametrize("angles", [np.arange(0, 180, 2.0), np.arange(-60, 61, 3.0)])
def test_one_plane_is_plain_wbp_like_iradon(angles):
    # odd size: scikit-image rotates about n // 2, the engine (as ASTRA) about (n - 1) / 2, the same
    # pixel only for odd n (for even n its sinograms are half a pixel off the engine's grid)
    n = 65
    sl = shepp_logan_2d((n, n)).astype(np.float64)
    r = radon(sl, angles, circle=True)
    proj = r.T[:, None, None, :]
    ours = reconstruct_focal_series(proj, angles, focal_planes_um=[0.0], pixel_size_um=1.0)[0]
    # zero columns each side (centre kept): iradon keeps the filter's tails beyond the detector as we do
    ref = iradon(np.pad(r, ((14, 14), (0, 0))), angles, filter_name="ramp", output_size=n, circle=False)
    # iradon scales as if the angles covered 180°; we weight by the real angular step
    ref *= (np.deg2rad(np.ptp(angles) + np.diff(angles)[0])) / np.pi
    inside = np.hypot(*np.mgrid[-32:33, -32:33]) < 30
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
        filter_projections(proj, "nope")
    with pytest.raises(ValueError, match="method"):
        reconstruct_focal_series(proj, [0, 1, 2], focal_planes_um=[0], pixel_size_um=1, method="x")
    with pytest.raises(ValueError, match="NaN"):
        reconstruct_focal_series(np.full((3, 1, 2, 8), np.nan), [0, 1, 2], focal_planes_um=[0], pixel_size_um=1)


@pytest.fixture(scope="module")
def thick_cell_series():
    """A reduced but honest depth-of-focus problem, simulated once for the tests below.

    Realistic optics (25 nm outer zone, 520 eV, DOF 1.05 µm), 20 nm pixels, a 3.4 µm cell
    (3.2 DOF thick) in 192x192 slices, 90 tilts at 2° over 180° (capillary geometry), 5 focal
    planes at -2…+2 DOF, blurred by the depth-dependent zone-plate model; 24 detector rows
    simulated and reconstructed (the PSF couples neighbouring rows), the central 4 graded
    against the ground truth in LAC.
    """
    p = 0.02
    zp = ZonePlate(520.0, 25.0, zones=500)
    dof = zp.depth_of_field_um
    rows, n, margin = 4, 192, 10
    ph = cell_phantom((rows + 2 * margin, n, n), p, thickness_um=3.4, seed=1)
    angles = np.arange(-90.0, 90.0, 2.0)
    planes = np.arange(-2, 3) * dof
    series = project(ph.volume, angles, p, zone_plate=zp, focal_planes_um=planes)
    sl = slice(margin, -margin)
    truth, cell = ph.volume[sl], ph.cell_mask[sl]
    md = mean_defocus_um(n, n, angles, p)[None]
    masks = {"far": cell & (md > dof), "focus": cell & (md < dof / 2)}
    assert masks["far"].sum() > 4000 and masks["focus"].sum() > 10_000
    rng = float(truth.max() - truth.min())

    def score(series_, f, **kw):
        v = to_lac(reconstruct_focal_series(series_, angles, focal_planes_um=f, pixel_size_um=p, **kw), p)[sl]
        return {k: psnr(v, truth, mask=m, data_range=rng) for k, m in masks.items()}

    return {"series": series, "planes": planes, "zp": zp, "score": score, "centre": 2}


def test_focal_series_beats_single_focus_far_from_focus_by_3db(thick_cell_series):
    """The issue's target, noise-free: ≥ 3 dB over single-focus WBP more than 1 DOF from focus.

    Measured here: single-focus WBP 22.5 dB far / 27.6 in focus; plain focus-stack WBP 22.1 /
    27.7; focal series + noise-aware Wiener 28.7 / 32.1 (+6.2 dB far). The full-size case is in
    bench/focus.py.
    """
    d = thick_cell_series
    s, planes, zp, c = d["series"], d["planes"], d["zp"], d["centre"]
    single = d["score"](s[:, c : c + 1], [0.0])
    single_w = d["score"](s[:, c : c + 1], [0.0], zone_plate=zp)
    focal_w = d["score"](s, planes, zone_plate=zp)
    assert focal_w["far"] >= single["far"] + 3.0
    # also against single focus with the same (noise-aware) deconvolution
    assert focal_w["far"] >= single_w["far"] + 1.0
    # in focus, the focal series is no worse than the single focus
    assert focal_w["focus"] >= single_w["focus"] - 0.2


def test_noisy_focal_series_improves_instead_of_collapsing(thick_cell_series):
    """10⁴ photons/pixel per image: the noise-aware filter must not amplify the noise.

    The old fixed-SNR (300) in-focus Wiener filter collapses on noisy data (here 11.1 dB far
    against 19.9 for single-focus WBP). Measured here (far / in focus): single-focus WBP 19.9 /
    20.8, with a Hann filter 21.2 / 25.2, with the noise-aware Wiener 21.5 / 23.9; focal series
    + noise-aware Wiener 22.5 / 25.7. So this reduced problem shows +2.5 dB far from focus, not
    3: its far voxels lie at the rim of a 192-pixel slice sampled every 2°, where the angular
    undersampling noise of WBP grows with the radius and no depth-of-focus correction removes
    it. The test asserts the true +2 dB bound; the 3 dB target on noisy data is checked at full
    size (256², 1° steps) by bench/focus.py (+6 dB there).
    """
    d = thick_cell_series
    s = add_noise(d["series"], photons=1e4, seed=2)
    planes, zp, c = d["planes"], d["zp"], d["centre"]
    single = d["score"](s[:, c : c + 1], [0.0])
    hann = d["score"](s[:, c : c + 1], [0.0], filter_name="hann")
    old = d["score"](s, planes, zone_plate=zp, wiener_snr=300.0)
    focal_w = d["score"](s, planes, zone_plate=zp)
    assert old["far"] < single["far"]  # the collapse this replaces
    assert focal_w["far"] >= single["far"] + 2.0
    assert focal_w["far"] > hann["far"] + 1.0
    assert focal_w["focus"] > single["focus"]


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
    # the sidecar carries the zone plate: the iterative variant runs from the command line
    assert "zone_plate" in json.loads((tmp_path / "s.focal.json").read_text())
    args = ["reconstruct", str(series), "--method", "sirt", "--iterations", "2", "-q", "-o", str(out)]
    assert main(args) == 0
    vol_sirt, _ = read_mrc(out)
    assert vol_sirt.shape == (6, 48, 48) and vol_sirt.min() >= 0
    # explicit sidecar, and a sidecar that does not fit the stack
    assert main(["reconstruct", str(series), "--focal-json", str(tmp_path / "s.focal.json"), "-q", "-o", str(out)]) == 0
    (tmp_path / "bad.focal.json").write_text('{"focal_planes_um": [0, 1, 2, 3, 4, 5, 6, 7]}')
    assert (
        main(["reconstruct", str(series), "--focal-json", str(tmp_path / "bad.focal.json"), "-q", "-o", str(out)]) == 2
    )


def test_focal_operator_adjoint_and_agreement_with_the_simulator():
    zp = ZonePlate(520.0, 25.0)
    rng = np.random.default_rng(0)
    angles, planes = np.linspace(-60, 60, 7), [-0.5, 0.0, 0.5]
    op = FocalSeriesOperator((6, 40, 40), angles, focal_planes_um=planes, pixel_size_um=0.02, zone_plate=zp)
    x = rng.random((op.z.size, 6)).astype(np.float32)
    y = rng.random((7, 3, 6, 40)).astype(np.float32)
    t = np.arange(7)
    lhs = np.sum(op.forward(x, t).astype(np.float64) * y)
    rhs = np.sum(op.adjoint(y, t).astype(np.float64) * x)
    assert lhs == pytest.approx(rhs, rel=1e-5)
    ph = cell_phantom((6, 40, 40), 0.02, thickness_um=0.6, seed=0)
    ours = op.forward(op.to_flat(ph.volume), t) * 0.02
    ref = project(ph.volume, angles, 0.02, zone_plate=zp, focal_planes_um=planes)
    assert np.abs(ours - ref).max() < 0.02 * np.abs(ref).max()


def test_noise_power_is_read_from_the_data():
    zp = ZonePlate(520.0, 25.0)
    ph = cell_phantom((24, 96, 96), 0.02, thickness_um=1.5, seed=0)
    clean = project(ph.volume, np.linspace(-60, 60, 9), 0.02, zone_plate=zp)
    rng = np.random.default_rng(1)
    noisy = clean + rng.normal(0, 0.01, clean.shape).astype(np.float32)
    assert estimate_noise_power(noisy) == pytest.approx(1e-4, rel=0.15)
    assert estimate_noise_power(clean) < 1e-6  # blurred signal leaves the spectrum's corners empty
    with pytest.raises(ValueError):
        estimate_noise_power(np.zeros((2, 2)))


def test_refocus_depths_span_the_planes_at_half_a_dof():
    d = refocus_depths([-2.0, 0.0, 2.0], 1.0)
    np.testing.assert_allclose(d, np.arange(-2.0, 2.01, 0.5))
    np.testing.assert_allclose(refocus_depths([0.3], 1.0), [0.3])


def test_iterative_focal_series_on_a_missing_wedge():
    """method="sirt": SIRT with the depth-dependent PSF model, from the deconvolved WBP.

    Small problem (72² slices of 40 nm, a 2.4 µm cell, ±60° at 3°, 3 planes): measured far /
    whole cell 16.1 / 15.1 dB for single-focus WBP, 23.1 / 23.1 for single-focus SIRT without
    the PSF, 23.5 / 23.4 for the focal series with SIRT. Most of the gain over WBP is SIRT's
    (non-negativity and data consistency fill the missing wedge); the PSF model adds a little.
    """
    from reconstruction.engine import reconstruct

    p, zp = 0.04, ZonePlate(520.0, 25.0, zones=500)
    dof = zp.depth_of_field_um
    rows, n, margin = 4, 72, 6
    ph = cell_phantom((rows + 2 * margin, n, n), p, thickness_um=2.4, seed=1)
    angles = np.arange(-60.0, 61.0, 3.0)
    planes = np.arange(-1, 2) * dof
    series = project(ph.volume, angles, p, zone_plate=zp, focal_planes_um=planes)
    sl = slice(margin, -margin)
    truth, cell = ph.volume[sl], ph.cell_mask[sl]
    far = cell & (mean_defocus_um(n, n, angles, p)[None] > dof / 2)
    rng = float(truth.max() - truth.min())

    def score(v):
        v = to_lac(v, p)[sl]
        return psnr(v, truth, mask=far, data_range=rng), psnr(v, truth, mask=cell, data_range=rng)

    single = score(reconstruct_focal_series(series[:, 1:2], angles, focal_planes_um=[0.0], pixel_size_um=p))
    single_sirt = score(reconstruct(series[:, 1], angles, method="sirt"))
    focal_sirt = reconstruct_focal_series(
        series, angles, focal_planes_um=planes, pixel_size_um=p, zone_plate=zp, method="sirt"
    )
    assert focal_sirt.min() >= 0
    fs = score(focal_sirt)
    assert fs[0] >= single[0] + 3.0
    assert fs[0] > single_sirt[0] and fs[1] > single_sirt[1]
    with pytest.raises(ValueError, match="zone_plate"):
        reconstruct_focal_series(series, angles, focal_planes_um=planes, pixel_size_um=p, method="sirt")


@pytest.fixture(scope="module")
def small_focal_series():
    p, zp = 0.04, ZonePlate(520.0, 25.0, zones=500)
    n, rows = 48, 20
    ph = cell_phantom((rows, n, n), p, thickness_um=1.6, seed=2)
    angles = np.arange(-60.0, 61.0, 4.0)
    planes = np.arange(-1, 2) * zp.depth_of_field_um
    series = project(ph.volume, angles, p, zone_plate=zp, focal_planes_um=planes)
    series = add_noise(series, photons=1e4, seed=3)
    return series, angles, planes, p, zp


@pytest.mark.parametrize("deconvolution", ["refocus", "wiener", "none"])
def test_focal_series_in_slabs_equals_one_piece(small_focal_series, deconvolution):
    """Tilt-streamed, slabbed reconstruction equals the one-piece pipeline (whole refocused stack)."""
    from reconstruction.engine.focus import refocus

    series, angles, planes, p, zp = small_focal_series
    opts = {"refocus": {"zone_plate": zp}, "wiener": {"zone_plate": zp, "wiener_snr": 50.0}, "none": {}}[deconvolution]
    noise = estimate_noise_power(series) if deconvolution == "refocus" else None
    # one piece, as before slabbing: the whole deconvolved stack, filtered, back-projected
    depths = planes
    if deconvolution == "refocus":
        depths = refocus_depths(planes, zp.depth_of_field_um)
        stack = refocus(
            series,
            angles,
            focal_planes_um=planes,
            pixel_size_um=p,
            zone_plate=zp,
            depths_um=depths,
            noise_power=noise,
            regularization=3.0,
        )
    elif deconvolution == "wiener":
        stack = wiener_deconvolve(series, zp, p, snr=50.0)
    else:
        stack = series
    whole = focus_stack_backproject(
        filter_projections(stack, "ram-lak"),
        angles,
        focal_planes_um=depths,
        pixel_size_um=p,
        weights=angle_weights(angles, half_turn=False),
        rows_per_chunk=series.shape[2],
    )
    rng = float(whole.max() - whole.min())
    for slab in (None, 1, 7):
        vol = reconstruct_focal_series(
            series, angles, focal_planes_um=planes, pixel_size_um=p, slab_size=slab, noise_power=noise, **opts
        )
        assert vol.shape == whole.shape
        assert np.max(np.abs(vol - whole)) <= 1e-5 * rng
    with pytest.raises(ValueError, match="slab_size"):
        reconstruct_focal_series(series, angles, focal_planes_um=planes, pixel_size_um=p, slab_size=0)


@pytest.mark.parametrize("method", ["wbp", "sirt"])
def test_reconstruct_reports_focal_series_progress(small_focal_series, method):
    from reconstruction.engine import reconstruct

    series, angles, planes, p, zp = small_focal_series
    calls = []
    iters = None if method == "wbp" else 2
    reconstruct(
        series[:, :, :6],
        angles,
        method=method,
        iterations=iters,
        focal_planes_um=planes,
        pixel_size_um=p,
        zone_plate=zp,
        slab_size=4,
        callback=calls.append,
    )
    done = np.cumsum(calls)
    assert len(calls) >= (3 if method == "wbp" else 4)
    assert all(c > 0 for c in calls) and np.all(np.diff(done) > 0)
    assert done[-1] == 6 * (1 if method == "wbp" else 1 + iters)


@pytest.fixture(scope="module")
def single_focus_thick_cell():
    """A 3.4 µm (3.2 DOF) cell in 96² slices of 40 nm, 60 tilts at 3° over 180°, focused on the axis."""
    p, zp = 0.04, ZonePlate(520.0, 25.0, zones=500)
    dof = zp.depth_of_field_um
    rows, n, margin = 4, 96, 6
    ph = cell_phantom((rows + 2 * margin, n, n), p, thickness_um=3.4, seed=1)
    angles = np.arange(-90.0, 90.0, 3.0)
    series = project(ph.volume, angles, p, zone_plate=zp)
    sl = slice(margin, -margin)
    truth, cell = ph.volume[sl], ph.cell_mask[sl]
    md = mean_defocus_um(n, n, angles, p)[None]
    masks = {"far": cell & (md > dof), "focus": cell & (md < dof / 2)}
    rng = float(truth.max() - truth.min())

    def score(vol):
        v = to_lac(vol, p)[sl]
        return {k: psnr(v, truth, mask=m, data_range=rng) for k, m in masks.items()}

    return {"series": series, "angles": angles, "p": p, "zp": zp, "score": score}


def test_psf_sirt_beats_the_baselines_without_a_prior_far_from_focus(single_focus_thick_cell):
    """The PSF-aware SIRT against WBP and SIRT, the single-focus reconstructions without the PSF or a prior.

    Measured here (far / in focus, dB): WBP 21.8 / 28.6, SIRT 22.5 / 27.2, psf-sirt 23.5 / 30.4. mbir,
    whose prior alone does much of what the PSF does here, reaches 24.2 / 27.8 since it runs on Joseph's
    pair (21.9 / 27.7 on the pixel-driven pair): above psf-sirt far from focus, below it in focus;
    psf-mbir, both at once, is tested against both below.
    """
    from reconstruction.engine import reconstruct

    d = single_focus_thick_cell
    s, a = d["series"], d["angles"]
    baselines = {m: d["score"](reconstruct(s, a, method=m)) for m in ("wbp", "sirt", "mbir")}
    ours = reconstruct(s, a, method="psf-sirt", zone_plate=d["zp"], pixel_size_um=d["p"])
    assert ours.min() >= 0
    got = d["score"](ours)
    assert got["far"] >= max(baselines[m]["far"] for m in ("wbp", "sirt")) + 0.75, (got, baselines)
    assert got["focus"] >= max(b["focus"] for b in baselines.values()), (got, baselines)


def test_psf_sirt_in_overlapping_slabs_matches_one_piece(single_focus_thick_cell):
    from reconstruction.engine import reconstruct

    d = single_focus_thick_cell
    kw = {"method": "psf-sirt", "zone_plate": d["zp"], "pixel_size_um": d["p"], "iterations": 2}
    whole = reconstruct(d["series"], d["angles"], **kw)
    calls = []
    slabs = reconstruct(d["series"], d["angles"], slab_size=3, callback=calls.append, **kw)
    assert np.max(np.abs(slabs - whole)) <= 1e-3 * float(whole.max() - whole.min())
    assert sum(calls) == whole.shape[0] * (1 + 2)  # the starting WBP, then each iteration


def test_psf_sirt_is_a_first_class_method_and_says_what_it_needs(single_focus_thick_cell):
    from reconstruction.engine import METHOD_INFO, METHODS, reconstruct

    assert "psf-sirt" in METHODS and "zone plate" in METHOD_INFO["psf-sirt"]["help"]
    d = single_focus_thick_cell
    s, a = d["series"][:, :2], d["angles"]
    with pytest.raises(ValueError, match="needs the zone plate"):
        reconstruct(s, a, method="psf-sirt", pixel_size_um=d["p"])
    with pytest.raises(ValueError, match="axis_offset"):
        reconstruct(s, a, method="psf-sirt", zone_plate=d["zp"], pixel_size_um=d["p"], axis_offset=1.5)
    with pytest.raises(ValueError, match="zone_plate applies to psf-sirt, psf-mbir only, not sirt"):
        reconstruct(s, a, method="sirt", zone_plate=d["zp"])


def test_cli_reconstructs_a_single_focus_series_with_the_psf(tmp_path):
    from reconstruction.engine.cli import main
    from reconstruction.engine.io import read_mrc

    series = tmp_path / "s.mrc"
    args = ["simulate", "-o", str(series), "--shape", "4", "40", "40", "--pixel-size-um", "0.04"]
    assert main([*args, "--thickness-um", "1.2", "--max-angle", "60", "--step", "10"]) == 0
    out = tmp_path / "v.mrc"
    psf = ["reconstruct", str(series), "--method", "psf-sirt", "--iterations", "2", "-q", "-o", str(out)]
    assert main([*psf, "--zone-width-nm", "25", "--zones", "500"]) == 0
    vol, px = read_mrc(out)
    assert vol.shape == (4, 40, 40) and vol.min() >= 0 and vol.max() > 0 and px == pytest.approx(0.04)
    assert main(psf) == 2  # without the zone plate: refused in words


def test_psf_mbir_beats_mbir_and_psf_sirt_far_from_focus(single_focus_thick_cell):
    """mbir's prior over the depth-of-focus model: both gains at once.

    Measured here (far / in focus, dB), both on Joseph's pair: mbir 24.2 / 27.8, psf-sirt 23.5 / 30.4,
    psf-mbir 29.6 / 33.5: +5.4 dB far from focus over the better of the two, +3.1 dB in focus (on the
    pixel-driven pair psf-mbir gave 28.5 / 31.2). Phantom seeds 2 and 3: psf-mbir 30.1 / 33.7 and
    30.1 / 34.0 (pixel-driven 28.9 / 31.0 and 28.3 / 32.0). At ±65° / 2° with 10⁴ photons: mbir 23.8 /
    27.7, psf-sirt 22.9 / 25.3, psf-mbir 26.5 / 28.1 (pixel-driven 26.7 / 28.1; seeds 2 and 3 within
    ±0.05 dB far from focus).
    """
    from reconstruction.engine import reconstruct

    d = single_focus_thick_cell
    s, a = d["series"], d["angles"]
    optics = {"zone_plate": d["zp"], "pixel_size_um": d["p"]}
    baselines = {
        "mbir": d["score"](reconstruct(s, a, method="mbir")),
        "psf-sirt": d["score"](reconstruct(s, a, method="psf-sirt", **optics)),
    }
    ours = reconstruct(s, a, method="psf-mbir", **optics)
    assert ours.min() >= 0
    got = d["score"](ours)
    assert got["far"] >= max(b["far"] for b in baselines.values()) + 3, (got, baselines)
    assert got["focus"] >= max(b["focus"] for b in baselines.values()), (got, baselines)


def test_psf_mbir_in_overlapping_slabs_matches_one_piece(single_focus_thick_cell):
    from reconstruction.engine import reconstruct

    d = single_focus_thick_cell
    kw = {"method": "psf-mbir", "zone_plate": d["zp"], "pixel_size_um": d["p"], "iterations": 3}
    whole = reconstruct(d["series"], d["angles"], **kw)
    calls = []
    slabs = reconstruct(d["series"], d["angles"], slab_size=3, callback=calls.append, **kw)
    assert np.max(np.abs(slabs - whole)) <= 1e-3 * float(whole.max() - whole.min())
    assert sum(calls) == whole.shape[0] * (1 + 3)  # the starting WBP, then each pass
    done = []
    reconstruct(
        d["series"], d["angles"], method="psf-mbir", zone_plate=d["zp"], pixel_size_um=d["p"], callback=done.append
    )
    assert sum(done) == whole.shape[0] * (1 + 30)  # the default stop reports the passes it did not need


def test_psf_mbir_is_a_first_class_method_and_refuses_bad_inputs(single_focus_thick_cell):
    from reconstruction.engine import METHOD_INFO, METHOD_OPTIONS, METHODS, PSFMBIROptions, reconstruct

    assert "psf-mbir" in METHODS and "zone-plate" in METHOD_INFO["psf-mbir"]["help"]
    assert METHOD_OPTIONS["psf-mbir"] is PSFMBIROptions
    d = single_focus_thick_cell
    s, a = d["series"][:, :2], d["angles"]
    optics = {"zone_plate": d["zp"], "pixel_size_um": d["p"]}
    with pytest.raises(ValueError, match="psf-mbir needs the zone plate"):
        reconstruct(s, a, method="psf-mbir", pixel_size_um=d["p"])
    with pytest.raises(ValueError, match="axis_offset"):
        reconstruct(s, a, method="psf-mbir", axis_offset=1.5, **optics)
    for bad, message in (
        ({"strength": -1}, "strength must be a non-negative number"),
        ({"weight": float("nan")}, "weight must be a non-negative number"),
        ({"photons": 0}, "photons must be a positive number"),
        ({"iterations": 0}, "iterations must be a positive integer"),
        ({"subsets": 0}, "subsets must be at least 1"),
        ({"focal_plane_um": float("inf")}, "focal plane must be a finite position"),
        ({"pixel_size_um": -0.04}, "pixel"),
    ):
        with pytest.raises(ValueError, match=message):
            reconstruct(s, a, method="psf-mbir", **{**optics, **bad})
    with pytest.raises(ValueError, match="psf-mbir reconstructs a single-focus series"):
        reconstruct(s[:, None], a, method="psf-mbir", focal_planes_um=[0.0], **optics)
    with pytest.raises(ValueError, match="strength applies to mbir, psf-mbir only, not psf-sirt"):
        reconstruct(s, a, method="psf-sirt", strength=2, **optics)


def test_psf_mbir_poisson_weights_run_and_stay_non_negative(single_focus_thick_cell):
    from reconstruction.engine import reconstruct

    d = single_focus_thick_cell
    noisy = add_noise(d["series"], photons=1e4, seed=2)
    optics = {"zone_plate": d["zp"], "pixel_size_um": d["p"]}
    plain = d["score"](reconstruct(noisy, d["angles"], method="psf-mbir", **optics))
    weighted_volume = reconstruct(noisy, d["angles"], method="psf-mbir", photons=1e4, **optics)
    assert weighted_volume.min() >= 0
    weighted = d["score"](weighted_volume)
    assert weighted["far"] >= plain["far"] - 0.5, (weighted, plain)


def test_cli_reconstructs_a_single_focus_series_by_psf_mbir(tmp_path):
    from reconstruction.engine import reconstruct
    from reconstruction.engine.cli import main
    from reconstruction.engine.io import read_mrc, read_tlt
    from reconstruction.engine.psf import ZonePlate

    series = tmp_path / "s.mrc"
    args = ["simulate", "-o", str(series), "--shape", "4", "40", "40", "--pixel-size-um", "0.04"]
    assert main([*args, "--thickness-um", "1.2", "--max-angle", "60", "--step", "10"]) == 0
    out = tmp_path / "v.mrc"
    cmd = ["reconstruct", str(series), "--method", "psf-mbir", "--iterations", "3", "--strength", "2", "-q"]
    assert main([*cmd, "-o", str(out), "--zone-width-nm", "25", "--zones", "500"]) == 0
    vol, px = read_mrc(out)
    assert vol.shape == (4, 40, 40) and vol.min() >= 0 and vol.max() > 0 and px == pytest.approx(0.04)
    proj, _ = read_mrc(series)
    angles = read_tlt(series.with_suffix(".tlt"))
    same = reconstruct(
        proj,
        angles,
        "psf-mbir",
        iterations=3,
        strength=2,
        zone_plate=ZonePlate(520.0, 25.0, zones=500),
        pixel_size_um=0.04,
    )
    np.testing.assert_allclose(vol, same, rtol=1e-5, atol=1e-6)
    assert main([*cmd, "-o", str(out)]) == 2  # without the zone plate: refused in words
