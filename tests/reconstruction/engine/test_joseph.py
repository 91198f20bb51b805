"""Joseph's projector pair: the line-integral model the regularised method runs on."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from reconstruction.engine import projectors
from reconstruction.engine.joseph import back_slab_joseph, forward_slab_joseph
from reconstruction.engine.operators import JosephProjector, ParallelBeamProjector
from reconstruction.engine.phantoms import cell_phantom
from reconstruction.engine.projectors import back_slab, forward_slab, geometry
from reconstruction.engine.simulate import project

BACKENDS = ["numpy"] + (["numba"] if projectors.HAVE_NUMBA else [])
ANGLES = np.array([-130.0, -65.0, -45.0, -30.0, 0.0, 12.5, 45.0, 60.0, 90.0, 179.0])


def joseph_by_ray_marching(nz: int, nx: int, angles: np.ndarray, axis_offset: float = 0.0) -> np.ndarray:
    """The system matrix by Joseph's own recipe, ray by ray: cross the slice one voxel row at a time
    (one column at a time where the ray runs closer to x than to z), interpolate linearly between the
    two voxels the ray passes between (nothing beyond the edge), weight each crossing by the path
    length per row (or column)."""
    cx, cz = (nx - 1) / 2, (nz - 1) / 2
    mat = np.zeros((len(angles), nx, nz, nx))
    for a, th in enumerate(np.deg2rad(angles)):
        c, s = np.cos(th), np.sin(th)
        for i in range(nx):
            u = i - cx - axis_offset  # the ray: c (x - cx) - s (z - cz) = u
            if abs(c) >= abs(s):
                for z in range(nz):
                    xf = cx + (u + s * (z - cz)) / c
                    x0 = int(np.floor(xf))
                    for xi, w in ((x0, 1 - (xf - x0)), (x0 + 1, xf - x0)):
                        if 0 <= xi < nx:
                            mat[a, i, z, xi] += w / abs(c)
            else:
                for x in range(nx):
                    zf = cz + (c * (x - cx) - u) / s
                    z0 = int(np.floor(zf))
                    for zi, w in ((z0, 1 - (zf - z0)), (z0 + 1, zf - z0)):
                        if 0 <= zi < nz:
                            mat[a, i, zi, x] += w / abs(s)
    return mat.reshape(len(angles) * nx, nz * nx)


def _matrix(nz, nx, angles, backend, axis_offset=0.0):
    """The kernels' matrix: every voxel an impulse in a slice of its own."""
    cos, sin = geometry(angles)
    impulses = np.eye(nz * nx, dtype=np.float32).reshape(nz, nx, nz * nx)
    return forward_slab_joseph(impulses, cos, sin, axis_offset=axis_offset, backend=backend).reshape(-1, nz * nx)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("nz", "nx", "offset"), [(12, 12, 0.0), (9, 13, 0.0), (11, 10, 1.3)])
def test_the_kernels_are_josephs_method(backend, nz, nx, offset):
    ref = joseph_by_ray_marching(nz, nx, ANGLES, offset)
    np.testing.assert_allclose(_matrix(nz, nx, ANGLES, backend, offset), ref, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("slices", [1, 3, 11])
@pytest.mark.parametrize("serial_work", [projectors.SERIAL_WORK, 0])
def test_back_projection_is_the_exact_transpose(backend, slices, serial_work, monkeypatch):
    # SERIAL_WORK 0 sends even this small problem to the threaded kernels
    monkeypatch.setattr(projectors, "SERIAL_WORK", serial_work)
    rng = np.random.default_rng(slices)
    angles = np.arange(-65.0, 66.0, 5.0)
    cos, sin = geometry(angles)
    x = rng.random((14, 17, slices)).astype(np.float32)
    y = rng.random((len(angles), 17, slices)).astype(np.float32)
    ax = forward_slab_joseph(x, cos, sin, axis_offset=0.4, backend=backend)
    aty = back_slab_joseph(y, cos, sin, 14, axis_offset=0.4, backend=backend)
    lhs, rhs = np.vdot(ax.astype(np.float64), y), np.vdot(x.astype(np.float64), aty)
    assert abs(lhs - rhs) <= 1e-6 * abs(lhs)
    if backend == "numba":  # the same weights as the numpy kernels
        np.testing.assert_allclose(ax, forward_slab_joseph(x, cos, sin, axis_offset=0.4, backend="numpy"), rtol=1e-5)
        np.testing.assert_allclose(aty, back_slab_joseph(y, cos, sin, 14, axis_offset=0.4, backend="numpy"), rtol=1e-5)


def test_face_on_it_is_the_pixel_driven_pair_and_oblique_it_is_narrower():
    rng = np.random.default_rng(1)
    x = rng.random((16, 16, 2)).astype(np.float32)
    cos, sin = geometry([0.0, 90.0])
    np.testing.assert_allclose(forward_slab_joseph(x, cos, sin), forward_slab(x, cos, sin), atol=1e-5)
    y = rng.random((2, 16, 2)).astype(np.float32)
    np.testing.assert_allclose(back_slab_joseph(y, cos, sin, 16), back_slab(y, cos, sin, 16), atol=1e-5)
    # at 45° a voxel's triangle is 1/√2 wide: a voxel on a pixel centre reaches that pixel alone
    point = np.zeros((15, 15, 1), np.float32)
    point[7, 7] = 1
    c45, s45 = geometry([45.0])
    row = forward_slab_joseph(point, c45, s45)[0, :, 0]
    assert np.count_nonzero(row) == 1 and row[7] == pytest.approx(np.sqrt(2), rel=1e-6)
    # the pixel-driven pair gives it the face-on weight 1 at every angle
    assert forward_slab(point, c45, s45)[0, 7, 0] == pytest.approx(1.0)


def test_mbir_over_josephs_pair_fits_projections_it_did_not_make(monkeypatch):
    """Line integrals of a slice drawn four times finer (bilinear rays of the simulator, four detector
    pixels averaged into one): mbir over Joseph's pair gets clearly closer to the truth than over the
    pixel-driven pair, whose footprint is right only face on."""
    n, f, pixel = 64, 4, 0.04
    angles = np.arange(-65.0, 66.0, 1.5)
    fine = cell_phantom((8, n * f, n * f), pixel / f, seed=3).volume[3:5] * (pixel / f)
    truth = fine.reshape(2, n, f, n, f).sum(axis=(2, 4)) / f  # per coarse voxel length
    series = project(fine, angles).reshape(len(angles), 2, n, f).mean(axis=-1)
    mbir_module = importlib.import_module("reconstruction.engine.mbir")

    def psnr(rec):
        return 10 * np.log10(truth.max() ** 2 / np.mean((rec - truth) ** 2))

    assert mbir_module.JosephProjector is JosephProjector  # what mbir runs on
    joseph = psnr(mbir_module.mbir(series, angles))
    monkeypatch.setattr(mbir_module, "JosephProjector", ParallelBeamProjector)
    pixel_driven = psnr(mbir_module.mbir(series, angles))
    assert joseph > pixel_driven + 1.0, (joseph, pixel_driven)  # 31.3 against 29.9 dB when written
