"""Every write of the characterization app: checks, image uploads and their metrics, calibration,
targets and QC decisions. Pages, the API, tasks and the demo all call these."""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable, Sequence

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from characterization import calibration as calib
from characterization import imaging, metrics
from characterization.models import (
    STAGE_SCORES,
    Check,
    CheckImage,
    CheckStage,
    Decision,
    ImageKind,
    MetricsStatus,
    Modality,
    QCDecision,
    Target,
    image_folder,
)
from grids import insights
from grids import services as grid_services
from grids.lifecycle import GridState
from grids.models import Grid
from lims import permissions
from lims.errors import ConflictError, DomainError, PermissionDeniedError
from lims.models import Role

log = logging.getLogger(__name__)

# The grid states a check of each stage may be taken in.
STAGE_GRID_STATES: dict[str, tuple[str, ...]] = {
    CheckStage.PRE_VITRIFICATION: (GridState.SEEDED,),
    CheckStage.POST_VITRIFICATION: (GridState.VITRIFIED, GridState.ACCEPTED, GridState.REJECTED),
}
REVIEWER_ROLES = (Role.QC_REVIEWER, Role.LAB_ADMIN)
CHECK_TEXT_FIELDS = ("microscope", "microscope_stage", "objective", "notes")


def upload_limits() -> imaging.Limits:
    """Upload limits from settings (LIMS_IMAGE_MAX_BYTES, …_MAX_PIXELS, …_MAX_DECODED_BYTES)."""
    return imaging.Limits(
        max_bytes=int(getattr(settings, "LIMS_IMAGE_MAX_BYTES", 2 * 1024**3)),
        max_plane_pixels=int(getattr(settings, "LIMS_IMAGE_MAX_PIXELS", 16384 * 16384)),
        max_decoded_bytes=int(getattr(settings, "LIMS_IMAGE_MAX_DECODED_BYTES", 4 * 1024**3)),
        max_ratio=float(getattr(settings, "LIMS_IMAGE_MAX_COMPRESSION_RATIO", 200)),
    )


class UploadTooLargeError(DomainError):
    status_code = 413


def refuse_oversized_request(content_length: str | int | None) -> None:
    """Refuse an upload request whose body exceeds the file limit (plus 1 MiB of form overhead)
    before Django spools it to disk."""
    try:
        length = int(content_length or 0)
    except ValueError:
        return
    limit = upload_limits().max_bytes
    if length > limit + 1024 * 1024:
        raise UploadTooLargeError(
            f"The upload is {length / 2**20:.1f} MiB; files may be at most {limit / 2**20:.1f} MiB.", field="file"
        )


def _validated(instance) -> None:
    try:
        instance.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise DomainError(f"{field.replace('_', ' ')}: {' '.join(messages)}", field=field) from None


# --- checks ----------------------------------------------------------------------------------


def _check_scores(stage: str, scores: dict) -> dict:
    allowed = STAGE_SCORES[stage]
    foreign = [name for name, value in scores.items() if value is not None and name not in allowed]
    if foreign:
        raise DomainError(
            f"{', '.join(foreign)}: not scored at the {CheckStage(stage).label.lower()} stage "
            f"(scores of this stage: {', '.join(allowed)}).",
            field=foreign[0],
        )
    return {name: scores.get(name) for name in allowed}


def check_create(
    *,
    grid: Grid,
    stage: str,
    by,
    operator=None,
    checked_at: datetime.datetime | None = None,
    microscope: str = "",
    microscope_stage: str = "",
    objective: str = "",
    notes: str = "",
    **scores,
) -> Check:
    """Record a light-microscopy check of a grid; its stage must fit the grid's state (else 409)."""
    if stage not in CheckStage.values:
        raise DomainError(f"stage: use one of {', '.join(CheckStage.values)}.", field="stage")
    unknown = set(scores) - {s for stage_scores in STAGE_SCORES.values() for s in stage_scores}
    if unknown:
        raise DomainError(f"Unknown score(s): {', '.join(sorted(unknown))}.")
    stage_scores = _check_scores(stage, scores)
    permissions.require_member(by, grid.lab_id)
    operator = operator or by
    if operator != by and not permissions.is_member(operator, grid.lab_id):
        raise DomainError(f"operator: {operator} is not a member of {grid.lab}.", field="operator")
    with transaction.atomic():
        locked = Grid.objects.select_for_update().get(pk=grid.pk)
        allowed = STAGE_GRID_STATES[stage]
        if locked.state not in allowed:
            states = " or ".join(GridState(s).label.lower() for s in allowed)
            raise ConflictError(
                f"{locked.barcode} is {GridState(locked.state).label.lower()}: a {CheckStage(stage).label.lower()} "
                f"check needs a {states} grid.",
                field="stage",
            )
        check = Check(
            lab_id=locked.lab_id,
            grid=locked,
            stage=stage,
            operator=operator,
            checked_at=checked_at or timezone.now(),
            microscope=microscope,
            microscope_stage=microscope_stage,
            objective=objective,
            notes=notes,
            created_by=by,
            **stage_scores,
        )
        _validated(check)
        check.save()
        insights.grid_facts_changed([locked.pk])
    return check


def check_update(*, lm_check: Check, by, **fields) -> Check:
    """Edit a check's scores, microscope and notes (history kept). The stage and grid stay."""
    permissions.require_member(by, lm_check.lab_id)
    scores = {
        k: v
        for k, v in fields.items()
        if k in STAGE_SCORES[CheckStage.PRE_VITRIFICATION] + STAGE_SCORES[CheckStage.POST_VITRIFICATION]
    }
    _check_scores(lm_check.stage, scores)
    unknown = set(fields) - set(scores) - set(CHECK_TEXT_FIELDS) - {"checked_at"}
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} of a check.")
    for name, value in fields.items():
        setattr(lm_check, name, value)
    _validated(lm_check)
    lm_check._change_reason = "edited"
    with transaction.atomic():
        lm_check.save()
        insights.grid_facts_changed([lm_check.grid_id])
    return lm_check


# --- images ----------------------------------------------------------------------------------


def _sha256(upload) -> str:
    digest = hashlib.sha256()
    for chunk in upload.chunks(chunk_size=4 * 1024 * 1024):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _queue_metrics(image_id: int) -> None:
    from characterization import tasks

    tasks.compute_image_metrics.delay(image_id)


def _delete_stored(names: Sequence[str]) -> None:
    for name in names:
        if name:
            try:
                default_storage.delete(name)
            except OSError:
                log.warning("could not remove %s", name)


def check_image_upload(
    *,
    lm_check: Check,
    upload,
    by,
    kind: str = ImageKind.CELLS,
    modality: str | None = None,
    pixel_size_um: float | None = None,
    channel_names: Sequence[str] | None = None,
    objective: str | None = None,
) -> CheckImage:
    """Validate an uploaded image by its content and attach it to the check; metrics follow in a task.

    The file is decoded completely before anything is stored; a refused file leaves no row and no
    file (the file is written inside the transaction and removed again if the transaction fails).
    """
    permissions.require_member(by, lm_check.lab_id)
    if kind not in ImageKind.values:
        raise DomainError(f"kind: use one of {', '.join(ImageKind.values)}.", field="kind")
    if modality is not None and modality not in Modality.values:
        raise DomainError(f"modality: use one of {', '.join(Modality.values)}.", field="modality")
    name = imaging.clean_text(getattr(upload, "name", "") or "", 255) or "upload"
    source = upload.temporary_file_path() if hasattr(upload, "temporary_file_path") else upload
    try:
        decoded = imaging.decode(source, size=upload.size, name=name, limits=upload_limits())
    except imaging.ImageRefused as error:
        raise DomainError(str(error), field="file") from None
    upload.seek(0)
    sha = _sha256(upload)
    existing = CheckImage.objects.filter(lm_check=lm_check, sha256=sha).first()
    if existing:
        raise ConflictError(
            f"{name}: this file is already attached to this check (as {existing.original_name}).", field="file"
        )
    if modality is None:
        modality = (
            Modality.BRIGHTFIELD
            if kind == ImageKind.ATLAS or decoded.channels == 1 or decoded.rgb
            else Modality.FLUORESCENCE
        )
    names = list(channel_names) if channel_names else decoded.channel_names
    image = CheckImage(
        lm_check=lm_check,
        kind=kind,
        modality=modality,
        original_name=name[:255],
        sha256=sha,
        size_bytes=upload.size,
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        channels=decoded.channels,
        planes=decoded.planes,
        bit_depth=decoded.bit_depth,
        pixel_size_um=pixel_size_um if pixel_size_um is not None else decoded.pixel_size_um,
        channel_names=names,
        objective=objective if objective is not None else (decoded.objective or lm_check.objective),
        metadata_source=decoded.metadata_source,
        uploaded_by=by,
    )
    del decoded
    if image.channel_names and len(image.channel_names) != image.channels:
        raise DomainError(
            f"channel_names: the image has {image.channels} channel(s); {len(image.channel_names)} name(s) given.",
            field="channel_names",
        )
    _validated_image(image)
    stored = []
    try:
        with transaction.atomic():
            image.file.save("original", upload, save=False)
            stored.append(image.file.name)
            image.save()
            transaction.on_commit(lambda: _queue_metrics(image.pk))
    except IntegrityError:
        _delete_stored(stored)
        raise ConflictError(f"{name}: this file is already attached to this check.", field="file") from None
    except BaseException:
        _delete_stored(stored)
        raise
    return image


def _validated_image(image: CheckImage) -> None:
    if image.pixel_size_um is not None and not (0 < image.pixel_size_um <= 1000):
        raise DomainError("pixel_size_um: must be between 0 and 1000 µm.", field="pixel_size_um")


def check_image_update(*, image: CheckImage, by, **fields) -> CheckImage:
    """Edit what the metadata did not say (pixel size, channel names, objective) or the image's kind
    and modality; a change of kind or modality recomputes the metrics."""
    permissions.require_member(by, image.lm_check.lab_id)
    allowed = {"pixel_size_um", "channel_names", "objective", "kind", "modality"}
    unknown = set(fields) - allowed
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} of an image.")
    if "kind" in fields and fields["kind"] not in ImageKind.values:
        raise DomainError(f"kind: use one of {', '.join(ImageKind.values)}.", field="kind")
    if "modality" in fields and fields["modality"] not in Modality.values:
        raise DomainError(f"modality: use one of {', '.join(Modality.values)}.", field="modality")
    names = fields.get("channel_names")
    if names is not None:
        names = [str(n).strip() for n in names]
        if names and len(names) != image.channels:
            raise DomainError(
                f"channel_names: the image has {image.channels} channel(s); {len(names)} name(s) given.",
                field="channel_names",
            )
        fields["channel_names"] = names
    recompute = any(k in fields and fields[k] != getattr(image, k) for k in ("kind", "modality", "channel_names"))
    for key, value in fields.items():
        setattr(image, key, value)
    _validated_image(image)
    with transaction.atomic():
        if recompute:
            image.metrics_status, image.metrics_progress, image.metrics_error = MetricsStatus.PENDING, 0, ""
        image.save()
        if recompute:
            transaction.on_commit(lambda: _queue_metrics(image.pk))
    return image


def check_image_metrics_requeue(*, image: CheckImage, by) -> CheckImage:
    """Compute the metrics again (after a failure, or with a newer algorithm)."""
    permissions.require_member(by, image.lm_check.lab_id)
    with transaction.atomic():
        CheckImage.objects.filter(pk=image.pk).update(
            metrics_status=MetricsStatus.PENDING, metrics_progress=0, metrics_error=""
        )
        transaction.on_commit(lambda: _queue_metrics(image.pk))
    image.refresh_from_db()
    return image


def _progress_writer(image_id: int) -> Callable[[int], None]:
    def write(percent: int) -> None:
        CheckImage.objects.filter(pk=image_id).update(metrics_progress=max(0, min(100, int(percent))))

    return write


def check_image_analyse(*, image_id: int, timings: dict | None = None) -> CheckImage | None:
    """Read the stored original, write previews, compute and store the metrics.

    Claims the image (pending/failed/running → running; a redelivered job re-runs a crashed one);
    returns None when it is already done or gone. `timings` (if given) receives seconds per phase.
    """
    if not _claim_for_analysis(image_id):
        return None
    image = CheckImage.objects.select_related("lm_check").get(pk=image_id)
    progress = _progress_writer(image_id)
    timed = _phase_timer(timings)
    with timed("read"):
        decoded = _read_original(image)
    progress(25)
    with timed("previews"):
        stats = [metrics.channel_stats(channel) for channel in decoded.data]
        stored = _previews_store(image, decoded, stats)
    new_files = [stored["preview"], stored["thumbnail"], *[c["file"] for c in stored["channel_previews"]]]
    try:
        progress(50)
        with timed("metrics"):
            result = metrics.compute_metrics(
                decoded.data,
                atlas=image.kind == ImageKind.ATLAS,
                bright_foreground=image.modality != Modality.BRIGHTFIELD,
                progress=lambda fraction: progress(50 + 45 * fraction),
                stats=stats,
            )
        del decoded
        CheckImage.objects.filter(pk=image_id).update(
            **stored,
            metrics=result,
            metrics_version=metrics.METRICS_VERSION,
            metrics_status=MetricsStatus.DONE,
            metrics_progress=100,
            metrics_error="",
            metrics_finished_at=timezone.now(),
        )
    except BaseException:
        _delete_stored(new_files)  # the old previews stay in use
        raise
    old = [image.preview.name, image.thumbnail.name, *[c.get("file", "") for c in image.channel_previews]]
    # The old previews go once the new ones are recorded: a crash before leaves the old ones in place.
    _delete_stored([n for n in old if n])
    image.refresh_from_db()
    return image


def _claim_for_analysis(image_id: int) -> bool:
    """Mark the image running unless its metrics are done (a redelivered task re-runs a crashed analysis)."""
    return bool(
        CheckImage.objects.filter(pk=image_id)
        .exclude(metrics_status=MetricsStatus.DONE)
        .update(
            metrics_status=MetricsStatus.RUNNING,
            metrics_progress=5,
            metrics_error="",
            metrics_started_at=timezone.now(),
        )
    )


def _phase_timer(timings: dict | None):
    """A context manager per phase that records its seconds in `timings` (nothing when it is None)."""
    import contextlib
    import time

    @contextlib.contextmanager
    def timed(phase: str):
        clock = time.perf_counter()
        yield
        if timings is not None:
            timings[phase] = time.perf_counter() - clock

    return timed


def _read_original(image: CheckImage):
    # The upload was bounded when it was accepted; the stored original is read whole.
    limits = imaging.Limits(max_bytes=2**62, max_plane_pixels=2**62, max_decoded_bytes=2**62)
    with image.file.open("rb") as handle:
        return imaging.decode(handle, size=image.size_bytes, name=image.original_name, limits=limits)


def _previews_store(image: CheckImage, decoded, stats) -> dict:
    """Write the preview, the thumbnail and one picture per channel; returns the fields that name them."""
    previews = imaging.make_previews(decoded.data, channel_names=image.channel_names, rgb=decoded.rgb, stats=stats)
    folder = image_folder(image)
    saved: list[str] = []  # removed again if a write fails (the old previews stay in use)

    def save(name: str, content: bytes) -> str:
        saved.append(default_storage.save(f"{folder}/{name}", ContentFile(content)))
        return saved[-1]

    try:
        channel_entries = []
        for index, jpeg in enumerate(previews.channel_jpegs):
            label = image.channel_names[index] if index < len(image.channel_names) else f"Channel {index + 1}"
            channel_entries.append(
                {
                    "index": index,
                    "name": label,
                    "colour": "#{:02x}{:02x}{:02x}".format(*previews.colours[index]),
                    "file": save(f"channel-{index}.jpg", jpeg),
                }
            )
        return {
            "preview": save("preview.jpg", previews.preview_jpeg),
            "thumbnail": save("thumb.jpg", previews.thumbnail_jpeg),
            "channel_previews": channel_entries,
        }
    except BaseException:
        _delete_stored(saved)
        raise


def check_image_metrics_failed(*, image_id: int, error: str) -> None:
    CheckImage.objects.filter(pk=image_id).update(
        metrics_status=MetricsStatus.FAILED, metrics_error=error[:2000], metrics_finished_at=timezone.now()
    )


# --- calibration and targets -----------------------------------------------------------------


def _number(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DomainError(f"landmarks: {what} must be a number, got {value!r}.", field="landmarks") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise DomainError(f"landmarks: {what} must be a finite number.", field="landmarks")
    return number


def check_image_calibrate(*, image: CheckImage, landmarks: Sequence[dict], by) -> CheckImage:
    """Calibrate the image to its grid from ≥ 3 landmarks [{"x", "y", "square": "C4"}, …] (pixel
    position of the named square's centre) by a least-squares affine fit; stores the residual."""
    permissions.require_member(by, image.lm_check.lab_id)
    grid_type = image.lm_check.grid.lot.grid_type
    if not isinstance(landmarks, list | tuple) or len(landmarks) < 3:
        count = len(landmarks) if isinstance(landmarks, list | tuple) else 0
        raise DomainError(f"landmarks: calibration needs at least 3 landmarks; {count} given.", field="landmarks")
    pixels, grid_um, cleaned = [], [], []
    for number, mark in enumerate(landmarks, start=1):
        if not isinstance(mark, dict) or not {"x", "y", "square"} <= set(mark):
            raise DomainError(f"landmarks: landmark {number} needs x, y and square.", field="landmarks")
        x, y = _number(mark["x"], f"x of landmark {number}"), _number(mark["y"], f"y of landmark {number}")
        if not (0 <= x <= image.width and 0 <= y <= image.height):
            raise DomainError(
                f"landmarks: landmark {number} ({x:g}, {y:g}) lies outside the {image.width}×{image.height} image.",
                field="landmarks",
            )
        try:
            row, column = grid_type.square_index(str(mark["square"]))
        except ValueError as error:
            raise DomainError(f"landmarks: landmark {number}: {error}", field="landmarks") from None
        name = grid_type.square_name(row, column)
        pixels.append((x, y))
        grid_um.append((column * grid_type.square_pitch_um, row * grid_type.square_pitch_um))
        cleaned.append({"x": x, "y": y, "square": name})
    try:
        fit = calib.fit_affine(pixels, grid_um)
    except calib.CalibrationError as error:
        raise DomainError(f"landmarks: {error}", field="landmarks") from None
    for mark, residual in zip(cleaned, fit.residuals_um, strict=True):
        mark["residual_um"] = round(residual, 3)
    image.calibration = {
        "matrix": fit.as_json(),
        "landmarks": cleaned,
        "pitch_um": grid_type.square_pitch_um,
        "grid_type": grid_type.name,
        "by": by.get_username(),
    }
    image.calibration_residual_um = fit.residual_um
    image.calibrated_at = timezone.now()
    image.save(update_fields=["calibration", "calibration_residual_um", "calibrated_at"])
    return image


def check_image_uncalibrate(*, image: CheckImage, by) -> CheckImage:
    permissions.require_member(by, image.lm_check.lab_id)
    image.calibration, image.calibration_residual_um, image.calibrated_at = None, None, None
    image.save(update_fields=["calibration", "calibration_residual_um", "calibrated_at"])
    return image


def target_create(
    *, image: CheckImage, x: float, y: float, by, label: str = "", priority: int = 2, notes: str = ""
) -> Target:
    """Place a target (a cell to image) on an image, in pixels from the top-left corner."""
    permissions.require_member(by, image.lm_check.lab_id)
    x, y = float(x), float(y)
    if not (0 <= x < image.width and 0 <= y < image.height):
        raise DomainError(
            f"({x:g}, {y:g}) lies outside the {image.width}×{image.height} image.",
            field="x" if not 0 <= x < image.width else "y",
        )
    if not 1 <= int(priority) <= 3:
        raise DomainError("priority: 1 (highest) to 3 (lowest).", field="priority")
    with transaction.atomic():
        if not label.strip():
            label = f"T{Target.objects.filter(image__lm_check=image.lm_check).count() + 1}"
        target = Target(
            image=image, x=x, y=y, label=label.strip()[:80], priority=int(priority), notes=notes, created_by=by
        )
        _validated(target)
        target.save()
    return target


def target_update(*, target: Target, by, **fields) -> Target:
    permissions.require_member(by, target.image.lm_check.lab_id)
    unknown = set(fields) - {"label", "x", "y", "priority", "notes"}
    if unknown:
        raise DomainError(f"Cannot change {', '.join(sorted(unknown))} of a target.")
    for key, value in fields.items():
        setattr(target, key, value)
    image = target.image
    if not (0 <= float(target.x) < image.width and 0 <= float(target.y) < image.height):
        raise DomainError(
            f"({target.x:g}, {target.y:g}) lies outside the {image.width}×{image.height} image.", field="x"
        )
    _validated(target)
    target.save()
    return target


def target_delete(*, target: Target, by) -> None:
    permissions.require_member(by, target.image.lm_check.lab_id)
    target.delete()


# --- review and decision ---------------------------------------------------------------------


def qc_decide(*, lm_check: Check, decision: str, reasons: str, by) -> QCDecision:
    """A reviewer accepts or rejects the grid of a post-vitrification check, with reasons.

    The grid moves to accepted or rejected through the lifecycle service (409 if it cannot); every
    decision is kept (a revision is a new decision). The check's operator may decide only where the
    lab allows self-review.
    """
    lab = lm_check.lab
    permissions.require_role(by, lab, REVIEWER_ROLES, "accept or reject grids")
    if decision not in Decision.values:
        raise DomainError(f"decision: use one of {', '.join(Decision.values)}.", field="decision")
    reasons = (reasons or "").strip()
    if not reasons:
        raise DomainError("reasons: say why the grid is accepted or rejected.", field="reasons")
    if lm_check.stage != CheckStage.POST_VITRIFICATION:
        raise ConflictError(
            "Only a post-vitrification check can accept or reject a grid; this one is a pre-vitrification check.",
            field="check",
        )
    if lm_check.operator_id == by.pk and not lab.allow_self_review:
        raise PermissionDeniedError(
            f"You made this check; {lab} does not allow reviewing your own grids. Ask another reviewer "
            "(a lab admin can allow self-review in the lab's settings).",
            field="check",
        )
    with transaction.atomic():
        grid = Grid.objects.select_for_update().get(pk=lm_check.grid_id)
        cause = f"QC decision on check {lm_check.pk}"
        if grid.state != decision:
            grid_services.grid_transition(grid=grid, to_state=decision, by=by, reason=reasons, cause=cause)
        record = QCDecision(lab=lab, grid=grid, lm_check=lm_check, decision=decision, reasons=reasons, decided_by=by)
        record.save()
        insights.grid_facts_changed([grid.pk])
    return record
