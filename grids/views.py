"""Bench pages for grids: thin views that parse a form, call a service and render."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from grids import forms, labels, lifecycle, next_steps, selectors, services
from grids.filters import GridFilter
from grids.lifecycle import GridState
from lims.errors import DomainError
from lims.forms import parse_id, show_domain_error
from lims.paging import page_get

PAGE_SIZE = 50


def grid_list(request):
    """Grids with search and filters; an exact barcode (typed or scanned) opens that grid."""
    q = (request.GET.get("q") or "").strip()
    if q and set(request.GET) <= {"q"}:
        grid = selectors.grid_by_barcode(user=request.user, barcode=q)
        if grid is not None:
            return redirect("grids:grid-detail", pk=grid.pk)
    filterset = GridFilter(request.GET or None, queryset=selectors.grid_list(user=request.user), request=request)
    form = filterset.form
    grids = filterset.qs if filterset.is_valid() else filterset.queryset
    page = page_get(request, grids, size=PAGE_SIZE)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "grids/grid_list.html",
        {"form": form, "page": page, "query": query.urlencode(), "move_form": forms.MoveForm(user=request.user)},
    )


@require_POST
def grid_bulk(request):
    """Bulk actions on the selected grids: move to a box, discard, or print labels."""
    ids = request.POST.getlist("grids")
    if not ids:
        messages.error(request, "Select at least one grid first.")
        return redirect("grids:grid-list")
    grids = selectors.grids_by_ids(user=request.user, ids=ids)
    action = request.POST.get("action")
    try:
        if action == "move":
            form = forms.MoveForm(request.POST, user=request.user)
            if not form.is_valid():
                raise DomainError("Choose a box of your lab.")
            first = form.cleaned_data.get("first_slot")
            slots = list(range(first, first + len(grids))) if first else None
            services.grids_move(grids=grids, box=form.cleaned_data["box"], slots=slots, by=request.user)
            messages.success(request, f"Moved {len(grids)} grid(s).")
        elif action == "discard":
            reason = (request.POST.get("reason") or "").strip()
            services.grids_transition(grids=grids, to_state=GridState.DISCARDED, by=request.user, reason=reason)
            messages.success(request, f"Discarded {len(grids)} grid(s).")
        else:
            raise DomainError(f"Unknown action {action!r}.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect(request.POST.get("next") or reverse("grids:grid-list"))


def grid_detail(request, pk: int):
    grid = selectors.grid_get(user=request.user, pk=pk)
    discard_form = forms.DiscardForm()
    notes_form = forms.NotesForm(instance=grid)
    move_form = forms.MoveForm(user=request.user, initial={"box": grid.box_id})
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "discard":
                discard_form = forms.DiscardForm(request.POST)
                if discard_form.is_valid():
                    services.grid_discard(grid=grid, by=request.user, reason=discard_form.cleaned_data["reason"])
                    messages.success(request, f"{grid.barcode} discarded.")
                    return redirect("grids:grid-detail", pk=grid.pk)
            elif action == "notes":
                notes_form = forms.NotesForm(request.POST, instance=grid)
                if notes_form.is_valid():
                    services.grid_update_notes(grid=grid, notes=notes_form.cleaned_data["notes"], by=request.user)
                    return redirect("grids:grid-detail", pk=grid.pk)
            elif action == "move":
                move_form = forms.MoveForm(request.POST, user=request.user)
                if move_form.is_valid():
                    slot = move_form.cleaned_data.get("first_slot")
                    services.grids_move(
                        grids=[grid], box=move_form.cleaned_data["box"], slots=[slot] if slot else None, by=request.user
                    )
                    return redirect("grids:grid-detail", pk=grid.pk)
        except DomainError as error:
            target = {"discard": discard_form, "notes": notes_form, "move": move_form}.get(action, discard_form)
            show_domain_error(target, error)
            grid.refresh_from_db()
    return render(
        request,
        "grids/grid_detail.html",
        {
            "grid": grid,
            "step": next_steps.next_step(grid, request.user),
            "timeline": selectors.grid_timeline(grid=grid),
            "seeding": grid.seedings.select_related("cell_line").first(),
            "qr": labels.qr_data_uri(grid.barcode, scale=5),
            "discard_form": discard_form,
            "notes_form": notes_form,
            "move_form": move_form,
            "can_discard": lifecycle.can_move(grid.state, GridState.DISCARDED),
        },
    )


def grid_label(request, pk: int):
    grid = selectors.grid_get(user=request.user, pk=pk)
    if request.GET.get("kind") == "png":
        return HttpResponse(labels.qr_png(grid.barcode), content_type="image/png")
    return HttpResponse(labels.qr_svg(grid.barcode), content_type="image/svg+xml")


def label_sheet(request):
    """A printable sheet of QR labels for the selected grids (?grids=…) or a lot (?lot=…)."""
    qs = selectors.grid_list(user=request.user)
    if ids := request.GET.getlist("grids"):
        grids = selectors.grids_by_ids(user=request.user, ids=ids)
    elif lot := parse_id(request.GET.get("lot")):
        grids = list(qs.filter(lot_id=lot).order_by("barcode"))
    else:
        grids = []
    items = [(g, labels.qr_data_uri(g.barcode)) for g in grids]
    return render(request, "grids/label_sheet.html", {"items": items})


def lot_list(request):
    lots = page_get(request, selectors.grid_lot_list(user=request.user))
    return render(request, "grids/gridlot_list.html", {"lots": lots, "page": lots})


def lot_create(request):
    form = forms.GridLotForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            lot = services.grid_lot_create(by=request.user, **form.cleaned_data)
            messages.success(request, f"Lot {lot.lot_number} received ({lot.quantity} grids).")
            return redirect("grids:lot-detail", pk=lot.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, "grids/gridlot_form.html", {"form": form})


def lot_detail(request, pk: int):
    lot = get_object_or_404(selectors.grid_lot_list(user=request.user), pk=pk)
    form = forms.RegisterGridsForm(request.POST or None, lot=lot)
    if request.method == "POST" and form.is_valid():
        try:
            grids = services.grids_register(lot=lot, by=request.user, **form.cleaned_data)
            messages.success(request, f"Registered {len(grids)} grid(s): {grids[0].barcode} … {grids[-1].barcode}.")
            return redirect("grids:lot-detail", pk=lot.pk)
        except DomainError as error:
            show_domain_error(form, error)
            lot.refresh_from_db()
    grids = page_get(request, selectors.grid_list(user=request.user).filter(lot=lot).order_by("barcode"))
    return render(request, "grids/gridlot_detail.html", {"lot": lot, "form": form, "grids": grids, "page": grids})


def box_list(request):
    form = forms.StorageBoxForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            box = services.storage_box_create(by=request.user, **form.cleaned_data)
            messages.success(request, f"Box {box.name} created ({box.barcode}).")
            return redirect("grids:box-detail", pk=box.pk)
        except DomainError as error:
            show_domain_error(form, error)
    boxes = page_get(request, selectors.storage_box_list(user=request.user))
    return render(request, "grids/storagebox_list.html", {"boxes": boxes, "page": boxes, "form": form})


def box_detail(request, pk: int):
    box = get_object_or_404(selectors.storage_box_list(user=request.user), pk=pk)
    by_slot = {g.slot: g for g in box.grids.all()}
    slots = [(n, by_slot.get(n)) for n in range(1, box.capacity + 1)]
    return render(
        request,
        "grids/storagebox_detail.html",
        {"box": box, "slots": slots, "qr": labels.qr_data_uri(box.barcode, scale=5)},
    )


def cell_line_list(request):
    form = forms.CellLineForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            line = services.cell_line_create(by=request.user, **form.cleaned_data)
            messages.success(request, f"Cell line {line.name} added.")
            return redirect("grids:cellline-list")
        except DomainError as error:
            show_domain_error(form, error)
    lines = page_get(request, selectors.cell_line_list(user=request.user))
    return render(request, "grids/cellline_list.html", {"lines": lines, "page": lines, "form": form})


def seeding_list(request):
    page = page_get(request, selectors.seeding_list(user=request.user), size=PAGE_SIZE)
    return render(request, "grids/seeding_list.html", {"page": page})


def seeding_create(request):
    """Seed one or many grids (preselected with ?grids=…), moving them registered → seeded."""
    initial = {"grids": request.GET.getlist("grids")}
    form = forms.SeedingForm(request.POST or None, user=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            seeding = services.seeding_record(
                grids=list(data.pop("grids")), cell_line=data.pop("cell_line"), seeded_at=data.pop("seeded_at"),
                by=request.user, **data,
            )  # fmt: skip
            messages.success(request, f"Seeded {seeding.grids.count()} grid(s) with {seeding.cell_line}.")
            return redirect("grids:seeding-detail", pk=seeding.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, "grids/seeding_form.html", {"form": form})


def seeding_detail(request, pk: int):
    seeding = get_object_or_404(selectors.seeding_list(user=request.user), pk=pk)
    return render(request, "grids/seeding_detail.html", {"seeding": seeding})


def _dashboard_query(request):
    from grids import insights

    lab_ids = insights.dashboard_lab_ids(request.user)
    if not lab_ids:
        raise PermissionDenied("The QC dashboard is for QC reviewers and lab admins.")
    form = forms.DashboardFilterForm(request.GET or None, lab_ids=lab_ids)
    return form, insights.query_build(lab_ids=lab_ids, values=form.usable() if request.GET else {})


def qc_dashboard(request):
    """Funnel, pass rates and timings of the labs the person reviews, every chart with its CSV."""
    from grids import insights

    form, query = _dashboard_query(request)
    answer = insights.answer_get(query, params=request.GET.dict())
    return render(
        request,
        "grids/qc_dashboard.html",
        {"form": form, "panels": answer.charts, "answer": answer, "params": request.GET.urlencode()},
    )


def qc_dashboard_csv(request, panel: str, chart: str):
    """One chart's table as CSV, with the same filters as the page."""
    from grids import insights

    _, query = _dashboard_query(request)
    answer = insights.answer_get(query, params=request.GET.dict())
    charts = {p.key: c for p, c in answer.charts}.get(panel, [])
    found = next((c for c in charts if c.key == chart), None)
    if found is None:
        raise Http404("No such chart.")
    response = HttpResponse(found.table.csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="qc-{found.key}.csv"'
    return response
