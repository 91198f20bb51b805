from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from lims import imports, permissions, selectors, services, tokens
from lims.errors import DomainError
from lims.forms import ApiTokenForm, MemberAddForm, show_domain_error
from lims.models import Role
from lims.paging import page_get


def lab_list(request):
    labs = page_get(request, selectors.lab_list(user=request.user))
    return render(request, "lims/lab_list.html", {"labs": labs, "page": labs})


def lab_detail(request, pk: int):
    lab = selectors.lab_get(user=request.user, pk=pk)
    is_admin = permissions.has_role(request.user, lab, [Role.LAB_ADMIN])
    form = MemberAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            if request.POST.get("remove"):
                services.membership_remove(lab=lab, username=form.cleaned_data["username"], by=request.user)
                messages.success(request, f"Removed {form.cleaned_data['username']}.")
            else:
                services.membership_add(lab=lab, by=request.user, **form.cleaned_data)
                messages.success(request, f"{form.cleaned_data['username']} is now {form.cleaned_data['role']}.")
            return redirect("lab-page", pk=lab.pk)
        except DomainError as error:
            show_domain_error(form, error)
    return render(
        request,
        "lims/lab_detail.html",
        {"lab": lab, "members": selectors.membership_list(lab=lab), "is_admin": is_admin, "form": form},
    )


def token_list(request):
    """Your API tokens: create one (its key is shown once), see when each was last used, revoke one."""
    form = ApiTokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            token, new_key = tokens.api_token_create(user=request.user, **form.cleaned_data)
            form = ApiTokenForm()
        except DomainError as error:
            show_domain_error(form, error)
    return render(
        request,
        "lims/token_list.html",
        {"tokens": tokens.api_token_list(user=request.user), "form": form, "new_key": new_key},
    )


@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(tokens.api_token_list(user=request.user), pk=pk)
    tokens.api_token_revoke(token=token, by=request.user)
    messages.success(request, f"Token “{token.name}” revoked: it no longer works.")
    return redirect("api-tokens")


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="A .csv (UTF-8) or .xlsx file with the template's columns")


def import_list(request):
    return render(request, "lims/import_list.html", {"kinds": imports.import_kinds()})


def import_run(request, slug: str):
    """Upload a file: “Check” is a dry run that lists every problem by row and column; “Import” applies
    every row or none."""
    kind = imports.import_kind_get(slug)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            report = imports.run_import(
                kind=kind, name=upload.name, content=upload.read(), by=request.user,
                dry_run=request.POST.get("action") != "import",
            )  # fmt: skip
        except DomainError as error:
            show_domain_error(form, error)
        if report and report.applied:
            messages.success(request, f"Imported {report.rows} row(s): " + " ".join(report.done[:5]))
    return render(request, "lims/import_run.html", {"kind": kind, "form": form, "report": report})


def import_template(request, slug: str, ext: str):
    kind = imports.import_kind_get(slug)
    return imports.template_response(kind, ext)
