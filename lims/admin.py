from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from lims.models import ApiToken, FacilityStaff, Lab, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Lab)
class LabAdmin(SimpleHistoryAdmin):
    list_display = ["name", "code", "institution", "allow_self_review"]
    search_fields = ["name", "code"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ["user", "lab", "role"]
    list_filter = ["role", "lab"]
    search_fields = ["user__username", "lab__name"]


@admin.register(FacilityStaff)
class FacilityStaffAdmin(admin.ModelAdmin):
    list_display = ["user", "since"]
    search_fields = ["user__username"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created by their owners on /account/tokens/; an admin may look and revoke (set revoked_at)."""

    list_display = ["name", "user", "key_prefix", "read_only", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["read_only"]
    search_fields = ["name", "user__username", "key_prefix"]
    readonly_fields = ["user", "key_prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request):
        return False
