"""API plumbing named in settings (kept apart from the viewsets to avoid an import cycle with DRF)."""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect

import django_filters
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.views import exception_handler as drf_exception_handler

from lims.errors import DomainError

# A list this long is counted at most once per COUNT_SECONDS per server process (issue 10): COUNT(*) over
# 100 000 grids took longer than everything else a page of 50 does together, and over the 10 000 of a
# filtered list still as long. Shorter lists are counted on every request, so their count is always exact.
LARGE_COUNT = 1_000
COUNT_SECONDS = 5


class CountCachingPaginator(Paginator):
    """Django's paginator, reusing a recent count of a long list: `count` may then be up to COUNT_SECONDS
    old (a few rows written meanwhile are missing from it); the rows of the page are always read afresh.

    The key is the counting query's SQL and parameters, which hold the user's lab scope and filters, so
    two people share a count only when they would count the same rows."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        try:
            sql, params = queryset.order_by().query.sql_with_params()
        except EmptyResultSet:
            return 0
        key = "lims:count:" + hashlib.sha256(repr((queryset.db, sql, params)).encode()).hexdigest()
        found = cache.get(key)
        if found is not None:
            return found
        counted = queryset.count()
        if counted >= LARGE_COUNT:
            cache.set(key, counted, COUNT_SECONDS)
        return counted


class Pagination(PageNumberPagination):
    """Pages as on the web pages: a page number past the end answers the last page, one below 1 or not a
    number the first (``lims.paging``), instead of a 404. The count of a long list may be a few seconds
    old (``CountCachingPaginator``)."""

    django_paginator_class = CountCachingPaginator
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_number(self, request, paginator):
        from lims.paging import page_number

        raw = request.query_params.get(self.page_query_param)
        if raw in self.last_page_strings:
            return paginator.num_pages
        return min(page_number(raw), paginator.num_pages)


def exception_handler(exc, context):
    """Domain errors become JSON answers with the message that says what to fix."""
    if isinstance(exc, DomainError):
        body = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        body.update(exc.details)
        return Response(body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class Router(DefaultRouter):
    """DRF's router, with extra actions that accept the format suffix the router adds to their URLs.

    `/grids/{id}/label.json/` passes `format="json"` to the action; an action written as
    `def label(self, request, pk=None)` would fail with a TypeError (a 500). The suffix still chooses
    the renderer (DRF reads it from `self.kwargs`); the action itself never sees it.
    """

    STANDARD_ACTIONS = ("list", "create", "retrieve", "update", "partial_update", "destroy")

    def register(self, prefix, viewset, basename=None):
        names = [extra.__name__ for extra in viewset.get_extra_actions()] + list(self.STANDARD_ACTIONS)
        for name in names:
            function = getattr(viewset, name, None)
            if function is not None and not _takes_format(function):
                setattr(viewset, name, _dropping_format(function))
        super().register(prefix, viewset, basename)


def _takes_format(function) -> bool:
    parameters = inspect.signature(function).parameters.values()
    return any(p.kind is p.VAR_KEYWORD or p.name == "format" for p in parameters)


def _dropping_format(function):
    @functools.wraps(function)
    def action(self, request, *args, format=None, **kwargs):
        return function(self, request, *args, **kwargs)

    return action


class FilterBackend(DjangoFilterBackend):
    """django-filter, with filters on related records by id alone.

    A `ModelChoiceFilter` validates `?lab=7` against every lab in the database: another lab's id is
    accepted (an empty list) while an id that does not exist is a 400 "Select a valid choice", which
    tells an outsider which ids exist. Here every such filter becomes a plain number filter on the same
    field: text is a 400 "Enter a number" for everyone, and any id outside the user's records, whether
    it exists or not, gives the same empty list (the viewset's queryset is already scoped to the user).
    """

    def get_filterset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return None
        return _filtering_by_id(filterset_class)(**self.get_filterset_kwargs(request, queryset, view))


@functools.cache
def _filtering_by_id(filterset_class: type[django_filters.FilterSet]) -> type[django_filters.FilterSet]:
    """`filterset_class` with its related-record filters turned into number filters (FilterBackend), built once
    per class rather than on every request. Nothing of it then depends on the request, so its form class is
    built once too: django-filter builds a new form class, with a new form field per filter, for every list
    request (issue 10)."""
    filters = {}
    for name, original in filterset_class.base_filters.items():
        if isinstance(original, django_filters.ModelMultipleChoiceFilter):
            replacement = _NumberInFilter(field_name=original.field_name, lookup_expr="in")
        elif isinstance(original, django_filters.ModelChoiceFilter):
            replacement = django_filters.NumberFilter(field_name=original.field_name, lookup_expr="exact")
        else:
            # a copy: the bounds below must not reach the class the pages filter with
            replacement = copy.deepcopy(original)
        if isinstance(replacement, django_filters.NumberFilter):
            # A number beyond 64 bits is a 400 "Ensure this value is less than or equal to …", not
            # an overflow in the database driver (a 500).
            replacement.extra.setdefault("min_value", -(2**63))
            replacement.extra.setdefault("max_value", 2**63 - 1)
        filters[name] = replacement
    by_id = type(filterset_class.__name__, (_FormClassOnce, filterset_class), {})
    by_id.base_filters = filters
    return by_id


class _FormClassOnce:
    def get_form_class(self):
        cls = type(self)
        if "_form_class" not in cls.__dict__:
            cls._form_class = super().get_form_class()
        return cls._form_class


class _NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    pass
