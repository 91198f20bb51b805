from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from characterization.models import Check, CheckImage, QCDecision, Target


class CheckImageInline(admin.TabularInline):
    model = CheckImage
    extra = 0
    can_delete = False
    fields = ["original_name", "kind", "format", "width", "height", "channels", "metrics_status"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # uploads go through the page or the API (validated by content)


@admin.register(Check)
class CheckAdmin(SimpleHistoryAdmin):
    list_display = ["id", "grid", "stage", "operator", "checked_at", "lab"]
    list_filter = ["stage", "lab"]
    search_fields = ["grid__barcode", "notes", "microscope"]
    raw_id_fields = ["grid", "operator", "created_by"]
    inlines = [CheckImageInline]


@admin.register(CheckImage)
class CheckImageAdmin(admin.ModelAdmin):
    list_display = ["id", "original_name", "lm_check", "kind", "format", "metrics_status", "uploaded_at"]
    list_filter = ["kind", "format", "metrics_status"]
    search_fields = ["original_name", "sha256", "lm_check__grid__barcode"]
    readonly_fields = [
        "lm_check", "file", "original_name", "sha256", "size_bytes", "format", "width", "height", "channels",
        "planes", "bit_depth", "preview", "thumbnail", "channel_previews", "metrics", "metrics_status",
        "metrics_progress", "metrics_error", "metrics_version", "metrics_started_at", "metrics_finished_at",
        "calibration", "calibration_residual_um", "calibrated_at", "uploaded_by", "uploaded_at",
    ]  # fmt: skip

    def has_add_permission(self, request):
        return False


@admin.register(Target)
class TargetAdmin(SimpleHistoryAdmin):
    list_display = ["id", "label", "image", "x", "y", "priority"]
    raw_id_fields = ["image", "created_by"]


@admin.register(QCDecision)
class QCDecisionAdmin(admin.ModelAdmin):
    """Decisions are history: read only (a revision is a new decision, through the review pages)."""

    list_display = ["id", "grid", "decision", "decided_by", "decided_at"]
    list_filter = ["decision", "lab"]
    readonly_fields = ["lab", "grid", "lm_check", "decision", "reasons", "decided_by", "decided_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
