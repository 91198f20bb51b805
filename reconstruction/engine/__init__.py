"""SXT LIMS reconstruction engine: pure numpy/scipy (numba when installed); no Django.

Conventions
-----------
* A tilt series is an array ``(tilts, rows, columns)``; the tilt axis runs along the rows, so row
  ``i`` of every projection is the sinogram of slice ``i``.
* Angles are in degrees; 0° means the beam runs along the slice's thickness axis.
* A volume is ``(rows, thickness, columns)``; slice ``i`` is the x–z plane of row ``i``. The
  thickness defaults to the column count.
* Line integrals are those of scikit-image's ``radon`` for the same angles (``circle=True``
  sinograms, transposed to ``(tilts, columns)``); detector and volume centres are at
  ``columns // 2`` and ``thickness // 2``. Values are per voxel length: a volume in linear
  absorption coefficient (µm⁻¹) is the reconstruction divided by the voxel size in µm.
* A focal series is ``(tilts, focal planes, rows, columns)`` with ``focal_planes_um`` and
  ``pixel_size_um``; :func:`reconstruct` hands it to
  :func:`reconstruction.engine.focus.reconstruct_focal_series`.

Public API: :func:`reconstruct`, :func:`forward_project`, :func:`back_project`, and the modules
``io``, ``prepare``, ``align``, ``wbp``, ``iterative``, ``validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.align import Alignment, align, apply_shifts
from reconstruction.engine.iterative import CGLS_DEFAULTS, SIRT_DEFAULTS, cgls, sirt
from reconstruction.engine.mbir import MBIR_DEFAULTS, mbir
from reconstruction.engine.prepare import (
    absorbance,
    bin_projections,
    crop,
    normalize,
    remove_outliers,
)
from reconstruction.engine.projectors import back_project, forward_project
from reconstruction.engine.validate import check_angles, check_projections
from reconstruction.engine.wbp import FILTERS, wbp

__all__ = [
    "CGLS_DEFAULTS",
    "FILTERS",
    "MBIR_DEFAULTS",
    "METHODS",
    "METHOD_INFO",
    "SIRT_DEFAULTS",
    "Alignment",
    "absorbance",
    "align",
    "apply_shifts",
    "back_project",
    "bin_projections",
    "cgls",
    "crop",
    "forward_project",
    "mbir",
    "normalize",
    "reconstruct",
    "remove_outliers",
    "sirt",
    "value_note",
    "wbp",
]

METHODS = ("wbp", "sirt", "cgls", "mbir")

#: One sentence per method for forms and the command line, and what its values are.
METHOD_INFO = {
    "wbp": {
        "label": "Weighted back-projection",
        "help": "Seconds, not minutes: the quick look at a fresh series (noisy on low-dose data).",
        "absolute": True,
    },
    "sirt": {
        "label": "SIRT (ordered subsets, non-negative)",
        "help": "Cleaner than WBP on a missing wedge; its iteration count adapts to the data's noise.",
        "absolute": True,
    },
    "cgls": {
        "label": "CGLS (conjugate gradients)",
        "help": "Least squares without constraints; sharp on clean data, stop early on noisy data.",
        "absolute": True,
    },
    "mbir": {
        "label": "Regularised (model-based, edge-preserving)",
        "help": "The final volume: noise-weighted, edge-preserving prior, non-negative; a few times WBP's time.",
        "absolute": True,
    },
}


def value_note(method: str, angles: ArrayLike, *, correct_wedge: bool | None = None) -> dict[str, Any]:
    """What a volume's values are, for its metadata: ``{"absolute": bool, "note": str}``.

    Every method gives the true linear absorption of uniform regions (within 5% on ±60–65° data,
    tested) except WBP with the missing-wedge correction switched off on a limited-range series.
    """
    from reconstruction.engine.wbp import has_missing_wedge

    m = str(method).lower()
    if m not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    wedge = has_missing_wedge(check_angles(angles))
    if m == "wbp" and wedge and correct_wedge is False:
        return {
            "absolute": False,
            "note": "values are not absolute: WBP without the missing-wedge correction leaves "
            "uniform regions 15–25% off their true absorption on a limited tilt range",
        }
    note = "linear absorption per voxel length (divide by the voxel size in µm for µm⁻¹)"
    if wedge:
        note += "; uniform regions within 5% of their true absorption despite the missing wedge"
    return {"absolute": True, "note": note}


def reconstruct(
    projections: ArrayLike,
    angles: ArrayLike,
    method: str = "wbp",
    iterations: int | None = None,
    *,
    thickness: int | None = None,
    filter_name: str = "ram-lak",
    subsets: int | None = None,
    nonnegative: bool | None = None,
    relaxation: float | None = None,
    ray_iterations: int | None = None,
    slab_size: int | None = None,
    axis_offset: float = 0.0,
    circle: bool = False,
    backend: str = "auto",
    callback: Callable[[int], None] | None = None,
    correct_wedge: bool | None = None,
    strength: float | None = None,
    photons: float | None = None,
    focal_planes_um: ArrayLike | None = None,
    pixel_size_um: float | None = None,
    **focus_options: Any,
) -> NDArray[np.float32]:
    """Reconstruct a parallel-beam single-axis tilt series.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns) or (tilts, planes, rows, columns)
        Absorbance (−ln I/I0). A 4-D focal series goes to the focal-series reconstruction.
    angles : array_like, shape (tilts,)
        Tilt angles in degrees, strictly monotonic, no duplicates.
    method : {"wbp", "sirt", "cgls", "mbir"}
        Weighted back-projection, SIRT (ordered subsets, non-negative by default), CGLS, or the
        regularised model-based method (:func:`reconstruction.engine.mbir.mbir`).
    iterations : int, optional
        Iterations of SIRT/CGLS (defaults: :data:`SIRT_DEFAULTS`, :data:`CGLS_DEFAULTS`).
    thickness : int, optional
        Volume thickness in voxels (default: the column count).
    filter_name : str
        WBP filter: "ram-lak", "shepp-logan", "cosine", "hamming", "hann".
    subsets, nonnegative, relaxation, ray_iterations : optional
        SIRT settings (see :class:`reconstruction.engine.iterative.IterativeOptions`).
    slab_size : int, optional
        Slices per slab (bounded memory); the result does not depend on it.
    axis_offset : float
        Tilt-axis position relative to ``columns // 2`` in pixels (see :func:`align`).
    circle : bool
        Reconstruct only the circle of radius ``columns // 2`` (object known to lie inside it).
    backend : {"auto", "numba", "numpy"}
        Projector kernels.
    callback : callable, optional
        Progress: called with a number of slice-units done (total ``rows`` for WBP,
        ``rows * iterations`` for SIRT/CGLS, ``rows * (iterations + 1)`` for mbir; for a focal series ``rows`` for WBP and
        ``rows * (1 + iterations)`` for SIRT, which starts from the WBP).
    correct_wedge : bool, optional
        WBP only: restore the low frequencies a missing wedge takes, so uniform regions keep their
        true absorption (default: on when the angles leave a missing wedge; see
        :func:`reconstruction.engine.wbp.wedge_correction`).
    strength : float, optional
        mbir only: multiplies the data-driven regularisation weight (default 1; larger = smoother).
    photons : float, optional
        mbir only: incident photons per pixel, when known from the flats (Poisson weighting).
    focal_planes_um, pixel_size_um, **focus_options
        For a 4-D focal series only, passed to
        :func:`reconstruction.engine.focus.reconstruct_focal_series`.

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns)
    """
    m = str(method).lower()
    if m not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    p = check_projections(projections, ndim=(3, 4))
    if p.ndim == 4:
        if focal_planes_um is None or pixel_size_um is None:
            raise ValueError(
                "a 4-D (tilts, focal planes, rows, columns) series needs focal_planes_um and pixel_size_um"
            )
        check_angles(angles, p.shape[0])
        from reconstruction.engine.focus import reconstruct_focal_series

        return reconstruct_focal_series(
            p,
            angles,
            focal_planes_um=focal_planes_um,
            pixel_size_um=pixel_size_um,
            method=m,
            iterations=iterations,
            thickness=thickness,
            slab_size=slab_size,
            callback=callback,
            **focus_options,
        )
    if focus_options:
        raise ValueError(f"unknown options for a 3-D series: {', '.join(sorted(focus_options))}")
    common = dict(
        thickness=thickness,
        slab_size=slab_size,
        axis_offset=axis_offset,
        circle=circle,
        backend=backend,
        callback=callback,
    )
    if m != "mbir" and (strength is not None or photons is not None):
        raise ValueError("strength and photons apply to mbir only")
    if correct_wedge is not None and m != "wbp":
        raise ValueError("correct_wedge applies to wbp only")
    if m == "wbp":
        if iterations is not None:
            raise ValueError("iterations apply to sirt and cgls, not wbp")
        return wbp(p, angles, filter_name=filter_name, correct_wedge=correct_wedge, **common)
    if m == "sirt":
        return sirt(
            p,
            angles,
            iterations=iterations,
            subsets=subsets,
            nonnegative=nonnegative,
            relaxation=relaxation,
            ray_iterations=ray_iterations,
            **common,
        )
    if m == "mbir":
        return mbir(
            p,
            angles,
            iterations=iterations,
            strength=strength,
            photons=photons,
            subsets=subsets,
            **common,
        )
    return cgls(p, angles, iterations=iterations, **common)
