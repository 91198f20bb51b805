"""Which parts of the site a person works in, for the navigation (roles are cached per request)."""

from django import template

from lims import permissions

register = template.Library()


@register.simple_tag
def in_a_lab(user) -> bool:
    """Whether the user belongs to a lab (superusers count): lab menus and forms are shown only then."""
    return bool(getattr(user, "is_superuser", False) or permissions.lab_ids(user))


@register.simple_tag
def reviews(user) -> bool:
    """Whether the user reviews or administers a lab (the QC dashboard is theirs)."""
    from lims.models import Role

    return bool(
        getattr(user, "is_superuser", False) or permissions.lab_ids(user, roles=[Role.QC_REVIEWER, Role.LAB_ADMIN])
    )
