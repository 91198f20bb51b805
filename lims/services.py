"""Writes on labs and memberships."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from lims import permissions
from lims.errors import ConflictError, DomainError
from lims.models import Lab, Membership, Role


def lab_create(*, name: str, code: str, institution: str = "", by) -> Lab:
    """Create a lab; its creator becomes its first lab admin."""
    with transaction.atomic():
        if Lab.objects.filter(code=code).exists():
            raise ConflictError(f"A lab with code {code!r} exists already; choose another code.", field="code")
        lab = Lab(name=name, code=code, institution=institution)
        lab.full_clean()
        lab.save()
        Membership.objects.create(lab=lab, user=by, role=Role.LAB_ADMIN)
    permissions.forget_lab_roles(by)
    return lab


def membership_add(*, lab: Lab, username: str, role: str, by) -> Membership:
    """Add a person to a lab, or change their role if they belong already. Lab admins only."""
    permissions.require_role(by, lab, [Role.LAB_ADMIN], "manage the lab's members")
    if role not in Role.values:
        raise DomainError(f"Unknown role {role!r}; use one of: {', '.join(Role.values)}.", field="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise DomainError(f"No user is called {username!r}.", field="username")
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            lab=lab, user=user, defaults={"role": role}
        )
        if not created and membership.role != role:
            _refuse_last_admin_demotion(membership, role)
            membership.role = role
            membership.save(update_fields=["role"])
    permissions.forget_lab_roles(user)
    return membership


def membership_remove(*, lab: Lab, username: str, by) -> None:
    permissions.require_role(by, lab, [Role.LAB_ADMIN], "manage the lab's members")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().filter(lab=lab, user__username=username).first()
        if membership is None:
            raise DomainError(f"{username!r} is not a member of {lab}.", field="username")
        _refuse_last_admin_demotion(membership, None)
        membership.delete()


def _refuse_last_admin_demotion(membership: Membership, new_role: str | None) -> None:
    if membership.role == Role.LAB_ADMIN and new_role != Role.LAB_ADMIN:
        admins = Membership.objects.filter(lab=membership.lab, role=Role.LAB_ADMIN).count()
        if admins <= 1:
            raise ConflictError("A lab keeps at least one lab admin: appoint another admin first.")
