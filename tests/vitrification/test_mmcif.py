"""Vitrification runs as PDBx/mmCIF fragments that gemmi (the PDB's CIF parser) reads back."""

from __future__ import annotations

import gemmi
import pytest

from tests.factories import make_grids
from tests.vitrification.factories import HPF_PARAMS, PLUNGE_PARAMS
from vitrification import mmcif, services


@pytest.fixture
def plunge_run(lab, member, plunger):
    grids = make_grids(lab=lab, user=member, count=1, state="seeded")
    params = dict(PLUNGE_PARAMS, notes="first try; 'new' blotting paper")
    return services.plunge_run_record(grids=grids, instrument=plunger, by=member, **params)


def _block(text: str):
    return gemmi.cif.read_string(text).sole_block()


def test_a_plunge_run_reads_back_as_em_vitrification(api, plunge_run):
    response = api.get(f"/api/v1/plunge-runs/{plunge_run.pk}/mmcif/")
    assert response.status_code == 200 and response["Content-Type"].startswith("chemical/x-mmcif")
    block = _block(response.content.decode())
    assert block.name == f"sxt_lims_plunge_run_{plunge_run.pk}"
    values = block.get_mmcif_category("_em_vitrification.")
    assert values["cryogen_name"] == ["ETHANE"]
    assert values["instrument"] == ["FEI VITROBOT MARK IV"]
    assert float(values["humidity"][0]) == PLUNGE_PARAMS["humidity_percent"]
    assert float(values["chamber_temperature"][0]) == pytest.approx(PLUNGE_PARAMS["chamber_temperature_c"] + 273.15)
    assert values["method"] == ["plunge freezing"]
    assert "blotted 10 s" in values["details"][0]


def test_an_hpf_run_reads_back_as_em_high_pressure_freezing(api, lab, member, hpf):
    grids = make_grids(lab=lab, user=member, count=1, state="seeded")
    run = services.hpf_run_record(grids=grids, instrument=hpf, by=member, **HPF_PARAMS)
    block = _block(api.get(f"/api/v1/hpf-runs/{run.pk}/mmcif/").content.decode())
    values = block.get_mmcif_category("_em_high_pressure_freezing.")
    assert values["instrument"] == ["LEICA EM ICE"] and "2100 bar" in values["details"][0]


@pytest.mark.parametrize(
    "text",
    ["plain", "two words", "it's here", "data_like", "_leading", "#hash", "both ' and \" quotes ' x \" y", "line\nbreak",
     "?", "'quoted'"],
)  # fmt: skip
def test_any_text_value_survives_a_round_trip_through_gemmi(text):
    document = gemmi.cif.read_string(f"data_t\n_x.v {mmcif.cif_value(text)}\n")
    value = document.sole_block().find_value("_x.v")
    assert gemmi.cif.as_string(value) == text


def test_unknown_values_are_question_marks(plunge_run):
    plunge_run.humidity_percent = None
    values = _block(mmcif.run_fragment(plunge_run)).get_mmcif_category("_em_vitrification.")
    assert values["humidity"] == [None]  # gemmi reads '?' as unknown


def test_another_labs_run_has_no_fragment(api_for, outsider, plunge_run):
    assert api_for(outsider).get(f"/api/v1/plunge-runs/{plunge_run.pk}/mmcif/").status_code == 404
