import logging

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from survey.participants import SESSION_KEY
from survey.ratelimit import limit_ballots
from survey.withdrawal import InvalidReceiptCode, normalize_receipt_code, withdraw

logger = logging.getLogger(__name__)


class WithdrawForm(forms.Form):
    code = forms.CharField(
        label=_("Receipt code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        ),
        error_messages={"required": _("Enter the receipt code from your score page.")},
    )
    confirm = forms.BooleanField(
        label=_("Delete all my answers. I understand this cannot be undone."),
        error_messages={"required": _("Tick the box to confirm the deletion.")},
    )

    def clean_code(self) -> str:
        try:
            return normalize_receipt_code(self.cleaned_data["code"])
        except InvalidReceiptCode as error:
            raise forms.ValidationError(
                _("A receipt code has eight letters and digits, like ABCD-EF23."), code="format"
            ) from error


@require_http_methods(["GET", "POST"])
@never_cache
@limit_ballots
def withdraw_view(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = WithdrawForm(initial={"code": request.GET.get("code", "")[:20]})
        return render(request, "survey/withdraw.html", {"form": form})

    form = WithdrawForm(request.POST)
    if not form.is_valid():
        return render(request, "survey/withdraw.html", {"form": form})
    result = withdraw(receipt_code=form.cleaned_data["code"])
    if result is None:
        logger.info("withdrawal with an unknown receipt code")
        form.add_error("code", _("No answers were found for this receipt code."))
        return render(request, "survey/withdraw.html", {"form": form}, status=404)
    # The deleted participant must not linger in this browser's session.
    request.session.pop(SESSION_KEY, None)
    return render(request, "survey/withdrawn.html", {"withdrawal": result})
