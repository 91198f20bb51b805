"""The one lifecycle mechanism: a map of allowed moves, and one function that applies it.

Grids, beamtime sessions, shipments (and whatever gets a state later) each declare a `Lifecycle` and
call `transition()`: it locks the rows (SELECT … FOR UPDATE; SQLite takes its write lock at BEGIN),
re-reads their state, checks the map and any `from_states` precondition under that same lock, refuses
with a `ConflictError` naming every row it refuses (and changes nothing), and otherwise moves them all
and writes one audit row per move (from, to, who, when, why). As django-oscar's order pipeline, one
mechanism serves every kind of record.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import models, transaction

from lims.errors import ConflictError, DomainError

Row = TypeVar("Row", bound=models.Model)


def _article(word: str) -> str:
    return "An" if word[:1] in "aeiou" else "A"


@dataclass(frozen=True)
class Lifecycle:
    """The states of one kind of record and the moves allowed between them."""

    noun: str  # what the record is, in the lab's words: "grid", "session", "shipment"
    states: type[models.TextChoices]
    moves: Mapping[str, frozenset[str]]
    word: str = "state"  # "state" or "status", as the pages call it

    def can_move(self, from_state: str, to_state: str) -> bool:
        return to_state in self.moves.get(from_state, frozenset())

    def label(self, state: str) -> str:
        return self.states(state).label.lower()

    def refusal(self, from_state: str, to_state: str) -> str:
        """What a refused move says: what the record is, and where it could go instead."""
        targets = sorted(self.moves.get(from_state, ()))
        where = ", ".join(self.label(s) for s in targets) if targets else f"nowhere (final {self.word})"
        now = self.label(from_state)
        return (
            f"{_article(now)} {now} {self.noun} cannot become {self.label(to_state)}; from {now} it can go to: {where}."
        )

    def require_known(self, state: str, *, message: str | None = None) -> None:
        if state not in self.states.values:
            raise DomainError(
                message or f"Unknown {self.word} {state!r}; use one of: {', '.join(self.states.values)}.",
                field=self.word,
            )


def transition(
    *,
    lifecycle: Lifecycle,
    queryset: models.QuerySet[Row],
    ids: Sequence[int],
    to_state: str,
    audit: Callable[[Row, str], models.Model],
    field: str = "state",
    from_states: Collection[str] | None = None,
    refuse_as: str | None = None,
    check: Callable[[Row], None] | None = None,
    on_move: Callable[[Row], None] | None = None,
    name: Callable[[Row], str] | None = None,
    change_reason: str = "",
    update_fields: Sequence[str] | None = None,
) -> dict[int, Row]:
    """Move the rows `ids` of `queryset` to `to_state`, all or none, and return them locked and moved.

    - `audit(row, from_state)` builds the (unsaved) audit row of one move; they are saved together.
    - `from_states`: a precondition beyond the map (only seeded grids are vitrified, though the map
      also lets a registered grid be discarded); a row outside it is refused as if it were asked to
      become `refuse_as` (default `to_state`).
    - `check(row)` runs on each locked row before anything moves (permissions); it raises to refuse.
    - `on_move(row)` changes other fields of a row as it moves (a discarded grid leaves its box).
    - `name(row)` prefixes each refusal when several rows move (a grid's barcode).
    - `update_fields`: what `save()` writes (default: the whole row).
    Call it inside the caller's `transaction.atomic()` to do more under the same locks.
    """
    lifecycle.require_known(to_state)
    with transaction.atomic():
        locked = {row.pk: row for row in queryset.select_for_update().filter(pk__in=ids).order_by("pk")}
        refused: list[str] = []
        for pk in ids:
            row = locked[pk]
            if check is not None:
                check(row)
            current = getattr(row, field)
            if from_states is not None and current not in from_states:
                message = lifecycle.refusal(current, refuse_as or to_state)
            elif not lifecycle.can_move(current, to_state):
                message = lifecycle.refusal(current, to_state)
            else:
                continue
            refused.append(f"{name(row)}: {message}" if name else message)
        if refused:
            raise ConflictError(" ".join(refused), field=field, details={"refused": refused})
        audits: list[Any] = []
        for pk in ids:
            row = locked[pk]
            audits.append(audit(row, getattr(row, field)))
            setattr(row, field, to_state)
            if on_move is not None:
                on_move(row)
            row._change_reason = change_reason or f"{lifecycle.word} → {to_state}"
            row.save(update_fields=update_fields)
        if audits:
            type(audits[0]).objects.bulk_create(audits)
    return locked
