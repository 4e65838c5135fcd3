"""Kiosk entry points: start (or reset) a shared booth browser."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from survey.kiosk import forget_language_choice, start_kiosk_session
from survey.models import Survey


@require_GET
@never_cache
def start_default(request: HttpRequest) -> HttpResponse:
    survey = Survey.objects.default()
    if survey is None:
        return render(request, "survey/no_survey.html", status=404)
    return redirect("kiosk:start", slug=survey.slug)


# GET serves the idle reset without JavaScript, because a meta refresh can only
# follow a link. POST serves the "start over" buttons and the idle countdown.
@require_http_methods(["GET", "POST"])
@never_cache
def start(request: HttpRequest, slug: str) -> HttpResponse:
    survey = get_object_or_404(Survey.objects.open(), slug=slug)
    start_kiosk_session(request, survey=survey)
    # 303 makes the browser fetch the welcome page with a GET after a POST.
    response = redirect("survey:welcome", slug=survey.slug)
    response.status_code = 303
    forget_language_choice(response)
    return response
