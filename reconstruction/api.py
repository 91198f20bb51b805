"""REST endpoints of reconstruction under /api/v1/: datasets, dataset uploads, reconstruction jobs, volumes.

Thin: parse, call a service or selector, render. Scoped like the rest: another lab's record answers 404.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from beamtime.models import BeamtimeSession
from grids.models import Grid
from lims.csv_export import CSVExportMixin
from lims.errors import DomainError
from lims.ranges import range_api_field
from reconstruction import exports, selectors, services, views_common
from reconstruction.models import Dataset, DatasetUpload, ProjectionValues, ReconstructionJob, Volume

MAX_CHUNK_BYTES = 64 * 1024 * 1024


class ReconstructionJobSerializer(serializers.ModelSerializer):
    volume = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    duration_s = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = ReconstructionJob
        fields = [
            "id", "lab", "dataset", "method", "parameters", "engine_version", "state", "progress", "slab_count",
            "log", "error", "created_by", "created_at", "dispatched_at", "started_at", "finished_at", "duration_s",
            "volume",
        ]  # fmt: skip
        read_only_fields = fields

    def get_volume(self, job) -> int | None:
        volume = getattr(job, "volume", None) if hasattr(job, "volume") else None
        return volume.pk if volume else None


class DatasetSerializer(serializers.ModelSerializer):
    grid_barcode = serializers.CharField(source="grid.barcode", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    tilt_range = serializers.ListField(child=serializers.FloatField(), read_only=True)
    jobs = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id", "lab", "session", "grid", "grid_barcode", "target", "name", "format", "source_path", "sha256",
            "size_bytes", "projection_values", "tilts", "focal_planes", "rows", "columns", "angles", "tilt_range",
            "focal_planes_um", "pixel_size_nm", "photon_energy_ev", "exposure_s", "zone_plate_outer_zone_nm",
            "zone_plate_diameter_um", "metadata_source", "alignment", "status", "decided_by", "decided_at", "decision_note",
            "notes", "created_by", "created_at", "jobs",
        ]  # fmt: skip
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class _Scoped(serializers.PrimaryKeyRelatedField):
    """A related record the requesting user can see; others read as nonexistent."""

    def __init__(self, *, scope, **kwargs):
        self.scope = scope
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.scope(self.context["request"].user)


def _visible_sessions(user):
    from beamtime import access

    return access.scope_sessions(BeamtimeSession.objects.select_related("beamline"), user)


def _visible_grids(user):
    entries = selectors.sheet_entries_for_datasets(user=user)
    return Grid.objects.filter(pk__in=entries.values("grid_id"))


class DatasetCreateSerializer(serializers.Serializer):
    """A tilt series: `file` (multipart), or `upload` (a finished chunked upload), or `path` under a data root."""

    session = _Scoped(scope=_visible_sessions)
    grid = _Scoped(scope=_visible_grids)
    target = _Scoped(scope=lambda user: selectors.targets_for_datasets(user=user), required=False, allow_null=True)
    file = serializers.FileField(required=False)
    upload = serializers.UUIDField(required=False)
    path = serializers.CharField(required=False, max_length=1000)
    angles = serializers.FileField(required=False, help_text="IMOD .tlt file: one angle in degrees a line")
    angles_text = serializers.CharField(required=False, allow_blank=True, max_length=100_000,
                                        help_text="Angles typed: -60:60:2 (from:to:step) or a list")  # fmt: skip
    sidecar = serializers.FileField(required=False, help_text="Focal-series sidecar (JSON)")
    pixel_size_nm = range_api_field("pixel_size_nm", required=False, allow_null=True)
    photon_energy_ev = range_api_field("photon_energy_ev", required=False, allow_null=True)
    exposure_s = range_api_field("exposure_s", required=False, allow_null=True)
    zone_plate_outer_zone_nm = range_api_field("zone_plate_outer_zone_nm", required=False, allow_null=True)
    zone_plate_diameter_um = range_api_field("zone_plate_diameter_um", required=False, allow_null=True)
    projection_values = serializers.ChoiceField(choices=ProjectionValues.choices, required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    def validate(self, attrs):
        given = [k for k in ("file", "upload", "path") if attrs.get(k)]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"file": "Give exactly one of: file (an upload), upload (a finished chunked upload) or path."}
            )
        return attrs


class DatasetViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Tilt series taken at the beamline. Create with multipart `session`, `grid`, and `file` (+ `angles` .tlt
    or `angles_text`, metadata), or register a `path` under the facility's data roots. Accepting one starts
    its default reconstruction."""

    serializer_class = DatasetSerializer
    parser_classes = [parsers.MultiPartParser, parsers.FormParser, parsers.JSONParser]
    filterset_fields = ["grid", "session", "status"]  # not "format": ?format= picks the renderer (csv)
    ordering_fields = ["created_at", "name"]
    search_fields = ["name", "grid__barcode", "notes"]

    def get_queryset(self):
        return selectors.dataset_list(user=self.request.user).prefetch_related("jobs")

    def get_serializer_class(self):
        return DatasetCreateSerializer if self.action == "create" else DatasetSerializer

    @extend_schema(request=DatasetCreateSerializer, responses={201: DatasetSerializer})
    def create(self, request, *args, **kwargs):
        incoming = DatasetCreateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        dataset = views_common.create_dataset(user=request.user, data=data)
        dataset = self.get_queryset().get(pk=dataset.pk)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: ReconstructionJobSerializer})
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """Accept the dataset; its default reconstruction starts and is returned."""
        job = services.dataset_decide(
            dataset=self.get_object(), accept=True, by=request.user, note=request.data.get("note", "")
        )
        job = selectors.job_list(user=request.user).get(pk=job.pk)
        return Response(ReconstructionJobSerializer(job).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject the dataset with a `note` saying why."""
        services.dataset_decide(
            dataset=self.get_object(), accept=False, by=request.user, note=str(request.data.get("note", ""))
        )
        return Response(DatasetSerializer(self.get_queryset().get(pk=pk)).data)

    @extend_schema(responses={(200, "image/png"): bytes})
    @action(detail=True, methods=["get"])
    def montage(self, request, pk=None):
        """Twelve projections across the tilt range (PNG)."""
        return views_common.stored_file_response(self.get_object().montage.name, "image/png")

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="ro-crate")
    def ro_crate(self, request, pk=None):
        """The dataset as an RO-Crate (https://w3id.org/ro/crate/1.1), a zip streamed as it is written:
        `ro-crate-metadata.json` (JSON-LD) describes the tilt-series file, its angles (.tlt), sidecar and
        montage with their SHA-256, the beamline, zone plate and acquisition parameters (photon energy,
        pixel size, tilt range, step and scheme, exposure), the grid's preparation (lot, seeding,
        vitrification run and its parameters, light-microscopy checks, QC decisions), who did each step and
        when, the reconstructions asked of it, and the licence. The grid's whole provenance and the
        tilt-series metadata are in `metadata/`. Answers 409 if the file on disk is missing or no longer the
        size on record."""
        return exports.crate_response(exports.dataset_crate(self.get_object(), request=request))

    @extend_schema(responses={200: OpenApiResponse(OpenApiTypes.OBJECT, examples=[exports.METADATA_EXAMPLE])})
    @action(detail=True, methods=["get"])
    def metadata(self, request, pk=None):
        """Tilt-series metadata with the fields public cryo-ET/SXT portals ask for: tilt range (`tilt_min`,
        `tilt_max`, `tilt_range`), `tilt_step` and `tilting_scheme` from the angles in acquisition order,
        `pixel_spacing` (Å; `pixel_spacing_nm` too), `photon_energy_ev`, exposure, zone plate, beamline, and
        for each reconstruction its `reconstruction_method`, `reconstruction_software`, `software_version`,
        parameters and volume (`voxel_spacing` in Å, size, units, FSC resolution)."""
        dataset = self.get_object()
        jobs = selectors.job_list(user=request.user).filter(dataset=dataset).order_by("pk")
        return Response(exports.tilt_series_metadata(dataset, jobs=jobs))


class DatasetUploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetUpload
        fields = ["id", "filename", "size_bytes", "received_bytes", "created_at", "updated_at"]
        read_only_fields = ["id", "received_bytes", "created_at", "updated_at"]


class ChunkParser(parsers.BaseParser):
    """The raw bytes of one chunk (Content-Type: application/octet-stream), at most MAX_CHUNK_BYTES."""

    media_type = "application/octet-stream"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read(MAX_CHUNK_BYTES + 1) if stream is not None else b""
        if len(data) > MAX_CHUNK_BYTES:
            raise DomainError(f"A chunk is at most {MAX_CHUNK_BYTES // 2**20} MiB; send smaller chunks.", field="file")
        return data


class DatasetUploadViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Resumable upload of a large tilt series: create with `filename` and `size_bytes`; send chunks with
    `PUT …/chunk/?offset=N` (raw bytes); after a dropped connection `GET` says `received_bytes` to resume from;
    then `POST /datasets/` with `upload` set to this id."""

    serializer_class = DatasetUploadSerializer
    queryset = DatasetUpload.objects.none()  # for the schema; the real one is the person's own uploads

    def get_queryset(self):
        return DatasetUpload.objects.filter(created_by=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.upload_start(
            by=self.request.user, filename=data["filename"], size_bytes=data["size_bytes"]
        )

    @extend_schema(
        request={"application/octet-stream": bytes},
        parameters=[OpenApiParameter("offset", int, description="Byte offset of this chunk (= received_bytes)")],
        responses={200: DatasetUploadSerializer},
    )
    @action(detail=True, methods=["put"], parser_classes=[ChunkParser])
    def chunk(self, request, pk=None):
        """Append raw bytes at `offset`."""
        upload = self.get_object()  # first: someone else's upload is absent (404), whatever the offset
        try:
            offset = int(request.query_params.get("offset", ""))
        except ValueError:
            raise DomainError(
                "offset: the byte offset of this chunk, a whole number (ask GET for received_bytes).", field="offset"
            ) from None
        upload = services.upload_append(upload=upload, offset=offset, data=request.data or b"", by=request.user)
        return Response(DatasetUploadSerializer(upload).data)


class JobCreateSerializer(serializers.Serializer):
    dataset = _Scoped(scope=lambda user: selectors.dataset_list(user=user))
    method = serializers.CharField(max_length=20)
    parameters = serializers.DictField(required=False, default=dict)


class ReconstructionJobViewSet(CSVExportMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Reconstructions of accepted datasets. Create with `dataset`, `method` (see the engine's methods) and optional
    `parameters` (align, iterations, strength, filter_name, thickness, axis_offset, circle, slab_size); asking twice
    for the same
    returns the existing job (200 instead of 201)."""

    serializer_class = ReconstructionJobSerializer
    filterset_fields = ["dataset", "state", "method"]
    ordering_fields = ["created_at", "finished_at"]
    search_fields = ["method", "dataset__name", "dataset__grid__barcode"]

    def get_queryset(self):
        return selectors.job_list(user=self.request.user)

    @extend_schema(
        request=JobCreateSerializer, responses={201: ReconstructionJobSerializer, 200: ReconstructionJobSerializer}
    )
    def create(self, request, *args, **kwargs):
        incoming = JobCreateSerializer(data=request.data, context={"request": request})
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        job, created = services.job_request(
            dataset=data["dataset"], method=data["method"], parameters=data.get("parameters") or {}, by=request.user
        )
        job = self.get_queryset().get(pk=job.pk)
        return Response(
            ReconstructionJobSerializer(job).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(request=None, responses={200: ReconstructionJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop a queued or running job."""
        services.job_cancel(job=self.get_object(), by=request.user)
        return Response(ReconstructionJobSerializer(self.get_queryset().get(pk=pk)).data)


class VolumeSerializer(serializers.ModelSerializer):
    dataset = serializers.IntegerField(source="job.dataset_id", read_only=True)
    method = serializers.CharField(source="job.method", read_only=True)
    parameters = serializers.JSONField(source="job.parameters", read_only=True)
    engine_version = serializers.CharField(source="job.engine_version", read_only=True)

    class Meta:
        model = Volume
        fields = [
            "id", "job", "dataset", "method", "parameters", "engine_version", "sha256", "size_bytes", "depth",
            "thickness", "width", "voxel_size_nm", "units", "absolute", "value_min", "value_max", "value_mean",
            "histogram", "fsc", "resolution_nm", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class VolumeViewSet(CSVExportMixin, viewsets.ReadOnlyModelViewSet):
    """Reconstructed volumes: MRC files in linear absorption coefficient (µm⁻¹) with the voxel size in the header."""

    serializer_class = VolumeSerializer
    filterset_fields = ["job", "job__dataset"]
    ordering_fields = ["created_at", "resolution_nm"]
    search_fields = ["job__dataset__name", "job__method"]

    def get_queryset(self):
        return selectors.volume_list(user=self.request.user)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The volume as an MRC file."""
        return views_common.volume_download(self.get_object())

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path="ro-crate")
    def ro_crate(self, request, pk=None):
        """The volume as an RO-Crate (https://w3id.org/ro/crate/1.1), a zip streamed as it is written: the MRC
        volume, its orthoslice previews and FSC curve with their SHA-256, the reconstruction that made it
        (engine and version, method, parameters, who, when), the tilt series it came from (referenced by its
        checksum and the URL of its own crate) with the beamline and acquisition parameters, the grid's
        preparation, and the licence. Answers 409 if the volume's file is missing or changed."""
        return exports.crate_response(exports.volume_crate(self.get_object(), request=request))


def register(router) -> None:
    """Add this app's viewsets to the /api/v1/ router."""
    router.register("datasets", DatasetViewSet, basename="dataset")
    router.register("dataset-uploads", DatasetUploadViewSet, basename="dataset-upload")
    router.register("reconstruction-jobs", ReconstructionJobViewSet, basename="reconstruction-job")
    router.register("volumes", VolumeViewSet, basename="volume")
