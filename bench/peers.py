"""Benchmark section: the engine's regularised method and SIRT against the model-based peers.

One small missing-wedge case, run side by side in one process: a cell-like slice (absorption
values of the engine's cell phantom, µm⁻¹ at 520 eV, times the voxel size) projected at ±65° by
ASTRA's CPU projector (``linear``, not the engine's own), clean and with Poisson noise at 10⁴ and
2·10³ incident photons per pixel. Reconstructed by the engine (WBP, SIRT and mbir at their
defaults, with nothing but data and angles; mbir also with the photon count known), svmbir (its
defaults, run to convergence) and mbirjax (its defaults). PSNR and SSIM against the truth on the
raw values (no rescaling: the values are absorption coefficients), every reconstruction zeroed
outside the inscribed circle; times are warm (each method ran once on the same shape before, so
JIT compilation and svmbir's system-matrix cache are not counted).

Run alone: ``python -m bench.peers`` (prints the Markdown section), or
``python -m bench.run --only bench.peers``.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
import warnings

import numpy as np

N = 128
PIXEL_UM = 0.04
ANGLES = np.arange(-65.0, 66.0, 1.0)
PHOTONS = (None, 1e4, 2e3)
#: svmbir "to convergence": stop when the update is below 0.001% (default 0.02%), up to 1000 passes.
SVMBIR_STOP, SVMBIR_MAX = 0.001, 1000


def cell_slice(n: int = N, seed: int = 3) -> np.ndarray:
    """A central x–z slice of the engine's cell phantom, per voxel length (µm⁻¹ × voxel size)."""
    from reconstruction.engine.phantoms import cell_phantom

    ph = cell_phantom((8, n, n), PIXEL_UM, seed=seed)
    return (ph.volume[4] * PIXEL_UM).astype(np.float32)


def astra_sinogram(image: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """(tilts, columns) line integrals by ASTRA's CPU ``linear`` projector.

    ASTRA centres the detector and the volume at their geometric centres ``(n − 1) / 2``, as the engine
    does (and svmbir, mbirjax); scikit-image's ``radon`` centres at ``n // 2``, so for even ``n`` its
    sinograms are half a pixel off these.
    """
    import astra

    n = image.shape[-1]
    vol = astra.create_vol_geom(image.shape[0], n)
    proj = astra.create_proj_geom("parallel", 1.0, n, np.deg2rad(angles_deg))
    pid = astra.create_projector("linear", proj, vol)
    sid, sino = astra.create_sino(np.ascontiguousarray(image, dtype=np.float64), pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    return np.asarray(sino, dtype=np.float32)


def noisy(sino: np.ndarray, photons: float | None, seed: int = 0) -> np.ndarray:
    """Absorbance from Poisson counts at ``photons`` incident per pixel (a count of 0 read as 0.5)."""
    if photons is None:
        return sino
    counts = np.random.default_rng(seed).poisson(photons * np.exp(-sino.astype(np.float64)))
    return (-np.log(np.maximum(counts, 0.5) / photons)).astype(np.float32)


# Each method is ``fn(sino, photons, warmup)``; ``warmup`` runs it briefly on the same shape first
# (numba and JAX compilation, svmbir's system-matrix cache), untimed.


def _engine(method: str, **kw):
    from reconstruction.engine import reconstruct

    def fn(sino, photons, warmup=False):
        extra = {"iterations": 1} if warmup and method != "wbp" else {}
        return reconstruct(sino[:, None, :], ANGLES, method, **kw, **extra)[0]

    return fn


def _engine_mbir_photons(sino, photons, warmup=False):
    from reconstruction.engine import reconstruct

    return reconstruct(sino[:, None, :], ANGLES, "mbir", photons=photons, iterations=1 if warmup else None)[0]


def _svmbir(sino, photons, warmup=False):
    import svmbir

    rec = svmbir.recon(
        sino[:, None, :].astype(np.float32),
        np.deg2rad(ANGLES),
        stop_threshold=SVMBIR_STOP,
        max_iterations=1 if warmup else SVMBIR_MAX,
        verbose=0,
    )
    return np.asarray(rec)[0].T  # svmbir's (rows, columns) are the transpose of scikit-image's


def _mbirjax(sino, photons, warmup=False):
    import mbirjax

    model = mbirjax.ParallelBeamModel((len(ANGLES), 1, sino.shape[1]), np.deg2rad(ANGLES))
    extra = {"max_iterations": 1} if warmup else {}
    rec = model.recon(sino[:, None, :], print_logs=False, **extra)
    rec = rec[0] if isinstance(rec, tuple) else rec
    return np.asarray(rec)[:, :, 0]


def _scores(truth: np.ndarray, rec: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from reconstruction.engine.wbp import circle_mask

    # the inscribed circle about the geometric centre (n - 1) / 2, the rotation centre of ASTRA and the engine
    inside = circle_mask(*truth.shape)
    r = np.where(inside, np.asarray(rec, dtype=np.float64), 0.0)
    t = truth.astype(np.float64)
    rng = float(t.max())
    return peak_signal_noise_ratio(t, r, data_range=rng), structural_similarity(t, r, data_range=rng)


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run(quick: bool = False) -> str:
    n = 64 if quick else N
    truth = cell_slice(n)
    clean = astra_sinogram(truth, ANGLES)
    methods = {
        "engine WBP (defaults)": _engine("wbp"),
        "engine SIRT (defaults)": _engine("sirt"),
        "engine mbir (defaults: data and angles only)": _engine("mbir"),
        "engine mbir (photons known)": _engine_mbir_photons,
    }
    missing = []
    for label, fn, package in (
        (f"svmbir {_version('svmbir')} (defaults, to convergence)", _svmbir, "svmbir"),
        (f"mbirjax {_version('mbirjax')} (defaults)", _mbirjax, "mbirjax"),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                __import__(package)
        except ImportError as exc:
            missing.append(f"{package} ({exc})")
            continue
        methods[label] = fn
    results: dict[tuple[str, str], tuple[float, float, float]] = {}
    warm: set[str] = set()
    cases = [("clean" if p is None else f"{p:.0e} photons".replace("+0", ""), p) for p in PHOTONS]
    for case, photons in cases:
        sino = noisy(clean, photons, seed=1)
        for label, fn in methods.items():
            if "photons known" in label and photons is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if label not in warm:  # JIT compilation, system-matrix caches
                    fn(sino, photons if photons is not None else 1e4, True)
                    warm.add(label)
                t0 = time.perf_counter()
                rec = fn(sino, photons)
                dt = time.perf_counter() - t0
            results[(case, label)] = (*_scores(truth, rec), dt)
    load = os.getloadavg()
    lines = [
        "## Model-based peers: engine mbir and SIRT against svmbir and mbirjax (one run, side by side)\n",
        f"{n}×{n} slice of the engine's cell phantom ({PIXEL_UM * 1000:.0f} nm voxels, absorption at 520 eV), "
        f"{len(ANGLES)} tilts at ±65° projected by ASTRA {_version('astra-toolbox')} (CPU `linear` projector); "
        "Poisson noise at the incident photons per pixel given. PSNR (peak = the truth's maximum) / SSIM on "
        "the raw values inside the inscribed circle, and warm wall time. svmbir: defaults, stop threshold "
        f"{SVMBIR_STOP}% (default 0.02%), at most {SVMBIR_MAX} iterations; mbirjax: `ParallelBeamModel.recon` "
        "defaults. Command: `python -m bench.peers` "
        f"(load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end; 2 cores shared, times ±2×).\n",
        "| case | method | PSNR dB | SSIM | time |",
        "|---|---|---|---|---|",
    ]
    for (case, label), (p, s, dt) in results.items():
        lines.append(f"| {case} | {label} | {p:.2f} | {s:.3f} | {dt:.2f} s |")
    lines.append("")
    for case, _ in cases:
        ours = results.get((case, "engine mbir (defaults: data and angles only)"))
        peers = {k[1]: v for k, v in results.items() if k[0] == case and not k[1].startswith("engine")}
        if not ours or not peers:
            continue
        fastest = min(v[2] for v in peers.values())
        best_p = max(v[0] for v in peers.values())
        best_s = max(v[1] for v in peers.values())
        lines.append(
            f"- {case}: engine mbir {ours[0] - best_p:+.2f} dB PSNR and {ours[1] - best_s:+.3f} SSIM against "
            f"the better peer, {fastest / ours[2]:.1f}× the faster peer's speed."
        )
    if missing:
        lines.append(f"\nNot measured (cannot be imported here): {'; '.join(missing)}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv[1:]))
