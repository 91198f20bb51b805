"""Bulk import from CSV or XLSX: a dry run that reports every problem by row and column, then an import
that applies every row or none, through the same services the forms use.

Extension point: an app describes a kind of import (`ImportKind`: its columns, a Django form that parses
one row, and `apply`, which calls the app's services) and registers it with `import_kind_register()` in
AppConfig.ready(). The pages and the API list whatever is registered; lims imports no app.

A dry run is the real import inside a transaction that is rolled back, so it finds what only the
services know (a lot with too few grids left, a grid in the wrong state, a box that is full) exactly as
the import would.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django import forms
from django.db import transaction
from django.http import Http404, HttpResponse

from lims.errors import DomainError

MAX_ROWS = 5000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_BYTES = 10 * 2**20


@dataclass(frozen=True)
class Column:
    name: str
    help: str = ""
    example: str = ""
    required: bool = False


@dataclass(frozen=True)
class ImportKind:
    """One kind of import. `form` parses a row (constructed as `form(data, user=…)`); `apply(rows, by=…)`
    gets the cleaned rows of one group (all rows with the same `group_by` value, else one row) and
    returns a one-line summary of what it made. Services' DomainErrors become problems of the group."""

    slug: str
    label: str
    description: str
    columns: tuple[Column, ...]
    form: type[forms.Form]
    apply: Callable[..., str]
    group_by: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


_kinds: dict[str, ImportKind] = {}


def import_kind_register(kind: ImportKind) -> None:
    _kinds[kind.slug] = kind


def import_kinds() -> list[ImportKind]:
    return list(_kinds.values())


def import_kind_get(slug: str) -> ImportKind:
    try:
        return _kinds[slug]
    except KeyError:
        raise Http404(f"No import called {slug!r}.") from None


@dataclass
class Problem:
    row: int  # as a spreadsheet numbers it: the header is row 1
    column: str | None
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    rows: int = 0
    applied: bool = False
    problems: list[Problem] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "applied": self.applied,
            "ok": self.ok,
            "problems": [p.as_dict() for p in self.problems],
            "done": self.done,
        }


# --- reading files ---------------------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:-9] if text.endswith("T00:00:00") else text
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table_rows(name: str, content: bytes) -> Iterable[list]:
    lower = name.lower()
    if lower.endswith(".xlsx"):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many kinds on a damaged file
            raise DomainError(
                f"file: not a readable XLSX workbook ({error.__class__.__name__}).", field="file"
            ) from None
        yield from workbook.worksheets[0].iter_rows(values_only=True)
        return
    if lower.endswith(".csv") or lower.endswith(".txt"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DomainError("file: save the CSV as UTF-8.", field="file") from None
        dialect = csv.excel
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            pass
        yield from csv.reader(io.StringIO(text), dialect)
        return
    raise DomainError("file: upload a .csv or .xlsx file.", field="file")


def read_table(kind: ImportKind, name: str, content: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """(row number, {column: text}) for each non-empty row, and the problems of the header."""
    if len(content) > MAX_BYTES:
        raise DomainError(f"file: at most {MAX_BYTES // 2**20} MB.", field="file")
    table = iter(_table_rows(name, content))
    header = next(table, None)
    if header is None:
        raise DomainError("file: the file is empty; start from the template.", field="file")
    names = [_text(h).lower().replace(" ", "_") for h in header]
    problems = [
        Problem(1, n, f"Unknown column {n!r}; the columns are: {', '.join(kind.column_names)}.")
        for n in names
        if n and n not in kind.column_names
    ]
    problems += [
        Problem(1, c.name, f"Column {c.name!r} is missing (it is required).")
        for c in kind.columns
        if c.required and c.name not in names
    ]
    rows = []
    for number, values in enumerate(table, start=2):
        data = {n: _text(v) for n, v in zip(names, values, strict=False) if n in kind.column_names}
        if any(data.values()):
            rows.append((number, data))
        if len(rows) > MAX_ROWS:
            raise DomainError(f"file: at most {MAX_ROWS} rows in one import; split the file.", field="file")
    return rows, problems


# --- running ---------------------------------------------------------------------------------


def _form_problems(number: int, form: forms.Form) -> list[Problem]:
    return [
        Problem(number, name if name != "__all__" else None, message)
        for name, messages in form.errors.items()
        for message in messages
    ]


def _domain_problem(number: int, kind: ImportKind, error: DomainError) -> Problem:
    column = error.field if error.field in kind.column_names else None
    message = error.message
    if error.field and message.startswith(f"{error.field}: "):
        message = message[len(error.field) + 2 :]
    return Problem(number, column, message)


def run_import(*, kind: ImportKind, name: str, content: bytes, by, dry_run: bool) -> ImportReport:
    """Validate every row; apply them all (dry_run False and no problem) or roll everything back."""
    report = ImportReport(kind=kind.slug, dry_run=dry_run)
    rows, report.problems = read_table(kind, name, content)
    report.rows = len(rows)
    if not rows and not report.problems:
        report.problems.append(Problem(2, None, "No rows to import below the header."))
    if report.problems:
        return report
    groups: dict[str, list[tuple[int, dict]]] = {}
    for number, data in rows:
        key = (data.get(kind.group_by) if kind.group_by else None) or f"row {number}"
        groups.setdefault(key, []).append((number, data))
    with transaction.atomic():
        for members in groups.values():
            parsed = []
            for number, data in members:
                form = kind.form(data, user=by)
                if form.is_valid():
                    parsed.append((number, form.cleaned_data))
                else:
                    report.problems += _form_problems(number, form)
            if len(parsed) != len(members):
                continue
            try:
                with transaction.atomic():
                    report.done.append(kind.apply(parsed, by=by))
            except DomainError as error:
                report.problems.append(_domain_problem(members[0][0], kind, error))
            except Http404 as error:
                report.problems.append(Problem(members[0][0], None, str(error) or "Not found in your labs."))
        report.applied = not dry_run and not report.problems
        if not report.applied:
            transaction.set_rollback(True)
    return report


# --- templates -------------------------------------------------------------------------------


def template_csv(kind: ImportKind) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(kind.column_names)
    writer.writerow([c.example for c in kind.columns])
    return buffer.getvalue().encode("utf-8")


def template_xlsx(kind: ImportKind) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = kind.slug[:31]
    sheet.append(kind.column_names)
    sheet.append([c.example for c in kind.columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, column in enumerate(kind.columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = max(12, len(column.name) + 4)
    notes = workbook.create_sheet("columns")
    notes.append(["column", "required", "what it holds", "example"])
    for column in kind.columns:
        notes.append([column.name, "yes" if column.required else "", column.help, column.example])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def template_response(kind: ImportKind, ext: str) -> HttpResponse:
    """The template as a download: ext "xlsx", else CSV."""
    if ext == "xlsx":
        response = HttpResponse(template_xlsx(kind), content_type=XLSX)
    else:
        response = HttpResponse(template_csv(kind), content_type="text/csv; charset=utf-8")
        ext = "csv"
    response["Content-Disposition"] = f'attachment; filename="{kind.slug}-template.{ext}"'
    return response
