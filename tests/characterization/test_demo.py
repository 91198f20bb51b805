from __future__ import annotations

from characterization import demo
from characterization.models import Check, CheckImage, QCDecision, Target
from tests.factories import make_grids


def test_the_demo_is_idempotent_and_builds_the_whole_path(lab, lab_admin, member, reviewer):
    ctx = {
        "lab": lab,
        "admin": lab_admin,
        "bench": member,
        "reviewer": reviewer,
        "seeded_grids": make_grids(lab=lab, user=member, count=2, state="seeded"),
        "vitrified_grids": make_grids(lab=lab, user=member, count=2, state="vitrified"),
    }
    demo.load(ctx)
    counts = (Check.objects.count(), CheckImage.objects.count(), Target.objects.count(), QCDecision.objects.count())
    assert counts == (3, 2, 3, 1)
    assert all(i.metrics_status == "done" for i in CheckImage.objects.all())
    atlas = CheckImage.objects.get(kind="atlas")
    assert atlas.metrics["squares_found"] == 100 and atlas.metrics["intact_fraction"] == 0.97
    assert atlas.calibration_residual_um < 1
    assert [g.state for g in ctx["accepted_grids"]] == ["accepted"]
    demo.load(ctx)
    assert (
        Check.objects.count(),
        CheckImage.objects.count(),
        Target.objects.count(),
        QCDecision.objects.count(),
    ) == counts


def test_the_demo_reads_its_context_defensively(lab, lab_admin):
    demo.load({})
    demo.load({"lab": lab, "admin": lab_admin})
    assert Check.objects.count() == 0
