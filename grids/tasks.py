"""Celery tasks of the grids app: thin wrappers around what the dashboard and services do."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def qc_dashboard_refresh(lab_ids: list[int], params: dict[str, str]) -> None:
    """Recompute the QC dashboard's answer for these labs and filters (the page showed the last one)."""
    from django.core.cache import cache

    from grids import forms, insights

    lab_ids = tuple(lab_ids)
    form = forms.DashboardFilterForm(params or None, lab_ids=lab_ids)
    query = insights.query_build(lab_ids=lab_ids, values=form.usable() if params else {})
    try:
        insights.answer_compute(query)
    finally:
        cache.delete(f"{insights._cache_key(query)}:refreshing")
