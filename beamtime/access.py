"""Who may see and do what in beamtime.

Lab members see their labs' proposals, sessions, sheets and shipments. Facility staff (lims.FacilityStaff
plus a FacilityStaffAssignment) see every session on their facilities' beamlines, the sheets and shipments
of those sessions and the grids on them — nothing else of a lab. Anything outside a person's scope reads as
absent (404), as everywhere in the LIMS.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404

from beamtime.models import FacilityStaffAssignment
from lims import permissions
from lims.errors import PermissionDeniedError
from lims.models import Role

_CACHE_ATTR = "_beamtime_staff_facilities"


def staff_facility_ids(user) -> list[int]:
    """Facilities the user staffs (empty unless they hold the facility-staff role)."""
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        if permissions.is_facility_staff(user):
            cached = list(FacilityStaffAssignment.objects.filter(user=user).values_list("facility_id", flat=True))
        else:
            cached = []
        setattr(user, _CACHE_ATTR, cached)
    return cached


def grids_on_staffed_sheets(user):
    """The grids on the sample sheets of the beamlines the user staffs (None: not facility staff).

    Registered with grids.selectors in BeamtimeConfig.ready(): that is how facility staff see them."""
    from grids.models import Grid

    staffed = staff_facility_ids(user)
    if not staffed:
        return None
    return Grid.objects.filter(sample_sheet_entries__session__beamline__facility__in=staffed)


def forget(user) -> None:
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
    permissions.forget_lab_roles(user)


def is_staff_of(user, facility_id: int) -> bool:
    return getattr(user, "is_superuser", False) or facility_id in staff_facility_ids(user)


def session_q(user, prefix: str = "") -> Q | None:
    """Q for the sessions the user sees (None: every one). `prefix` is the path to the session."""
    if getattr(user, "is_superuser", False):
        return None
    return Q(**{f"{prefix}lab__in": permissions.lab_ids(user)}) | Q(
        **{f"{prefix}beamline__facility__in": staff_facility_ids(user)}
    )


def scope_sessions(queryset, user, prefix: str = ""):
    q = session_q(user, prefix)
    return queryset if q is None else queryset.filter(q)


def require_session_visible(user, session) -> None:
    if not (permissions.is_member(user, session.lab_id) or is_staff_of(user, session.beamline.facility_id)):
        raise Http404("No such session.")


def require_can_schedule(user, *, lab_id: int, facility_id: int) -> None:
    """Sessions are booked by the proposal's lab (any member) or by the facility's staff."""
    if permissions.is_member(user, lab_id) or is_staff_of(user, facility_id):
        return
    raise Http404("No such proposal.")


def require_staff(user, facility_id: int, action: str) -> None:
    if not is_staff_of(user, facility_id):
        raise PermissionDeniedError(f"Only staff of this facility may {action}.")


# Who may override the gate: the lab's QC reviewers and its admins (as for QC decisions in characterization).
GATE_OVERRIDE_ROLES = (Role.QC_REVIEWER, Role.LAB_ADMIN)


def is_qc_reviewer(user, lab_id: int) -> bool:
    return permissions.has_role(user, lab_id, GATE_OVERRIDE_ROLES)
