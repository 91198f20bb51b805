"""One way for every list page to paginate: a page of at most `size` rows, and the nearest valid page for
any page number a person (or a stale link) asks for.

Django's ``Paginator.get_page`` already answers the last page past the end, but it answers the *last*
page for ``page=0`` or ``page=-3`` and the first for ``page=2.0``; here a number below 1 is page 1, one
past the end is the last page, and anything that is not a number (``abc``, ``1e99``, empty) is page 1.
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator

PAGE_SIZE = 50
# Longer than any page number a real list reaches; a longer string is not a page number.
_MAX_DIGITS = 12


def page_number(raw) -> int:
    """The page asked for, as a whole number ≥ 1 (1 when it is not a number)."""
    text = str(raw if raw is not None else "").strip()
    if text.endswith(".0"):
        text = text[:-2]
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > _MAX_DIGITS:
        return 1
    return max(sign * int(digits), 1)


def page_get(request, rows, *, size: int = PAGE_SIZE, param: str = "page") -> Page:
    """The page of `rows` (a queryset or list) the request asks for, clamped to the pages that exist."""
    paginator = Paginator(rows, size)
    return paginator.page(min(page_number(request.GET.get(param)), paginator.num_pages))


def query_without_page(request, param: str = "page") -> str:
    """The request's other parameters, for the pager's links (they keep the filters)."""
    query = request.GET.copy()
    query.pop(param, None)
    return query.urlencode()
