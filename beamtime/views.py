"""Beamtime pages: calendar, sessions with their sample sheet and the gate, shipments, policies, feeds."""

from __future__ import annotations

import calendar
import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from beamtime import access, exports, lifecycle, quality, selectors, services
from beamtime.api import _target_response, manifest_response
from beamtime.forms import (
    PolicyForm,
    ProposalForm,
    RuleFormSet,
    SessionForm,
    SheetAddForm,
    ShipmentForm,
    ShipmentStatusForm,
    StatusForm,
)
from beamtime.models import (
    Beamline,
    BeamtimeSession,
    CalendarFeed,
    FeedKind,
    SampleSheetEntry,
    SessionStatus,
    ShipmentStatus,
)
from grids import labels
from lims import permissions
from lims.errors import DomainError
from lims.forms import parse_id, show_domain_error
from lims.models import Lab
from lims.paging import page_get, query_without_page
from lims.selectors import labs_of

# --- calendar -----------------------------------------------------------------------------------


# The calendar pages a month either side of the day shown; beyond these years it shows today instead.
_CALENDAR_YEARS = (1900, 9000)


def _parse_day(text: str | None) -> datetime.date:
    try:
        day = datetime.date.fromisoformat(text) if text else timezone.localdate()
    except ValueError:
        return timezone.localdate()
    return day if _CALENDAR_YEARS[0] <= day.year <= _CALENDAR_YEARS[1] else timezone.localdate()


def _int_or_none(text: str | None) -> int | None:
    return parse_id(text)


def calendar_view(request):
    """Month (default) or week view of sessions, for one beamline or one lab, or everything one may see."""
    view = "week" if request.GET.get("view") == "week" else "month"
    day = _parse_day(request.GET.get("date"))
    beamline_id, lab_id = _int_or_none(request.GET.get("beamline")), _int_or_none(request.GET.get("lab"))
    if view == "week":
        first = day - datetime.timedelta(days=day.weekday())
        days = [first + datetime.timedelta(days=i) for i in range(7)]
        previous, following = first - datetime.timedelta(days=7), first + datetime.timedelta(days=7)
        title = f"Week of {first:%d %b %Y}"
    else:
        first_of_month = day.replace(day=1)
        weeks = calendar.Calendar().monthdatescalendar(day.year, day.month)
        days = [d for week in weeks for d in week]
        previous = (first_of_month - datetime.timedelta(days=1)).replace(day=1)
        following = (first_of_month + datetime.timedelta(days=32)).replace(day=1)
        title = f"{first_of_month:%B %Y}"
    tz = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.datetime.combine(days[0], datetime.time.min), tz)
    end = timezone.make_aware(datetime.datetime.combine(days[-1] + datetime.timedelta(days=1), datetime.time.min), tz)
    sessions = selectors.sessions_between(user=request.user, start=start, end=end, beamline=beamline_id, lab=lab_id)
    cells = []
    for d in days:
        d_start = timezone.make_aware(datetime.datetime.combine(d, datetime.time.min), tz)
        d_end = d_start + datetime.timedelta(days=1)
        cells.append(
            {
                "date": d,
                "today": d == timezone.localdate(),
                "other_month": view == "month" and d.month != day.month,
                "sessions": [s for s in sessions if s.start < d_end and s.end > d_start],
            }
        )
    weeks = [cells[i : i + 7] for i in range(0, len(cells), 7)]
    query = {"view": view, "beamline": beamline_id or "", "lab": lab_id or ""}
    return render(
        request,
        "beamtime/calendar.html",
        {
            "view": view,
            "title": title,
            "weeks": weeks,
            "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            "previous": previous.isoformat(),
            "following": following.isoformat(),
            "day": day.isoformat(),
            "query": query,
            "beamlines": selectors.beamline_list(),
            "labs": labs_of(user=request.user),
            "beamline_id": beamline_id,
            "lab_id": lab_id,
            "sessions": sessions,
        },
    )


# --- sessions -----------------------------------------------------------------------------------


def session_list(request):
    filters = {k: _int_or_none(request.GET.get(k)) for k in ("beamline", "lab")}
    status = request.GET.get("status")
    filters["status"] = status if status in SessionStatus.values else None
    filters = {k: v for k, v in filters.items() if v}
    sessions = page_get(request, selectors.session_list(user=request.user, filters=filters))
    return render(
        request,
        "beamtime/session_list.html",
        {
            "sessions": sessions,
            "page": sessions,
            "query": query_without_page(request),
            "beamlines": selectors.beamline_list(),
            "statuses": SessionStatus.choices,
            "filters": filters,
            "proposals": selectors.proposal_list(user=request.user),
        },
    )


def session_create(request):
    form = SessionForm(request.POST or None, user=request.user, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        try:
            session = services.session_schedule(by=request.user, **form.cleaned_data)
            messages.success(request, f"Session {session.pk} booked: {session.shifts} shift(s).")
            return redirect("beamtime:session-detail", pk=session.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, "beamtime/session_form.html", {"form": form})


def session_detail(request, pk: int):
    session = selectors.session_get(user=request.user, pk=pk)
    is_staff = access.is_staff_of(request.user, session.beamline.facility_id)
    is_member = permissions.is_member(request.user, session.lab_id)
    add_form = (
        SheetAddForm(request.POST or None, session=session, user=request.user) if request.method == "POST" else None
    )
    gate = None
    if request.method == "POST":
        if add_form.is_valid():
            grid = add_form.cleaned_data["grid"]
            try:
                services.sample_sheet_add(
                    session=session,
                    grid=grid,
                    override_reason=add_form.cleaned_data["override_reason"],
                    by=request.user,
                )
                messages.success(request, f"{grid.barcode} is on the sample sheet.")
                return redirect("beamtime:session-detail", pk=session.pk)
            except DomainError as error:
                show_domain_error(add_form, error)
                if "failing_rules" in error.details:
                    gate = quality.evaluate(grid=grid, beamline=session.beamline)
    else:
        add_form = SheetAddForm(session=session, user=request.user, initial={"grid": request.GET.get("grid")})
        grid_id = _int_or_none(request.GET.get("grid"))
        if grid_id:
            grid = add_form.fields["grid"].queryset.filter(pk=grid_id).first()
            if grid is not None:
                gate = quality.evaluate(grid=grid, beamline=session.beamline)
    entries = list(selectors.sheet_entries(session=session))
    frozen = timezone.now() >= session.freeze_at
    can_change = session.status in lifecycle.SHEET_OPEN and (is_staff or (is_member and not frozen))
    return render(
        request,
        "beamtime/session_detail.html",
        {
            "session": session,
            "entries": entries,
            "capacity": session.beamline.capacity,
            "free": session.beamline.capacity - len(entries),
            "frozen": frozen,
            "can_change": can_change,
            "is_staff": is_staff,
            "is_member": is_member,
            "add_form": add_form,
            "gate": gate,
            "status_moves": [s for s in SessionStatus.values if s in lifecycle.SESSION_ALLOWED.get(session.status, ())],
            "transitions": session.transitions.select_related("by"),
            "shipments": selectors.shipment_list(user=request.user).filter(session=session),
            "shipment_form": ShipmentForm(),
        },
    )


@require_POST
def session_transition(request, pk: int):
    session = selectors.session_get(user=request.user, pk=pk)
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            services.session_transition(session=session, by=request.user, to_status=form.cleaned_data["status"],
                                        reason=form.cleaned_data["reason"])  # fmt: skip
            messages.success(request, f"Session {session.pk} is {form.cleaned_data['status']}.")
        except DomainError as error:
            messages.error(request, error.message)
    else:
        messages.error(request, "Choose a status.")
    return redirect("beamtime:session-detail", pk=session.pk)


@require_POST
def sheet_remove(request, pk: int, entry_pk: int):
    session = selectors.session_get(user=request.user, pk=pk)
    entry = get_object_or_404(SampleSheetEntry.objects.select_related("grid", "session__beamline"), pk=entry_pk,
                              session=session)  # fmt: skip
    try:
        services.sample_sheet_remove(entry=entry, by=request.user, reason=request.POST.get("reason", ""))
        messages.success(request, f"{entry.grid.barcode} is off the sample sheet.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("beamtime:session-detail", pk=session.pk)


@require_GET
def session_targets(request, pk: int, kind: str):
    if kind not in ("csv", "json"):
        raise Http404("Target lists come as .csv or .json.")
    session = selectors.session_get(user=request.user, pk=pk)
    return _target_response(session, selectors.session_targets(session=session), kind)


# --- proposals ----------------------------------------------------------------------------------


def proposal_list(request):
    form = ProposalForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            proposal = services.proposal_create(by=request.user, **form.cleaned_data)
            messages.success(request, f"Proposal {proposal.number} recorded.")
            return redirect("beamtime:proposal-list")
        except DomainError as error:
            show_domain_error(form, error)
    proposals = page_get(request, selectors.proposal_list(user=request.user).prefetch_related("sessions"))
    return render(request, "beamtime/proposal_list.html", {"proposals": proposals, "page": proposals, "form": form})


# --- shipments ----------------------------------------------------------------------------------


@require_POST
def shipment_create(request, pk: int):
    session = selectors.session_get(user=request.user, pk=pk)
    form = ShipmentForm(request.POST)
    if form.is_valid():
        try:
            shipment = services.shipment_create(session=session, by=request.user, **form.cleaned_data)
            messages.success(request, f"Shipment {shipment.pk} prepared.")
            return redirect("beamtime:shipment-detail", pk=shipment.pk)
        except DomainError as error:
            messages.error(request, error.message)
    else:
        messages.error(request, "Name the dewar.")
    return redirect("beamtime:session-detail", pk=session.pk)


def shipment_detail(request, pk: int):
    shipment = selectors.shipment_get(user=request.user, pk=pk)
    if request.method == "POST":
        form = ShipmentStatusForm(request.POST)
        if form.is_valid():
            try:
                services.shipment_transition(
                    shipment=shipment, by=request.user, to_status=form.cleaned_data["status"],
                    reason=form.cleaned_data["reason"], tracking_number=form.cleaned_data["tracking_number"] or None,
                )  # fmt: skip
                messages.success(request, f"Shipment {shipment.pk} is {form.cleaned_data['status']}.")
            except DomainError as error:
                messages.error(request, error.message)
        return redirect("beamtime:shipment-detail", pk=shipment.pk)
    items = [
        {"item": item, "qr": labels.qr_data_uri(item.grid.barcode, scale=3)}
        for item in selectors.shipment_items(shipment=shipment)
    ]
    return render(
        request,
        "beamtime/shipment_detail.html",
        {
            "shipment": shipment,
            "items": items,
            "moves": [
                (s, ShipmentStatus(s).label) for s in sorted(lifecycle.SHIPMENT_ALLOWED.get(shipment.status, ()))
            ],
            "transitions": shipment.transitions.select_related("by"),
        },
    )


@require_GET
def shipment_manifest(request, pk: int, kind: str):
    if kind not in ("pdf", "csv"):
        raise Http404("Manifests come as .pdf or .csv.")
    return manifest_response(selectors.shipment_get(user=request.user, pk=pk), kind)


# --- quality policies ---------------------------------------------------------------------------


def policy_list(request):
    policies = selectors.quality_policy_list()
    staffed = set(access.staff_facility_ids(request.user))
    return render(
        request,
        "beamtime/policy_list.html",
        {"policies": policies, "staffed": staffed, "superuser": request.user.is_superuser},
    )


def policy_edit(request, beamline_pk: int):
    beamline = get_object_or_404(Beamline.objects.select_related("facility"), pk=beamline_pk)
    if not access.is_staff_of(request.user, beamline.facility_id):
        raise Http404("No such policy.")
    policy = services.quality_policy_for(beamline=beamline)
    initial = [{"metric": r.metric, "operator": r.operator, "threshold": r.threshold} for r in policy.rules.all()]
    form = PolicyForm(request.POST or None, initial={"name": policy.name, "description": policy.description})
    formset = RuleFormSet(request.POST or None, initial=initial, prefix="rules")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        rules = [f.cleaned_data for f in formset.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        try:
            services.quality_policy_update(policy=policy, by=request.user, rules=rules, **form.cleaned_data)
            messages.success(request, f"{policy.name}: {len(rules)} rule(s) saved.")
            return redirect("beamtime:policy-list")
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, "beamtime/policy_form.html", {"beamline": beamline, "form": form, "formset": formset})


# --- calendar feeds -----------------------------------------------------------------------------


def feed_list(request):
    """The subscription URLs this person may use: their labs' feeds and, for staff, their beamlines'.

    A GET only reads: a feed not issued yet is offered with a button, and created by that POST."""
    if request.method == "POST":
        try:
            if feed_pk := request.POST.get("feed"):
                feed = get_object_or_404(CalendarFeed, pk=_int_or_none(feed_pk) or 0)
                services.calendar_feed_rotate(feed=feed, by=request.user)
                messages.success(request, "New subscription URL issued; the old one no longer works.")
            elif lab_pk := _int_or_none(request.POST.get("lab")):
                services.calendar_feed_for(lab=get_object_or_404(Lab, pk=lab_pk), by=request.user)
            elif beamline_pk := _int_or_none(request.POST.get("beamline")):
                services.calendar_feed_for(beamline=get_object_or_404(Beamline, pk=beamline_pk), by=request.user)
            else:
                raise Http404("No such feed.")
        except (DomainError, Http404):
            raise Http404("No such feed.") from None
        return redirect("beamtime:feed-list")
    rows = []
    labs = labs_of(user=request.user)
    beamlines = selectors.beamline_list().filter(facility__in=access.staff_facility_ids(request.user))
    existing = CalendarFeed.objects.filter(lab__in=labs) | CalendarFeed.objects.filter(beamline__in=beamlines)
    by_owner = {(f.lab_id, f.beamline_id): f for f in existing}
    for lab in labs:
        rows.append(
            {"name": str(lab), "kind": "Lab", "field": "lab", "owner": lab.pk, "feed": by_owner.get((lab.pk, None))}
        )
    for beamline in beamlines:
        rows.append(
            {"name": str(beamline), "kind": "Beamline", "field": "beamline", "owner": beamline.pk,
             "feed": by_owner.get((None, beamline.pk))}
        )  # fmt: skip
    for row in rows:
        if row["feed"] is not None:
            row["url"] = request.build_absolute_uri(reverse("beamtime:feed", args=[row["feed"].token]))
    return render(request, "beamtime/feed_list.html", {"rows": rows})


@login_not_required
@require_GET
def feed(request, token: str):
    """The iCalendar feed behind a secret token (calendar programs cannot log in)."""
    found = CalendarFeed.objects.select_related("lab", "beamline__facility").filter(token=token).first()
    if found is None or len(token) < 32:
        raise Http404("No such calendar.")
    since = timezone.now() - datetime.timedelta(days=365)
    qs = BeamtimeSession.objects.select_related("beamline__facility", "proposal", "lab").filter(end__gte=since)
    qs = qs.order_by("start", "id")
    if found.kind == FeedKind.LAB:
        qs, name = qs.filter(lab=found.lab), f"Beamtime – {found.lab.name}"
    else:
        qs, name = qs.filter(beamline=found.beamline), f"Beamtime – {found.beamline}"
    text = exports.ical_feed(name=name, sessions=qs, host=request.get_host().split(":")[0])
    response = HttpResponse(text, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="beamtime.ics"'
    response["Cache-Control"] = "private, max-age=300"
    return response
