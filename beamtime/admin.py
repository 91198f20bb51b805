from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from beamtime.models import (
    Beamline,
    BeamtimeSession,
    CalendarFeed,
    Facility,
    FacilityStaffAssignment,
    Proposal,
    QualityPolicy,
    QualityRule,
    SampleSheetEntry,
    SessionTransition,
    Shipment,
    ShipmentGrid,
    ShipmentTransition,
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Facility)
class FacilityAdmin(admin.ModelAdmin):
    list_display = ["short_name", "name", "city", "country"]


@admin.register(Beamline)
class BeamlineAdmin(SimpleHistoryAdmin):
    list_display = ["name", "facility", "code", "capacity", "shift_hours", "active"]
    list_filter = ["facility", "active"]


@admin.register(FacilityStaffAssignment)
class FacilityStaffAssignmentAdmin(admin.ModelAdmin):
    list_display = ["user", "facility", "since"]
    list_filter = ["facility"]


@admin.register(Proposal)
class ProposalAdmin(SimpleHistoryAdmin):
    list_display = [
        "number",
        "facility",
        "lab",
        "principal_investigator",
        "shifts_allocated",
        "valid_from",
        "valid_until",
    ]
    list_filter = ["facility", "lab"]
    search_fields = ["number", "title", "principal_investigator"]


class SessionTransitionInline(ReadOnlyInline):
    model = SessionTransition
    readonly_fields = ["from_status", "to_status", "by", "at", "reason"]


class EntryInline(ReadOnlyInline):
    model = SampleSheetEntry
    fields = ["position", "grid", "gate_passed", "override_reason", "override_by", "added_by", "added_at"]
    readonly_fields = fields


@admin.register(BeamtimeSession)
class BeamtimeSessionAdmin(SimpleHistoryAdmin):
    list_display = ["id", "beamline", "lab", "proposal", "start", "end", "shifts", "status"]
    list_filter = ["beamline", "status", "lab"]
    # Status, times and shifts change through the services (overlap, allocation, audit), not here.
    readonly_fields = ["status", "shifts", "start", "end", "beamline", "proposal", "lab"]
    inlines = [EntryInline, SessionTransitionInline]

    def has_delete_permission(self, request, obj=None):
        return False


class RuleInline(admin.TabularInline):
    model = QualityRule
    extra = 0


@admin.register(QualityPolicy)
class QualityPolicyAdmin(SimpleHistoryAdmin):
    list_display = ["name", "beamline", "updated_by", "updated_at"]
    inlines = [RuleInline]


@admin.register(SampleSheetEntry)
class SampleSheetEntryAdmin(SimpleHistoryAdmin):
    list_display = ["session", "position", "grid", "gate_passed", "override_by", "added_at"]
    list_filter = ["gate_passed"]
    search_fields = ["grid__barcode"]
    readonly_fields = [f.name for f in SampleSheetEntry._meta.fields]

    def has_add_permission(self, request):
        return False


class ShipmentGridInline(ReadOnlyInline):
    model = ShipmentGrid
    readonly_fields = ["grid", "box_name", "box_barcode", "slot"]


class ShipmentTransitionInline(ReadOnlyInline):
    model = ShipmentTransition
    readonly_fields = ["from_status", "to_status", "by", "at", "reason"]


@admin.register(Shipment)
class ShipmentAdmin(SimpleHistoryAdmin):
    list_display = ["id", "session", "lab", "dewar", "courier", "tracking_number", "status"]
    list_filter = ["status", "lab"]
    readonly_fields = ["status", "session", "lab", "shipped_at", "received_at", "returned_at"]
    inlines = [ShipmentGridInline, ShipmentTransitionInline]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    list_display = ["kind", "lab", "beamline", "created_at"]
    readonly_fields = ["token"]
