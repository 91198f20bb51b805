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
    "METHODS",
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
    "normalize",
    "reconstruct",
    "remove_outliers",
    "sirt",
    "wbp",
]

METHODS = ("wbp", "sirt", "cgls")


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
    method : {"wbp", "sirt", "cgls"}
        Weighted back-projection, SIRT (ordered subsets, non-negative by default) or CGLS.
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
        ``rows * iterations`` for SIRT/CGLS; for a focal series ``rows`` for WBP and
        ``rows * (1 + iterations)`` for SIRT, which starts from the WBP).
    correct_wedge : bool, optional
        WBP only: restore the low frequencies a missing wedge takes, so uniform regions keep their
        true absorption (default: on when the angles leave a missing wedge; see
        :func:`reconstruction.engine.wbp.wedge_correction`).
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
    return cgls(p, angles, iterations=iterations, **common)
