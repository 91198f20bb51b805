"""Check stages against grid states, calibration to the grid, targets, review and decisions."""

from __future__ import annotations

import numpy as np
import pytest

from characterization import calibration, selectors, services
from characterization.models import CheckImage, CheckStage, QCDecision
from grids.models import Grid
from lims.errors import ConflictError, DomainError, PermissionDeniedError
from tests.characterization.factories import compute_pending_metrics, make_check, small_tiff, upload
from tests.factories import MembershipFactory, make_grids

PRE, POST = CheckStage.PRE_VITRIFICATION, CheckStage.POST_VITRIFICATION


# --- stages ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "state", "allowed"),
    [
        (PRE, "seeded", True),
        (PRE, "registered", False),
        (PRE, "vitrified", False),
        (POST, "vitrified", True),
        (POST, "accepted", True),
        (POST, "seeded", False),
        (POST, "scheduled", False),
    ],
)
def test_a_check_stage_must_fit_the_grid_state(lab, member, stage, state, allowed):
    grid = make_grids(lab=lab, user=member, count=1, state=state)[0]
    if allowed:
        assert services.check_create(grid=grid, stage=stage, by=member).stage == stage
    else:
        with pytest.raises(ConflictError, match=f"is {state}"):
            services.check_create(grid=grid, stage=stage, by=member)


def test_scores_of_the_other_stage_are_refused(lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    with pytest.raises(DomainError, match="ice_quality_class: not scored at the pre-vitrification stage"):
        services.check_create(grid=grid, stage=PRE, by=member, ice_quality_class=1)


def test_scores_outside_their_scale_are_refused(lab, member):
    grid = make_grids(lab=lab, user=member, count=1, state="vitrified")[0]
    with pytest.raises(DomainError, match="ice quality class"):
        services.check_create(grid=grid, stage=POST, by=member, ice_quality_class=7)


def test_another_labs_grid_cannot_be_checked(lab, member, other_lab, outsider):
    grid = make_grids(lab=other_lab, user=outsider, count=1, state="seeded")[0]
    from django.http import Http404

    with pytest.raises(Http404):
        services.check_create(grid=grid, stage=PRE, by=member)


# --- calibration -----------------------------------------------------------------------------


def test_an_exact_affine_is_recovered_with_zero_residual():
    rng = np.random.default_rng(0)
    truth = np.array([[0.9, -0.2, 15.0], [0.3, 1.1, -40.0]])
    pixels = rng.uniform(0, 1000, size=(5, 2))
    grid = pixels @ truth[:, :2].T + truth[:, 2]
    fit = calibration.fit_affine(pixels, grid)
    assert np.allclose(fit.matrix, truth)
    assert fit.residual_um == pytest.approx(0, abs=1e-9)


def test_the_residual_is_the_rms_misfit():
    # Four corners of a square; one landmark 4 µm off in x. Least squares spreads it: each point
    # ends 1 µm from its fit along x, RMS 1 µm... exactly: residuals (±1) on all four.
    pixels = [(0, 0), (100, 0), (0, 100), (100, 100)]
    grid = [(0, 0), (100, 0), (0, 100), (104, 100)]
    fit = calibration.fit_affine(pixels, grid)
    assert fit.residual_um == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("pixels", "grid", "match"),
    [
        ([(0, 0), (1, 1)], [(0, 0), (1, 1)], "at least 3"),
        ([(0, 0), (10, 10), (20, 20)], [(0, 0), (0, 100), (100, 0)], "one line in the image"),
        ([(0, 0), (10, 0), (0, 10)], [(0, 0), (100, 0), (200, 0)], "one line of the grid"),
    ],
)
def test_calibration_refuses_too_few_or_collinear_landmarks(pixels, grid, match):
    with pytest.raises(calibration.CalibrationError, match=match):
        calibration.fit_affine(pixels, grid)


@pytest.fixture
def post_image(lab, member):
    check = make_check(lab=lab, user=member, stage=POST)
    return services.check_image_upload(lm_check=check, upload=upload(small_tiff(shape=(1, 400, 400))), by=member)


def landmarks_for(scale: float, origin: tuple[float, float], squares: dict[str, tuple[int, int]], pitch: float):
    """Pixel positions of square centres for an image with `scale` px per µm and square (0, 0) at `origin`."""
    return [
        {"x": origin[0] + col * pitch * scale, "y": origin[1] + row * pitch * scale, "square": name}
        for name, (row, col) in squares.items()
    ]


def test_targets_report_their_square_and_offset_after_calibration(post_image, member):
    grid_type = post_image.lm_check.grid.lot.grid_type  # HZB-2: A–J × 1–10, pitch 254 µm
    pitch = grid_type.square_pitch_um
    scale = 0.5  # px per µm
    marks = landmarks_for(scale, (10, 20), {"A1": (0, 0), "A3": (0, 2), "C1": (2, 0), "B2": (1, 1)}, pitch)
    services.check_image_calibrate(image=post_image, landmarks=marks, by=member)
    post_image.refresh_from_db()
    assert post_image.calibration_residual_um == pytest.approx(0, abs=1e-6)
    # A target 20 µm right and 10 µm below the centre of B3 (row 1, column 2).
    target = services.target_create(
        image=post_image, x=10 + (2 * pitch + 20) * scale, y=20 + (pitch + 10) * scale, label="cell 1", by=member
    )
    position = selectors.target_position(target=target)
    assert position["square"] == "B3"
    assert position["offset_um"] == pytest.approx([20.0, 10.0])


def test_calibration_refuses_unknown_squares_and_too_few_landmarks(post_image, member):
    marks = [
        {"x": 10, "y": 10, "square": "A1"},
        {"x": 100, "y": 10, "square": "A2"},
        {"x": 10, "y": 100, "square": "Z9"},
    ]
    with pytest.raises(DomainError, match="'Z9' is not a square of HZB-2"):
        services.check_image_calibrate(image=post_image, landmarks=marks, by=member)
    with pytest.raises(DomainError, match="at least 3 landmarks; 2 given"):
        services.check_image_calibrate(image=post_image, landmarks=marks[:2], by=member)
    collinear = [
        {"x": 10, "y": 10, "square": "A1"},
        {"x": 50, "y": 10, "square": "A2"},
        {"x": 90, "y": 10, "square": "A3"},
    ]
    with pytest.raises(DomainError, match="one line"):
        services.check_image_calibrate(image=post_image, landmarks=collinear, by=member)
    assert CheckImage.objects.get(pk=post_image.pk).calibration is None


def test_a_target_outside_the_image_is_refused(post_image, member):
    with pytest.raises(DomainError, match="outside the 400×400 image"):
        services.target_create(image=post_image, x=401, y=3, by=member)


def test_an_uncalibrated_target_has_no_square(post_image, member):
    target = services.target_create(image=post_image, x=5, y=5, by=member)
    assert target.label == "T1"
    assert selectors.target_position(target=target) is None


# --- review ----------------------------------------------------------------------------------


@pytest.fixture
def post_check(lab, member):
    return make_check(lab=lab, user=member, stage=POST, ice_quality_class=1, grid_integrity=5)


def test_a_reviewer_accepts_a_grid_which_moves_to_accepted(post_check, reviewer):
    decision = services.qc_decide(lm_check=post_check, decision="accepted", reasons="thin vitreous ice", by=reviewer)
    grid = Grid.objects.get(pk=post_check.grid_id)
    assert grid.state == "accepted"
    transition = grid.transitions.last()
    assert (transition.to_state, transition.by, transition.reason) == ("accepted", reviewer, "thin vitreous ice")
    assert decision.lm_check == post_check


def test_a_revised_decision_keeps_the_history(post_check, reviewer):
    services.qc_decide(lm_check=post_check, decision="accepted", reasons="looks fine", by=reviewer)
    services.qc_decide(lm_check=post_check, decision="rejected", reasons="crystalline ice on second look", by=reviewer)
    assert Grid.objects.get(pk=post_check.grid_id).state == "rejected"
    assert list(QCDecision.objects.filter(grid=post_check.grid).values_list("decision", flat=True)) == [
        "rejected",
        "accepted",
    ]
    facts = selectors.grid_quality_facts(grid=post_check.grid)
    assert facts.qc_decision == "rejected"


def test_a_member_cannot_decide(post_check, lab):
    plain = MembershipFactory(lab=lab, role="member").user
    with pytest.raises(PermissionDeniedError, match="QC reviewer"):
        services.qc_decide(lm_check=post_check, decision="accepted", reasons="ok", by=plain)


def test_the_operator_cannot_review_their_own_grid_unless_the_lab_allows_it(lab, reviewer):
    check = make_check(lab=lab, user=reviewer, stage=POST)
    with pytest.raises(PermissionDeniedError, match="does not allow reviewing your own grids"):
        services.qc_decide(lm_check=check, decision="accepted", reasons="ok", by=reviewer)
    assert Grid.objects.get(pk=check.grid_id).state == "vitrified"
    lab.allow_self_review = True
    lab.save()
    check.lab.refresh_from_db()
    services.qc_decide(lm_check=check, decision="accepted", reasons="ok", by=reviewer)
    assert Grid.objects.get(pk=check.grid_id).state == "accepted"


def test_reasons_are_required(post_check, reviewer):
    with pytest.raises(DomainError, match="reasons"):
        services.qc_decide(lm_check=post_check, decision="accepted", reasons="  ", by=reviewer)


def test_a_pre_vitrification_check_cannot_decide_a_grid(lab, member, reviewer):
    check = make_check(lab=lab, user=member, stage=PRE)
    with pytest.raises(ConflictError, match="Only a post-vitrification check"):
        services.qc_decide(lm_check=check, decision="accepted", reasons="ok", by=reviewer)


def test_a_decision_the_lifecycle_refuses_is_a_conflict_and_records_nothing(post_check, reviewer, member):
    from grids import services as grid_services

    grid_services.grid_transition(grid=post_check.grid, to_state="scheduled", by=member)
    grid_services.grid_transition(grid=post_check.grid, to_state="shipped", by=member)
    with pytest.raises(ConflictError):
        services.qc_decide(lm_check=post_check, decision="rejected", reasons="too late", by=reviewer)
    assert QCDecision.objects.count() == 0


def test_the_review_queue_lists_undecided_latest_post_checks_oldest_first(lab, member, reviewer):
    import datetime

    from django.utils import timezone

    now = timezone.now()
    older = make_check(lab=lab, user=member, stage=POST, checked_at=now - datetime.timedelta(days=2))
    newer = make_check(lab=lab, user=member, stage=POST, checked_at=now - datetime.timedelta(days=1))
    make_check(lab=lab, user=member, stage=PRE)
    superseded = make_check(lab=lab, user=member, stage=POST, checked_at=now - datetime.timedelta(days=3))
    make_check(lab=lab, user=member, stage=POST, grid=superseded.grid, checked_at=now)
    decided = make_check(lab=lab, user=member, stage=POST)
    services.qc_decide(lm_check=decided, decision="accepted", reasons="ok", by=reviewer)
    queue = list(selectors.review_queue(user=reviewer))
    assert queue[:2] == [older, newer]
    assert superseded not in queue and decided not in queue
    assert list(selectors.review_queue(user=member)) == []


def test_grid_quality_facts_collect_scores_metrics_targets_and_decision(
    lab, member, reviewer, django_capture_on_commit_callbacks
):
    from characterization import synthetic
    from tests.characterization.factories import tiff_bytes

    grid = make_grids(lab=lab, user=member, count=1, state="seeded")[0]
    services.check_create(grid=grid, stage=PRE, by=member, cell_density=3, morphology=5)
    from grids import services as grid_services

    grid_services.grid_transition(grid=grid, to_state="vitrified", by=member)
    check = services.check_create(
        grid=grid, stage=POST, by=member, ice_quality_class=2, cell_integrity=4, grid_integrity=5
    )
    atlas = synthetic.render_atlas(rows=4, columns=4, broken={(0, 0)}, spots=[(2, 2)])
    with django_capture_on_commit_callbacks():
        image = services.check_image_upload(
            lm_check=check, upload=upload(tiff_bytes(atlas.image), "atlas.tif"), by=member, kind="atlas"
        )
    compute_pending_metrics()
    services.target_create(image=image, x=50, y=50, by=member)
    services.qc_decide(lm_check=check, decision="accepted", reasons="good", by=reviewer)
    facts = selectors.grid_quality_facts(grid=grid)
    assert facts.cell_density == 3 and facts.morphology == 5
    assert (facts.ice_quality_class, facts.cell_integrity, facts.grid_integrity) == (2, 4, 5)
    assert (facts.squares_found, facts.intact_fraction, facts.contamination_spots) == (16, 15 / 16, 1)
    assert facts.target_count == 1 and facts.calibrated_target_count == 0
    assert facts.qc_decision == "accepted" and facts.focus > 0
