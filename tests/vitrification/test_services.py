"""Recording plunge and HPF runs: ranges, outcomes, lab isolation, all or nothing."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.http import Http404

from grids.lifecycle import GridState
from grids.models import GridTransition
from lims.errors import ConflictError, DomainError
from tests.factories import make_grids
from tests.vitrification.factories import HPF_PARAMS, PLUNGE_PARAMS, PlungerFactory
from vitrification import services
from vitrification.models import GridOutcome, HPFRun, Instrument, PlungeRun
from vitrification.ranges import RANGES

pytestmark = pytest.mark.django_db


def snapshot(grids):
    """Everything a refused run must leave untouched."""
    return {
        "runs": PlungeRun.objects.count() + HPFRun.objects.count(),
        "run_history": PlungeRun.history.count() + HPFRun.history.count(),
        "outcomes": GridOutcome.objects.count(),
        "transitions": GridTransition.objects.count(),
        "states": [type(g).objects.get(pk=g.pk).state for g in grids],
    }


# --- the happy paths -------------------------------------------------------------------------


def test_plunge_run_vitrifies_every_grid_and_records_the_parameters(seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded, instrument=plunger, by=member, **PLUNGE_PARAMS)

    run.refresh_from_db()
    assert run.lab_id == plunger.lab_id
    assert run.operator == member
    assert run.humidity_percent == 95.0
    assert run.blot_side == "back"
    assert [o.outcome for o in run.outcomes.all()] == ["ok", "ok", "ok"]
    for grid in seeded:
        grid.refresh_from_db()
        assert grid.state == GridState.VITRIFIED
        last = grid.transitions.last()
        assert (last.from_state, last.to_state, last.by) == (GridState.SEEDED, GridState.VITRIFIED, member)
        assert last.cause == f"plunge run {run.pk}"


def test_hpf_run_vitrifies_its_grids(seeded, hpf, member):
    run = services.hpf_run_record(grids=seeded[:2], instrument=hpf, by=member, **HPF_PARAMS)

    assert run.pressure_bar == 2100.0
    assert {g.state for g in type(seeded[0]).objects.filter(pk__in=[g.pk for g in seeded[:2]])} == {GridState.VITRIFIED}
    assert seeded[0].transitions.last().cause == f"HPF run {run.pk}"
    seeded[2].refresh_from_db()
    assert seeded[2].state == GridState.SEEDED


def test_a_failed_grid_is_discarded_with_its_reason_and_the_others_are_vitrified(seeded, plunger, member):
    run = services.plunge_run_record(
        grids=seeded,
        instrument=plunger,
        by=member,
        outcomes=[{"grid": seeded[1].pk, "outcome": "failed", "reason": "grid bent in the tweezers"}],
        **PLUNGE_PARAMS,
    )

    states = {g.pk: type(g).objects.get(pk=g.pk).state for g in seeded}
    assert states == {
        seeded[0].pk: GridState.VITRIFIED,
        seeded[1].pk: GridState.DISCARDED,
        seeded[2].pk: GridState.VITRIFIED,
    }
    failed = GridOutcome.objects.get(grid=seeded[1])
    assert (failed.outcome, failed.reason, failed.run) == ("failed", "grid bent in the tweezers", run)
    discard = seeded[1].transitions.last()
    assert discard.to_state == GridState.DISCARDED
    assert "grid bent in the tweezers" in discard.reason
    assert discard.cause == f"plunge run {run.pk}"
    assert run.outcome_counts() == (2, 1)


def test_outcomes_may_name_grid_objects_and_explicit_ok(seeded, plunger, member):
    services.plunge_run_record(
        grids=seeded[:2],
        instrument=plunger,
        by=member,
        outcomes=[{"grid": seeded[0], "outcome": "ok"}, {"grid": seeded[1], "outcome": "failed", "reason": "ice"}],
    )
    assert GridOutcome.objects.get(grid=seeded[0]).outcome == "ok"
    assert GridOutcome.objects.get(grid=seeded[1]).outcome == "failed"


def test_a_run_where_every_grid_failed_discards_them_all(seeded, plunger, member):
    services.plunge_run_record(
        grids=seeded[:2],
        instrument=plunger,
        by=member,
        outcomes=[{"grid": g.pk, "outcome": "failed", "reason": "ethane too warm"} for g in seeded[:2]],
    )
    assert {type(g).objects.get(pk=g.pk).state for g in seeded[:2]} == {GridState.DISCARDED}


def test_run_keeps_its_history(seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member, **PLUNGE_PARAMS)
    assert run.history.count() == 1


def test_mmcif_export_uses_the_vocabulary_and_kelvin(seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member, **PLUNGE_PARAMS)
    assert run.mmcif()["instrument"] == "FEI VITROBOT MARK IV"
    assert run.mmcif()["cryogen_name"] == "ETHANE"
    assert run.mmcif()["chamber_temperature"] == pytest.approx(295.15)


# --- ranges ----------------------------------------------------------------------------------

PLUNGE_RANGE_FIELDS = [
    "blot_time_s",
    "blot_force",
    "humidity_percent",
    "chamber_temperature_c",
    "wait_time_s",
    "sample_volume_ul",
]


def _outside(field):
    rng = RANGES[field]
    below = rng.low - (1 if field != "sample_volume_ul" else 0.05)
    return [below, rng.high + 1]


@pytest.mark.parametrize(("field", "value"), [(f, v) for f in PLUNGE_RANGE_FIELDS for v in _outside(f)])
def test_plunge_value_out_of_range_is_refused_with_field_and_range(seeded, plunger, member, field, value):
    before = snapshot(seeded)
    params = {**PLUNGE_PARAMS, field: value}
    if field == "blot_force":
        value = int(value)
        params[field] = value

    with pytest.raises(DomainError) as refused:
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, **params)

    rng = RANGES[field]
    assert refused.value.field == field
    assert rng.label in refused.value.message and field not in refused.value.message
    assert f"between {rng.low:g} and {rng.high:g}" in refused.value.message
    assert snapshot(seeded) == before


def test_humidity_message_reads_like_the_bench_says_it(seeded, plunger, member):
    with pytest.raises(DomainError, match=r"^Humidity must be between 0 and 100 % \(the value read was 101\)\.$"):
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, humidity_percent=101)


@pytest.mark.parametrize(("field", "value"), [("blot_time_s", 0), ("blot_time_s", 30), ("humidity_percent", 100)])
def test_range_bounds_are_inclusive(seeded, plunger, member, field, value):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member, **{field: value})
    assert getattr(run, field) == value


@pytest.mark.parametrize(
    ("field", "value"),
    [("pressure_bar", 1000), ("pressure_bar", 3000), ("cavity_depth_um", 5), ("cavity_depth_um", 400)],
)
def test_hpf_value_out_of_range_is_refused(seeded, hpf, member, field, value):
    before = snapshot(seeded)
    with pytest.raises(DomainError, match=rf"^{RANGES[field].label} must be between") as refused:
        services.hpf_run_record(grids=seeded, instrument=hpf, by=member, **{**HPF_PARAMS, field: value})
    assert refused.value.field == field
    assert snapshot(seeded) == before


def test_hpf_run_needs_a_pressure(seeded, hpf, member):
    with pytest.raises(DomainError) as refused:
        services.hpf_run_record(grids=seeded, instrument=hpf, by=member)
    assert refused.value.field == "pressure_bar"


def test_database_refuses_an_out_of_range_value_written_around_the_service(seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member, **PLUNGE_PARAMS)
    with pytest.raises(IntegrityError), transaction.atomic():
        PlungeRun.objects.filter(pk=run.pk).update(humidity_percent=140)


def test_database_refuses_a_failed_outcome_without_reason(seeded, plunger, member):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member)
    with pytest.raises(IntegrityError), transaction.atomic():
        GridOutcome.objects.filter(plunge_run=run).update(outcome="failed", reason="")


def test_no_blotting_with_a_blot_time_is_refused(seeded, plunger, member):
    with pytest.raises(DomainError) as refused:
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, blot_side="none", blot_time_s=4)
    assert refused.value.field == "blot_time_s"


def test_unknown_cryogen_is_refused(seeded, plunger, member):
    with pytest.raises(DomainError) as refused:
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, cryogen="WATER")
    assert refused.value.field == "cryogen"


# --- refusals change nothing -----------------------------------------------------------------


def test_a_registered_grid_refuses_the_whole_run(lab, member, seeded, plunger):
    registered = make_grids(lab=lab, user=member, count=1)[0]
    grids = [*seeded, registered]
    before = snapshot(grids)

    with pytest.raises(ConflictError) as refused:
        services.plunge_run_record(grids=grids, instrument=plunger, by=member, **PLUNGE_PARAMS)

    assert registered.barcode in refused.value.message
    assert "registered grid cannot become vitrified" in refused.value.message
    assert snapshot(grids) == before


def test_a_registered_grid_with_a_failed_outcome_is_not_discarded(lab, member, plunger):
    registered = make_grids(lab=lab, user=member, count=1)[0]
    with pytest.raises(ConflictError):
        services.plunge_run_record(
            grids=[registered],
            instrument=plunger,
            by=member,
            outcomes=[{"grid": registered.pk, "outcome": "failed", "reason": "x"}],
        )
    registered.refresh_from_db()
    assert registered.state == GridState.REGISTERED


def test_a_grid_cannot_be_vitrified_twice(seeded, plunger, hpf, member):
    services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member)
    before = snapshot(seeded)
    with pytest.raises(ConflictError, match="vitrified grid cannot become vitrified"):
        services.hpf_run_record(grids=seeded, instrument=hpf, by=member, pressure_bar=2100)
    assert snapshot(seeded) == before


def test_a_grid_of_another_lab_refuses_the_run(seeded, plunger, member, other_lab, outsider):
    foreign = make_grids(lab=other_lab, user=outsider, count=1, state=GridState.SEEDED)[0]
    grids = [*seeded, foreign]
    before = snapshot(grids)
    with pytest.raises(DomainError) as refused:
        services.plunge_run_record(grids=grids, instrument=plunger, by=member)
    assert refused.value.field == "grids"
    assert snapshot(grids) == before


def test_an_instrument_of_another_lab_is_refused(seeded, member, other_lab):
    foreign_plunger = PlungerFactory(lab=other_lab)
    with pytest.raises(DomainError) as refused:
        services.plunge_run_record(grids=seeded, instrument=foreign_plunger, by=member, lab=seeded[0].lab)
    assert refused.value.field == "instrument"


def test_a_user_outside_the_lab_cannot_record_a_run(seeded, plunger, outsider):
    before = snapshot(seeded)
    with pytest.raises(Http404):
        services.plunge_run_record(grids=seeded, instrument=plunger, by=outsider)
    assert snapshot(seeded) == before


def test_a_plunge_run_refuses_a_high_pressure_freezer(seeded, hpf, member):
    before = snapshot(seeded)
    with pytest.raises(DomainError, match="high-pressure freezer; a plunge run needs a plunge freezer") as refused:
        services.plunge_run_record(grids=seeded, instrument=hpf, by=member, **PLUNGE_PARAMS)
    assert refused.value.field == "instrument"
    assert snapshot(seeded) == before


def test_an_hpf_run_refuses_a_plunge_freezer(seeded, plunger, member):
    with pytest.raises(DomainError, match="a plunge freezer; an HPF run needs a high-pressure freezer"):
        services.hpf_run_record(grids=seeded, instrument=plunger, by=member, **HPF_PARAMS)


def test_a_retired_instrument_takes_no_runs(seeded, plunger, member):
    services.instrument_set_active(instrument=plunger, active=False, by=member)
    with pytest.raises(DomainError, match="retired"):
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member)


@pytest.mark.parametrize(
    ("outcomes", "message"),
    [
        ([{"grid": "SELF0", "outcome": "failed"}], "say why"),
        ([{"grid": "SELF0", "outcome": "failed", "reason": "  "}], "say why"),
        ([{"grid": "SELF0", "outcome": "melted", "reason": "x"}], "not an outcome"),
        ([{"grid": "SELF0"}, {"grid": "SELF0"}], "two outcomes"),
        ([{"grid": 987654, "outcome": "ok"}], "not one of the run's grids"),
    ],
)
def test_bad_outcomes_refuse_the_run(seeded, plunger, member, outcomes, message):
    outcomes = [{**o, "grid": seeded[0].pk if o["grid"] == "SELF0" else o["grid"]} for o in outcomes]
    before = snapshot(seeded)
    with pytest.raises(DomainError, match=message) as refused:
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, outcomes=outcomes)
    assert refused.value.field == "outcomes"
    assert snapshot(seeded) == before


def test_a_run_needs_grids(plunger, member):
    with pytest.raises(DomainError, match="at least one grid"):
        services.plunge_run_record(grids=[], instrument=plunger, by=member)


def test_a_grid_listed_twice_is_refused(seeded, plunger, member):
    with pytest.raises(DomainError, match="listed twice"):
        services.plunge_run_record(grids=[seeded[0], seeded[0]], instrument=plunger, by=member)


def test_unknown_parameters_are_refused(seeded, plunger, member):
    with pytest.raises(DomainError, match="pressure_bar"):
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, pressure_bar=2000)


def test_the_operator_must_belong_to_the_lab(seeded, plunger, member, outsider):
    with pytest.raises(DomainError) as refused:
        services.plunge_run_record(grids=seeded, instrument=plunger, by=member, operator=outsider)
    assert refused.value.field == "operator"


def test_a_colleague_may_be_recorded_as_operator(seeded, plunger, member, lab_admin):
    run = services.plunge_run_record(grids=seeded[:1], instrument=plunger, by=member, operator=lab_admin)
    assert run.operator == lab_admin
    assert run.created_by == member


# --- instruments -----------------------------------------------------------------------------


def test_instrument_create_stores_the_mmcif_name(lab, member):
    instrument = services.instrument_create(
        lab=lab, name="Vitrobot 1", kind="plunger", model="FEI VITROBOT MARK IV", by=member
    )
    assert instrument.get_model_display() == "Vitrobot Mark IV"
    assert instrument.history.count() == 1


def test_instrument_model_must_fit_its_kind(lab, member):
    with pytest.raises(DomainError, match="Leica EM ICE is not a plunge freezer") as refused:
        services.instrument_create(lab=lab, name="ICE", kind="plunger", model="LEICA EM ICE", by=member)
    assert refused.value.field == "model"
    assert not Instrument.objects.exists()


def test_database_refuses_a_model_that_does_not_fit_the_kind(lab):
    with pytest.raises(IntegrityError), transaction.atomic():
        Instrument.objects.create(lab=lab, name="x", kind="hpf", model="FEI VITROBOT MARK IV")


def test_instrument_names_are_unique_within_a_lab(lab, member):
    services.instrument_create(lab=lab, name="GP2", kind="plunger", model="LEICA EM GP2", by=member)
    with pytest.raises(ConflictError, match="already"):
        services.instrument_create(lab=lab, name="GP2", kind="plunger", model="LEICA EM GP2", by=member)


def test_only_members_create_instruments_in_a_lab(lab, outsider):
    with pytest.raises(Http404):
        services.instrument_create(lab=lab, name="x", kind="hpf", model="LEICA EM HPM100", by=outsider)
