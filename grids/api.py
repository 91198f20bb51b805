"""REST endpoints for grid types, lots, grids, boxes, cell lines and seedings (thin: parse, call a service)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from grids import filters, labels, provenance, selectors, services
from grids.models import CellLine, Grid, GridLot, GridTransition, GridType, Seeding, StorageBox
from lims.api import LabField, ScopedRelatedField
from lims.api_base import datetime_text
from lims.csv_export import CSVExportMixin
from lims.ranges import range_api_field


class GridTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = GridType
        fields = [
            "id", "name", "vendor", "material", "mesh", "support_film", "hole_pattern",
            "finder_rows", "finder_columns", "square_pitch_um", "diameter_mm", "notes",
        ]  # fmt: skip


class GridTypeViewSet(CSVExportMixin, viewsets.ReadOnlyModelViewSet):
    queryset = GridType.objects.all()
    serializer_class = GridTypeSerializer
    filterset_fields = ["material", "vendor"]
    search_fields = ["name", "vendor", "material"]
    ordering_fields = ["name", "vendor", "mesh"]


class GridLotSerializer(serializers.ModelSerializer):
    lab = LabField()
    grid_type = serializers.PrimaryKeyRelatedField(queryset=GridType.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=100000)
    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = GridLot
        fields = [
            "id", "lab", "grid_type", "vendor", "lot_number", "received_on", "expires_on",
            "quantity", "quantity_left", "notes", "created_by", "created_at",
        ]  # fmt: skip
        read_only_fields = ["quantity_left", "created_at"]
        validators: list = []  # uniqueness is checked by the service, with a message that says what clashes


class RegisterGridsSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=services.MAX_REGISTER)
    box = ScopedRelatedField(queryset=StorageBox.objects.all(), required=False, allow_null=True)


class GridSerializer(serializers.ModelSerializer):
    grid_type = serializers.IntegerField(source="lot.grid_type_id", read_only=True)
    grid_type_name = serializers.CharField(source="lot.grid_type.name", read_only=True)
    box_name = serializers.CharField(source="box.name", read_only=True, default=None)
    url = serializers.HyperlinkedIdentityField(view_name="grid-detail")

    class Meta:
        model = Grid
        fields = [
            "id", "url", "barcode", "lab", "lot", "grid_type", "grid_type_name", "state",
            "box", "box_name", "slot", "notes", "registered_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, instance: Grid | dict) -> dict:
        """The same record as DRF's field-by-field walk, built directly: that walk (fields built for each
        serializer, a `get_attribute` and a `to_representation` per field, a `reverse()` per row for `url`)
        was most of a 50-row page's server time. One `reverse()` per serializer gives the URL with a
        placeholder id. A list row comes as a dict of its columns (`LIST_ROW`, see GridViewSet.filter_queryset);
        a Grid is read through the same names, its attribute dict, with the type and box names from its
        related records. tests/grids/test_api.py compares both ways field for field."""
        request = self.context.get("request")
        if request is None:
            return super().to_representation(instance)
        prepared = self.__dict__.get("_prepared")
        if prepared is None:
            url = reverse(
                "grid-detail", kwargs={"pk": _PK_PLACEHOLDER}, request=request, format=self.context.get("format")
            )
            stamp = datetime_text(timezone.get_current_timezone())
            prepared = self._prepared = (url, stamp)
        template, stamp = prepared
        row = instance if isinstance(instance, dict) else _row_of(instance)
        pk = row["id"]
        return {
            "id": pk,
            "url": template.replace(_PK_PLACEHOLDER, str(pk)),
            "barcode": row["barcode"],
            "lab": row["lab_id"],
            "lot": row["lot_id"],
            "grid_type": row["lot__grid_type"],
            "grid_type_name": row["lot__grid_type__name"],
            "state": row["state"],
            "box": row["box_id"],
            "box_name": row["box__name"],
            "slot": row["slot"],
            "notes": row["notes"],
            "registered_at": stamp(row["registered_at"]),
            "updated_at": stamp(row["updated_at"]),
        }


def _row_of(grid: Grid) -> dict:
    """A Grid under the names of a list row: its attribute dict holds its own columns under those names."""
    lot, box = grid.lot, grid.box
    return {
        **grid.__dict__, "lot__grid_type": lot.grid_type_id, "lot__grid_type__name": lot.grid_type.name,
        "box__name": box.name if box is not None else None,
    }  # fmt: skip


# The columns a list row is read as (GridViewSet.filter_queryset): the grid's own under its attributes' names,
# and its lot's type and its box's name through the joins (one query, no related records built).
LIST_ROW = (
    "id", "barcode", "lab_id", "lot_id", "state", "box_id", "slot", "notes", "registered_at", "updated_at",
    "lot__grid_type", "lot__grid_type__name", "box__name",
)  # fmt: skip
# Stands for a grid's id in the one reverse() a serializer makes (the router's pattern takes any [^/.]+).
_PK_PLACEHOLDER = "__pk__"


class TransitionSerializer(serializers.ModelSerializer):
    by = serializers.CharField(source="by.username")

    class Meta:
        model = GridTransition
        fields = ["from_state", "to_state", "by", "at", "reason", "cause"]


# Extension point: a higher app adds read-only fields to one grid's API record (characterization: its
# checks and QC decisions). A provider returns {field name: serializer field}; apps register theirs in
# AppConfig.ready(), so grids never imports them.
GridDetailFieldsProvider = Callable[[], dict[str, serializers.Field]]
_detail_field_providers: list[GridDetailFieldsProvider] = []


def grid_detail_fields_register(provider: GridDetailFieldsProvider) -> None:
    if provider not in _detail_field_providers:
        _detail_field_providers.append(provider)


class GridDetailSerializer(GridSerializer):
    """One grid with its lifecycle history and what the other apps add (checks, QC decisions)."""

    transitions = TransitionSerializer(many=True, read_only=True)

    class Meta(GridSerializer.Meta):
        fields = [*GridSerializer.Meta.fields, "transitions"]
        read_only_fields = fields

    # One record at a time, with fields other apps add: DRF's generic walk, not the list's hand-built one.
    to_representation = serializers.ModelSerializer.to_representation

    def get_fields(self):
        fields = super().get_fields()
        for provider in _detail_field_providers:
            fields.update(provider())
        return fields


class DiscardSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=False, trim_whitespace=True)


class MoveSerializer(serializers.Serializer):
    box = ScopedRelatedField(queryset=StorageBox.objects.all(), allow_null=True)
    slot = serializers.IntegerField(min_value=1, required=False)


class GridLotViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = GridLotSerializer
    filterset_class = filters.GridLotFilter
    search_fields = ["lot_number", "vendor", "notes"]
    ordering_fields = ["created_at", "received_on", "expires_on", "lot_number", "quantity_left"]

    def get_queryset(self):
        return selectors.grid_lot_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.grid_lot_create(by=self.request.user, **serializer.validated_data)

    @extend_schema(request=RegisterGridsSerializer, responses={201: GridSerializer(many=True)})
    @action(detail=True, methods=["post"], url_path="register-grids", serializer_class=RegisterGridsSerializer,
            pagination_class=None)  # fmt: skip
    def register_grids(self, request, pk=None):
        """Register `count` grids from this lot: N unique barcodes, the lot decremented; 409 if too few left."""
        lot = self.get_object()
        payload = RegisterGridsSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        grids = services.grids_register(lot=lot, by=request.user, **payload.validated_data)
        grids = selectors.grid_list(user=request.user).filter(pk__in=[g.pk for g in grids]).order_by("pk")
        return Response(
            GridSerializer(grids, many=True, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


LABEL_KIND = OpenApiParameter("kind", str, enum=["svg", "png"], description="svg (default) or png")
LABEL_RESPONSES = {(200, "image/svg+xml"): OpenApiTypes.STR, (200, "image/png"): OpenApiTypes.BINARY}


class GridViewSet(CSVExportMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Grids of the user's labs; state changes only through the actions, which go through the lifecycle."""

    filterset_class = filters.GridFilter
    search_fields = ["barcode", "notes", "lot__lot_number"]
    ordering_fields = ["registered_at", "updated_at", "barcode", "state"]

    def get_queryset(self):
        qs = selectors.grid_list(user=self.request.user)
        if self.action == "retrieve":
            qs = qs.prefetch_related("transitions__by")
        return qs

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        if self.action == "list":
            # Rows as dicts of their columns, not Grid objects with their lot, type and box: building those was a
            # tenth of a page's server time (issue 10). The filters, search and ordering above work on either.
            queryset = queryset.values(*LIST_ROW)
        return queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return GridDetailSerializer
        if self.action in ("update", "partial_update"):
            return GridNotesSerializer
        return GridSerializer

    def update(self, request, *args, **kwargs):
        """Only the notes are edited in place; any other field is refused, never silently ignored."""
        grid = self.get_object()
        others = sorted(set(request.data) - {"notes"}) if hasattr(request.data, "keys") else []
        if others:
            hint = " (state changes through seedings, runs and discard)" if "state" in others else ""
            raise serializers.ValidationError(
                {name: [f"{name} cannot be edited here; only notes can{hint}."] for name in others}
            )
        payload = GridNotesSerializer(grid, data=request.data, partial=kwargs.get("partial", False))
        payload.is_valid(raise_exception=True)
        services.grid_update_notes(grid=grid, notes=payload.validated_data.get("notes", grid.notes), by=request.user)
        return Response(GridSerializer(self.get_queryset().get(pk=grid.pk), context={"request": request}).data)

    @extend_schema(request=DiscardSerializer, responses={200: GridDetailSerializer})
    @action(detail=True, methods=["post"], serializer_class=DiscardSerializer)
    def discard(self, request, pk=None):
        """Discard the grid with a reason (409 once it has been imaged)."""
        grid = self.get_object()
        payload = DiscardSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        services.grid_discard(grid=grid, by=request.user, reason=payload.validated_data["reason"])
        return Response(GridDetailSerializer(self.get_queryset().get(pk=grid.pk), context={"request": request}).data)

    @extend_schema(request=MoveSerializer, responses={200: GridSerializer})
    @action(detail=True, methods=["post"], serializer_class=MoveSerializer)
    def move(self, request, pk=None):
        """Store the grid in a box (a given slot, or the lowest free one); box null takes it out."""
        grid = self.get_object()
        payload = MoveSerializer(data=request.data, context={"request": request})
        payload.is_valid(raise_exception=True)
        slot = payload.validated_data.get("slot")
        services.grids_move(
            grids=[grid], box=payload.validated_data["box"], slots=[slot] if slot else None, by=request.user
        )
        return Response(GridSerializer(self.get_queryset().get(pk=grid.pk), context={"request": request}).data)

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, examples=[provenance.EXAMPLE])
    @action(detail=True, methods=["get"])
    def provenance(self, request, pk=None):
        """The grid's whole history as one JSON document: lot, storage, lifecycle, seedings, the vitrification
        run and its parameters, checks with their metrics and targets, QC decisions, gate evaluations, sample
        sheets with their sessions, and shipments; each record with who and when. Sections come from each app
        (`grids.provenance.provenance_section_register`)."""
        grid = self.get_object()
        return Response(provenance.grid_provenance(grid=grid, request=request))

    @extend_schema(parameters=[LABEL_KIND], responses=LABEL_RESPONSES)
    @action(detail=True, methods=["get"])
    def label(self, request, pk=None):
        """The grid's QR label: ?kind=svg (default) or ?kind=png."""
        grid = self.get_object()
        return _label_response(grid.barcode, request.query_params.get("kind", "svg"))


def _label_response(barcode: str, kind: str) -> HttpResponse:
    if kind == "png":
        return HttpResponse(labels.qr_png(barcode), content_type="image/png")
    return HttpResponse(labels.qr_svg(barcode), content_type="image/svg+xml")


class GridNotesSerializer(serializers.ModelSerializer):
    class Meta:
        model = Grid
        fields = ["notes"]


class StorageBoxSerializer(serializers.ModelSerializer):
    lab = LabField()
    used = serializers.IntegerField(read_only=True)

    class Meta:
        model = StorageBox
        fields = ["id", "lab", "name", "barcode", "capacity", "location", "used"]
        read_only_fields = ["barcode"]
        validators: list = []


class StorageBoxViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = StorageBoxSerializer
    filterset_class = filters.StorageBoxFilter
    search_fields = ["name", "barcode", "location"]
    ordering_fields = ["name", "barcode", "capacity"]

    def get_queryset(self):
        return selectors.storage_box_list(user=self.request.user)

    def perform_create(self, serializer):
        box = services.storage_box_create(by=self.request.user, **serializer.validated_data)
        serializer.instance = selectors.storage_box_list(user=self.request.user).get(pk=box.pk)

    @extend_schema(parameters=[LABEL_KIND], responses=LABEL_RESPONSES)
    @action(detail=True, methods=["get"])
    def label(self, request, pk=None):
        """The box's QR label: ?kind=svg (default) or ?kind=png."""
        return _label_response(self.get_object().barcode, request.query_params.get("kind", "svg"))


class CellLineSerializer(serializers.ModelSerializer):
    lab = LabField()

    class Meta:
        model = CellLine
        fields = ["id", "lab", "name", "organism", "biosafety_level", "source", "notes"]
        validators: list = []


class CellLineViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = CellLineSerializer
    filterset_class = filters.CellLineFilter
    search_fields = ["name", "organism", "source"]
    ordering_fields = ["name", "organism", "biosafety_level"]

    def get_queryset(self):
        return selectors.cell_line_list(user=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.cell_line_create(by=self.request.user, **serializer.validated_data)


class SeedingSerializer(serializers.ModelSerializer):
    grids = ScopedRelatedField(queryset=Grid.objects.all(), many=True)
    cell_line = ScopedRelatedField(queryset=CellLine.objects.all())
    operator = serializers.CharField(source="operator.username", read_only=True)
    seeded_at = serializers.DateTimeField(required=False)
    passage = range_api_field("passage", required=False, allow_null=True)
    density = range_api_field("density", required=False, allow_null=True)
    incubation_h = range_api_field("incubation_h", required=False, allow_null=True)
    temperature_c = range_api_field("temperature_c", required=False)
    co2_percent = range_api_field("co2_percent", required=False)
    fiducial_size_nm = range_api_field("fiducial_size_nm", required=False, allow_null=True)

    class Meta:
        model = Seeding
        fields = [
            "id", "lab", "grids", "cell_line", "passage", "density", "density_unit", "medium",
            "incubation_h", "temperature_c", "co2_percent", "treatments", "fluorescent_labels",
            "fiducial_kind", "fiducial_size_nm", "fiducial_dilution", "operator", "seeded_at",
            "notes", "created_at",
        ]  # fmt: skip
        read_only_fields = ["lab", "created_at"]


class SeedingViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Seedings; creating one moves every listed grid registered → seeded (409 if one cannot move)."""

    serializer_class = SeedingSerializer
    filterset_class = filters.SeedingFilter
    search_fields = ["cell_line__name", "medium", "treatments", "notes"]
    ordering_fields = ["seeded_at", "created_at"]

    def get_queryset(self):
        return selectors.seeding_list(user=self.request.user)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        seeding = services.seeding_record(
            grids=data.pop("grids"), cell_line=data.pop("cell_line"), by=self.request.user, **data
        )
        serializer.instance = selectors.seeding_list(user=self.request.user).get(pk=seeding.pk)


def register(router) -> None:
    router.register("grid-types", GridTypeViewSet, basename="gridtype")
    router.register("grid-lots", GridLotViewSet, basename="gridlot")
    router.register("grids", GridViewSet, basename="grid")
    router.register("storage-boxes", StorageBoxViewSet, basename="storagebox")
    router.register("cell-lines", CellLineViewSet, basename="cellline")
    router.register("seedings", SeedingViewSet, basename="seeding")
