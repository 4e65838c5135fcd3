"""The public booth screen: aggregate results and a QR code to the survey.

It shows no per-person data, and no numbers at all until the survey has
``screen_min_responses`` counted answers. A survey without ``screen_enabled``
has no screen (404).
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from survey.models import Survey
from survey.qr import qr_svg
from survey.stats import Headline, headline
from survey.stats_cache import cached_rows
from survey.stats_intervals import CHANCE

POLL_SECONDS = 10


@require_GET
@never_cache
@vary_on_headers("HX-Request")
def screen(request: HttpRequest, slug: str) -> HttpResponse:
    survey = get_object_or_404(Survey, slug=slug, screen_enabled=True)
    numbers = headline(cached_rows(survey))
    ready = numbers.counted >= survey.screen_min_responses
    welcome_url = request.build_absolute_uri(
        reverse("survey:welcome", kwargs={"slug": survey.slug}) + "?via=qr"
    )
    context = {
        "survey": survey,
        "ready": ready,
        # Nothing aggregate reaches the template before the threshold.
        "numbers": _numbers(numbers) if ready else None,
        "min_responses": survey.screen_min_responses,
        "welcome_url": welcome_url,
        # segno writes path data and the attributes passed to it into the SVG,
        # never the encoded URL as text, so the markup is safe to inline.
        "qr": mark_safe(qr_svg(welcome_url)) if survey.is_open else None,
        "poll_seconds": POLL_SECONDS,
    }
    template = "screen/screen.html#live" if request.htmx else "screen/screen.html"
    return render(request, template, context)


def _numbers(numbers: Headline) -> dict:
    def whole_percent(value: float | None) -> int | None:
        return None if value is None else round(value * 100)

    return {
        "answered": numbers.answered,
        "detected_percent": whole_percent(numbers.detection.share),
        "detected_low": whole_percent(numbers.detection.low),
        "detected_high": whole_percent(numbers.detection.high),
        "preferred_human_percent": whole_percent(numbers.preferred_human.share),
        "chance_percent": round(CHANCE * 100),
    }
