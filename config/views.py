"""The home page: it gathers what every app has for the person signed in, so it lives above the apps."""

from django.shortcuts import render

from grids import selectors as grid_selectors
from lims import selectors


def dashboard(request):
    return render(
        request,
        "lims/dashboard.html",
        {
            "labs": selectors.lab_list(user=request.user),
            "state_counts": grid_selectors.grid_state_counts(user=request.user),
            "recent_transitions": grid_selectors.transition_recent(user=request.user, limit=15),
        },
    )
