"""Files written by other people's software reconstruct through the Python API and the command line.

NXtomo files are written by ESRF's ``nxtomo`` package (its default entry names ``entry0000``, raw
counts with dark and flat frames told apart by ``image_key``, alignment frames); MRC stacks follow
IMOD's conventions (``.st`` stack with the tilt axis along Y, pixel size in Å in the header, angles in
a ``.tlt`` file of the same stem). Projections come from scikit-image's ``radon``, not the engine's
projector, and both paths are checked against the phantom with thresholds raw intensities miss.
"""

from __future__ import annotations

import mrcfile
import numpy as np
import pint
import pytest
from skimage.draw import disk, ellipse
from skimage.transform import radon

from reconstruction.engine import cli, reconstruct
from reconstruction.engine import io as eio

N = 64
ROWS = 3
PIXEL_UM = 0.05
ANGLES = np.arange(-65.0, 66.0, 1.0)
DARK = 20.0
UREG = pint.get_application_registry()


def cell_slice() -> np.ndarray:
    """A cell-like slice in µm⁻¹ (ice, cytoplasm, nucleus, lipid droplet)."""
    img = np.zeros((N, N), np.float32)
    img[disk((N // 2, N // 2), N // 2 - 3, shape=img.shape)] = 0.11
    img[ellipse(N // 2, N // 2, 0.28 * N, 0.36 * N, shape=img.shape)] = 0.37
    img[ellipse(N // 2 + 2, N // 2 + 8, 0.15 * N, 0.17 * N, shape=img.shape)] = 0.49
    img[disk((N // 2 - 3, N // 2 - 10), 0.12 * N, shape=img.shape)] = 0.88
    return img


@pytest.fixture(scope="module")
def phantom():
    return cell_slice()


def phantom_absorbance(image: np.ndarray, angles: np.ndarray = ANGLES) -> np.ndarray:
    sino = radon(image * PIXEL_UM, angles, circle=True).T.astype(np.float32)
    return np.repeat(sino[:, None, :], ROWS, axis=1)  # (tilts, rows, columns)


def _counts(absorbance: np.ndarray, rng: np.random.Generator):
    """Raw detector counts with an uneven beam: flat I0 varies 2× across the field."""
    i0 = np.linspace(500.0, 1000.0, N)[None, :] * np.ones((ROWS, 1))
    raw = DARK + i0[None] * np.exp(-absorbance)
    flats = DARK + i0[None] * (1 + 0.002 * rng.standard_normal((3, ROWS, N)))
    darks = DARK + 0.5 * rng.standard_normal((2, ROWS, N))
    return (np.round(a).astype(np.uint16) for a in (raw, flats, darks))


def write_with_nxtomo_package(path, entries: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """One NXtomo entry per item, written by ``nxtomo`` (darks, flats, projections, 2 alignment frames)."""
    from nxtomo import NXtomo
    from nxtomo.nxobject.nxdetector import ImageKey

    for name, absorbance in entries.items():
        raw, flats, darks = _counts(absorbance, rng)
        alignment = raw[[len(raw) // 2, len(raw) // 2]] // 2  # return projections at 0°, must be dropped
        tomo = NXtomo()
        tomo.instrument.detector.data = np.concatenate([darks, flats, raw, alignment])
        tomo.instrument.detector.image_key_control = (
            [ImageKey.DARK_FIELD] * len(darks)
            + [ImageKey.FLAT_FIELD] * len(flats)
            + [ImageKey.PROJECTION] * len(raw)
            + [ImageKey.ALIGNMENT] * 2
        )
        angles = np.concatenate([np.zeros(len(darks) + len(flats)), ANGLES, [0.0, 0.0]])
        tomo.sample.rotation_angle = angles * UREG.degree
        tomo.instrument.detector.x_pixel_size = PIXEL_UM * 1e-6 * UREG.meter
        tomo.instrument.detector.y_pixel_size = PIXEL_UM * 1e-6 * UREG.meter
        tomo.instrument.beam.incident_energy = 0.52 * UREG.keV
        tomo.save(file_path=str(path), data_path=name)


def _write_imod_stack(path, transmission: np.ndarray) -> None:
    """An IMOD-style tilt series: float32 sections (nz = tilts, ny = rows along the tilt axis, nx)."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(transmission.astype(np.float32))
        mrc.voxel_size = PIXEL_UM * 1e4  # Å
        mrc.update_header_stats()
    eio.write_tlt(path.with_suffix(".tlt"), ANGLES)


def _errors(volume: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB, relative L2 error) of every row against the phantom, in µm⁻¹, inside the circle."""
    zz, xx = np.mgrid[:N, :N] - N // 2
    inside = zz**2 + xx**2 <= (N // 2 - 2) ** 2
    lac = volume / PIXEL_UM
    diff = (lac - image[None])[:, inside]
    mse = float(np.mean(diff**2))
    rel = float(np.linalg.norm(diff) / np.linalg.norm(np.broadcast_to(image[inside], diff.shape)))
    return 10 * np.log10(float(image.max()) ** 2 / mse), rel


def _cli(argv: list[str], capsys) -> str:
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 0, err
    return err


@pytest.fixture(scope="module")
def nxtomo_file(tmp_path_factory, phantom):
    path = tmp_path_factory.mktemp("nx") / "scan.nx"
    rng = np.random.default_rng(13)
    write_with_nxtomo_package(
        path, {"entry0000": phantom_absorbance(phantom), "entry0001": phantom_absorbance(2 * phantom)}, rng
    )
    return path


def test_nxtomo_package_file_is_found_by_its_definition_not_its_name(nxtomo_file):
    assert eio.nxtomo_entries(nxtomo_file) == ["entry0000", "entry0001"]
    series = eio.read_tilt_series(nxtomo_file)
    assert series.entry == "entry0000" and series.entries == ("entry0000", "entry0001")
    assert series.projections.shape == (len(ANGLES), ROWS, N)  # alignment frames dropped
    assert series.flats.shape == (3, ROWS, N) and series.darks.shape == (2, ROWS, N)
    np.testing.assert_allclose(series.angles, ANGLES)
    assert series.pixel_size_um == pytest.approx(PIXEL_UM)
    assert series.photon_energy_ev == pytest.approx(520.0)
    assert eio.nxtomo_data_shape(nxtomo_file) == (2 + 3 + len(ANGLES) + 2, ROWS, N)
    assert eio.read_tilt_series(nxtomo_file, entry="entry0001").entry == "entry0001"


def test_unknown_entry_is_refused_naming_the_entries_there(nxtomo_file):
    with pytest.raises(ValueError, match=r"no NXtomo entry 'entry'.*entry0000, entry0001"):
        eio.read_nxtomo(nxtomo_file, entry="entry")


def test_file_without_an_nxtomo_entry_is_refused_in_words(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("images", data=np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="no NXtomo entry.*top level holds: images"):
        eio.read_tilt_series(tmp_path / "other.h5", ANGLES[:3])


def test_nxentry_without_definition_is_read_with_units_converted(tmp_path):
    import h5py

    frames = np.random.default_rng(2).random((5, 4, 6)).astype(np.float32)
    with h5py.File(tmp_path / "beamline.h5", "w") as f:
        scan = f.create_group("scan_7")
        scan.attrs["NX_class"] = "NXentry"
        data = scan.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data["data"] = frames
        data["image_key"] = np.array([2, 0, 0, 0, 1])
        ang = scan.create_dataset("sample/rotation_angle", data=np.deg2rad([0.0, -30.0, 0.0, 30.0, 0.0]))
        ang.attrs["units"] = "rad"
        scan.create_dataset("sample/x_pixel_size", data=25.0).attrs["units"] = "nm"
        scan.create_dataset("instrument/detector/count_time", data=[2.0] * 5).attrs["units"] = "fortnight"
        scan.create_dataset("instrument/source/energy", data=520.0).attrs["units"] = "eV"
    series = eio.read_tilt_series(tmp_path / "beamline.h5")
    assert series.entry == "scan_7"
    np.testing.assert_allclose(series.angles, [-30.0, 0.0, 30.0])
    np.testing.assert_array_equal(series.projections, frames[1:4])
    np.testing.assert_array_equal(series.darks, frames[:1])
    assert series.pixel_size_um == pytest.approx(0.025)
    assert series.photon_energy_ev == pytest.approx(520.0)
    assert series.exposure_s is None  # a unit it cannot convert: unknown, not wrong


def test_nxtomo_counts_reconstruct_through_api_and_command_line_alike(nxtomo_file, phantom, tmp_path, capsys):
    series = eio.read_tilt_series(nxtomo_file)
    api = reconstruct(series.absorbance(), series.angles, "wbp")
    psnr, rel = _errors(api, phantom)
    assert psnr > 23.5 and rel < 0.17, (psnr, rel)
    exact = reconstruct(phantom_absorbance(phantom), ANGLES, "wbp")  # what noise-free absorbance gives
    assert np.linalg.norm(api - exact) < 0.03 * np.linalg.norm(exact)
    raw_psnr, _ = _errors(reconstruct(series.projections, series.angles, "wbp"), phantom)
    assert raw_psnr < 0, raw_psnr  # what the command line wrote before: raw intensities

    out = tmp_path / "cli.mrc"
    err = _cli(["reconstruct", str(nxtomo_file), "-o", str(out)], capsys)
    assert "entry0000 of 2" in err
    vol, px = eio.read_mrc(out)
    assert px == pytest.approx(PIXEL_UM)
    np.testing.assert_allclose(vol, api, rtol=1e-5, atol=1e-6)


def test_command_line_reads_the_entry_it_is_given(nxtomo_file, phantom, tmp_path, capsys):
    out = tmp_path / "second.mrc"
    _cli(["reconstruct", str(nxtomo_file), "--entry", "entry0001", "-o", str(out), "-q"], capsys)
    vol, _ = eio.read_mrc(out)
    psnr, rel = _errors(vol, 2 * phantom)
    assert psnr > 23.5 and rel < 0.17, (psnr, rel)
    assert cli.main(["reconstruct", str(nxtomo_file), "--entry", "entry9", "-o", str(out), "-q"]) == 2
    assert "entry0000, entry0001" in capsys.readouterr().err


def test_nxtomo_counts_sirt_through_command_line_matches_api(nxtomo_file, phantom, tmp_path, capsys):
    series = eio.read_tilt_series(nxtomo_file)
    api = reconstruct(series.absorbance(), series.angles, "sirt", iterations=20)
    out = tmp_path / "sirt.mrc"
    _cli(["reconstruct", str(nxtomo_file), "--method", "sirt", "--iterations", "20", "-o", str(out), "-q"], capsys)
    vol, _ = eio.read_mrc(out)
    np.testing.assert_allclose(vol, api, rtol=1e-4, atol=1e-5)
    psnr, rel = _errors(vol, phantom)
    assert psnr > 23.5 and rel < 0.17, (psnr, rel)


@pytest.fixture(scope="module")
def imod_stack(tmp_path_factory, phantom):
    path = tmp_path_factory.mktemp("imod") / "cell.st"
    _write_imod_stack(path, np.exp(-phantom_absorbance(phantom)))
    return path


def test_imod_transmission_stack_reconstructs_through_api_and_command_line(imod_stack, phantom, tmp_path, capsys):
    series = eio.read_tilt_series(imod_stack)  # angles from cell.tlt, pixel size from the header
    np.testing.assert_allclose(series.angles, ANGLES, atol=1e-3)
    assert series.pixel_size_um == pytest.approx(PIXEL_UM)
    api = reconstruct(series.absorbance("transmission"), series.angles, "wbp")
    psnr, rel = _errors(api, phantom)
    assert psnr > 23.5 and rel < 0.17, (psnr, rel)
    as_is, _ = _errors(reconstruct(series.projections, series.angles, "wbp"), phantom)
    assert as_is < psnr - 10, (as_is, psnr)  # transmission taken for absorbance is far off

    out = tmp_path / "cell_rec.mrc"
    _cli(["reconstruct", str(imod_stack), "--values", "transmission", "-o", str(out), "-q"], capsys)
    with mrcfile.open(out) as mrc:  # IMOD's tilt output: one x–z slice per section
        assert mrc.data.shape == (ROWS, N, N)
        assert float(mrc.voxel_size.x) == pytest.approx(PIXEL_UM * 1e4)
        np.testing.assert_allclose(mrc.data, api, rtol=1e-5, atol=1e-6)


def test_imod_absorbance_stack_is_taken_as_is(tmp_path, phantom, capsys):
    path = tmp_path / "abs.mrc"
    _write_imod_stack(path, phantom_absorbance(phantom))
    out = tmp_path / "abs_rec.mrc"
    _cli(["reconstruct", str(path), "-o", str(out), "-q"], capsys)
    vol, _ = eio.read_mrc(out)
    psnr, rel = _errors(vol, phantom)
    assert psnr > 23.5 and rel < 0.17, (psnr, rel)


def test_counts_are_normalised_by_darks_and_flats_then_logged():
    from reconstruction.engine.prepare import to_absorbance

    rng = np.random.default_rng(5)
    absorbance = rng.uniform(0.0, 2.0, (4, ROWS, N)).astype(np.float32)
    raw, flats, darks = (a.astype(np.float64) for a in _counts(absorbance, rng))
    expected = -np.log((raw - darks.mean(0)) / (flats.mean(0) - darks.mean(0)))
    got = to_absorbance(raw, flats=flats, darks=darks)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got, absorbance, atol=0.02)  # up to the counts' rounding and flat noise
    np.testing.assert_allclose(to_absorbance(np.exp(-absorbance), "transmission"), absorbance, atol=1e-5)
    with pytest.raises(ValueError, match="unknown projection values"):
        to_absorbance(absorbance, "photons")


def test_counts_without_flats_are_refused(imod_stack, tmp_path, capsys):
    status = cli.main(["reconstruct", str(imod_stack), "--values", "counts", "-o", str(tmp_path / "x.mrc"), "-q"])
    assert status == 2
    assert "need flat frames" in capsys.readouterr().err
