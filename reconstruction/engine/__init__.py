"""SXT LIMS reconstruction engine (pure numpy/scipy/numba; no Django).

Conventions: a tilt series is (tilts, rows, columns) with the tilt axis along the rows, so row i of
every projection is the sinogram of slice i; angles in degrees, 0 = beam along the slice's thickness
axis; a volume is (rows, thickness, columns), slice i the x-z plane of row i; thickness defaults to
the column count; line integrals as scikit-image's ``radon`` for the same angles.
"""

from reconstruction.engine.projectors import back_project, forward_project

__all__ = ["back_project", "forward_project"]
