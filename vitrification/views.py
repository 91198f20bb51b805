"""Bench pages (thin: parse the form, call the service, render)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import redirect, render

from lims.errors import DomainError
from lims.forms import parse_id, show_domain_error
from lims.paging import page_get
from vitrification import filters, forms, selectors, services
from vitrification.models import InstrumentKind

PAGE_SIZE = 25


# --- instruments -----------------------------------------------------------------------------


def instrument_list(request):
    if request.method == "POST" and request.POST.get("instrument", "").isdigit():
        instrument = selectors.instrument_get(user=request.user, pk=request.POST["instrument"])
        active = request.POST.get("active") == "1"
        services.instrument_set_active(instrument=instrument, active=active, by=request.user)
        messages.success(request, f"{instrument.name} {'is back in use' if active else 'is retired'}.")
        return redirect("vitrification:instrument-list")
    instruments = page_get(request, selectors.instrument_list(user=request.user))
    return render(request, "vitrification/instrument_list.html", {"instruments": instruments, "page": instruments})


def instrument_create(request):
    form = forms.InstrumentForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            instrument = services.instrument_create(by=request.user, **form.cleaned_data)
            messages.success(request, f"Added {instrument}.")
            return redirect("vitrification:instrument-list")
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, "vitrification/instrument_form.html", {"form": form})


# --- runs ------------------------------------------------------------------------------------

RUNS = {
    "plunge": {
        "kind": InstrumentKind.PLUNGER,
        "form": forms.PlungeRunForm,
        "record": services.plunge_run_record,
        "list": selectors.plunge_run_list,
        "filter": filters.PlungeRunFilter,
        "get": selectors.plunge_run_get,
        "title": "Plunge-freezing runs",
        "one": "plunge run",
        "url": "vitrification:plunge-run",
        "template": "vitrification/plungerun",
        "mmcif_category": "em_vitrification",
    },
    "hpf": {
        "kind": InstrumentKind.HPF,
        "form": forms.HPFRunForm,
        "record": services.hpf_run_record,
        "list": selectors.hpf_run_list,
        "filter": filters.HPFRunFilter,
        "get": selectors.hpf_run_get,
        "title": "High-pressure-freezing runs",
        "one": "HPF run",
        "url": "vitrification:hpf-run",
        "template": "vitrification/hpfrun",
        "mmcif_category": "em_high_pressure_freezing",
    },
}


def _run_list(request, which: str):
    spec = RUNS[which]
    filterset = spec["filter"](request.GET or None, queryset=spec["list"](user=request.user), request=request)
    filter_form = filterset.form
    runs = filterset.qs if filterset.is_valid() else filterset.queryset
    page = page_get(request, runs, size=PAGE_SIZE)
    query = urlencode([(k, v) for k, v in request.GET.items() if k != "page" and v])
    return render(
        request,
        f"{spec['template']}_list.html",
        {"page": page, "filter_form": filter_form, "query": query, "spec": spec},
    )


def _run_detail(request, which: str, pk: int):
    spec = RUNS[which]
    run = spec["get"](user=request.user, pk=pk)
    return render(request, f"{spec['template']}_detail.html", {"run": run, "spec": spec, "mmcif": run.mmcif()})


def _run_create(request, which: str):
    spec = RUNS[which]
    form = spec["form"](request.POST or None, user=request.user, preselected=request.GET.getlist("grids"))
    if request.method == "POST" and form.is_valid():
        try:
            run = spec["record"](by=request.user, **form.service_kwargs())
            ok, failed = run.outcome_counts()
            text = f"{run}: {ok} grid(s) vitrified"
            messages.success(request, text + (f", {failed} failed and discarded." if failed else "."))
            return redirect(f"{spec['url']}-detail", pk=run.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, f"{spec['template']}_form.html", {"form": form, "spec": spec})


def plunge_run_list(request):
    return _run_list(request, "plunge")


def plunge_run_detail(request, pk: int):
    return _run_detail(request, "plunge", pk)


def plunge_run_create(request):
    return _run_create(request, "plunge")


def hpf_run_list(request):
    return _run_list(request, "hpf")


def hpf_run_detail(request, pk: int):
    return _run_detail(request, "hpf", pk)


def hpf_run_create(request):
    return _run_create(request, "hpf")


def vitrify(request):
    """Where the grid list's "Vitrify selected" lands: choose plunge or HPF, keeping ?grids=…"""
    ids = request.GET.getlist("grids")
    query = urlencode([("grids", i) for i in ids])
    grids = selectors.grids_ready_for_vitrification(user=request.user).filter(
        pk__in=[i for i in map(parse_id, ids) if i]
    )
    return render(request, "vitrification/vitrify_choose.html", {"query": query, "grids": grids, "asked": len(ids)})
