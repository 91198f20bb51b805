"""The QC dashboard: who sees it, what its panels count, its CSVs, and a query count that does not grow."""

from __future__ import annotations

import csv
import dataclasses
import io
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from bench.dashboard import populate
from grids import insights
from grids.models import Grid
from tests.factories import LabFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = reverse("grids:qc-dashboard")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Ids restart after each test's rollback, so a version seen in one test could match another's."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def reviewer():
    lab = LabFactory(name="Cell Lab", code="CELL")
    user = UserFactory(username="rita")
    MembershipFactory(lab=lab, user=user, role="qc_reviewer")
    return user, lab


def _csv(client, panel, chart, params=""):
    response = client.get(reverse("grids:qc-dashboard-csv", args=[panel, chart]) + params)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_a_plain_member_is_refused_and_told_who_may_see_it(client):
    lab = LabFactory()
    user = UserFactory()
    MembershipFactory(lab=lab, user=user, role="member")
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 403


def test_funnel_counts_every_grid_at_each_step_it_reached(client, reviewer):
    user, lab = reviewer
    counts = populate(lab=lab, user=user, n_grids=200, seed=1)
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 200
    assert b"QC dashboard" in response.content
    rows = {r[0]: r for r in _csv(client, "funnel", "funnel")[1:]}
    assert int(rows["Registered"][1]) == counts["grids"] == 200
    states = Grid.objects.filter(lab=lab)
    seeded = states.exclude(state="registered").count()
    assert int(rows["Seeded"][1]) == seeded
    imaged = states.filter(state="imaged").count()
    assert int(rows["Imaged"][1]) == imaged
    # Still waiting at a step: the grids whose state is that step.
    assert int(rows["Registered"][3]) == states.filter(state="registered").count()
    # Did not reach the next step = reached this one minus reached the next.
    assert int(rows["Registered"][4]) == 200 - seeded


def test_pass_rates_by_method_match_the_decisions(client, reviewer):
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=300, seed=2)
    client.force_login(user)
    rows = {r[0]: r for r in _csv(client, "pass-rates", "pass-method")[1:]}
    from characterization.models import QCDecision

    plunge = QCDecision.objects.filter(grid__lab=lab, grid__vitrification_outcome__plunge_run__isnull=False)
    assert int(rows["Plunge freezing"][1]) == plunge.count()
    assert int(rows["Plunge freezing"][2]) == plunge.filter(decision="accepted").count()
    assert rows["Plunge freezing"][4].endswith("%")


def test_a_filter_narrows_every_panel_and_the_csv_keeps_it(client, reviewer):
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=200, seed=3)
    client.force_login(user)
    all_rows = _csv(client, "funnel", "funnel")
    hpf = _csv(client, "funnel", "funnel", "?method=hpf")
    assert int(hpf[1][1]) < int(all_rows[1][1])
    expected = Grid.objects.filter(lab=lab, vitrification_outcome__hpf_run__isnull=False).count()
    assert int(hpf[1][1]) == expected > 0


def test_another_labs_grids_are_not_counted_nor_offered(client, reviewer):
    user, lab = reviewer
    other = LabFactory(name="Other Lab", code="OTHER")
    stranger = UserFactory(username="stranger")
    populate(lab=other, user=stranger, n_grids=50, seed=4)
    client.force_login(user)
    response = client.get(URL)
    assert b"Other Lab" not in response.content
    rows = _csv(client, "funnel", "funnel")
    assert rows[1][1] == "0"
    # Asking for the other lab by id is a filter error, not its data.
    response = client.get(URL + f"?lab={other.pk}")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert _csv(client, "funnel", "funnel", f"?lab={other.pk}")[1][1] == "0"


def test_a_date_range_that_ends_before_it_starts_is_explained(client, reviewer):
    user, _ = reviewer
    client.force_login(user)
    response = client.get(URL + "?start=2026-05-01&end=2026-04-01&page=x&grid_type=abc")
    assert response.status_code == 200
    text = response.content.decode()
    assert "ends (01 Apr 2026) before it starts (01 May 2026)" in text


def test_a_day_past_the_calendar_is_a_message_next_to_its_field_not_a_server_error(client, reviewer):
    """9999-12-31 is a valid date, but the day after it is not: it once overflowed building the query."""
    user, _ = reviewer
    client.force_login(user)
    for query in ("?start=0001-01-01&end=9999-12-31", "?end=9999-12-31", "?start=1969-12-31"):
        response = client.get(URL + query)
        assert response.status_code == 200, query
        assert "Pick a day from 01 Jan 1970 to 31 Dec 2100: the form read" in response.content.decode(), query
        assert _csv(client, "funnel", "funnel", query)[0][0] == "Step", query
    page = client.get(URL).content.decode()
    assert 'min="1970-01-01"' in page and 'max="2100-12-31"' in page


def test_every_chart_has_a_csv_link_and_its_data_next_to_it(client, reviewer):
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=100, seed=5)
    client.force_login(user)
    text = client.get(URL).content.decode()
    for panel in insights.panels():
        query = insights.query_build(lab_ids=(lab.pk,), values={})
        for chart in panel.build(query):
            assert reverse("grids:qc-dashboard-csv", args=[panel.key, chart.key]) in text
            assert f'id="cfg-{chart.key}"' in text
    assert "vendor/chartjs/chart.umd" in text


# Queries of one fresh computation of the page: session, user and their labs (3), the filter form's
# choices (4), the data version (16: one per table the figures read) and the panels' queries (14: funnel
# 1, pass rates 4, ice 1, light microscopy 1, review queue 1, seeding to beamtime 1, beamtime use 2,
# reconstruction 3). None of them depends on the number of rows.
FRESH_QUERIES = 37


def test_the_query_count_is_fixed_whatever_the_number_of_grids(client, reviewer):
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=40, seed=6)
    client.force_login(user)
    from django.core.cache import cache

    client.get(URL)
    cache.clear()
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    populate(lab=lab, user=user, n_grids=400, seed=7)
    cache.clear()
    with CaptureQueriesContext(connection) as large:
        assert client.get(URL).status_code == 200
    assert len(small) == len(large) == FRESH_QUERIES, [q["sql"][:120] for q in large.captured_queries]


def test_the_reworked_panels_count_what_the_old_ones_counted(reviewer):
    """The panels aggregate differently now (grouped queries, one pass a table); their tables are the
    same as the old per-grid subqueries gave (kept in bench.dashboard_before as the bench's peer)."""
    from bench.dashboard_before import BEFORE

    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=300, seed=10)
    for values in ({}, {"method": "plunger"}):
        query = insights.query_build(lab_ids=(lab.pk,), values=values)
        for key, old in BEFORE.items():
            new = {c.key: c.table for c in insights.panel_get(key).build(query)}
            for chart in old(query):
                assert new[chart.key].rows == chart.table.rows, (key, chart.key, values)


def test_the_funnel_goes_on_to_accepted_datasets_and_volumes(client, reviewer):
    from reconstruction.models import Dataset, Volume

    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=300, seed=11)
    client.force_login(user)
    rows = {r[0]: r for r in _csv(client, "funnel", "funnel")[1:]}
    accepted = Dataset.objects.filter(grid__lab=lab, status="accepted").values("grid").distinct().count()
    volumes = Volume.objects.filter(lab=lab).values("job__dataset__grid").distinct().count()
    assert int(rows["A dataset accepted"][1]) == accepted > 0
    assert int(rows["Reconstructed (a volume)"][1]) == volumes > 0
    assert int(rows["Imaged"][4]) == int(rows["Imaged"][1]) - accepted
    order = [r[0] for r in _csv(client, "funnel", "funnel")[1:]]
    assert order.index("Imaged") < order.index("A dataset accepted") < order.index("Reconstructed (a volume)")


def test_the_reconstruction_queue_counts_jobs_waiting_running_and_failed_lately(client, reviewer):
    from datetime import timedelta

    from django.utils import timezone

    from reconstruction.models import ReconstructionJob

    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=300, seed=12)
    jobs = ReconstructionJob.objects.filter(lab=lab)
    # One failure a month ago and one an hour ago, whatever the random data gave.
    long_ago, lately = jobs.filter(state="succeeded").order_by("pk")[:2]
    jobs.filter(pk=long_ago.pk).update(state="failed", error="x", finished_at=timezone.now() - timedelta(days=30))
    jobs.filter(pk=lately.pk).update(state="failed", error="x", finished_at=timezone.now() - timedelta(hours=1))
    client.force_login(user)
    text = client.get(URL).content.decode()
    assert 'id="cfg-job-queue"' in text and 'id="cfg-datasets-per-shift"' in text
    rows = dict(_csv(client, "reconstruction", "job-queue")[1:])
    week = timezone.now() - timedelta(days=7)
    assert int(rows["Queued"]) == jobs.filter(state="queued").count()
    assert int(rows["Running"]) == jobs.filter(state="running").count()
    failed = jobs.filter(state="failed", finished_at__gte=week).count()
    assert int(rows["Failed in the last 7 days"]) == failed
    assert 0 < failed < jobs.filter(state="failed").count()  # the failure of a month ago is not "recent"
    shifts = _csv(client, "reconstruction", "datasets-per-shift")[1:]
    from reconstruction.models import Dataset

    used = Dataset.objects.filter(lab=lab, status="accepted", session__status__in=("running", "finished"))
    assert sum(int(r[3]) for r in shifts) == used.count() > 0


def test_an_unknown_chart_is_not_found(client, reviewer):
    user, _ = reviewer
    client.force_login(user)
    response = client.get(reverse("grids:qc-dashboard-csv", args=["funnel", "nope"]))
    assert response.status_code == 404


def test_a_repeated_request_is_served_from_the_cache_and_new_records_refresh_it(
    client, reviewer, django_capture_on_commit_callbacks
):
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=60, seed=8)
    client.force_login(user)
    client.get(URL)
    with CaptureQueriesContext(connection) as cached:
        assert client.get(URL).status_code == 200
    with CaptureQueriesContext(connection) as fresh:
        client.get(URL + "?method=plunger")
    assert len(cached) < len(fresh)
    before = _csv(client, "funnel", "funnel")
    from grids import services

    grid = Grid.objects.filter(lab=lab, state="registered").first()
    services.grids_transition(grids=[grid], to_state="discarded", by=user, reason="dropped")
    # The page shows the last figures, says newer records exist, and queues their computation…
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = client.get(URL)
    assert "newer records exist" in response.content.decode()
    assert len(queued) == 1
    # …which the next request shows.
    after = _csv(client, "funnel", "funnel")
    assert int(after[1][3]) == int(before[1][3]) - 1  # one fewer still registered
    assert "newer records exist" not in client.get(URL).content.decode()


def test_days_from_seeding_to_beamtime_fall_in_the_right_bins(client, reviewer):
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=200, seed=9)
    client.force_login(user)
    rows = _csv(client, "seeding-to-beamtime", "seeding-to-beamtime")[1:]
    from beamtime.models import SampleSheetEntry

    entries = SampleSheetEntry.objects.filter(grid__lab=lab).select_related("session", "grid__seeded__seeding")
    waits = [(e.session.start - e.grid.seeded.seeding.seeded_at).total_seconds() / 86400 for e in entries]
    expected = [
        sum(1 for w in waits if lo <= w and (hi is None or w < hi))
        for lo, hi in ((0, 3), (3, 7), (7, 14), (14, 28), (28, None))
    ]
    assert [int(r[1]) for r in rows] == expected
    assert sum(expected) > 0


@pytest.mark.django_db(transaction=True)
def test_panels_computed_on_two_connections_give_what_one_connection_gives(reviewer, monkeypatch):
    """Outside a transaction the panels run on the request's connection and another at once (the rows
    are committed here); their charts are those of the panels run one after the other."""
    user, lab = reviewer
    populate(lab=lab, user=user, n_grids=120, seed=13)
    query = insights.query_build(lab_ids=(lab.pk,), values={"method": "plunger"})
    monkeypatch.setattr(insights, "PANEL_THREADS", 1)
    serial = [(panel.key, [c.table for c in charts]) for panel, charts in insights.charts_build(query)]
    monkeypatch.setattr(insights, "PANEL_THREADS", 2)
    threads = set()

    def noting_the_thread(build):
        def run(q):
            threads.add(threading.current_thread().name)
            time.sleep(0.05)  # long enough that the other thread takes the next panel
            return build(q)

        return run

    monkeypatch.setattr(
        insights,
        "_panels",
        {k: dataclasses.replace(p, build=noting_the_thread(p.build)) for k, p in insights._panels.items()},
    )
    parallel = [(panel.key, [c.table for c in charts]) for panel, charts in insights.charts_build(query)]
    assert parallel == serial
    assert threads == {threading.current_thread().name, "qc-panel-0"}
    assert sum(row[1] for row in serial[0][1][0].rows[:1]) > 0  # the funnel counted the registered grids
