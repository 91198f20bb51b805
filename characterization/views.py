"""Bench pages for checks, images, targets and review: thin views over the services."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from characterization import files, forms, selectors, services
from characterization.filters import CheckFilter
from characterization.models import STAGE_SCORES, CheckStage, ImageKind, MetricsStatus, Target
from grids import selectors as grid_selectors
from grids.lifecycle import GridState
from lims import permissions
from lims.errors import DomainError
from lims.forms import parse_id, show_domain_error
from lims.paging import page_get, query_without_page

PAGE_SIZE = 50


def _default_stage(grid) -> str:
    return (
        CheckStage.PRE_VITRIFICATION
        if grid.state in (GridState.REGISTERED, GridState.SEEDED)
        else CheckStage.POST_VITRIFICATION
    )


def check_list(request):
    filterset = CheckFilter(request.GET or None, queryset=selectors.check_list(user=request.user), request=request)
    form = filterset.form
    checks = filterset.qs if filterset.is_valid() else filterset.queryset
    page = page_get(request, checks, size=PAGE_SIZE)
    return render(
        request, "characterization/check_list.html", {"form": form, "page": page, "query": query_without_page(request)}
    )


def check_create(request, grid_pk: int):
    grid = grid_selectors.grid_get(user=request.user, pk=grid_pk)
    permissions.require_member(request.user, grid.lab_id)  # staff may see a grid on their sheet, not check it
    stage = request.POST.get("stage") or request.GET.get("stage") or _default_stage(grid)
    if stage not in CheckStage.values:
        raise Http404("No such stage.")
    form = forms.CheckForm(request.POST or None, stage=stage, lab=grid.lab, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("stage")
        data["operator"] = data.get("operator") or request.user
        try:
            check = services.check_create(grid=grid, stage=stage, by=request.user, **data)
            messages.success(request, "Check recorded. Add its images below.")
            return redirect("characterization:check-detail", pk=check.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(
        request,
        "characterization/check_form.html",
        {"grid": grid, "form": form, "stage": CheckStage(stage), "other_stage": _other(stage)},
    )


def check_edit(request, pk: int):
    """Edit a check's scores, microscope and notes (the stage and grid stay; history is kept)."""
    check = selectors.check_get(user=request.user, pk=pk)
    initial = {name: getattr(check, name) for name in ("microscope", "microscope_stage", "objective", "notes")}
    initial["checked_at"] = timezone.localtime(check.checked_at).strftime("%Y-%m-%dT%H:%M")
    initial.update({name: getattr(check, name) for name in STAGE_SCORES[check.stage]})
    form = forms.CheckForm(request.POST or None, stage=check.stage, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("stage")
        try:
            services.check_update(lm_check=check, by=request.user, **data)
            messages.success(request, "Check updated.")
            return redirect("characterization:check-detail", pk=check.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(request, "characterization/check_edit.html", {"check": check, "form": form})


def _other(stage: str) -> CheckStage:
    return CheckStage.POST_VITRIFICATION if stage == CheckStage.PRE_VITRIFICATION else CheckStage.PRE_VITRIFICATION


def check_detail(request, pk: int):
    check = selectors.check_get(user=request.user, pk=pk)
    images = list(
        selectors.check_image_list(user=request.user)
        .filter(lm_check=check)
        .prefetch_related("targets")
        .order_by("uploaded_at", "id")
    )
    decisions = list(check.decisions.select_related("decided_by").order_by("-decided_at", "-id"))
    can_review = (
        check.stage == CheckStage.POST_VITRIFICATION
        and permissions.has_role(request.user, check.lab_id, services.REVIEWER_ROLES)
        and (check.lab.allow_self_review or check.operator_id != request.user.pk)
    )
    decision_form = forms.DecisionForm()
    scores = [
        (name.replace("_", " "), getattr(check, f"get_{name}_display")())
        for name in STAGE_SCORES[check.stage]
        if getattr(check, name) is not None
    ]
    return render(
        request,
        "characterization/check_detail.html",
        {
            "check": check,
            "images": images,
            "decisions": decisions,
            "scores": scores,
            "can_review": can_review,
            "decision_form": decision_form,
            "upload_form": forms.UploadForm(),
            "pending": any(i.metrics_status in (MetricsStatus.PENDING, MetricsStatus.RUNNING) for i in images),
        },
    )


@csrf_exempt  # the CSRF check runs inside, after the size check (it would read the body first)
@require_POST
def check_upload(request, pk: int):
    """Upload images to a check (one or many files). Answers JSON to the page's XMLHttpRequest."""
    check = selectors.check_get(user=request.user, pk=pk)
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        services.refuse_oversized_request(request.META.get("CONTENT_LENGTH"))
    except DomainError as error:
        if wants_json:
            return JsonResponse({"uploaded": [], "refused": [{"name": "", "detail": error.message}]}, status=413)
        messages.error(request, error.message)
        return redirect("characterization:check-detail", pk=check.pk)
    return _check_upload(request, check, wants_json)


@csrf_protect
def _check_upload(request, check, wants_json: bool):
    uploads = request.FILES.getlist("file")
    kind = request.POST.get("kind") or ImageKind.CELLS
    modality = request.POST.get("modality") or None
    results, errors = [], []
    for upload in uploads:
        try:
            image = services.check_image_upload(
                lm_check=check, upload=upload, by=request.user, kind=kind, modality=modality
            )
            results.append({"id": image.pk, "name": image.original_name})
        except DomainError as error:
            errors.append({"name": upload.name, "detail": error.message})
    if not uploads:
        errors.append({"name": "", "detail": "Choose at least one file."})
    if wants_json:
        return JsonResponse({"uploaded": results, "refused": errors}, status=400 if errors and not results else 200)
    for item in results:
        messages.success(request, f"Uploaded {item['name']}; metrics are being computed.")
    for item in errors:
        messages.error(request, item["detail"])
    return redirect("characterization:check-detail", pk=check.pk)


@require_POST
def check_decide(request, pk: int):
    check = selectors.check_get(user=request.user, pk=pk)
    form = forms.DecisionForm(request.POST)
    if form.is_valid():
        try:
            decision = services.qc_decide(lm_check=check, by=request.user, **form.cleaned_data)
            messages.success(request, f"{check.grid.barcode} {decision.decision}.")
            if request.POST.get("next") == "queue":
                return redirect("characterization:review-queue")
            return redirect("characterization:check-detail", pk=check.pk)
        except DomainError as error:
            messages.error(request, error.message)
    else:
        for field_errors in form.errors.values():
            for message in field_errors:
                messages.error(request, message)
    return redirect("characterization:check-detail", pk=check.pk)


def image_detail(request, pk: int):
    """The image page; a POST runs one of the page's actions (its form's `action`), each its own handler below."""
    image = selectors.check_image_get(user=request.user, pk=pk)
    page_forms = _image_forms(image)
    handler = _IMAGE_ACTIONS.get(request.POST.get("action", "")) if request.method == "POST" else None
    if handler is not None:
        try:
            response = handler(request, image, page_forms)
        except DomainError as error:
            form = page_forms.get(request.POST["action"])
            if form is not None and form.is_bound:
                show_domain_error(form, error)
            else:
                messages.error(request, error.message)
        else:
            if response is not None:
                return response
    return _image_page(request, image, page_forms)


def _image_forms(image) -> dict:
    """The page's unbound forms by action, filled in with the image's current values."""
    landmarks = [{k: m[k] for k in ("x", "y", "square")} for m in (image.calibration or {}).get("landmarks", [])]
    return {
        "target": forms.TargetForm(),
        "calibrate": forms.CalibrationForm(initial={"landmarks": json.dumps(landmarks)}),
        "metadata": forms.ImageMetadataForm(
            initial={
                "kind": image.kind,
                "modality": image.modality,
                "pixel_size_um": image.pixel_size_um,
                "channel_names": ", ".join(image.channel_names),
                "objective": image.objective,
            }
        ),
    }


def _back_to_image(request, image, message: str):
    messages.success(request, message)
    return redirect("characterization:image-detail", pk=image.pk)


def _image_target_place(request, image, page_forms):
    form = page_forms["target"] = forms.TargetForm(request.POST)
    if form.is_valid():
        services.target_create(image=image, by=request.user, **form.cleaned_data)
        return _back_to_image(request, image, "Target placed.")
    return None


def _image_target_delete(request, image, page_forms):
    target = get_object_or_404(Target, pk=parse_id(request.POST.get("target")) or 0, image=image)
    services.target_delete(target=target, by=request.user)
    return _back_to_image(request, image, f"Target {target.label} removed.")


def _image_calibrate(request, image, page_forms):
    form = page_forms["calibrate"] = forms.CalibrationForm(request.POST)
    if form.is_valid():
        services.check_image_calibrate(image=image, landmarks=form.cleaned_data["landmarks"], by=request.user)
        return _back_to_image(request, image, f"Calibrated: residual {image.calibration_residual_um:.2f} µm (RMS).")
    return None


def _image_metadata_save(request, image, page_forms):
    form = page_forms["metadata"] = forms.ImageMetadataForm(request.POST)
    if form.is_valid():
        services.check_image_update(image=image, by=request.user, **form.cleaned_data)
        return _back_to_image(request, image, "Image details saved.")
    return None


def _image_metrics_requeue(request, image, page_forms):
    services.check_image_metrics_requeue(image=image, by=request.user)
    return _back_to_image(request, image, "Metrics queued.")


# The image page's actions: the value of the `action` field each of its forms posts.
_IMAGE_ACTIONS = {
    "target": _image_target_place,
    "delete-target": _image_target_delete,
    "calibrate": _image_calibrate,
    "metadata": _image_metadata_save,
    "recompute": _image_metrics_requeue,
}


def _image_page(request, image, page_forms):
    targets = list(image.targets.select_related("created_by").order_by("priority", "id"))
    for target in targets:
        target.position = selectors.target_position(target=target) if image.calibration else None
    return render(
        request,
        "characterization/image_detail.html",
        {
            "image": image,
            "check": image.lm_check,
            "targets": targets,
            "targets_json": [
                {
                    "id": t.pk,
                    "x": t.x,
                    "y": t.y,
                    "label": t.label,
                    "square": t.position["square"] if t.position else None,
                }
                for t in targets
            ],
            "landmarks_json": (image.calibration or {}).get("landmarks", []),
            "target_form": page_forms["target"],
            "calibration_form": page_forms["calibrate"],
            "metadata_form": page_forms["metadata"],
            "grid_type": image.lm_check.grid.lot.grid_type,
        },
    )


def image_file(request, pk: int, which: str, index: int | None = None):
    """The original or a preview, after the lab check (media is never served publicly)."""
    image = selectors.check_image_get(user=request.user, pk=pk)
    return files.image_file_response(image, which, index=index)


def review_queue(request):
    checks = selectors.review_queue(user=request.user)
    page = page_get(request, checks, size=PAGE_SIZE)
    return render(request, "characterization/review_queue.html", {"page": page, "decision_form": forms.DecisionForm()})
