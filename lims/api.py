"""Shared API pieces (lab scoping, scoped related fields) and the labs endpoint."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from lims import imports, permissions, selectors, services
from lims.csv_export import CSVExportMixin
from lims.models import Lab, Membership, Role
from lims.selectors import labs_of


class LabField(serializers.PrimaryKeyRelatedField):
    """A lab the requesting user belongs to; any other id reads as nonexistent."""

    def get_queryset(self):
        request = self.context.get("request")
        return labs_of(user=request.user) if request else Lab.objects.none()


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A related record from the user's labs only (`lab_field` names the path to its lab)."""

    def __init__(self, *, lab_field: str = "lab", **kwargs):
        self.lab_field = lab_field
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        qs = super().get_queryset()
        return permissions.scope(qs, request.user, self.lab_field) if request else qs.none()


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "joined_at"]


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class LabSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Lab
        fields = ["id", "name", "code", "institution", "allow_self_review", "my_role", "created_at"]
        read_only_fields = ["created_at"]

    def get_my_role(self, lab: Lab) -> str | None:
        return permissions.lab_roles(self.context["request"].user).get(lab.pk)


class LabViewSet(
    CSVExportMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Labs the user belongs to. Creating a lab makes its creator the lab admin."""

    serializer_class = LabSerializer
    filterset_fields = ["code"]
    search_fields = ["name", "code", "institution"]
    ordering_fields = ["name", "code", "created_at"]

    def get_queryset(self):
        return selectors.lab_list(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.lab_create(
            name=data["name"], code=data["code"], institution=data.get("institution", ""), by=self.request.user
        )

    @extend_schema(methods=["GET"], request=None, responses=MembershipSerializer(many=True))
    @extend_schema(methods=["POST"], request=MemberAddSerializer, responses={201: MembershipSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=MemberAddSerializer, pagination_class=None)
    def members(self, request, pk=None):
        """GET lists the members; POST {"username", "role"} adds one (lab admins only)."""
        lab = self.get_object()
        if request.method == "GET":
            return Response(MembershipSerializer(selectors.membership_list(lab=lab), many=True).data)
        payload = MemberAddSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = services.membership_add(lab=lab, by=request.user, **payload.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("labs", LabViewSet, basename="lab")
    router.register("imports", ImportViewSet, basename="import")


class ImportColumnSerializer(serializers.Serializer):
    name = serializers.CharField()
    required = serializers.BooleanField()
    help = serializers.CharField()
    example = serializers.CharField()


class ImportKindSerializer(serializers.Serializer):
    slug = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField()
    group_by = serializers.CharField(allow_null=True)
    columns = ImportColumnSerializer(many=True)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv (UTF-8) or .xlsx file with the template's columns")


class ImportProblemSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="As the spreadsheet numbers it (the header is row 1)")
    column = serializers.CharField(allow_null=True)
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    kind = serializers.CharField()
    dry_run = serializers.BooleanField()
    rows = serializers.IntegerField()
    applied = serializers.BooleanField()
    ok = serializers.BooleanField()
    problems = ImportProblemSerializer(many=True)
    done = serializers.ListField(child=serializers.CharField())


XLSX = imports.XLSX
# A refused import answers the report (rows with problems) or, when the upload itself is wrong (no file, not
# CSV/XLSX), the field-by-field errors every endpoint gives: documented as one object of either shape.
IMPORT_REFUSED = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='The report with `problems` by row and column, or field errors such as `{"file": ["…"]}`',
)


class ImportViewSet(viewsets.ViewSet):
    """Bulk import of grids (with lots and boxes), seedings and vitrification runs from CSV or XLSX.

    `POST …/{kind}/dry-run/` checks every row and lists each problem by row and column (nothing is saved);
    `POST …/{kind}/apply/` imports every row or none (400 with the problems). Templates at
    `GET …/{kind}/template/?kind=csv|xlsx`.
    """

    lookup_field = "slug"
    lookup_value_regex = "[a-z0-9-]+"
    parser_classes = [parsers.MultiPartParser, parsers.FormParser]
    serializer_class = ImportKindSerializer

    @extend_schema(responses=ImportKindSerializer(many=True))
    def list(self, request):
        return Response(ImportKindSerializer(imports.import_kinds(), many=True).data)

    @extend_schema(responses=ImportKindSerializer)
    def retrieve(self, request, slug=None):
        return Response(ImportKindSerializer(imports.import_kind_get(slug)).data)

    def _run(self, request, slug, *, dry_run: bool):
        kind = imports.import_kind_get(slug)
        payload = ImportUploadSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        report = imports.run_import(
            kind=kind, name=upload.name, content=upload.read(), by=request.user, dry_run=dry_run
        )
        code = (
            status.HTTP_400_BAD_REQUEST
            if report.problems
            else (status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED)
        )
        return Response(report.as_dict(), status=code)

    @extend_schema(request=ImportUploadSerializer, responses={200: ImportReportSerializer, 400: IMPORT_REFUSED})
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, slug=None):
        """Check every row as the import would (through the services, then rolled back); nothing is saved."""
        return self._run(request, slug, dry_run=True)

    @extend_schema(request=ImportUploadSerializer, responses={201: ImportReportSerializer, 400: IMPORT_REFUSED})
    @action(detail=True, methods=["post"])
    def apply(self, request, slug=None):
        """Import every row, or none when any row has a problem (400 lists them all)."""
        return self._run(request, slug, dry_run=False)

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=["csv", "xlsx"])],
        responses={(200, "text/csv"): OpenApiTypes.STR, (200, XLSX): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def template(self, request, slug=None):
        """The template file of this import: a header row and one example row (XLSX adds a sheet on the columns)."""
        return imports.template_response(imports.import_kind_get(slug), request.query_params.get("kind", "csv"))
