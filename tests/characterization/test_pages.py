"""The bench pages: check create, upload, image map (targets, calibration), review queue, files."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from characterization import services, synthetic
from characterization.models import Check, CheckImage, QCDecision, Target
from grids.models import Grid
from tests.characterization.factories import compute_pending_metrics, make_check, small_tiff, tiff_bytes, upload
from tests.factories import make_grids


def test_a_pre_vitrification_check_is_created_from_the_grid_page(lab, member, web):
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    page = web.get(reverse("grids:grid-detail", args=[grid.pk]))
    create_url = reverse("characterization:check-create", args=[grid.pk])
    assert create_url.encode() in page.content
    form = web.get(create_url)
    assert b"Cell density" in form.content and b"Ice quality" not in form.content
    response = web.post(
        create_url,
        {
            "stage": "pre_vitrification",
            "checked_at": "2026-01-02T10:00",
            "cell_density": "3",
            "morphology": "5",
            "microscope": "Axio",
        },
    )
    check = Check.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "characterization:check-detail", args=[check.pk]
    )
    assert (check.stage, check.cell_density, check.morphology) == ("pre_vitrification", 3, 5)


def test_a_check_in_the_wrong_stage_shows_the_reason_on_the_form(lab, member, web):
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    response = web.post(
        reverse("characterization:check-create", args=[grid.pk]) + "?stage=post_vitrification",
        {"stage": "post_vitrification", "checked_at": "2026-01-02T10:00"},
    )
    assert response.status_code == 200
    assert b"needs a vitrified or accepted or rejected grid" in response.content
    assert Check.objects.count() == 0


def test_upload_by_xhr_answers_json_and_the_check_page_shows_metrics(
    lab, member, web, django_capture_on_commit_callbacks
):
    check = make_check(lab=lab, user=member)
    url = reverse("characterization:check-upload", args=[check.pk])
    with django_capture_on_commit_callbacks():
        response = web.post(
            url,
            {"file": [upload(small_tiff(), "a.tif"), upload(b"nonsense" * 20, "b.tif")]},
            HTTP_ACCEPT="application/json",
        )
    compute_pending_metrics()
    body = response.json()
    assert [u["name"] for u in body["uploaded"]] == ["a.tif"]
    assert "not a TIFF" in body["refused"][0]["detail"]
    page = web.get(reverse("characterization:check-detail", args=[check.pk]))
    assert b"data-upload-zone" in page.content and b"Focus" in page.content
    image = CheckImage.objects.get()
    assert web.get(reverse("characterization:image-thumbnail", args=[image.pk])).status_code == 200


def test_targets_are_placed_and_the_image_calibrated_on_the_image_page(
    lab, member, web, django_capture_on_commit_callbacks
):
    check = make_check(lab=lab, user=member)
    atlas = synthetic.render_atlas(rows=4, columns=4)
    with django_capture_on_commit_callbacks():
        image = services.check_image_upload(
            lm_check=check, upload=upload(tiff_bytes(atlas.image), "atlas.tif"), by=member, kind="atlas"
        )
    compute_pending_metrics()
    url = reverse("characterization:image-detail", args=[image.pk])
    page = web.get(url)
    assert b"data-image-map" in page.content and b"characterization.js" in page.content
    landmarks = [
        {"x": atlas.centres[rc][0], "y": atlas.centres[rc][1], "square": s}
        for s, rc in (("A1", (0, 0)), ("A4", (0, 3)), ("D1", (3, 0)))
    ]
    response = web.post(url, {"action": "calibrate", "landmarks": json.dumps(landmarks)})
    assert response.status_code == 302
    cx, cy = atlas.centres[(2, 1)]
    web.post(url, {"action": "target", "x": cx, "y": cy, "label": "cell A", "priority": "1"})
    target = Target.objects.get()
    page = web.get(url)
    assert b"C2" in page.content and target.label.encode() in page.content
    web.post(url, {"action": "delete-target", "target": target.pk})
    assert Target.objects.count() == 0


def test_bad_calibration_is_explained_on_the_form(lab, member, web):
    check = make_check(lab=lab, user=member)
    image = services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)
    response = web.post(
        reverse("characterization:image-detail", args=[image.pk]),
        {"action": "calibrate", "landmarks": json.dumps([{"x": 1, "y": 1, "square": "A1"}])},
    )
    assert response.status_code == 200 and b"at least 3 landmarks" in response.content


def test_the_review_queue_and_decision(lab, member, reviewer, client):
    check = make_check(lab=lab, user=member)
    client.force_login(reviewer)
    page = client.get(reverse("characterization:review-queue"))
    assert check.grid.barcode.encode() in page.content
    response = client.post(
        reverse("characterization:check-decide", args=[check.pk]),
        {"decision": "accepted", "reasons": "good ice", "next": "queue"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("characterization:review-queue")
    assert Grid.objects.get(pk=check.grid_id).state == "accepted"
    assert QCDecision.objects.get().reasons == "good ice"
    decide_url = reverse("characterization:check-decide", args=[check.pk]).encode()
    assert decide_url not in client.get(reverse("characterization:review-queue")).content


def test_a_member_decision_is_refused_with_a_message(lab, member, web):
    check = make_check(lab=lab, user=member)
    response = web.post(
        reverse("characterization:check-decide", args=[check.pk]), {"decision": "accepted", "reasons": "x"}, follow=True
    )
    assert b"Only a QC reviewer" in response.content
    assert Grid.objects.get(pk=check.grid_id).state == "vitrified"


@pytest.mark.parametrize(
    "name", ["characterization:image-detail", "characterization:image-original", "characterization:image-preview"]
)
def test_another_labs_image_pages_answer_404(lab, member, other_lab, outsider, client, name):
    check = make_check(lab=lab, user=member)
    image = services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)
    client.force_login(outsider)
    assert client.get(reverse(name, args=[image.pk])).status_code == 404
    assert client.get(reverse("characterization:check-detail", args=[check.pk])).status_code == 404


def test_pages_need_a_login(client, lab, member):
    check = make_check(lab=lab, user=member)
    image = services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)
    response = client.get(reverse("characterization:image-original", args=[image.pk]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_list_pages_render(lab, member, web):
    make_check(lab=lab, user=member)
    assert web.get(reverse("characterization:check-list")).status_code == 200
    assert web.get(reverse("characterization:review-queue")).status_code == 200


def test_an_oversized_upload_is_refused_before_it_is_read(lab, member, web, settings):
    settings.LIMS_IMAGE_MAX_BYTES = 1000
    check = make_check(lab=lab, user=member)
    url = reverse("characterization:check-upload", args=[check.pk])
    response = web.post(
        url, {"file": upload(small_tiff(shape=(1, 1024, 1024)), "big.tif")}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 413 and "at most" in response.json()["refused"][0]["detail"]
    assert CheckImage.objects.count() == 0


def test_the_upload_page_still_checks_csrf(lab, member):
    from django.test import Client

    check = make_check(lab=lab, user=member)
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post(
        reverse("characterization:check-upload", args=[check.pk]), {"file": upload(small_tiff(), "a.tif")}
    )
    assert response.status_code == 403
    assert CheckImage.objects.count() == 0


def test_a_check_is_edited_and_its_history_kept(lab, member, web):
    check = make_check(lab=lab, user=member)
    url = reverse("characterization:check-edit", args=[check.pk])
    assert b"Ice quality" in web.get(url).content
    response = web.post(
        url,
        {
            "stage": "post_vitrification",
            "checked_at": "2026-01-03T09:30",
            "ice_quality_class": "3",
            "notes": "frost on half the grid",
        },
    )
    assert response.status_code == 302
    check.refresh_from_db()
    assert (check.ice_quality_class, check.notes) == (3, "frost on half the grid")
    assert check.history.count() == 2


def test_the_check_form_offers_the_labs_members_as_operator(lab, member, reviewer, web):
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    url = reverse("characterization:check-create", args=[grid.pk])
    assert reviewer.username.encode() in web.get(url).content
    web.post(url, {"stage": "pre_vitrification", "checked_at": "2026-01-02T10:00", "operator": reviewer.pk})
    assert Check.objects.get().operator == reviewer
