"""Image-to-grid calibration: a least-squares affine map from pixels to grid coordinates in µm.

Grid coordinates: the centre of square (row r, column c) of the finder pattern is at
(x, y) = (c × pitch, r × pitch) µm, x along the columns and y along the rows. A calibration from
three or more landmarks (pixel positions of named square centres) maps any pixel to the grid,
hence to the nearest square's name and the offset from its centre.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Point sets whose smaller spread is below this fraction of the larger one count as collinear.
COLLINEAR_RATIO = 1e-3


class CalibrationError(ValueError):
    """Landmarks that cannot calibrate an image; the message says what to fix."""


@dataclass(frozen=True)
class Calibration:
    matrix: np.ndarray  # (2, 3): [x_um, y_um] = matrix @ [x_px, y_px, 1]
    residual_um: float  # RMS distance between the landmarks' grid positions and their fit
    residuals_um: list[float]

    def to_grid(self, x: float, y: float) -> tuple[float, float]:
        gx, gy = self.matrix @ np.array([x, y, 1.0])
        return float(gx), float(gy)

    def as_json(self) -> list[list[float]]:
        return [[float(v) for v in row] for row in self.matrix]


def _spread_ratio(points: np.ndarray) -> float:
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return float(singular[-1] / singular[0]) if singular[0] > 0 else 0.0


def fit_affine(pixels: Sequence[tuple[float, float]], grid_um: Sequence[tuple[float, float]]) -> Calibration:
    """Least-squares affine map from pixel (x, y) to grid (x, y) µm; needs ≥ 3 non-collinear points."""
    pixels = np.asarray(pixels, dtype=np.float64)
    grid_um = np.asarray(grid_um, dtype=np.float64)
    if pixels.shape != grid_um.shape or pixels.ndim != 2 or pixels.shape[1] != 2:
        raise CalibrationError("Give one grid position per pixel position, each as (x, y).")
    if len(pixels) < 3:
        raise CalibrationError(f"Calibration needs at least 3 landmarks; {len(pixels)} given.")
    if _spread_ratio(pixels) < COLLINEAR_RATIO:
        raise CalibrationError("The landmarks lie on one line in the image: pick at least 3 squares not in a row.")
    if _spread_ratio(grid_um) < COLLINEAR_RATIO:
        raise CalibrationError(
            "The landmarks' squares lie on one line of the grid: pick squares not in one row or column."
        )
    design = np.column_stack([pixels, np.ones(len(pixels))])
    solution, *_ = np.linalg.lstsq(design, grid_um, rcond=None)
    matrix = solution.T  # (2, 3)
    fitted = design @ solution
    distances = np.linalg.norm(fitted - grid_um, axis=1)
    return Calibration(
        matrix=matrix, residual_um=float(np.sqrt(np.mean(distances**2))), residuals_um=[float(d) for d in distances]
    )


def nearest_square(gx: float, gy: float, pitch_um: float) -> tuple[int, int, float, float]:
    """(row, column, dx, dy): the square whose centre is nearest to grid point (gx, gy) µm and the offset."""
    column, row = round(gx / pitch_um), round(gy / pitch_um)
    return row, column, gx - column * pitch_um, gy - row * pitch_um
