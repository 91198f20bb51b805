from django import template

from reconstruction import selectors

register = template.Library()


@register.simple_tag(takes_context=True)
def grid_datasets(context, grid) -> list:
    """The grid page's datasets panel, scoped to the person looking."""
    request = context.get("request")
    if request is None:
        return []
    return list(selectors.grid_datasets(user=request.user, grid_id=grid.pk))
