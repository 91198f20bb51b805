"""Recompute every grid's dashboard summary from its records (after a bulk load or a repair by hand)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from characterization.summaries import grid_summaries_rebuild


class Command(BaseCommand):
    help = "Recompute the QC dashboard's summary of every grid from the grids' records."

    def handle(self, *args, **options) -> None:
        start = time.perf_counter()
        with transaction.atomic():
            n = grid_summaries_rebuild()
        self.stdout.write(f"Recomputed the summaries of {n} grids in {time.perf_counter() - start:.1f} s.")
