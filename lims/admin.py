from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from lims.models import FacilityStaff, Lab, Membership


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
