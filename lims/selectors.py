from __future__ import annotations

from django.db.models import Count, QuerySet

from lims import permissions
from lims.models import Lab, Membership


def labs_of(*, user) -> QuerySet[Lab]:
    """The labs this user may use (work in, choose on a form, scope a list to), by name; every lab for a
    superuser. The one place that turns a person into their labs."""
    return permissions.scope(Lab.objects.all(), user, lab_field="pk").order_by("name")


def lab_list(*, user) -> QuerySet[Lab]:
    return labs_of(user=user).annotate(member_count=Count("memberships"))


def lab_get(*, user, pk: int) -> Lab:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(lab_list(user=user), pk=pk)


def membership_list(*, lab: Lab) -> QuerySet[Membership]:
    return lab.memberships.select_related("user").order_by("user__username")
