from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from vitrification.models import GridOutcome, HPFRun, Instrument, PlungeRun


@admin.register(Instrument)
class InstrumentAdmin(SimpleHistoryAdmin):
    list_display = ["name", "kind", "model", "lab", "active", "location"]
    list_filter = ["kind", "model", "active", "lab"]
    search_fields = ["name", "serial_number"]


class OutcomeInline(admin.TabularInline):
    model = GridOutcome
    extra = 0
    can_delete = False
    # Outcomes are written by the run services together with the grids' transitions.
    readonly_fields = ["grid", "outcome", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


class PlungeOutcomeInline(OutcomeInline):
    fk_name = "plunge_run"
    exclude = ["hpf_run"]


class HPFOutcomeInline(OutcomeInline):
    fk_name = "hpf_run"
    exclude = ["plunge_run"]


class RunAdmin(SimpleHistoryAdmin):
    list_filter = ["lab", "instrument"]
    search_fields = ["outcomes__grid__barcode", "notes"]
    date_hierarchy = "performed_at"
    readonly_fields = ["lab", "instrument", "created_by", "created_at"]
    raw_id_fields = ["operator"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PlungeRun)
class PlungeRunAdmin(RunAdmin):
    list_display = ["id", "instrument", "operator", "performed_at", "blot_time_s", "humidity_percent", "cryogen"]
    list_filter = [*RunAdmin.list_filter, "cryogen", "blot_side"]
    inlines = [PlungeOutcomeInline]


@admin.register(HPFRun)
class HPFRunAdmin(RunAdmin):
    list_display = ["id", "instrument", "operator", "performed_at", "pressure_bar", "carrier_type", "filler"]
    inlines = [HPFOutcomeInline]


@admin.register(GridOutcome)
class GridOutcomeAdmin(SimpleHistoryAdmin):
    list_display = ["grid", "plunge_run", "hpf_run", "outcome", "reason"]
    list_filter = ["outcome"]
    search_fields = ["grid__barcode"]
    readonly_fields = ["grid", "plunge_run", "hpf_run", "outcome"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
