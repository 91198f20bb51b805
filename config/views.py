"""The home page: it gathers what every app has for the person signed in, so it lives above the apps.

Each role sees its own work: bench scientists the grids that wait for them, with the next step of
each; reviewers their queue and the QC dashboard; facility staff their beamlines' coming sessions,
the sample sheets about to freeze and the shipments to receive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.db.models import Exists, OuterRef
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from beamtime import access as beamtime_access
from beamtime.models import BeamtimeSession, SessionStatus, Shipment, ShipmentStatus
from characterization import selectors as characterization_selectors
from characterization.models import Check, CheckStage
from grids import insights
from grids import selectors as grid_selectors
from grids.lifecycle import GridState
from lims import permissions, selectors

SHOWN = 5


@dataclass(frozen=True)
class WorkBucket:
    """Grids waiting for one kind of bench work."""

    key: str
    title: str
    what: str
    count: int
    grids: list
    button: str
    url: str
    # The link on each grid's row: its own step (e.g. a check of that grid).
    per_grid: str = ""


def _ids_query(grids) -> str:
    return urlencode([("grids", g.pk) for g in grids])


def _bench_work(user) -> list[WorkBucket]:
    own = permissions.scope(grid_selectors.grid_list(user=user), user).order_by("registered_at", "id")
    post_check = Exists(Check.objects.filter(grid=OuterRef("pk"), stage=CheckStage.POST_VITRIFICATION))
    buckets = []
    to_seed = own.filter(state=GridState.REGISTERED)
    to_vitrify = own.filter(state=GridState.SEEDED)
    to_check = own.filter(state=GridState.VITRIFIED).exclude(post_check)
    to_book = own.filter(state=GridState.ACCEPTED)
    for key, title, what, qs, button, base, per_grid in (
        (
            "seed",
            "To seed",
            "Registered grids without cells.",
            to_seed,
            "Seed these",
            reverse("grids:seeding-create"),
            "",
        ),
        (
            "vitrify",
            "To vitrify",
            "Seeded grids waiting to be frozen.",
            to_vitrify,
            "Vitrify these",
            reverse("vitrification:vitrify"),
            "",
        ),
        (
            "check",
            "To check",
            "Vitrified grids without a post-vitrification light-microscopy check.",
            to_check,
            "",
            "",
            "check",
        ),
        (
            "book",
            "To book",
            "Accepted grids not yet on a sample sheet.",
            to_book,
            "Find a session",
            reverse("beamtime:session-list"),
            "",
        ),
    ):
        shown = list(qs[:SHOWN])
        count = qs.count() if len(shown) == SHOWN else len(shown)
        url = f"{base}?{_ids_query(shown)}" if base and key in ("seed", "vitrify") else base
        buckets.append(WorkBucket(key, title, what, count, shown, button, url, per_grid))
    return buckets


def _staff_work(user) -> dict:
    facilities = beamtime_access.staff_facility_ids(user)
    now = timezone.now()
    sessions = BeamtimeSession.objects.filter(beamline__facility_id__in=facilities).select_related(
        "beamline__facility", "lab", "proposal"
    )
    coming = sessions.filter(end__gte=now).exclude(status=SessionStatus.CANCELLED).order_by("start")[:10]
    to_freeze = sessions.filter(
        freeze_at__gte=now,
        freeze_at__lte=now + timedelta(days=14),
        status__in=(SessionStatus.PLANNED, SessionStatus.CONFIRMED),
    ).order_by("freeze_at")[:10]
    to_receive = (
        Shipment.objects.filter(session__beamline__facility_id__in=facilities, status=ShipmentStatus.SHIPPED)
        .select_related("session__beamline", "lab")
        .order_by("shipped_at")[:10]
    )
    return {"coming": list(coming), "to_freeze": list(to_freeze), "to_receive": list(to_receive)}


def dashboard(request):
    user = request.user
    labs = selectors.lab_list(user=user)
    is_staff = permissions.is_facility_staff(user)
    has_lab = bool(permissions.lab_ids(user)) or user.is_superuser
    reviews = insights.may_see_dashboard(user)
    context = {
        "labs": labs,
        "has_lab": has_lab,
        "is_facility_staff": is_staff,
        "reviews": reviews,
        "recent_transitions": grid_selectors.transition_recent(user=user, limit=10) if has_lab else [],
    }
    if has_lab:
        context["work"] = _bench_work(user)
        context["state_counts"] = grid_selectors.grid_state_counts(user=user)
    if reviews:
        queue = characterization_selectors.review_queue(user=user)
        context["queue"] = list(queue[:SHOWN])
        context["queue_count"] = queue.count() if len(context["queue"]) == SHOWN else len(context["queue"])
    if is_staff:
        context["staff"] = _staff_work(user)
    return render(request, "lims/dashboard.html", context)
