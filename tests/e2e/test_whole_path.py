"""The whole path in a real browser, each role on its own pages, following the "Next step" buttons:

a bench scientist receives a lot and registers grids, seeds one, records a pre-vitrification check with
an image, plunge-freezes it, records a post-vitrification check with an atlas and a target; a QC
reviewer accepts it from their home page; the scientist books it into a session and ships it; facility
staff see the shipment coming; the reviewer opens the QC dashboard; a user of another lab sees none of it.
Screenshots of each page go to var/screenshots/.
"""

from __future__ import annotations

import pytest

from beamtime import services as beamtime
from characterization import synthetic
from characterization.models import CheckImage
from grids.models import Grid
from tests.beamtime.factories import ProposalFactory, beamline, schedule, staff_user
from tests.characterization.factories import compute_pending_metrics, small_tiff, tiff_bytes
from tests.factories import CellLineFactory, MembershipFactory, grid_type
from tests.vitrification.factories import PlungerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _log_in(page, user):
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", "bench-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def _next_step(page, button: str):
    """Follow the grid page's Next step button, checking it says what a newcomer expects."""
    panel = page.locator(".next-step")
    assert button in panel.inner_text(), panel.inner_text()
    panel.locator("a.button.primary").click()


def _wait_for(condition, page, what: str):
    for _ in range(100):
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"Timed out waiting for {what}")


def test_a_grid_walks_from_lot_to_shipment_by_the_next_step_buttons(
    browser, live_server, page, lab, member, reviewer, outsider, shot, tmp_path
):
    hzb = beamline("hzb-u41-txm")
    staff = staff_user(facility=hzb.facility, username="beamline-staff")
    policy = beamtime.quality_policy_for(beamline=hzb)
    beamtime.quality_policy_update(policy=policy, by=staff, rules=[
        {"metric": "post_vitrification_check", "operator": "eq", "threshold": 1},
        {"metric": "ice_quality_class", "operator": "le", "threshold": 2},
        {"metric": "target_count", "operator": "ge", "threshold": 1},
        {"metric": "qc_accepted", "operator": "eq", "threshold": 1},
    ])  # fmt: skip
    proposal = ProposalFactory(lab=lab, created_by=member, facility=hzb.facility)
    session = schedule(proposal=proposal, by=member, days=10, hours=24, bl=hzb)
    CellLineFactory(lab=lab, name="HeLa-path")
    PlungerFactory(lab=lab, name="Vitrobot path")

    # The bench scientist: home page, then a lot and three grids.
    _log_in(page, member)
    assert "Waiting for you at the bench" in page.content()
    page.goto("/grids/lots/new/")
    page.select_option("select[name=lab]", str(lab.pk))
    page.select_option("select[name=grid_type]", str(grid_type("HZB-2").pk))
    page.fill("input[name=lot_number]", "PATH-001")
    page.fill("input[name=quantity]", "10")
    page.click("button[type=submit]")
    page.wait_for_url("**/grids/lots/*/")
    page.fill("input[name=count]", "3")
    page.click("button:has-text('Register')")
    page.wait_for_selector("text=Registered 3 grid(s)")
    page.goto("/")
    assert "To seed" in page.inner_text("#work-seed") and "3" in page.inner_text("#work-seed")
    shot("01-home-bench-scientist")
    grid = Grid.objects.filter(lot__lot_number="PATH-001").order_by("barcode").first()
    page.goto(f"/grids/{grid.pk}/")
    shot("02-grid-registered-next-step")

    # Seed it: the next step opens the seeding form with this grid ticked.
    _next_step(page, "Seed this grid")
    assert page.is_checked(f"input[name=grids][value='{grid.pk}']")
    page.select_option("select[name=cell_line]", label="HeLa-path")
    page.fill("input[name=passage]", "9")
    page.click("button:has-text('Record seeding')")
    page.wait_for_selector("text=Seeded 1 grid(s)")

    # A pre-vitrification check with an image.
    page.goto(f"/grids/{grid.pk}/")
    page.click("text=New pre-vitrification check")
    page.select_option("select[name=cell_density]", "3")
    page.click("button:has-text('Record check')")
    page.wait_for_url("**/characterization/checks/*/")
    cells = tmp_path / "cells.tif"
    cells.write_bytes(small_tiff(seed=3))
    page.set_input_files("[data-file-input]", [str(cells)])
    _wait_for(lambda: CheckImage.objects.filter(lm_check__grid=grid).exists(), page, "the pre-vitrification image")

    # Vitrify: the next step offers plunge freezing.
    page.goto(f"/grids/{grid.pk}/")
    _next_step(page, "Plunge-freeze this grid")
    page.select_option("select[name=instrument]", label="Vitrobot path (Vitrobot Mark IV)")
    page.click("form button[type=submit]")
    _wait_for(lambda: Grid.objects.get(pk=grid.pk).state == "vitrified", page, "the plunge run")

    # Post-vitrification check with an atlas image and a target placed by clicking.
    page.goto(f"/grids/{grid.pk}/")
    shot("03-grid-vitrified-next-step")
    _next_step(page, "Record the post-vitrification check")
    page.select_option("select[name=ice_quality_class]", "1")
    page.select_option("select[name=cell_integrity]", "5")
    page.select_option("select[name=grid_integrity]", "5")
    page.click("button:has-text('Record check')")
    page.wait_for_url("**/characterization/checks/*/")
    atlas = synthetic.render_atlas(rows=5, columns=5, pitch_px=60, bar_px=12)
    atlas_file = tmp_path / "atlas.tif"
    atlas_file.write_bytes(tiff_bytes(atlas.image))
    page.set_input_files("[data-file-input]", [str(atlas_file)])
    _wait_for(
        lambda: CheckImage.objects.filter(lm_check__grid=grid, original_name="atlas.tif").exists(), page, "the atlas"
    )
    compute_pending_metrics()
    image = CheckImage.objects.get(lm_check__grid=grid, original_name="atlas.tif")
    page.goto(f"/characterization/images/{image.pk}/")
    box = page.locator("[data-image-map] img").bounding_box()
    x, y = atlas.centres[(2, 3)]
    page.check("input[data-map-mode][value=target]")
    page.mouse.click(
        box["x"] + (x + 0.5) * box["width"] / image.width, box["y"] + (y + 0.5) * box["height"] / image.height
    )
    page.fill("input[name=label]", "cell in C4")
    page.click("button:has-text('Add target')")
    page.wait_for_selector("text=Target placed")
    page.goto(f"/grids/{grid.pk}/")
    assert "Wait for a QC reviewer" in page.inner_text(".next-step")

    # The reviewer: their home page shows the queue and the dashboard link; they accept.
    _log_in(page, reviewer)
    assert grid.barcode in page.inner_text("#review-work")
    shot("04-home-reviewer")
    page.click("#review-work a:has-text('Review queue')")
    page.check("input[name=decision][value=accepted]")
    page.fill("textarea[name=reasons]", "thin vitreous ice, target mapped")
    page.click("button:has-text('Decide')")
    page.wait_for_selector("text=Nothing to review")
    assert Grid.objects.get(pk=grid.pk).state == "accepted"

    # Back to the scientist: book it into the session (the gate passes) and ship it.
    _log_in(page, member)
    page.goto(f"/grids/{grid.pk}/")
    assert "passes the gate" in page.inner_text(".next-step")
    shot("05-grid-accepted-next-step")
    _next_step(page, "Open that session's sample sheet")
    page.select_option("select[name=grid]", str(grid.pk))
    page.click("button:has-text('Add to sheet')")
    page.wait_for_selector(f"text={grid.barcode} is on the sample sheet.")
    page.goto(f"/grids/{grid.pk}/")
    _next_step(page, "Pack a shipment")
    page.fill("input[name=dewar]", "Dewar PATH")
    page.click("button:has-text('Prepare shipment')")
    page.wait_for_url("**/beamtime/shipments/*/")
    page.select_option("select[name=status]", "shipped")
    page.click("button:has-text('Apply')")
    _wait_for(lambda: Grid.objects.get(pk=grid.pk).state == "shipped", page, "the shipment")
    page.goto(f"/grids/{grid.pk}/")
    text = page.content()
    assert "Seed this grid" not in text and "Plunge-freeze" not in text
    shot("06-grid-shipped")

    # Facility staff: their beamline's session and the dewar on its way; no lab prompt.
    _log_in(page, staff)
    assert "Dewar PATH" in page.inner_text("#staff-receive")
    assert "You belong to no lab yet" not in page.content()
    shot("07-home-facility-staff")

    # The reviewer's QC dashboard counts the grid at every step it reached.
    _log_in(page, reviewer)
    page.click("#review-work a:has-text('QC dashboard')")
    page.wait_for_selector("canvas[data-chart]")
    page.wait_for_function("() => window.Chart && Object.keys(Chart.instances).length > 0")
    funnel = page.inner_text("#chart-funnel")
    page.click("#chart-funnel summary")
    assert "Shipped" in page.inner_text("#chart-funnel table")
    # The funnel goes on to reconstruction, and its queue has a panel (reconstruction registers both).
    assert "Reconstructed (a volume)" in page.inner_text("#chart-funnel table")
    assert "Reconstruction queue" in page.inner_text("#panel-reconstruction")
    assert "3 grids registered" in funnel
    shot("08-qc-dashboard")

    # A user of another lab sees none of it.
    _log_in(page, outsider)
    response = page.goto(f"/grids/{grid.pk}/")
    assert response.status == 404
    page.goto(f"/grids/?q={grid.barcode}&state=shipped")
    assert f'href="/grids/{grid.pk}/"' not in page.content()
    page.goto("/grids/qc/")
    assert grid.barcode not in page.content() and "HeLa-path" not in page.content()
    page.goto(f"/beamtime/sessions/{session.pk}/")
    assert grid.barcode not in page.content()


@pytest.fixture
def reviewer(lab):
    return MembershipFactory(lab=lab, role="qc_reviewer", user__username="rita-reviewer").user
