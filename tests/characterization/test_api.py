"""The REST API: the issue's end-to-end flow, refusals, and lab isolation."""

from __future__ import annotations

import numpy as np
import pytest

from characterization import synthetic
from characterization.models import CheckImage
from grids.models import Grid
from tests.characterization.factories import (
    compute_pending_metrics,
    make_check,
    png_bytes,
    small_tiff,
    tiff_bytes,
    upload,
)
from tests.factories import make_grids


def test_done_when_seeded_pre_check_vitrified_post_check_targets_and_acceptance(
    lab, member, reviewer, api, api_for, django_capture_on_commit_callbacks
):
    seeded = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    vitrified = make_grids(lab=lab, user=member, count=1, state="vitrified")[0]

    # A seeded grid gets a pre-vitrification check with an image and its metrics.
    pre = api.post(
        "/api/v1/checks/",
        {
            "grid": seeded.pk,
            "stage": "pre_vitrification",
            "cell_density": 3,
            "morphology": 4,
            "microscope": "Zeiss Axio Observer",
        },
        format="json",
    )
    assert pre.status_code == 201, pre.content
    with django_capture_on_commit_callbacks():
        response = api.post(
            "/api/v1/check-images/",
            {"check": pre.data["id"], "file": upload(small_tiff(), "field.tif"), "channel_names": "DAPI,GFP,mCherry"},
            format="multipart",
        )
    compute_pending_metrics()
    assert response.status_code == 201, response.content
    image = api.get(f"/api/v1/check-images/{response.data['id']}/").data
    assert image["metrics_status"] == "done"
    assert set(image["metrics"]) >= {"focus", "saturated_fraction", "coverage_fraction"}
    assert image["channel_names"] == ["DAPI", "GFP", "mCherry"]
    assert api.get(image["preview_url"]).status_code == 200

    # A vitrified grid gets a post-vitrification check with an atlas, targets mapped to squares.
    post = api.post(
        "/api/v1/checks/",
        {
            "grid": vitrified.pk,
            "stage": "post_vitrification",
            "ice_quality_class": 1,
            "cell_integrity": 5,
            "grid_integrity": 4,
        },
        format="json",
    )
    assert post.status_code == 201, post.content
    atlas = synthetic.render_atlas(rows=5, columns=5, broken={(4, 4)}, spots=[(1, 1)])
    with django_capture_on_commit_callbacks():
        response = api.post(
            "/api/v1/check-images/",
            {"check": post.data["id"], "file": upload(tiff_bytes(atlas.image), "atlas.tif"), "kind": "atlas"},
            format="multipart",
        )
    compute_pending_metrics()
    assert response.status_code == 201, response.content
    atlas_id = response.data["id"]
    metrics = api.get(f"/api/v1/check-images/{atlas_id}/").data["metrics"]
    assert (metrics["squares_found"], metrics["intact_fraction"], metrics["contamination_spots"]) == (25, 24 / 25, 1)

    landmarks = [
        {"x": atlas.centres[rc][0], "y": atlas.centres[rc][1], "square": name}
        for name, rc in (("A1", (0, 0)), ("A5", (0, 4)), ("E1", (4, 0)), ("C3", (2, 2)))
    ]
    calibrated = api.post(f"/api/v1/check-images/{atlas_id}/calibrate/", {"landmarks": landmarks}, format="json")
    assert calibrated.status_code == 200, calibrated.content
    assert calibrated.data["calibration_residual_um"] == pytest.approx(0, abs=1e-6)
    cx, cy = atlas.centres[(1, 3)]  # square B4
    px_per_um = atlas.pitch_px / 254.0
    target = api.post(
        "/api/v1/targets/",
        {"image": atlas_id, "x": cx + 10 * px_per_um, "y": cy - 5 * px_per_um, "label": "HeLa 1", "priority": 1},
        format="json",
    )
    assert target.status_code == 201, target.content
    assert target.data["square"] == "B4"
    assert target.data["offset_um"] == pytest.approx([10.0, -5.0], abs=1e-3)

    # A reviewer accepts it.
    queue = api_for(reviewer).get("/api/v1/checks/review-queue/").data["results"]
    assert [c["id"] for c in queue] == [post.data["id"]]
    decision = api_for(reviewer).post(
        "/api/v1/qc-decisions/",
        {"check": post.data["id"], "decision": "accepted", "reasons": "thin vitreous ice, 24/25 squares intact"},
        format="json",
    )
    assert decision.status_code == 201, decision.content
    assert Grid.objects.get(pk=vitrified.pk).state == "accepted"
    check = api.get(f"/api/v1/checks/{post.data['id']}/").data
    assert check["review_status"] == "decided" and check["decisions"][0]["decision"] == "accepted"
    assert api_for(reviewer).get("/api/v1/checks/review-queue/").data["results"] == []

    # The grid's record shows its checks and decision.
    record = api.get(f"/api/v1/grids/{vitrified.pk}/").data
    assert record["state"] == "accepted"
    assert [c["id"] for c in record["checks"]] == [post.data["id"]]
    assert record["checks"][0]["images"][0]["metrics"]["squares_found"] == 25
    assert record["qc_decision"]["decision"] == "accepted"


def test_a_check_on_a_grid_in_the_wrong_state_is_409(lab, member, api):
    grid = make_grids(lab=lab, user=member, count=1, state="registered")[0]
    response = api.post("/api/v1/checks/", {"grid": grid.pk, "stage": "pre_vitrification"}, format="json")
    assert response.status_code == 409
    assert "needs a seeded grid" in response.data["detail"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"GIF89a not really", "cells.tif", "not a TIFF"),
        (small_tiff(shape=(1, 128, 128))[:5000], "cut.tif", "truncated"),
    ],
)
def test_bad_files_are_refused_with_a_message_and_nothing_stored(lab, member, api, content, name, message):
    check = make_check(lab=lab, user=member)
    response = api.post("/api/v1/check-images/", {"check": check.pk, "file": upload(content, name)}, format="multipart")
    assert response.status_code == 400
    assert message in response.data["detail"] and response.data["field"] == "file"
    assert CheckImage.objects.count() == 0


def test_calibration_refusals_answer_400_with_the_reason(lab, member, api):
    check = make_check(lab=lab, user=member)
    image = api.post(
        "/api/v1/check-images/",
        {"check": check.pk, "file": upload(png_bytes(np.zeros((50, 50), np.uint8)), "a.png")},
        format="multipart",
    ).data
    response = api.post(
        f"/api/v1/check-images/{image['id']}/calibrate/",
        {"landmarks": [{"x": 1, "y": 1, "square": "A1"}]},
        format="json",
    )
    assert response.status_code == 400 and "at least 3" in response.data["detail"]


def test_a_member_cannot_decide_and_the_operator_not_by_default(lab, member, reviewer, api, api_for):
    check = make_check(lab=lab, user=reviewer)
    assert (
        api.post(
            "/api/v1/qc-decisions/", {"check": check.pk, "decision": "accepted", "reasons": "x"}, format="json"
        ).status_code
        == 403
    )
    response = api_for(reviewer).post(
        "/api/v1/qc-decisions/", {"check": check.pk, "decision": "accepted", "reasons": "x"}, format="json"
    )
    assert response.status_code == 403 and "own grids" in response.data["detail"]


def test_another_labs_records_answer_404(lab, member, api, other_lab, outsider, api_for):
    check = make_check(lab=lab, user=member)
    image = api.post(
        "/api/v1/check-images/", {"check": check.pk, "file": upload(small_tiff(), "a.tif")}, format="multipart"
    ).data
    target = api.post("/api/v1/targets/", {"image": image["id"], "x": 3, "y": 4}, format="json").data
    foreign = api_for(outsider)
    for url in (
        f"/api/v1/checks/{check.pk}/",
        f"/api/v1/check-images/{image['id']}/",
        f"/api/v1/check-images/{image['id']}/original/",
        f"/api/v1/check-images/{image['id']}/preview/",
        f"/api/v1/targets/{target['id']}/",
    ):
        assert foreign.get(url).status_code == 404, url
    assert (
        foreign.post(f"/api/v1/check-images/{image['id']}/calibrate/", {"landmarks": []}, format="json").status_code
        == 404
    )
    assert foreign.get("/api/v1/checks/").data["results"] == []
    # Nor can they attach to our check or place a target on our image.
    assert (
        foreign.post(
            "/api/v1/check-images/",
            {"check": check.pk, "file": upload(small_tiff(seed=9), "b.tif")},
            format="multipart",
        ).status_code
        == 400
    )
    assert foreign.post("/api/v1/targets/", {"image": image["id"], "x": 1, "y": 1}, format="json").status_code == 400
    assert (
        foreign.post(
            "/api/v1/qc-decisions/", {"check": check.pk, "decision": "accepted", "reasons": "x"}, format="json"
        ).status_code
        == 400
    )


def test_the_original_downloads_byte_for_byte(lab, member, api):
    check = make_check(lab=lab, user=member)
    content = small_tiff(seed=4)
    image = api.post(
        "/api/v1/check-images/", {"check": check.pk, "file": upload(content, "orig.tif")}, format="multipart"
    ).data
    response = api.get(image["file_url"])
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == content
    assert response["X-Content-SHA256"] == image["sha256"]


def test_grid_characterization_shows_checks_and_the_decision(lab, member, reviewer):
    from characterization import services
    from characterization.api import grid_characterization

    check = make_check(lab=lab, user=member)
    services.qc_decide(lm_check=check, decision="rejected", reasons="crystalline ice", by=reviewer)
    data = grid_characterization(check.grid)
    assert [c["id"] for c in data["checks"]] == [check.pk]
    assert data["qc_decision"]["decision"] == "rejected"


def test_check_lists_cost_a_bounded_number_of_queries(lab, member, api, django_assert_max_num_queries):
    for _ in range(4):
        check = make_check(lab=lab, user=member)
        api.post(
            "/api/v1/check-images/",
            {"check": check.pk, "file": upload(small_tiff(seed=check.pk), "a.tif")},
            format="multipart",
        )
    with django_assert_max_num_queries(12):
        assert len(api.get("/api/v1/checks/").data["results"]) == 4
    with django_assert_max_num_queries(12):
        assert len(api.get("/api/v1/check-images/").data["results"]) == 4


def test_an_oversized_api_upload_answers_413(lab, member, api, settings):
    settings.LIMS_IMAGE_MAX_BYTES = 1000
    check = make_check(lab=lab, user=member)
    response = api.post(
        "/api/v1/check-images/",
        {"check": check.pk, "file": upload(small_tiff(shape=(1, 1024, 1024)), "big.tif")},
        format="multipart",
    )
    assert response.status_code == 413
    assert CheckImage.objects.count() == 0


def test_a_check_names_its_operator_who_must_be_a_lab_member(lab, member, reviewer, outsider, api):
    grid = make_grids(lab=lab, user=member, count=2, state="seeded")
    response = api.post(
        "/api/v1/checks/",
        {"grid": grid[0].pk, "stage": "pre_vitrification", "operator": reviewer.username},
        format="json",
    )
    assert response.status_code == 201 and response.data["operator"] == reviewer.username
    response = api.post(
        "/api/v1/checks/",
        {"grid": grid[1].pk, "stage": "pre_vitrification", "operator": outsider.username},
        format="json",
    )
    assert response.status_code == 400 and "not a member" in response.data["detail"]
