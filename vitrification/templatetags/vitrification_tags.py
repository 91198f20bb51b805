"""Template helpers for other apps' pages (the grid page's vitrification panel)."""

from __future__ import annotations

from django import template

from vitrification import selectors

register = template.Library()


@register.simple_tag
def grid_vitrification(grid):
    """The grid's GridOutcome (with its run and instrument), or None."""
    return selectors.grid_outcome(grid=grid)
