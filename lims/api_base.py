"""API plumbing named in settings (kept apart from the viewsets to avoid an import cycle with DRF)."""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import inspect
from collections.abc import Callable

import django_filters
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import ISO_8601, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings
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
            rows = _counted_rows(queryset)
        except EmptyResultSet:
            return 0
        key = "lims:count:" + hashlib.sha256(repr(rows).encode()).hexdigest()
        found = cache.get(key)
        if found is not None:
            return found
        counted = queryset.count()
        if counted >= LARGE_COUNT:
            cache.set(key, counted, COUNT_SECONDS)
        return counted


def _counted_rows(queryset: QuerySet) -> tuple:
    """What decides which rows `queryset` counts: its database, its tables and the joins that are used (an
    inner join may drop rows, a join to many may repeat them), and its WHERE clause with the parameters.

    Compiling the WHERE clause alone costs a fifth of compiling the whole counting query, select list and
    ordering included, and was most of the count cache's cost on a list request (issue 10). A query that a
    WHERE clause does not describe (grouped, DISTINCT, a union, `extra()` columns or tables, a slice, a filtered relation, a
    filter on an aggregate) is described by its whole SQL instead. Raises EmptyResultSet for a query that can
    match nothing."""
    query = queryset.query
    joins = []
    plain = not (
        query.combinator or query.distinct or query.extra or query.extra_tables or query.group_by is not None
        or query.is_sliced or query.where.contains_aggregate
    )  # fmt: skip
    for alias, join in query.alias_map.items():
        if not query.alias_refcount[alias]:
            continue  # a join nothing uses is left out of the SQL
        if getattr(join, "filtered_relation", None) is not None:
            plain = False
            break
        joins.append((alias, join.table_name, getattr(join, "join_type", None), getattr(join, "parent_alias", None),
                      getattr(join, "join_cols", None)))  # fmt: skip
    if not plain:
        sql, params = queryset.order_by().query.sql_with_params()
        return queryset.db, sql, params
    try:
        where, params = query.get_compiler(queryset.db).compile(query.where)
    except FullResultSet:
        where, params = "", ()
    return queryset.db, query.model._meta.label, tuple(joins), where, tuple(params)


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
    by_id.base_filters = _FiltersCopiedShallow(filters)
    return by_id


class _FormClassOnce:
    def get_form_class(self):
        cls = type(self)
        if "_form_class" not in cls.__dict__:
            form_class = super().get_form_class()
            form_class.base_fields = _FieldsShared(form_class.base_fields)
            cls._form_class = form_class
        return cls._form_class


class _FiltersCopiedShallow(dict):
    """The by-id filters, copied one level deep for each filter set instead of all the way down.

    django-filter deep-copies a filter set's filters on every request (each copy gets the request's filter set
    as its parent); the deep part, each filter's arguments and form field, was about a tenth of a list request's
    server time. Nothing of it is written during a request, so each filter is copied alone and a method filter
    bound to its own copy (django-filter's `method` setter does that)."""

    def __deepcopy__(self, memo):
        copied = {}
        for name, original in self.items():
            filter_ = copy.copy(original)
            if original.method is not None:
                filter_.method = original.method
            copied[name] = filter_
        return copied


class _FieldsShared(dict):
    """The form fields of a by-id filter form, shared by its instances: Django deep-copies a form's fields for
    each form so that a page may alter them, and these forms are never rendered, only validate (`clean` reads
    a field and writes nothing to it)."""

    def __deepcopy__(self, memo):
        return dict(self)


class _NumberInFilter(django_filters.BaseInFilter, django_filters.NumberFilter):
    pass


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Etc/Zulu", "Universal", "Zulu"})


def datetime_text(zone: datetime.tzinfo) -> Callable[[datetime.datetime | None], str | None]:
    """What DRF's DateTimeField answers for a datetime, in `zone`: ISO 8601, UTC written as "Z".

    DRF's field looks up its format setting and its zone and checks awareness for every value: 3.1 µs a value
    against 2.4 here, with two values a row the larger part of building a 50-row list's rows (issue 10). Here an aware value is converted and
    written directly; anything else (a naive value, a year the zone cannot hold, another DATETIME_FORMAT)
    goes through DRF's own field, so the answers are the same."""
    drf = serializers.DateTimeField(default_timezone=zone).to_representation
    if api_settings.DATETIME_FORMAT != ISO_8601:
        return drf
    # Every UTC zone writes the same text, and the database hands back values in datetime's own UTC: those
    # are written as they are, without a conversion to the zone (half the cost).
    target = datetime.UTC if getattr(zone, "key", None) in _UTC_NAMES else zone

    def text(value: datetime.datetime | None) -> str | None:
        if value is None or value.utcoffset() is None:
            return drf(value)
        try:
            written = (value if value.tzinfo is target else value.astimezone(target)).isoformat()
        except OverflowError:
            return drf(value)
        return written[:-6] + "Z" if written.endswith("+00:00") else written

    return text
