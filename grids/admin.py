from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from grids.models import CellLine, Grid, GridLot, GridTransition, GridType, SeededGrid, Seeding, StorageBox


@admin.register(GridType)
class GridTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "vendor", "material", "mesh", "support_film", "hole_pattern", "square_pitch_um"]
    search_fields = ["name", "vendor"]


@admin.register(GridLot)
class GridLotAdmin(SimpleHistoryAdmin):
    list_display = ["lot_number", "grid_type", "lab", "quantity", "quantity_left", "received_on", "expires_on"]
    list_filter = ["lab", "grid_type"]
    search_fields = ["lot_number"]


class TransitionInline(admin.TabularInline):
    model = GridTransition
    extra = 0
    can_delete = False
    readonly_fields = ["from_state", "to_state", "by", "at", "reason", "cause"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Grid)
class GridAdmin(SimpleHistoryAdmin):
    list_display = ["barcode", "lab", "lot", "state", "box", "slot", "registered_at"]
    list_filter = ["state", "lab", "lot__grid_type"]
    search_fields = ["barcode"]
    # State only moves through the lifecycle service, never by editing the row.
    readonly_fields = ["state", "barcode", "lab", "lot"]
    inlines = [TransitionInline]

    def has_add_permission(self, request):
        # Grids are registered from a lot (grids.services.grids_register): barcode, lot count, transition.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(GridTransition)
class GridTransitionAdmin(admin.ModelAdmin):
    list_display = ["grid", "from_state", "to_state", "by", "at", "cause"]
    list_filter = ["to_state"]
    search_fields = ["grid__barcode"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StorageBox)
class StorageBoxAdmin(SimpleHistoryAdmin):
    list_display = ["name", "barcode", "lab", "capacity", "location"]
    search_fields = ["name", "barcode"]


@admin.register(CellLine)
class CellLineAdmin(SimpleHistoryAdmin):
    list_display = ["name", "organism", "biosafety_level", "lab"]
    search_fields = ["name", "organism"]


class SeededGridInline(admin.TabularInline):
    """Read-only: a grid joins a seeding only through grids.services.seeding_record (registered → seeded)."""

    model = SeededGrid
    extra = 0
    can_delete = False
    readonly_fields = ["grid"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SeededGrid)
class SeededGridAdmin(admin.ModelAdmin):
    list_display = ["grid", "seeding"]
    search_fields = ["grid__barcode"]
    list_select_related = ["grid", "seeding__cell_line"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Seeding)
class SeedingAdmin(SimpleHistoryAdmin):
    list_display = ["id", "cell_line", "lab", "operator", "seeded_at"]
    list_filter = ["lab", "cell_line"]
    inlines = [SeededGridInline]
