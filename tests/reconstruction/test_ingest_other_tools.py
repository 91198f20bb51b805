"""A dataset from an NXtomo file written by ESRF's `nxtomo` package: found by definition, normalised by the engine."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reconstruction import services
from tests.reconstruction.engine.test_files_from_other_tools import (
    ANGLES,
    PIXEL_UM,
    cell_slice,
    phantom_absorbance,
    write_with_nxtomo_package,
)


def test_nxtomo_package_file_becomes_a_dataset_naming_its_entry(member, beam_session, grid, tmp_path):
    path = tmp_path / "scan.nx"
    image = cell_slice()
    write_with_nxtomo_package(
        path,
        {"entry0000": phantom_absorbance(image), "entry0001": phantom_absorbance(2 * image)},
        np.random.default_rng(3),
    )
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(path.name, path.read_bytes())
    )
    assert dataset.format == "nxtomo" and dataset.projection_values == "counts"
    assert (dataset.tilts, dataset.rows, dataset.columns) == (len(ANGLES), 3, 64)
    assert np.allclose(dataset.angles, ANGLES, atol=1e-3)
    assert dataset.pixel_size_nm == pytest.approx(PIXEL_UM * 1000)
    assert dataset.photon_energy_ev == pytest.approx(520.0)
    assert dataset.metadata_source["nxtomo_entry"] == "entry0000 (first of 2 NXtomo entries)"
    absorbance = services.projections_of(dataset)  # what the reconstruction jobs get
    np.testing.assert_allclose(absorbance, phantom_absorbance(image), atol=0.02)
