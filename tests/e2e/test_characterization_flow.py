"""Characterization in a real browser: check from the grid page, upload with progress, click-to-place
landmarks and targets, calibration, and a reviewer's acceptance from the queue."""

from __future__ import annotations

import pytest

from characterization import services, synthetic
from characterization.models import Check, CheckImage, QCDecision, Target
from grids.models import Grid
from tests.characterization.factories import compute_pending_metrics, small_tiff, tiff_bytes, upload
from tests.factories import make_grids

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_pre_vitrification_check_with_an_uploaded_image(logged_in, lab, member, shot, tmp_path):
    page = logged_in
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    page.goto(f"/grids/{grid.pk}/")
    page.click("text=New pre-vitrification check")
    page.select_option("select[name=cell_density]", "3")
    page.fill("input[name=microscope]", "Axio Observer")
    page.click("button:has-text('Record check')")
    page.wait_for_url("**/characterization/checks/*/")
    check = Check.objects.get(grid=grid)
    good, bad = tmp_path / "cells.tif", tmp_path / "notes.tif"
    good.write_bytes(small_tiff(seed=21))
    bad.write_bytes(b"<html>not an image</html>" * 10)
    page.set_input_files("[data-file-input]", [str(good), str(bad)])
    page.wait_for_selector("text=not a TIFF")
    # The two files go up in parallel: the link appears only once both have answered.
    page.wait_for_selector("text=Show the uploaded images")
    assert CheckImage.objects.filter(lm_check=check).count() == 1
    page.click("text=Show the uploaded images")
    page.wait_for_selector("text=cells.tif")
    shot("characterization-check")


def test_landmarks_and_targets_are_placed_by_clicking_and_a_reviewer_accepts(
    browser, live_server, logged_in, lab, member, reviewer, shot
):
    page = logged_in
    grid = make_grids(lab=lab, user=member, count=1, state="vitrified")[0]
    check = services.check_create(grid=grid, stage="post_vitrification", by=member, ice_quality_class=1)
    atlas = synthetic.render_atlas(rows=5, columns=5, pitch_px=60, bar_px=12)
    image = services.check_image_upload(
        lm_check=check, upload=upload(tiff_bytes(atlas.image), "atlas.tif"), by=member, kind="atlas"
    )
    compute_pending_metrics()
    page.goto(f"/characterization/images/{image.pk}/")
    img = page.locator("[data-image-map] img")
    box = img.bounding_box()

    def click_pixel(x, y):
        page.mouse.click(
            box["x"] + (x + 0.5) * box["width"] / image.width, box["y"] + (y + 0.5) * box["height"] / image.height
        )

    squares = iter(["A1", "A5", "E1"])
    page.on("dialog", lambda dialog: dialog.accept(next(squares)))
    page.check("input[data-map-mode][value=landmark]")
    for rc in ((0, 0), (0, 4), (4, 0)):
        click_pixel(*atlas.centres[rc])
    page.click("button:has-text('Calibrate')")
    page.wait_for_selector("text=residual")
    image.refresh_from_db()
    assert image.calibration_residual_um < 10  # clicks land within a screen pixel of the centres

    box = page.locator("[data-image-map] img").bounding_box()
    page.check("input[data-map-mode][value=target]")
    click_pixel(*atlas.centres[(2, 3)])
    page.fill("input[name=label]", "cell in C4")
    page.click("button:has-text('Add target')")
    page.wait_for_selector("text=Target placed")
    target = Target.objects.get()
    from characterization.selectors import target_position

    assert target_position(target=target)["square"] == "C4"
    assert "C4" in page.inner_text("table.compact")
    shot("characterization-image-map")

    context = browser.new_context(base_url=live_server.url)
    review = context.new_page()
    review.goto("/accounts/login/")
    review.fill("input[name=username]", reviewer.username)
    review.fill("input[name=password]", "bench-pass-123")
    review.click("button[type=submit]")
    review.wait_for_url("**/")
    review.goto("/characterization/review/")
    review.check("input[name=decision][value=accepted]")
    review.fill("textarea[name=reasons]", "thin ice, target mapped")
    review.click("button:has-text('Decide')")
    review.wait_for_selector("text=Nothing to review")
    context.close()
    assert Grid.objects.get(pk=grid.pk).state == "accepted"
    assert QCDecision.objects.get().decided_by == reviewer
