from __future__ import annotations

from django.db.models import Count, QuerySet

from lims import permissions
from lims.models import Lab, Membership


def lab_list(*, user) -> QuerySet[Lab]:
    return (
        permissions.scope(Lab.objects.all(), user, lab_field="pk")
        .annotate(member_count=Count("memberships"))
        .order_by("name")
    )


def lab_get(*, user, pk: int) -> Lab:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(lab_list(user=user), pk=pk)


def membership_list(*, lab: Lab) -> QuerySet[Membership]:
    return lab.memberships.select_related("user").order_by("user__username")
