"""REST endpoints: instruments, plunge-runs, hpf-runs (thin: parse, call a service, answer).

Ranges come from `vitrification.ranges.RANGES` through lims.ranges (the same validators as the model), and every id
is looked up inside the user's labs only, so another lab's grid or instrument reads as "Invalid pk".
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from grids.models import Grid
from lims import permissions
from lims.api import LabField, ScopedRelatedField
from lims.csv_export import CSVExportMixin
from lims.ranges import range_api_field
from vitrification import mmcif, selectors, services
from vitrification.filters import HPFRunFilter, InstrumentFilter, PlungeRunFilter
from vitrification.models import (
    BlotSide,
    Cryogen,
    GridOutcome,
    HPFRun,
    Instrument,
    InstrumentKind,
    InstrumentModel,
    Outcome,
    PlungeRun,
)

# --- instruments -----------------------------------------------------------------------------


class InstrumentSerializer(serializers.ModelSerializer):
    lab = LabField()
    kind = serializers.ChoiceField(choices=InstrumentKind.choices)
    model = serializers.ChoiceField(choices=InstrumentModel.choices, help_text="PDBx/mmCIF instrument name")
    model_display = serializers.CharField(source="get_model_display", read_only=True)

    class Meta:
        model = Instrument
        fields = [
            "id", "lab", "name", "kind", "model", "model_display", "serial_number", "location",
            "active", "notes", "created_at",
        ]  # fmt: skip
        read_only_fields = ["created_at"]
        validators: list = []  # the service checks the unique name with a message that says what clashes


class InstrumentViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Plunge freezers and high-pressure freezers of the user's labs."""

    serializer_class = InstrumentSerializer
    filterset_class = InstrumentFilter
    search_fields = ["name", "serial_number", "location", "notes"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self):
        return selectors.instrument_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.instrument_create(by=self.request.user, **serializer.validated_data)


# --- runs ------------------------------------------------------------------------------------


def _ranged(name: str, **kwargs) -> serializers.Field:
    return range_api_field(name, **kwargs)


class OutcomeSerializer(serializers.ModelSerializer):
    barcode = serializers.CharField(source="grid.barcode", read_only=True)

    class Meta:
        model = GridOutcome
        fields = ["grid", "barcode", "outcome", "reason"]
        read_only_fields = fields


class OutcomeInputSerializer(serializers.Serializer):
    grid = ScopedRelatedField(queryset=Grid.objects.all())
    outcome = serializers.ChoiceField(choices=Outcome.choices, default=Outcome.OK)
    reason = serializers.CharField(required=False, allow_blank=True, default="")

    def validate(self, attrs):
        if attrs["outcome"] == Outcome.FAILED and not attrs.get("reason", "").strip():
            raise serializers.ValidationError({"reason": "Say why the grid failed."})
        return attrs


class LabMemberField(serializers.SlugRelatedField):
    """A person (by username) who belongs to one of the requesting user's labs."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return super().get_queryset().none()
        labs = permissions.lab_ids(request.user)
        return super().get_queryset().filter(memberships__lab__in=labs).distinct()


class RunSerializer(serializers.ModelSerializer):
    """Fields shared by both kinds of run; `grids` and `outcomes` are written and read back."""

    lab = serializers.PrimaryKeyRelatedField(read_only=True)
    grids = ScopedRelatedField(queryset=Grid.objects.all(), many=True, write_only=True, allow_empty=False)
    instrument = ScopedRelatedField(queryset=Instrument.objects.all())
    instrument_name = serializers.CharField(source="instrument.name", read_only=True)
    instrument_model = serializers.CharField(source="instrument.model", read_only=True)
    operator = LabMemberField(slug_field="username", queryset=get_user_model().objects.all(), required=False)
    performed_at = serializers.DateTimeField(required=False)
    outcomes = OutcomeInputSerializer(many=True, required=False, write_only=True)
    results = OutcomeSerializer(source="outcomes", many=True, read_only=True)
    grid_ids = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    mmcif = serializers.SerializerMethodField()

    common_fields = [
        "id", "lab", "instrument", "instrument_name", "instrument_model", "grids", "grid_ids",
        "outcomes", "results", "operator", "performed_at",
    ]  # fmt: skip
    tail_fields = ["notes", "mmcif", "created_by", "created_at"]

    def get_grid_ids(self, run) -> list[int]:
        return [o.grid_id for o in run.outcomes.all()]

    def get_mmcif(self, run) -> dict:
        return run.mmcif()

    def validate(self, attrs):
        grids = {g.pk for g in attrs.get("grids", [])}
        for entry in attrs.get("outcomes", []):
            if entry["grid"].pk not in grids:
                raise serializers.ValidationError(
                    {"outcomes": f"Grid {entry['grid'].pk} is not one of the run's grids."}
                )
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Read back under the names that were written: grids as ids, outcomes with barcodes.
        data["grids"] = data.pop("grid_ids")
        data["outcomes"] = data.pop("results")
        return data


class RunSchema(OpenApiSerializerExtension):
    """Documents runs as `to_representation` answers them: `grids` (ids) and `outcomes` (with barcodes) are
    sent and read back under the same names, where the serializer reads them as `grid_ids` and `results`."""

    target_class = "vitrification.api.RunSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "response":
            return schema
        properties = schema.get("properties", {})
        for read_name, name in (("grid_ids", "grids"), ("results", "outcomes")):
            if read_name in properties:
                properties[name] = properties.pop(read_name)
        if "required" in schema:
            renamed = {"grid_ids": "grids", "results": "outcomes"}
            schema["required"] = sorted({renamed.get(n, n) for n in schema["required"]})
        return schema


class PlungeRunSerializer(RunSerializer):
    blot_time_s = _ranged("blot_time_s", required=False, allow_null=True)
    blot_force = _ranged("blot_force", required=False, allow_null=True)
    blot_side = serializers.ChoiceField(choices=BlotSide.choices, required=False)
    humidity_percent = _ranged("humidity_percent", required=False, allow_null=True)
    chamber_temperature_c = _ranged("chamber_temperature_c", required=False, allow_null=True)
    wait_time_s = _ranged("wait_time_s", required=False, allow_null=True)
    sample_volume_ul = _ranged("sample_volume_ul", required=False, allow_null=True)
    cryogen = serializers.ChoiceField(choices=Cryogen.choices, required=False, help_text="PDBx/mmCIF cryogen_name")

    class Meta:
        model = PlungeRun
        fields = [
            *RunSerializer.common_fields,
            "blot_time_s", "blot_force", "blot_side", "humidity_percent", "chamber_temperature_c",
            "wait_time_s", "sample_volume_ul", "cryogen",
            *RunSerializer.tail_fields,
        ]  # fmt: skip
        read_only_fields = ["created_at"]


class HPFRunSerializer(RunSerializer):
    pressure_bar = _ranged("pressure_bar")
    cavity_depth_um = _ranged("cavity_depth_um", required=False, allow_null=True)

    class Meta:
        model = HPFRun
        fields = [
            *RunSerializer.common_fields,
            "pressure_bar", "carrier_type", "cavity_depth_um", "filler",
            *RunSerializer.tail_fields,
        ]  # fmt: skip
        read_only_fields = ["created_at"]


class _RunViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    record = None  # the service
    list_selector = None
    search_fields = ["instrument__name", "notes", "outcomes__grid__barcode"]
    ordering_fields = ["performed_at", "created_at"]

    def get_queryset(self):
        return self.list_selector(user=self.request.user)

    @extend_schema(
        responses={(200, "chemical/x-mmcif"): OpenApiTypes.STR},
        examples=[
            OpenApiExample(
                "A plunge run as _em_vitrification",
                media_type="chemical/x-mmcif",
                response_only=True,
                value="data_sxt_lims_plunge_run_4\n_em_vitrification.id 1\n_em_vitrification.specimen_id 1\n"
                "_em_vitrification.instrument 'FEI VITROBOT MARK IV'\n_em_vitrification.cryogen_name ETHANE\n"
                "_em_vitrification.humidity 95\n_em_vitrification.chamber_temperature 295.15\n"
                "_em_vitrification.method 'plunge freezing'\n_em_vitrification.details 'blotted 6 s from the back'\n",
            )
        ],
    )
    @action(detail=True, methods=["get"])
    def mmcif(self, request, pk=None):
        """The run as a PDBx/mmCIF fragment (`_em_vitrification`, or `_em_high_pressure_freezing` for HPF)
        that gemmi or pdbx read: instrument, cryogen, humidity, chamber temperature (K), method details."""
        run = self.get_object()
        response = HttpResponse(mmcif.run_fragment(run), content_type="chemical/x-mmcif; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{mmcif.category(run)}-{run.pk}.cif"'
        return response

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        outcomes = [
            {"grid": o["grid"], "outcome": o["outcome"], "reason": o.get("reason", "")}
            for o in data.pop("outcomes", [])
        ]
        run = self.record(
            grids=data.pop("grids"), instrument=data.pop("instrument"), by=request.user, outcomes=outcomes, **data
        )
        run = self.get_queryset().get(pk=run.pk)
        return Response(self.get_serializer(run).data, status=status.HTTP_201_CREATED)


@extend_schema(
    description="Plunge-freezing runs. POST moves each grid seeded → vitrified (ok) or → discarded (failed)."
)
class PlungeRunViewSet(_RunViewSet):
    serializer_class = PlungeRunSerializer
    filterset_class = PlungeRunFilter
    record = staticmethod(services.plunge_run_record)
    list_selector = staticmethod(selectors.plunge_run_list)


@extend_schema(description="High-pressure-freezing runs; the same outcome rules as plunge runs.")
class HPFRunViewSet(_RunViewSet):
    serializer_class = HPFRunSerializer
    filterset_class = HPFRunFilter
    record = staticmethod(services.hpf_run_record)
    list_selector = staticmethod(selectors.hpf_run_list)


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("instruments", InstrumentViewSet, basename="instrument")
    router.register("plunge-runs", PlungeRunViewSet, basename="plungerun")
    router.register("hpf-runs", HPFRunViewSet, basename="hpfrun")
