"""Reconstruction's table of physical ranges (applied everywhere by lims.ranges)."""

from __future__ import annotations

from lims.ranges import Range, define

RANGES: dict[str, Range] = define(
    {
        # Soft X-ray microscopes run from the carbon edge to a few keV; the water window is 284–543 eV.
        "photon_energy_ev": Range(100, 3000, "eV", 0.1),
        # Detector pixel at the sample: 1 nm (an ideal zone plate) to 1 µm (a coarse overview).
        "pixel_size_nm": Range(1, 1000, "nm", 0.01),
        "exposure_s": Range(0.0001, 3600, "s", 0.0001),
        # Outermost zone width of the objective zone plate (25 nm and 40 nm are common).
        "zone_plate_outer_zone_nm": Range(5, 200, "nm", 0.5),
        "zone_plate_diameter_um": Range(10, 1000, "µm", 1),
        # Job parameters.
        "iterations": Range(1, 500, "", 1, integer=True, label="Iterations"),
        "thickness": Range(4, 4096, "voxels", 1, integer=True, label="Volume thickness"),
        "axis_offset": Range(-1000, 1000, "pixels", 0.1, label="Tilt-axis offset"),
        "slab_size": Range(1, 1024, "slices", 1, integer=True, label="Slices per slab"),
        # mbir: a factor on the data-driven regularisation weight (1 = as the noise estimate says).
        "strength": Range(0.05, 20, "", 0.05, label="Smoothing strength"),
    }
)
