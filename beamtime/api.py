"""REST endpoints of beamtime under /api/v1/: thin — parse, call a service or selector, render."""

from __future__ import annotations

import django_filters
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from beamtime import access, exports, quality, selectors, services
from beamtime.models import (
    Beamline,
    BeamtimeSession,
    Facility,
    Metric,
    Operator,
    Proposal,
    QualityPolicy,
    SampleSheetEntry,
    SessionStatus,
    Shipment,
    ShipmentGrid,
    ShipmentStatus,
)
from grids import selectors as grid_selectors
from grids.models import Grid
from lims.csv_export import CSVExportMixin
from lims.models import Lab
from lims.selectors import labs_of


class FacilitySerializer(serializers.ModelSerializer):
    beamlines = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Facility
        fields = ["id", "name", "short_name", "city", "country", "website", "beamlines"]


class FacilityViewSet(CSVExportMixin, viewsets.ReadOnlyModelViewSet):
    """Synchrotron facilities (public reference data)."""

    serializer_class = FacilitySerializer
    queryset = Facility.objects.prefetch_related("beamlines").order_by("name")
    search_fields = ["name", "short_name", "city", "country"]
    ordering_fields = ["name", "short_name", "country"]


class BeamlineSerializer(serializers.ModelSerializer):
    facility_name = serializers.CharField(source="facility.short_name", read_only=True)
    quality_policy = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Beamline
        fields = [
            "id", "facility", "facility_name", "name", "code", "capacity", "shift_hours",
            "photon_energy_ev", "description", "active", "quality_policy",
        ]  # fmt: skip


class BeamlineViewSet(CSVExportMixin, viewsets.ReadOnlyModelViewSet):
    """Beamlines with their cryo-holder capacity (grids per session) and shift length (h)."""

    serializer_class = BeamlineSerializer
    filterset_fields = ["facility", "active"]
    search_fields = ["name", "code", "description"]
    ordering_fields = ["name", "code", "capacity"]

    def get_queryset(self):
        return selectors.beamline_list()


class _ProposalLabField(serializers.PrimaryKeyRelatedField):
    """The user's labs; facility staff record proposals for any lab. Other ids read as nonexistent."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return Lab.objects.none()
        if access.staff_facility_ids(request.user):
            return Lab.objects.all()
        return labs_of(user=request.user)


class ProposalSerializer(serializers.ModelSerializer):
    lab = _ProposalLabField()
    facility = serializers.PrimaryKeyRelatedField(queryset=Facility.objects.all())
    shifts_allocated = serializers.IntegerField(min_value=1, max_value=1000)
    shifts_scheduled = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Proposal
        fields = [
            "id", "facility", "number", "lab", "principal_investigator", "title", "shifts_allocated",
            "shifts_scheduled", "valid_from", "valid_until", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]
        validators: list = []

    def get_shifts_scheduled(self, proposal: Proposal) -> int:
        return sum(s.shifts for s in proposal.sessions.all() if s.status != SessionStatus.CANCELLED)


class ProposalViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Proposals of the user's labs, and (facility staff) of their facilities."""

    serializer_class = ProposalSerializer
    filterset_fields = ["facility", "lab", "number"]
    search_fields = ["number", "title", "principal_investigator"]
    ordering_fields = ["number", "valid_from", "valid_until", "created_at"]

    def get_queryset(self):
        return selectors.proposal_list(user=self.request.user).prefetch_related("sessions")

    def perform_create(self, serializer):
        proposal = services.proposal_create(by=self.request.user, **serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=proposal.pk)


class UserNameField(serializers.SlugRelatedField):
    """A facility staff member by username (local contacts are beamline staff)."""

    def __init__(self, **kwargs):
        queryset = get_user_model().objects.filter(facility_staff__isnull=False)
        super().__init__(slug_field="username", queryset=queryset, **kwargs)


class _UserScopedField(serializers.PrimaryKeyRelatedField):
    """A related record the requesting user can see (through `selector(user=…)`); others read as nonexistent."""

    def __init__(self, *, selector, **kwargs):
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return self.selector(user=request.user) if request else self.queryset.none()


class SessionSerializer(serializers.ModelSerializer):
    beamline = serializers.PrimaryKeyRelatedField(queryset=Beamline.objects.all())
    proposal = _UserScopedField(selector=selectors.proposal_list, queryset=Proposal.objects.all())
    beamline_name = serializers.CharField(source="beamline.__str__", read_only=True)
    proposal_number = serializers.CharField(source="proposal.number", read_only=True)
    capacity = serializers.IntegerField(source="beamline.capacity", read_only=True)
    entry_count = serializers.IntegerField(read_only=True)
    frozen = serializers.SerializerMethodField()
    local_contact = UserNameField(required=False, allow_null=True)
    shift_override_by = serializers.CharField(source="shift_override_by.username", read_only=True, default=None)
    override_reason = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="Facility staff: why beyond the allocation"
    )
    freeze_at = serializers.DateTimeField(required=False)
    url = serializers.HyperlinkedIdentityField(view_name="beamtimesession-detail")

    class Meta:
        model = BeamtimeSession
        fields = [
            "id", "url", "beamline", "beamline_name", "proposal", "proposal_number", "lab", "start", "end",
            "shifts", "status", "local_contact", "freeze_at", "frozen", "capacity", "entry_count",
            "shift_override_reason", "shift_override_by", "shift_override_at", "override_reason", "notes",
            "created_at",
        ]  # fmt: skip
        read_only_fields = [
            "lab", "shifts", "status", "shift_override_reason", "shift_override_at", "created_at",
        ]  # fmt: skip

    def get_frozen(self, session: BeamtimeSession) -> bool:
        return timezone.now() >= session.freeze_at


class SessionUpdateSerializer(serializers.Serializer):
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    freeze_at = serializers.DateTimeField(required=False)
    local_contact = UserNameField(required=False, allow_null=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    override_reason = serializers.CharField(required=False, allow_blank=True)


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SessionStatus.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class _SessionGridField(serializers.PrimaryKeyRelatedField):
    """A grid of the session's lab (the sheet holds only the lab's own grids)."""

    def get_queryset(self):
        session = self.context.get("session")
        return Grid.objects.filter(lab_id=session.lab_id) if session else Grid.objects.none()


class SheetAddSerializer(serializers.Serializer):
    grid = _SessionGridField(queryset=Grid.objects.all())
    override_reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="QC reviewer: why a grid that fails the gate goes"
    )
    position = serializers.IntegerField(required=False, min_value=1)


class SampleSheetEntrySerializer(serializers.ModelSerializer):
    grid_barcode = serializers.CharField(source="grid.barcode", read_only=True)
    grid_state = serializers.CharField(source="grid.state", read_only=True)
    added_by = serializers.CharField(source="added_by.username", read_only=True)
    override_by = serializers.CharField(source="override_by.username", read_only=True, default=None)

    class Meta:
        model = SampleSheetEntry
        fields = [
            "id", "session", "grid", "grid_barcode", "grid_state", "position", "gate_passed", "gate_evaluation",
            "override_reason", "override_by", "added_by", "added_at",
        ]  # fmt: skip
        read_only_fields = fields


class SessionFilter(django_filters.FilterSet):
    start_after = django_filters.IsoDateTimeFilter(field_name="end", lookup_expr="gt")
    start_before = django_filters.IsoDateTimeFilter(field_name="start", lookup_expr="lt")
    status = django_filters.MultipleChoiceFilter(choices=SessionStatus.choices)

    class Meta:
        model = BeamtimeSession
        fields = ["beamline", "lab", "proposal", "status"]


class SessionViewSet(CSVExportMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Sessions of the user's labs and (facility staff) every session on their beamlines."""

    serializer_class = SessionSerializer
    filterset_class = SessionFilter
    search_fields = ["proposal__number", "proposal__title", "notes"]
    ordering_fields = ["start", "end", "status"]

    def get_queryset(self):
        return selectors.session_list(user=self.request.user)

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return SessionUpdateSerializer
        return SessionSerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        session = services.session_schedule(by=self.request.user, **data)
        serializer.instance = self.get_queryset().get(pk=session.pk)

    def update(self, request, *args, **kwargs):
        session = self.get_object()
        payload = SessionUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        services.session_reschedule(session=session, by=request.user, **payload.validated_data)
        return Response(self._render(session.pk))

    def _render(self, pk):
        return SessionSerializer(self.get_queryset().get(pk=pk), context=self.get_serializer_context()).data

    @extend_schema(request=StatusSerializer, responses={200: SessionSerializer})
    @action(detail=True, methods=["post"], serializer_class=StatusSerializer)
    def transition(self, request, pk=None):
        """Move the session: {"status": "confirmed" | "running" | "finished" | "cancelled" | "planned", "reason"}."""
        session = self.get_object()
        payload = StatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.session_transition(session=session, by=request.user, to_status=payload.validated_data["status"],
                                    reason=payload.validated_data["reason"])  # fmt: skip
        return Response(self._render(session.pk))

    @extend_schema(methods=["GET"], request=None, responses=SampleSheetEntrySerializer(many=True))
    @extend_schema(methods=["POST"], request=SheetAddSerializer, responses={201: SampleSheetEntrySerializer})
    @action(detail=True, methods=["get", "post"], url_path="sample-sheet", serializer_class=SheetAddSerializer,
            pagination_class=None)  # fmt: skip
    def sample_sheet(self, request, pk=None):
        """GET: the sheet. POST {"grid", "override_reason"?}: add a grid (409 with `failing_rules` if the gate
        refuses; a QC reviewer's `override_reason` admits it), full or frozen sheets answer 409."""
        session = self.get_object()
        if request.method == "GET":
            entries = selectors.sheet_entries(session=session)
            return Response(SampleSheetEntrySerializer(entries, many=True).data)
        payload = SheetAddSerializer(data=request.data, context={"session": session, "request": request})
        payload.is_valid(raise_exception=True)
        entry = services.sample_sheet_add(session=session, by=request.user, **payload.validated_data)
        entry = selectors.sheet_entries(session=session).get(pk=entry.pk)
        return Response(SampleSheetEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=["json", "csv"])],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR},
        examples=[
            OpenApiExample(
                "Targets of a session",
                media_type="application/json",
                response_only=True,
                value={
                    "session": 12,
                    "beamline": "HZB U41 TXM",
                    "proposal": "P-2026-041",
                    "start": "2026-05-04T08:00:00+02:00",
                    "end": "2026-05-05T08:00:00+02:00",
                    "targets": [{"grid": "G-DEMO-000123", "square": "C4", "x": 512.0, "y": 300.5, "priority": 1}],
                },
            )  # fmt: skip
        ],
    )
    @action(detail=True, methods=["get"])
    def targets(self, request, pk=None):
        """The target list of every grid on the sheet: ?kind=json (default) or csv."""
        session = self.get_object()
        rows = selectors.session_targets(session=session)
        return _target_response(session, rows, request.query_params.get("kind", "json"))


def _target_response(session, rows, kind: str) -> HttpResponse:
    stem = f"session-{session.pk}-targets"
    if kind == "csv":
        response = HttpResponse(exports.targets_csv(rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    else:
        response = HttpResponse(exports.targets_json(session, rows), content_type="application/json")
        response["Content-Disposition"] = f'inline; filename="{stem}.json"'
    return response


class SampleSheetEntryViewSet(CSVExportMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    """Entries of the sheets the user sees; DELETE takes a grid off its sheet (same freeze rules)."""

    serializer_class = SampleSheetEntrySerializer
    filterset_fields = ["session", "grid", "gate_passed"]
    search_fields = ["grid__barcode", "override_reason"]
    ordering_fields = ["position", "added_at"]

    def get_queryset(self):
        return selectors.sample_sheet_entry_list(user=self.request.user)

    def perform_destroy(self, instance):
        services.sample_sheet_remove(
            entry=instance, by=self.request.user, reason=self.request.query_params.get("reason", "")
        )


class RuleSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    operator = serializers.ChoiceField(choices=Operator.choices)
    threshold = serializers.FloatField()
    label = serializers.SerializerMethodField()

    def get_label(self, rule) -> str:
        return str(rule) if not isinstance(rule, dict) else ""


class QualityPolicySerializer(serializers.ModelSerializer):
    rules = RuleSerializer(many=True)
    beamline_name = serializers.CharField(source="beamline.__str__", read_only=True)
    updated_by = serializers.CharField(source="updated_by.username", read_only=True, default=None)

    class Meta:
        model = QualityPolicy
        fields = ["id", "beamline", "beamline_name", "name", "description", "rules", "updated_by", "updated_at"]
        read_only_fields = ["beamline", "updated_at"]


class QualityPolicyViewSet(CSVExportMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Each beamline's gate; readable by everyone, editable (PUT/PATCH with all `rules`) by its facility staff."""

    serializer_class = QualityPolicySerializer
    filterset_fields = ["beamline"]
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at"]

    def get_queryset(self):
        return selectors.quality_policy_list()

    def update(self, request, *args, **kwargs):
        policy = self.get_object()
        payload = QualityPolicySerializer(policy, data=request.data, partial=kwargs.get("partial", False))
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        rules = data.get("rules")
        services.quality_policy_update(
            policy=policy,
            by=request.user,
            rules=[dict(r) for r in rules] if rules is not None else [
                {"metric": r.metric, "operator": r.operator, "threshold": r.threshold} for r in policy.rules.all()
            ],
            name=data.get("name"),
            description=data.get("description"),
        )  # fmt: skip
        return Response(QualityPolicySerializer(self.get_queryset().get(pk=policy.pk)).data)


class ShipmentItemSerializer(serializers.ModelSerializer):
    barcode = serializers.CharField(source="grid.barcode", read_only=True)
    state = serializers.CharField(source="grid.state", read_only=True)

    class Meta:
        model = ShipmentGrid
        fields = ["grid", "barcode", "state", "box_name", "box_barcode", "slot"]


class ShipmentSerializer(serializers.ModelSerializer):
    session = _UserScopedField(selector=selectors.session_list, queryset=BeamtimeSession.objects.all())
    grids = _UserScopedField(
        selector=grid_selectors.grid_list, queryset=Grid.objects.all(), many=True, required=False, write_only=True,
        help_text="Grids of the session's sheet to pack (default: every scheduled one not yet packed)",
    )  # fmt: skip
    items = ShipmentItemSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = Shipment
        fields = [
            "id", "session", "lab", "dewar", "courier", "tracking_number", "status", "grids", "items", "notes",
            "created_by", "created_at", "shipped_at", "received_at", "returned_at",
        ]  # fmt: skip
        read_only_fields = ["lab", "status", "created_at", "shipped_at", "received_at", "returned_at"]


class ShipmentStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ShipmentStatus.choices)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    tracking_number = serializers.CharField(required=False, allow_blank=True)


class ShipmentViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Dewars sent to sessions: prepared → shipped → received → returned."""

    serializer_class = ShipmentSerializer
    filterset_fields = ["session", "lab", "status"]
    search_fields = ["dewar", "courier", "tracking_number", "notes"]
    ordering_fields = ["created_at", "shipped_at", "status"]

    def get_queryset(self):
        return selectors.shipment_list(user=self.request.user).prefetch_related("items__grid")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        session = data.pop("session")
        shipment = services.shipment_create(session=session, by=self.request.user, **data)
        serializer.instance = self.get_queryset().get(pk=shipment.pk)

    @extend_schema(request=ShipmentStatusSerializer, responses={200: ShipmentSerializer})
    @action(detail=True, methods=["post"], serializer_class=ShipmentStatusSerializer)
    def transition(self, request, pk=None):
        """{"status": "shipped" | "received" | "returned", "reason"?, "tracking_number"?}."""
        shipment = self.get_object()
        payload = ShipmentStatusSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.shipment_transition(shipment=shipment, by=request.user, to_status=data["status"],
                                     reason=data["reason"], tracking_number=data.get("tracking_number"))  # fmt: skip
        return Response(ShipmentSerializer(self.get_queryset().get(pk=shipment.pk), context={"request": request}).data)

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=["pdf", "csv"])],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, (200, "text/csv"): OpenApiTypes.STR},
    )
    @action(detail=True, methods=["get"])
    def manifest(self, request, pk=None):
        """The printable manifest: ?kind=pdf (default, with QR codes) or csv."""
        shipment = self.get_object()
        return manifest_response(shipment, request.query_params.get("kind", "pdf"))


def manifest_response(shipment, kind: str) -> HttpResponse:
    items = list(selectors.shipment_items(shipment=shipment))
    stem = f"shipment-{shipment.pk}-manifest"
    if kind == "csv":
        response = HttpResponse(exports.manifest_csv(shipment, items), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    else:
        response = HttpResponse(exports.manifest_pdf(shipment, items), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{stem}.pdf"'
    return response


class GateRuleResultSerializer(serializers.Serializer):
    metric = serializers.CharField()
    label = serializers.CharField()
    operator = serializers.CharField()
    symbol = serializers.CharField()
    threshold = serializers.FloatField()
    value = serializers.JSONField(allow_null=True, help_text="The grid's value: a number, true/false, or null")
    passed = serializers.BooleanField()
    message = serializers.CharField()
    value_text = serializers.CharField()
    threshold_text = serializers.CharField()


@extend_schema_serializer(many=False)  # the gate's "list" route answers one evaluation, not a list
class GateEvaluationSerializer(serializers.Serializer):
    """What `quality.Evaluation.as_dict()` answers (documents the gate's JSON)."""

    grid_id = serializers.IntegerField()
    grid_barcode = serializers.CharField()
    beamline_id = serializers.IntegerField()
    policy_id = serializers.IntegerField(allow_null=True)
    policy_name = serializers.CharField()
    passed = serializers.BooleanField()
    rules = GateRuleResultSerializer(many=True)
    failing_rules = GateRuleResultSerializer(many=True)


class GateViewSet(viewsets.ViewSet):
    """GET /api/v1/grids/{id}/gate/?beamline=ID: the grid against that beamline's quality policy."""

    serializer_class = GateEvaluationSerializer  # documents the answer (the schema reads it)

    @extend_schema(
        parameters=[
            OpenApiParameter("grid_pk", int, OpenApiParameter.PATH),
            OpenApiParameter("beamline", int, required=True),
        ],
        responses={200: GateEvaluationSerializer},
    )
    def list(self, request, grid_pk=None):
        grid = grid_selectors.grid_get(user=request.user, pk=grid_pk)
        beamline_id = request.query_params.get("beamline")
        if not beamline_id or not str(beamline_id).isdigit():
            raise ValidationError({"beamline": ["Give ?beamline=ID (see /api/v1/beamlines/)."]})
        beamline = selectors.beamline_list().filter(pk=int(beamline_id)).first()
        if beamline is None:
            raise ValidationError({"beamline": [f"No beamline with id {beamline_id}."]})
        return Response(quality.evaluate(grid=grid, beamline=beamline).as_dict())


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("facilities", FacilityViewSet, basename="facility")
    router.register("beamlines", BeamlineViewSet, basename="beamline")
    router.register("proposals", ProposalViewSet, basename="proposal")
    router.register("sessions", SessionViewSet, basename="beamtimesession")
    router.register("quality-policies", QualityPolicyViewSet, basename="qualitypolicy")
    router.register("sample-sheet-entries", SampleSheetEntryViewSet, basename="samplesheetentry")
    router.register("shipments", ShipmentViewSet, basename="shipment")
    router.register(r"grids/(?P<grid_pk>[0-9]+)/gate", GateViewSet, basename="grid-gate")
