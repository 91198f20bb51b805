"""REST endpoints: checks, check-images (multipart upload, calibration), targets, qc-decisions.

Thin: parse, call a service, render. Every queryset is scoped to the user's labs (another lab's
record answers 404).
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from characterization import files, selectors, services
from characterization.filters import CheckFilter, CheckImageFilter, QCDecisionFilter, TargetFilter
from characterization.models import (
    Check,
    CheckImage,
    CheckStage,
    Decision,
    ImageKind,
    Modality,
    QCDecision,
    Target,
)
from grids.models import Grid
from lims.api import ScopedRelatedField
from lims.csv_export import CSVExportMixin

METRIC_KEYS = ("focus", "saturated_fraction", "coverage_fraction")
ATLAS_METRIC_KEYS = ("squares_found", "intact_fraction", "contamination_spots", "broken_squares")


def _absolute(request, url: str) -> str:
    return request.build_absolute_uri(url) if request else url


# --- targets ---------------------------------------------------------------------------------


# What the image files answer: the original in its own type (or octet-stream), previews as JPEG.
ORIGINAL_TYPES = (*dict.fromkeys(files.ORIGINAL_TYPES.values()), "application/octet-stream")
JPEG = {(200, "image/jpeg"): OpenApiTypes.BINARY}


class TargetSerializer(serializers.ModelSerializer):
    image = ScopedRelatedField(queryset=CheckImage.objects.all(), lab_field="lm_check__lab")
    check = serializers.IntegerField(source="image.lm_check_id", read_only=True)
    grid = serializers.IntegerField(source="image.lm_check.grid_id", read_only=True)
    priority = serializers.IntegerField(min_value=1, max_value=3, default=2)
    label = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")
    x = serializers.FloatField(min_value=0)
    y = serializers.FloatField(min_value=0)
    square = serializers.SerializerMethodField()
    offset_um = serializers.SerializerMethodField()
    grid_um = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Target
        fields = [
            "id", "image", "check", "grid", "label", "x", "y", "priority", "notes",
            "square", "offset_um", "grid_um", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]

    def _position(self, target: Target) -> dict | None:
        cache = self.context.setdefault("_positions", {})
        if target.pk not in cache:
            cache[target.pk] = selectors.target_position(target=target)
        return cache[target.pk]

    def get_square(self, target: Target) -> str | None:
        position = self._position(target)
        return position["square"] if position else None

    def get_offset_um(self, target: Target) -> list[float] | None:
        position = self._position(target)
        return position["offset_um"] if position else None

    def get_grid_um(self, target: Target) -> list[float] | None:
        position = self._position(target)
        return position["grid_um"] if position else None


class TargetUpdateSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=80, required=False)
    x = serializers.FloatField(min_value=0, required=False)
    y = serializers.FloatField(min_value=0, required=False)
    priority = serializers.IntegerField(min_value=1, max_value=3, required=False)
    notes = serializers.CharField(required=False, allow_blank=True)


class TargetViewSet(
    CSVExportMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.ReadOnlyModelViewSet,
):
    """Targets on images; with a calibrated image each reports its `square` and `offset_um` [dx, dy]."""

    serializer_class = TargetSerializer
    filterset_class = TargetFilter
    search_fields = ["label", "notes"]
    ordering_fields = ["priority", "created_at", "label"]

    def get_queryset(self):
        return selectors.target_list(user=self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        target = services.target_create(by=self.request.user, **data)
        serializer.instance = self.get_queryset().get(pk=target.pk)

    def update(self, request, *args, **kwargs):
        target = self.get_object()
        payload = TargetUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.target_update(target=target, by=request.user, **payload.validated_data)
        return Response(
            TargetSerializer(self.get_queryset().get(pk=target.pk), context=self.get_serializer_context()).data
        )

    def perform_destroy(self, instance):
        services.target_delete(target=instance, by=self.request.user)


# --- images ----------------------------------------------------------------------------------


def metrics_object(image: CheckImage) -> dict:
    """The image's metrics with every key present (None until computed); atlas keys for an atlas."""
    keys = METRIC_KEYS + (ATLAS_METRIC_KEYS if image.kind == ImageKind.ATLAS else ())
    stored = image.metrics or {}
    data = {key: stored.get(key) for key in keys}
    data["version"] = stored.get("version") or image.metrics_version or None
    if stored.get("per_channel"):
        data["per_channel"] = stored["per_channel"]
    return data


class ListField(serializers.ListField):
    """A list that also accepts one JSON or comma-separated string (multipart forms)."""

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist"):
            if self.field_name not in dictionary:
                return serializers.empty
            values = dictionary.getlist(self.field_name)
            return values[0] if len(values) == 1 else values
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, str):
            text = data.strip()
            if text.startswith("["):
                try:
                    data = json.loads(text)
                except ValueError:
                    raise serializers.ValidationError("Not valid JSON.") from None
            else:
                data = [part.strip() for part in text.split(",")] if text else []
        return super().to_internal_value(data)


class CheckImageSerializer(serializers.ModelSerializer):
    check = ScopedRelatedField(source="lm_check", queryset=Check.objects.all())
    file = serializers.FileField(write_only=True)
    kind = serializers.ChoiceField(choices=ImageKind.choices, default=ImageKind.CELLS)
    modality = serializers.ChoiceField(choices=Modality.choices, required=False)
    pixel_size_um = serializers.FloatField(min_value=0.0001, max_value=1000, required=False, allow_null=True)
    channel_names = ListField(child=serializers.CharField(max_length=80), required=False)
    objective = serializers.CharField(max_length=120, required=False, allow_blank=True)
    metrics = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    preview_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    channel_previews = serializers.SerializerMethodField()
    targets = TargetSerializer(many=True, read_only=True)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True)

    class Meta:
        model = CheckImage
        fields = [
            "id", "check", "file", "kind", "modality", "original_name", "sha256", "size_bytes", "format",
            "width", "height", "channels", "planes", "bit_depth", "pixel_size_um", "channel_names",
            "objective", "metadata_source", "metrics_status", "metrics_progress", "metrics_error",
            "metrics_version", "metrics", "file_url", "preview_url", "thumbnail_url", "channel_previews",
            "calibration", "calibration_residual_um", "calibrated_at", "targets", "uploaded_by", "uploaded_at",
        ]  # fmt: skip
        read_only_fields = [
            "original_name", "sha256", "size_bytes", "format", "width", "height", "channels", "planes",
            "bit_depth", "metadata_source", "metrics_status", "metrics_progress", "metrics_error",
            "metrics_version", "calibration", "calibration_residual_um", "calibrated_at", "uploaded_at",
        ]  # fmt: skip
        validators: list = []

    def get_metrics(self, image: CheckImage) -> dict:
        return metrics_object(image)

    def _url(self, image: CheckImage, which: str) -> str:
        return _absolute(self.context.get("request"), reverse(f"check-image-{which}", args=[image.pk]))

    def get_file_url(self, image: CheckImage) -> str:
        return self._url(image, "original")

    def get_preview_url(self, image: CheckImage) -> str | None:
        return self._url(image, "preview") if image.preview else None

    def get_thumbnail_url(self, image: CheckImage) -> str | None:
        return self._url(image, "thumbnail") if image.thumbnail else None

    def get_channel_previews(self, image: CheckImage) -> list[dict]:
        request = self.context.get("request")
        return [
            {
                "index": c["index"],
                "name": c["name"],
                "colour": c["colour"],
                "url": _absolute(request, reverse("check-image-channel", args=[image.pk, c["index"]])),
            }
            for c in image.channel_previews or []
        ]


class CheckImageUpdateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImageKind.choices, required=False)
    modality = serializers.ChoiceField(choices=Modality.choices, required=False)
    pixel_size_um = serializers.FloatField(min_value=0.0001, max_value=1000, required=False, allow_null=True)
    channel_names = ListField(child=serializers.CharField(max_length=80), required=False)
    objective = serializers.CharField(max_length=120, required=False, allow_blank=True)


class LandmarkSerializer(serializers.Serializer):
    x = serializers.FloatField()
    y = serializers.FloatField()
    square = serializers.CharField(max_length=12)


class CalibrateSerializer(serializers.Serializer):
    landmarks = LandmarkSerializer(many=True)


class CheckImageViewSet(
    CSVExportMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet
):
    """Images of checks. Upload as multipart (`check`, `file`, optional `kind`, `modality`,
    `pixel_size_um`, `channel_names`, `objective`); metrics follow (`metrics_status`)."""

    serializer_class = CheckImageSerializer
    filterset_class = CheckImageFilter
    search_fields = ["original_name", "objective"]
    ordering_fields = ["uploaded_at", "original_name"]
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]

    def get_queryset(self):
        return selectors.check_image_list(user=self.request.user).prefetch_related(
            Prefetch("targets", queryset=Target.objects.select_related("created_by"))
        )

    def create(self, request, *args, **kwargs):
        services.refuse_oversized_request(request.META.get("CONTENT_LENGTH"))
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        image = services.check_image_upload(
            lm_check=data.pop("lm_check"), upload=data.pop("file"), by=self.request.user, **data
        )
        serializer.instance = self.get_queryset().get(pk=image.pk)

    def update(self, request, *args, **kwargs):
        image = self.get_object()
        payload = CheckImageUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.check_image_update(image=image, by=request.user, **payload.validated_data)
        return Response(self._render(image.pk))

    def _render(self, pk: int) -> dict:
        return CheckImageSerializer(self.get_queryset().get(pk=pk), context=self.get_serializer_context()).data

    @extend_schema(request=CalibrateSerializer, responses={200: CheckImageSerializer})
    @action(detail=True, methods=["post"], serializer_class=CalibrateSerializer)
    def calibrate(self, request, pk=None):
        """Calibrate to the grid: {"landmarks": [{"x", "y", "square": "C4"}, …]} (≥ 3, not collinear)."""
        image = self.get_object()
        payload = CalibrateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.check_image_calibrate(image=image, landmarks=payload.validated_data["landmarks"], by=request.user)
        return Response(self._render(image.pk))

    @extend_schema(request=None, responses={202: CheckImageSerializer})
    @action(detail=True, methods=["post"])
    def recompute(self, request, pk=None):
        """Compute previews and metrics again."""
        image = services.check_image_metrics_requeue(image=self.get_object(), by=request.user)
        return Response(self._render(image.pk), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, t): OpenApiTypes.BINARY for t in ORIGINAL_TYPES})
    @action(detail=True, methods=["get"], url_path="original", url_name="original")
    def original(self, request, pk=None):
        """The uploaded file, as it was uploaded (an attachment under its original name)."""
        return files.image_file_response(self.get_object(), "original")

    @extend_schema(responses=JPEG)
    @action(detail=True, methods=["get"], url_path="preview", url_name="preview")
    def preview(self, request, pk=None):
        """The preview (JPEG; 404 until the metrics task has made it)."""
        return files.image_file_response(self.get_object(), "preview")

    @extend_schema(responses=JPEG)
    @action(detail=True, methods=["get"], url_path="thumbnail", url_name="thumbnail")
    def thumbnail(self, request, pk=None):
        """The thumbnail (JPEG; 404 until the metrics task has made it)."""
        return files.image_file_response(self.get_object(), "thumbnail")

    @extend_schema(
        responses=JPEG,
        parameters=[OpenApiParameter("index", int, OpenApiParameter.PATH, description="Channel number, from 0")],
    )
    @action(detail=True, methods=["get"], url_path=r"channels/(?P<index>\d+)", url_name="channel")
    def channel(self, request, pk=None, index=None):
        """One channel's preview (JPEG)."""
        return files.image_file_response(self.get_object(), "channel", index=int(index))


# --- checks ----------------------------------------------------------------------------------


class ImageSummarySerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()
    target_count = serializers.SerializerMethodField()

    class Meta:
        model = CheckImage
        fields = [
            "id",
            "original_name",
            "kind",
            "format",
            "width",
            "height",
            "channels",
            "metrics_status",
            "metrics",
            "target_count",
        ]

    def get_metrics(self, image: CheckImage) -> dict:
        return metrics_object(image)

    def get_target_count(self, image: CheckImage) -> int:
        return len(image.targets.all())


class DecisionSummarySerializer(serializers.ModelSerializer):
    decided_by = serializers.CharField(source="decided_by.username", read_only=True)

    class Meta:
        model = QCDecision
        fields = ["id", "decision", "reasons", "decided_by", "decided_at"]


class CheckSerializer(serializers.ModelSerializer):
    grid = ScopedRelatedField(queryset=Grid.objects.all())
    grid_barcode = serializers.CharField(source="grid.barcode", read_only=True)
    stage = serializers.ChoiceField(choices=CheckStage.choices)
    operator = serializers.SlugRelatedField(
        slug_field="username",
        queryset=get_user_model().objects.all(),
        required=False,
        help_text="Username of the lab member who looked (default: you).",
    )
    checked_at = serializers.DateTimeField(required=False)
    images = ImageSummarySerializer(many=True, read_only=True)
    decisions = DecisionSummarySerializer(many=True, read_only=True)
    review_status = serializers.SerializerMethodField()

    class Meta:
        model = Check
        fields = [
            "id", "lab", "grid", "grid_barcode", "stage", "microscope", "microscope_stage", "objective",
            "operator", "checked_at", "cell_density", "morphology", "ice_quality_class", "cell_integrity",
            "grid_integrity", "notes", "images", "decisions", "review_status", "created_at",
        ]  # fmt: skip
        read_only_fields = ["lab", "created_at"]

    def get_review_status(self, check: Check) -> str:
        if check.stage != CheckStage.POST_VITRIFICATION:
            return "not_required"
        return "decided" if check.decisions.all() else "awaiting_review"


class CheckUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Check
        fields = [
            "microscope", "microscope_stage", "objective", "checked_at", "cell_density", "morphology",
            "ice_quality_class", "cell_integrity", "grid_integrity", "notes",
        ]  # fmt: skip
        extra_kwargs = {f: {"required": False} for f in fields}


def _check_queryset(qs):
    return qs.prefetch_related(
        Prefetch("images", queryset=CheckImage.objects.annotate(n=Count("targets")).prefetch_related("targets")),
        Prefetch("decisions", queryset=QCDecision.objects.select_related("decided_by")),
    )


class CheckViewSet(CSVExportMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Light-microscopy checks. A pre-vitrification check needs a seeded grid, a post-vitrification
    one a vitrified (or already decided) grid; otherwise 409."""

    serializer_class = CheckSerializer
    filterset_class = CheckFilter
    search_fields = ["grid__barcode", "microscope", "notes"]
    ordering_fields = ["checked_at", "created_at"]

    def get_queryset(self):
        return _check_queryset(selectors.check_list(user=self.request.user))

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        check = services.check_create(grid=data.pop("grid"), stage=data.pop("stage"), by=self.request.user, **data)
        serializer.instance = self.get_queryset().get(pk=check.pk)

    def update(self, request, *args, **kwargs):
        check = self.get_object()
        payload = CheckUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.check_update(lm_check=check, by=request.user, **payload.validated_data)
        return Response(
            CheckSerializer(self.get_queryset().get(pk=check.pk), context=self.get_serializer_context()).data
        )

    @extend_schema(responses=CheckSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="review-queue")
    def review_queue(self, request):
        """Post-vitrification checks awaiting a decision in the labs where you review, oldest first."""
        qs = _check_queryset(selectors.review_queue(user=request.user))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(CheckSerializer(page, many=True, context=self.get_serializer_context()).data)


# --- decisions -------------------------------------------------------------------------------


class QCDecisionSerializer(serializers.ModelSerializer):
    check = ScopedRelatedField(source="lm_check", queryset=Check.objects.all())
    decision = serializers.ChoiceField(choices=Decision.choices)
    reasons = serializers.CharField(allow_blank=False, trim_whitespace=True)
    grid_barcode = serializers.CharField(source="grid.barcode", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True)

    class Meta:
        model = QCDecision
        fields = ["id", "lab", "grid", "grid_barcode", "check", "decision", "reasons", "decided_by", "decided_at"]
        read_only_fields = ["lab", "grid", "decided_at"]


class QCDecisionViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """QC decisions (kept forever; the newest per grid is in force). Creating one moves the grid."""

    serializer_class = QCDecisionSerializer
    filterset_class = QCDecisionFilter
    search_fields = ["grid__barcode", "reasons"]
    ordering_fields = ["decided_at"]

    def get_queryset(self):
        return selectors.qc_decision_list(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        record = services.qc_decide(
            lm_check=data["lm_check"], decision=data["decision"], reasons=data["reasons"], by=self.request.user
        )
        serializer.instance = self.get_queryset().get(pk=record.pk)


# --- the grid's record -----------------------------------------------------------------------


class GridCheckSerializer(CheckSerializer):
    class Meta(CheckSerializer.Meta):
        fields = [f for f in CheckSerializer.Meta.fields if f not in ("grid", "grid_barcode", "lab")]


def grid_characterization(grid: Grid, context: dict | None = None) -> dict:
    """What the grid's API record shows of its QC: its checks (newest first) and decisions.

    Shown in grids' GridDetailSerializer through `grid_detail_fields`.
    """
    checks = _check_queryset(Check.objects.filter(grid=grid).select_related("operator")).order_by("-checked_at", "-id")
    decisions = list(selectors.grid_decisions(grid=grid))
    context = context or {}
    return {
        "checks": GridCheckSerializer(checks, many=True, context=context).data,
        "qc_decision": DecisionSummarySerializer(decisions[0], context=context).data if decisions else None,
        "qc_decisions": DecisionSummarySerializer(decisions, many=True, context=context).data,
    }


class GridQualitySerializer(serializers.Serializer):
    """A grid → {"checks": […], "qc_decision": {…} | null, "qc_decisions": […]} (read only)."""

    def to_representation(self, grid):
        return grid_characterization(grid, self.context)


class _GridQualityPart(serializers.Field):
    """One part of `grid_characterization` as a read-only field of the grid's API record; the parts share
    one computation per grid through the serializer context."""

    part = ""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, grid):
        cache = self.context.setdefault("_grid_quality", {})
        if grid.pk not in cache:
            cache[grid.pk] = grid_characterization(grid, self.context)
        return cache[grid.pk][self.part]


@extend_schema_field(GridCheckSerializer(many=True))
class GridChecksField(_GridQualityPart):
    part = "checks"


@extend_schema_field(DecisionSummarySerializer(allow_null=True))
class GridDecisionField(_GridQualityPart):
    part = "qc_decision"


@extend_schema_field(DecisionSummarySerializer(many=True))
class GridDecisionsField(_GridQualityPart):
    part = "qc_decisions"


def grid_detail_fields() -> dict[str, serializers.Field]:
    """The fields characterization adds to grids' GridDetailSerializer (registered in CharacterizationConfig)."""
    return {"checks": GridChecksField(), "qc_decision": GridDecisionField(), "qc_decisions": GridDecisionsField()}


def register(router) -> None:
    router.register("checks", CheckViewSet, basename="check")
    router.register("check-images", CheckImageViewSet, basename="check-image")
    router.register("targets", TargetViewSet, basename="target")
    router.register("qc-decisions", QCDecisionViewSet, basename="qc-decision")
