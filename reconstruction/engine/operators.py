"""Linear forward models the solvers run on: forward and back projection of subsets of tilts.

Every iterative method of the engine (:func:`reconstruction.engine.iterative.solve_sirt`,
:func:`~reconstruction.engine.iterative.solve_cgls`, the model-based
:func:`reconstruction.engine.mbir.mbir`) is written once against this small interface, as
ASTRA's Python plugins are written against ``OpTomo``: a new forward model is one class, not a new
loop. An operator maps unknowns ``x`` to data ``y`` for any subset of the tilts:

* ``forward(x, tilts)`` -- ``A_S x``, data of the tilts ``S`` (tilts first);
* ``adjoint(y, tilts)`` -- ``A_Sᵀ y`` (for :class:`RayDrivenProjector` the back projection SIRT
  pairs with it, not its exact transpose);
* ``back_update(y, tilts, x, scale, nonnegative)`` -- ``x ← x + scale · A_Sᵀ y`` (clipped at 0),
  which a projector may fuse into one pass over ``x``;
* ``ones_volume()`` / ``ones_data(tilts)`` -- the smallest arrays of ones that broadcast against
  the unknowns and the data, from which the solvers derive their weights (``A 1``, ``Aᵀ 1``).

The operators here:

* :class:`ParallelBeamProjector` -- the pixel-driven pair (the forward projector is the exact
  adjoint of the back projector) on slices-innermost arrays: unknowns ``(thickness, columns,
  slices)``, data ``(tilts, columns, slices)``; slices are independent, so one operator serves
  every slab;
* :class:`RayDrivenProjector` -- the ray-driven bilinear forward model (scikit-image ``radon``'s
  discretisation) with the same back projection;
* :class:`JosephProjector` -- Joseph's line-integral pair (:mod:`reconstruction.engine.joseph`,
  ASTRA's ``linear``), exact transposes of each other: the model-based method's forward model;
* :class:`reconstruction.engine.focus.FocalSeriesOperator` -- the depth-of-focus model: each
  depth of the slab blurred by the zone plate's point-spread function at its defocus from each
  focal plane (couples neighbouring slices: unknowns ``(disc voxels, rows)``, data ``(tilts,
  planes, rows, columns)``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.joseph import back_slab_joseph, forward_slab_joseph
from reconstruction.engine.projectors import (
    HAVE_NUMBA,
    _use_numba,
    back_slab,
    centre,
    forward_slab,
    forward_slab_ray,
    geometry,
)

if HAVE_NUMBA:
    from reconstruction.engine.projectors import _nb_back_update

__all__ = ["LinearOperator", "ParallelBeamProjector", "JosephProjector", "RayDrivenProjector"]


class LinearOperator:
    """A linear forward model over subsets of tilts (see the module docstring).

    Subclasses define :attr:`n_tilts`, :meth:`forward`, :meth:`adjoint`, :meth:`ones_volume` and
    :meth:`ones_data`; :meth:`back_update` may be overridden by a fused kernel.
    """

    n_tilts: int

    def forward(self, x: NDArray[np.float32], tilts: NDArray[np.intp] | None = None) -> NDArray[np.float32]:
        """``A_S x`` for the tilts ``S`` (all when ``None``)."""
        raise NotImplementedError

    def adjoint(self, y: NDArray[np.float32], tilts: NDArray[np.intp] | None = None) -> NDArray[np.float32]:
        """``A_Sᵀ y`` for data ``y`` of the tilts ``S`` (all when ``None``)."""
        raise NotImplementedError

    def ones_volume(self) -> NDArray[np.float32]:
        """Ones over the unknowns (zero outside their support), broadcastable against ``x``."""
        raise NotImplementedError

    def ones_data(self, tilts: NDArray[np.intp]) -> NDArray[np.float32]:
        """Ones over the data of ``tilts``, broadcastable against it."""
        raise NotImplementedError

    def back_update(
        self,
        y: NDArray[np.float32],
        tilts: NDArray[np.intp],
        x: NDArray[np.float32],
        scale: NDArray[np.float32],
        nonnegative: bool,
    ) -> None:
        """``x ← x + scale · A_Sᵀ y`` in place, then ``max(x, 0)`` when ``nonnegative``."""
        upd = self.adjoint(y, tilts)
        upd *= scale
        x += upd
        if nonnegative:
            np.maximum(x, 0, out=x)


class ParallelBeamProjector(LinearOperator):
    """Pixel-driven parallel-beam projector pair on slices-innermost arrays.

    Parameters
    ----------
    angles : array_like, shape (tilts,)
        Tilt angles in degrees.
    thickness, columns : int
        Voxels along the beam at 0° and across (the detector is ``columns`` wide).
    axis_offset : float
        Tilt-axis position relative to the detector centre ``(columns − 1) / 2`` (pixels).
    mask : ndarray, bool, shape (thickness, columns), optional
        Support of the unknowns: :meth:`adjoint` is zero outside it (``x`` stays inside when it
        starts there); :meth:`forward` assumes ``x`` is zero outside.
    backend : {"auto", "numba", "numpy"}
        Kernels.
    """

    #: The pair's projections: a subclass with another forward model names its own here (and
    #: turns :attr:`fused_back` off when its back projection is not the pixel-driven one).
    project = staticmethod(forward_slab)
    back_project = staticmethod(back_slab)
    #: Whether :meth:`back_update` may use the fused pixel-driven back-projection kernel.
    fused_back = True

    def __init__(
        self,
        angles: ArrayLike,
        thickness: int,
        columns: int,
        *,
        axis_offset: float = 0.0,
        mask: NDArray[np.bool_] | None = None,
        backend: str = "auto",
    ) -> None:
        self.cos, self.sin = geometry(angles)
        self.n_tilts = self.cos.size
        self.thickness, self.columns = int(thickness), int(columns)
        self.axis_offset = float(axis_offset)
        self.backend = backend
        self.fused = _use_numba(backend) and self.fused_back  # validates the backend name
        self.mask = None if mask is None else np.asarray(mask, np.float32)[..., None]

    def _geo(self, tilts):
        if tilts is None:
            return self.cos, self.sin
        return self.cos[tilts], self.sin[tilts]

    def forward(self, x, tilts=None):
        c, s = self._geo(tilts)
        return self.project(x, c, s, axis_offset=self.axis_offset, backend=self.backend)

    def adjoint(self, y, tilts=None):
        c, s = self._geo(tilts)
        out = self.back_project(y, c, s, self.thickness, axis_offset=self.axis_offset, backend=self.backend)
        if self.mask is not None:
            out *= self.mask
        return out

    def ones_volume(self):
        if self.mask is not None:
            return self.mask.copy()
        return np.ones((self.thickness, self.columns, 1), np.float32)

    def ones_data(self, tilts):
        return np.ones((len(tilts), self.columns, 1), np.float32)

    def back_update(self, y, tilts, x, scale, nonnegative):
        if not (self.fused and scale.ndim == 3 and scale.shape[-1] == 1):
            return super().back_update(y, tilts, x, scale, nonnegative)
        c, s = self._geo(tilts)
        # back projection, scaling, update and clipping in one pass over x (scale is zero off the mask)
        _nb_back_update(
            np.ascontiguousarray(y, np.float32),
            c,
            s,
            x,
            np.ascontiguousarray(scale[..., 0]),
            centre(x.shape[1]),
            centre(x.shape[0]),
            self.axis_offset,
            np.ones(len(c), np.float32),
            bool(nonnegative),
        )
        return None


class RayDrivenProjector(ParallelBeamProjector):
    """The ray-driven bilinear forward model (:func:`~reconstruction.engine.projectors.forward_slab_ray`).

    Its :meth:`adjoint` is the pixel-driven back projection, not its exact transpose: SIRT pairs
    them (converged solutions of the pixel-driven model keep a fine texture); Krylov methods,
    which need the true adjoint, use :class:`ParallelBeamProjector`.
    """

    project = staticmethod(forward_slab_ray)


class JosephProjector(ParallelBeamProjector):
    """Joseph's pair (:mod:`reconstruction.engine.joseph`): line integrals through the slice
    interpolated linearly between voxel centres; :meth:`adjoint` is the exact transpose of
    :meth:`forward`. Same parameters as :class:`ParallelBeamProjector`."""

    project = staticmethod(forward_slab_joseph)
    back_project = staticmethod(back_slab_joseph)
    fused_back = False
