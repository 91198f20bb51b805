from django import template

from characterization import selectors
from characterization.models import CheckStage

register = template.Library()


@register.simple_tag
def grid_characterization(grid) -> dict:
    """The grid page's panel: checks (newest first), the decision in force, checks awaiting review."""
    checks = list(selectors.grid_checks(grid=grid))
    decision = selectors.grid_decisions(grid=grid).first()
    decided = set(grid.qc_decisions.values_list("lm_check_id", flat=True))
    latest_post = next((c for c in checks if c.stage == CheckStage.POST_VITRIFICATION), None)
    awaiting = {latest_post.pk} if latest_post and latest_post.pk not in decided else set()
    return {"checks": checks, "decision": decision, "awaiting": awaiting}
