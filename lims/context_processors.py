from lims import permissions


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_is_facility_staff": permissions.is_facility_staff(user),
        "nav_lab_count": len(permissions.lab_roles(user)),
    }
