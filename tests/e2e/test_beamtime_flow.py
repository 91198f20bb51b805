"""Beamtime in a real browser: a lab member fills a session's sample sheet through the gate; a QC reviewer
admits a grid that fails it with a written reason.

The grids' quality facts are real characterization records (a post-vitrification check with scores and a
QC decision); the beamline's policy is set, through the service, to the rules those records can answer
(the default policy also wants image metrics and targets).
"""

import pytest

from beamtime import services as beamtime
from characterization import services as characterization
from grids.models import Grid
from tests.beamtime.factories import ProposalFactory, beamline, schedule, staff_user
from tests.factories import MembershipFactory, make_grids

pytestmark = pytest.mark.django_db(transaction=True)


def _log_in(page, user):
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "bench-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def _reviewed(grid, *, by, reviewer, ice: int, decision: str, reasons: str) -> Grid:
    check = characterization.check_create(
        grid=grid, stage="post_vitrification", by=by, ice_quality_class=ice, cell_integrity=4, grid_integrity=4
    )
    characterization.qc_decide(lm_check=check, decision=decision, reasons=reasons, by=reviewer)
    grid.refresh_from_db()
    return grid


def test_the_gate_admits_a_good_grid_and_a_reviewer_overrides_a_failing_one(logged_in, lab, member, shot):
    hzb = beamline("hzb-u41-txm")
    policy = beamtime.quality_policy_for(beamline=hzb)
    beamtime.quality_policy_update(policy=policy, by=staff_user(facility=hzb.facility), rules=[
        {"metric": "post_vitrification_check", "operator": "eq", "threshold": 1},
        {"metric": "ice_quality_class", "operator": "le", "threshold": 2},
        {"metric": "qc_accepted", "operator": "eq", "threshold": 1},
    ])  # fmt: skip
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility)
    session = schedule(proposal=proposal, by=member, days=10, hours=24)
    reviewer = MembershipFactory(lab=lab, role="qc_reviewer").user
    good, bad = make_grids(lab=lab, user=member, count=2, state="vitrified")
    good = _reviewed(good, by=member, reviewer=reviewer, ice=1, decision="accepted", reasons="vitreous ice")
    bad = _reviewed(bad, by=member, reviewer=reviewer, ice=3, decision="rejected", reasons="patchy crystalline ice")
    assert (good.state, bad.state) == ("accepted", "rejected")

    # A lab member adds the accepted grid: it passes, is listed, and is now scheduled.
    page = logged_in
    page.goto(f"/beamtime/sessions/{session.pk}/")
    assert "No grids on the sheet yet." in page.inner_text("table")
    page.select_option("select[name=grid]", str(good.pk))
    page.click("button:has-text('Add to sheet')")
    page.wait_for_selector(f"text={good.barcode} is on the sample sheet.")
    sheet = page.locator("table").first
    row = sheet.locator("tbody tr", has_text=good.barcode)
    assert "passed" in row.inner_text() and "Scheduled" in row.inner_text()
    good.refresh_from_db()
    assert good.state == "scheduled"

    # The rejected grid fails the gate: the failing rules are on the page and nothing is added.
    page.select_option("select[name=grid]", str(bad.pk))
    page.click("button:has-text('Add to sheet')")
    page.wait_for_selector("text=Gate: " + bad.barcode)
    errors = page.inner_text("form.card")
    assert f"{bad.barcode} fails" in errors and "A QC reviewer may admit it" in errors
    assert "Ice quality class (1 best): 3 (needs ≤ 2)" in errors
    gate = page.locator(".card", has_text="Gate: " + bad.barcode)
    assert "fails" in gate.locator("h2").inner_text()
    failing = sorted(" ".join(r.inner_text().split()) for r in gate.locator("tbody tr", has_text="fail").all())
    assert len(failing) == 2, failing
    assert failing[0].startswith("Ice quality class (1 best) 3 ≤ 2"), failing
    assert failing[1].startswith("QC decision is accepted no = yes"), failing
    shot("beamtime-gate-refused")
    assert bad.barcode not in sheet.inner_text()
    assert session.entries.count() == 1
    bad.refresh_from_db()
    assert bad.state == "rejected"

    # A QC reviewer admits it with a written reason, which the sheet shows.
    reason = "Ice class 3 only at the rim; the centre squares hold the infected cells we need."
    _log_in(page, reviewer)
    page.goto(f"/beamtime/sessions/{session.pk}/")
    page.select_option("select[name=grid]", str(bad.pk))
    page.fill("textarea[name=override_reason]", reason)
    page.click("button:has-text('Add to sheet')")
    page.wait_for_selector(f"text={bad.barcode} is on the sample sheet.")
    row = page.locator("table").first.locator("tbody tr", has_text=bad.barcode)
    text = row.inner_text()
    assert "override" in text and reason in text and reviewer.username in text
    bad.refresh_from_db()
    assert bad.state == "scheduled"
    assert session.entries.count() == 2
    shot("beamtime-sheet")
