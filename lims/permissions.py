"""Lab isolation: every read and write is scoped to the labs a person belongs to.

Records of other labs are treated as absent (404), never as forbidden, so their existence leaks
nothing. Superusers see every lab.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import Http404

from lims.errors import PermissionDeniedError
from lims.models import FacilityStaff, Lab, Membership, Role

_CACHE_ATTR = "_lims_lab_roles"
_STAFF_ATTR = "_lims_facility_staff"


def lab_roles(user) -> dict[int, str]:
    """{lab id: role} for the user, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        # No ordering: Membership's default one joins users and labs, which a dict does not need.
        cached = dict(Membership.objects.filter(user=user).order_by().values_list("lab_id", "role"))
        setattr(user, _CACHE_ATTR, cached)
    return cached


def remember_lab_roles(user, roles: dict[int, str], facility_staff: bool) -> None:
    """Cache roles and the facility-staff flag read elsewhere (the API token's look-up reads them in its own
    query), so that lab_roles and is_facility_staff ask the database nothing for this request."""
    setattr(user, _CACHE_ATTR, dict(roles))
    setattr(user, _STAFF_ATTR, bool(facility_staff))


def forget_lab_roles(user) -> None:
    """Drop the roles cached on the user object (after a membership or staff role changed)."""
    for attr in (_CACHE_ATTR, _STAFF_ATTR):
        if hasattr(user, attr):
            delattr(user, attr)


def lab_ids(user, roles: Iterable[str] | None = None) -> list[int]:
    roles = set(roles) if roles is not None else None
    return [lab for lab, role in lab_roles(user).items() if roles is None or role in roles]


def is_facility_staff(user) -> bool:
    """Whether the user holds the facility-staff role (cached on the user for the request)."""
    if not getattr(user, "is_authenticated", False):
        return False
    cached = getattr(user, _STAFF_ATTR, None)
    if cached is None:
        cached = FacilityStaff.objects.filter(user=user).exists()
        setattr(user, _STAFF_ATTR, cached)
    return cached


def scope(queryset: QuerySet, user, lab_field: str = "lab") -> QuerySet:
    """The part of `queryset` whose `lab_field` is one of the user's labs."""
    if getattr(user, "is_superuser", False):
        return queryset
    return queryset.filter(**{f"{lab_field}__in": lab_ids(user)})


def has_role(user, lab: Lab | int, roles: Iterable[str]) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    lab_id = lab if isinstance(lab, int) else lab.pk
    return lab_roles(user).get(lab_id) in set(roles)


def is_member(user, lab: Lab | int) -> bool:
    return has_role(user, lab, Role.values)


def require_member(user, lab: Lab | int) -> None:
    """Refuse to act in a lab the user does not belong to, as if the lab did not exist."""
    if not is_member(user, lab):
        raise Http404("No such lab.")


def require_role(user, lab: Lab | int, roles: Iterable[str], action: str) -> None:
    require_member(user, lab)
    if not has_role(user, lab, roles):
        names = ", ".join(Role(r).label for r in roles)
        raise PermissionDeniedError(f"Only a {names} of this lab may {action}.")
