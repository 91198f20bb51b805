"""What to do next with a grid, in the lab's words, with the button that does it.

An extension point like the dashboard's: grids says what it knows (register, seed, discarded,
archived); each higher app registers the steps of its states in ``AppConfig.ready()`` (vitrification:
seeded; characterization: vitrified, rejected; beamtime: accepted, scheduled, shipped; reconstruction:
imaged), so grids imports none of them. The grid page and the home page show the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import reverse

from grids.lifecycle import GridState
from grids.models import Grid


@dataclass(frozen=True)
class NextStep:
    text: str
    url: str = ""
    button: str = ""
    # Rules the grid will meet on the way (e.g. a beamline's gate), each a sentence.
    rules: list[str] = field(default_factory=list)
    # Secondary ways on: (label, url).
    also: list[tuple[str, str]] = field(default_factory=list)


NextStepRule = Callable[[Grid, object], "NextStep | None"]
_rules: dict[str, list[NextStepRule]] = {}


def next_step_register(state: str, rule: NextStepRule) -> None:
    """Let `rule(grid, user)` say the next step of grids in `state` (the last registered wins)."""
    _rules.setdefault(state, []).append(rule)


def next_step(grid: Grid, user=None) -> NextStep:
    for rule in reversed(_rules.get(grid.state, [])):
        if (step := rule(grid, user)) is not None:
            return step
    return NextStep(f"Nothing to do here while the grid is {grid.get_state_display().lower()}.")


def _registered(grid, user):
    return NextStep(
        "Seed cells on this grid: record the cell line, density and incubation.",
        f"{reverse('grids:seeding-create')}?grids={grid.pk}",
        "Seed this grid",
    )


def register() -> None:
    next_step_register(GridState.REGISTERED, _registered)
    next_step_register(
        GridState.DISCARDED, lambda grid, user: NextStep("Discarded: nothing more to do with this grid.")
    )
    next_step_register(
        GridState.ARCHIVED, lambda grid, user: NextStep("Archived: imaged and put away; nothing more to do.")
    )
    next_step_register(
        GridState.IMAGED,
        lambda grid, user: NextStep("Imaged at the beamline. Its datasets and reconstructions come next."),
    )
