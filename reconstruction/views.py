"""Reconstruction pages: datasets, their jobs and volumes, a slice viewer, and the newcomer's guide."""

from __future__ import annotations

from django.contrib import messages
from django.core.files.storage import default_storage
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from lims.errors import DomainError
from lims.forms import parse_id, show_domain_error
from lims.paging import page_get
from reconstruction import exports, plots, previews, selectors, services, views_common
from reconstruction.forms import DatasetForm, DecisionForm, JobForm
from reconstruction.models import DatasetStatus, JobState

# Pictures of the guide, made from the demo dataset by reconstruction.demo.
GUIDE_PICTURES = ("projection", "wbp", "wbp-hann", "sirt")


def _page(request, queryset, size: int = 25):
    return page_get(request, queryset, size=size)


def index(request):
    """Datasets waiting for a decision first, then the rest; the latest jobs beside them."""
    datasets = selectors.dataset_list(user=request.user).order_by("status", "-created_at")
    status = request.GET.get("status")
    if status in DatasetStatus.values:
        datasets = datasets.filter(status=status)
    jobs = selectors.job_list(user=request.user)[:10]
    can_add = selectors.sheet_entries_for_datasets(user=request.user).exists()
    return render(
        request,
        "reconstruction/index.html",
        {
            "page": _page(request, datasets),
            "jobs": jobs,
            "can_add": can_add,
            "status": status,
            "statuses": DatasetStatus.choices,
        },
    )


def dataset_add(request):
    form = DatasetForm(request.POST or None, request.FILES or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = views_common.create_dataset(user=request.user, data=form.cleaned_data)
        except DomainError as error:
            show_domain_error(form, error)
        else:
            messages.success(
                request, f"Dataset {dataset.name} added. Check the projections, then accept it to reconstruct."
            )
            return redirect("reconstruction:dataset-detail", dataset.pk)
    if request.method == "GET" and request.GET.get("grid"):
        grid_id = parse_id(request.GET["grid"])  # text and ids beyond 64 bits preselect nothing
        entry = form.fields["entry"].queryset.filter(grid_id=grid_id).first() if grid_id else None
        if entry:
            form.initial["entry"] = entry.pk
    return render(
        request,
        "reconstruction/dataset_form.html",
        {"form": form, "has_entries": form.fields["entry"].queryset.exists()},
    )


def _dataset(request, pk: int):
    return get_object_or_404(selectors.dataset_list(user=request.user), pk=pk)


def dataset_detail(request, pk: int):
    return _dataset_page(request, _dataset(request, pk))


def _dataset_page(request, dataset, *, job_form: JobForm | None = None):
    """The dataset page; `job_form` is a refused reconstruct-again form, shown with its errors by its fields."""
    jobs = list(selectors.job_list(user=request.user).filter(dataset=dataset))
    target_image = dataset.target.image if dataset.target_id else None
    return render(
        request,
        "reconstruction/dataset_detail.html",
        {
            "dataset": dataset,
            "jobs": jobs,
            "decision_form": DecisionForm(),
            "job_form": job_form or JobForm(dataset=dataset),
            "tilt_plot": plots.tilt_scheme(dataset.angles),
            "montage_angles": previews.montage_angles(dataset.tilts, dataset.angles),
            "target_image": target_image,
            "default_method": services.default_method(dataset),
        },
    )


@require_POST
def dataset_decide(request, pk: int):
    dataset = _dataset(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose accept or reject.")
        return redirect("reconstruction:dataset-detail", pk)
    try:
        job = services.dataset_decide(
            dataset=dataset,
            accept=form.cleaned_data["decision"] == "accept",
            by=request.user,
            note=form.cleaned_data["note"],
        )
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("reconstruction:dataset-detail", pk)
    if job is not None:
        preview = "" if job.method == "wbp" else " after a quick WBP preview (its volume is on the dataset's page)"
        messages.success(
            request,
            f"Accepted. Reconstruction job #{job.pk} ({job.method.upper()}) has started{preview}; this page follows it.",
        )
        return redirect("reconstruction:job-detail", job.pk)
    messages.info(request, "Dataset rejected.")
    return redirect("reconstruction:dataset-detail", pk)


@require_POST
def job_create(request, pk: int):
    dataset = _dataset(request, pk)
    form = JobForm(request.POST, dataset=dataset)
    if form.is_valid():
        try:
            job, created = services.job_request(
                dataset=dataset, method=form.cleaned_data["method"], parameters=form.parameters(), by=request.user
            )
        except DomainError as error:
            show_domain_error(form, error)
    if form.errors:
        messages.error(request, "The job was not started: see the marked fields under “Reconstruct again”.")
        return _dataset_page(request, dataset, job_form=form)
    if not created:
        messages.info(request, f"This reconstruction was already asked for: job #{job.pk}.")
    return redirect("reconstruction:job-detail", job.pk)


def dataset_montage(request, pk: int):
    return views_common.stored_file_response(_dataset(request, pk).montage.name, "image/png")


def dataset_ro_crate(request, pk: int):
    """The dataset as an RO-Crate zip (the same one the API gives); streamed."""
    dataset = _dataset(request, pk)
    try:
        return exports.crate_response(exports.dataset_crate(dataset, request=request))
    except DomainError as error:
        messages.error(request, f"The RO-Crate was not made. {error.message}")
        return redirect("reconstruction:dataset-detail", pk)


def _job(request, pk: int):
    return get_object_or_404(selectors.job_list(user=request.user), pk=pk)


def job_detail(request, pk: int):
    job = _job(request, pk)
    volume = getattr(job, "volume", None) if job.state == JobState.SUCCEEDED else None
    return render(
        request,
        "reconstruction/job_detail.html",
        {
            "job": job, "volume": volume, "slabs": job.slabs.all(), "transitions": job.transitions.all(),
            "worker_processes": selectors.worker_processes() if not job.finished else None,
        },
    )  # fmt: skip


@require_POST
def job_cancel(request, pk: int):
    job = _job(request, pk)
    try:
        services.job_cancel(job=job, by=request.user)
        messages.info(request, "Job cancelled: the slabs not yet started will not run.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("reconstruction:job-detail", pk)


def _volume(request, pk: int):
    return get_object_or_404(selectors.volume_list(user=request.user), pk=pk)


def volume_detail(request, pk: int):
    volume = _volume(request, pk)
    job = volume.job
    return render(
        request,
        "reconstruction/volume_detail.html",
        {
            "volume": volume,
            "job": job,
            "dataset": job.dataset,
            "histogram": plots.histogram(volume.histogram),
            "fsc": plots.fsc(volume.fsc, volume.resolution_nm),
            "planes": [
                ("xy", "x–y (across the tilt axis, at one depth)", volume.thickness),
                ("xz", "x–z (one slice along the tilt axis)", volume.depth),
                ("yz", "y–z", volume.width),
            ],
        },
    )


def volume_download(request, pk: int):
    return views_common.volume_download(_volume(request, pk))


def volume_ro_crate(request, pk: int):
    """The volume as an RO-Crate zip (the same one the API gives); streamed."""
    volume = _volume(request, pk)
    try:
        return exports.crate_response(exports.volume_crate(volume, request=request))
    except DomainError as error:
        messages.error(request, f"The RO-Crate was not made. {error.message}")
        return redirect("reconstruction:volume-detail", pk)


def volume_preview(request, pk: int, plane: str):
    volume = _volume(request, pk)
    return views_common.stored_file_response((volume.previews or {}).get(plane, ""), "image/png")


def volume_slice(request, pk: int, plane: str):
    volume = _volume(request, pk)
    return views_common.volume_slice_png(
        volume, plane, request.GET.get("index", "0"), request.GET.get("low"), request.GET.get("high")
    )


def guide(request):
    """How a reconstruction works, step by step, with pictures from the demo dataset when it is there."""
    pictures = {name: default_storage.exists(f"reconstruction/guide/{name}.png") for name in GUIDE_PICTURES}
    return render(
        request, "reconstruction/guide.html", {"pictures": pictures, "method_choices": services.method_choices()}
    )


def guide_picture(request, name: str):
    if name not in GUIDE_PICTURES:
        raise Http404("No such picture.")
    return views_common.stored_file_response(f"reconstruction/guide/{name}.png", "image/png")
