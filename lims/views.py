from django.contrib import messages
from django.shortcuts import redirect, render

from lims import permissions, selectors, services
from lims.errors import DomainError
from lims.forms import MemberAddForm, show_domain_error
from lims.models import Role


def lab_list(request):
    return render(request, "lims/lab_list.html", {"labs": selectors.lab_list(user=request.user)})


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
