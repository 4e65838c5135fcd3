"""Organizer pages: the live results page and the response downloads, for staff only."""

import importlib
import importlib.util
import logging
from datetime import datetime
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import render, resolve_url
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from survey.charts import LABEL_WIDTH, Bar, Column, bar_chart, column_chart
from survey.export import ExportFilterForm, export_rows, iter_csv, iter_jsonl
from survey.models import HUMAN, Survey
from survey.stats import GroupShare, SurveyStatistics, survey_for_results
from survey.stats_cache import cached_statistics
from survey.stats_intervals import CHANCE, Proportion

logger = logging.getLogger(__name__)

POLL_SECONDS = 5
# viewBox widths: a card of the two-column grid at 1920 px, and a full-width card.
CHART_WIDTH = 800
WIDE_CHART_WIDTH = 1600
# Room for topic titles of about 40 characters in the full-width chart.
WIDE_LABEL_WIDTH = 420
EXPORT_FORMATS = {
    "csv": ("text/csv; charset=utf-8", iter_csv),
    "jsonl": ("application/jsonl; charset=utf-8", iter_jsonl),
}


def staff_required(view):
    """Let active staff through and send everyone else to the admin login.

    An htmx poll gets an HX-Redirect instead of a 302, because htmx would
    follow the redirect and swap the login page into the polled fragment.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        login_url = resolve_url(settings.LOGIN_URL)
        if request.htmx:
            next_url = request.htmx.current_url_abs_path or reverse("results:index")
            return HttpResponseClientRedirect(f"{login_url}?{urlencode({'next': next_url})}")
        return redirect_to_login(request.get_full_path(), login_url)

    return wrapper


@require_GET
@never_cache
@vary_on_headers("HX-Request")
@staff_required
def results(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("survey", "").strip()
    survey = survey_for_results(slug)
    if slug and survey is None:
        raise Http404(f"No survey has the slug {slug!r}.")
    include_too_fast = request.GET.get("too_fast") == "1"
    mirror = _mirror_status()
    context = {
        "survey": survey,
        "surveys": Survey.objects.order_by("-created_at"),
        "include_too_fast": include_too_fast,
        "poll_seconds": POLL_SECONDS,
        "poll_url": _results_url(survey, include_too_fast),
        "mirror": mirror,
        "mirror_failing": _mirror_failing(mirror),
        "export_form": ExportFilterForm(initial={"survey": survey.slug if survey else None}),
        "updated_at": timezone.now(),
    }
    if survey is not None:
        stats = cached_statistics(survey, include_too_fast=include_too_fast)
        context.update(stats=stats, view=_present(stats))
    template = "results/index.html#live" if request.htmx else "results/index.html"
    return render(request, template, context)


@require_GET
@never_cache
@staff_required
def export(request: HttpRequest) -> HttpResponse:
    export_format = request.GET.get("format", "csv")
    if export_format not in EXPORT_FORMATS:
        return _bad_request(
            request,
            _("Invalid export format %(format)s: use csv or jsonl.") % {"format": export_format},
        )
    form = ExportFilterForm(request.GET)
    if not form.is_valid():
        messages = " ".join(str(error) for errors in form.errors.values() for error in errors)
        return _bad_request(request, _("Invalid export filter: %(errors)s") % {"errors": messages})
    export_filter = form.export_filter()

    content_type, serialize = EXPORT_FORMATS[export_format]
    response = StreamingHttpResponse(
        serialize(export_rows(export_filter)), content_type=content_type
    )
    name = export_filter.survey.slug if export_filter.survey else "all-surveys"
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = (
        f'attachment; filename="responses-{name}-{stamp}.{export_format}"'
    )
    logger.info(
        "export download user=%s survey=%s format=%s since=%s until=%s unanswered=%s too_fast=%s",
        request.user.pk,
        name,
        export_format,
        export_filter.since,
        export_filter.until,
        export_filter.include_unanswered,
        export_filter.include_too_fast,
    )
    return response


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return HttpResponseBadRequest(
        render_to_string("400.html", {"message": message}, request=request)
    )


def _results_url(survey: Survey | None, include_too_fast: bool) -> str:
    query = {}
    if survey is not None:
        query["survey"] = survey.slug
    if include_too_fast:
        query["too_fast"] = "1"
    url = reverse("results:index")
    return f"{url}?{urlencode(query)}" if query else url


def _mirror_status() -> dict | None:
    """Return the Sheets mirror's status, or None when this install has no mirror module.

    A failing status call must not take the results page down, so its error is
    logged and shown in the panel.
    """
    if importlib.util.find_spec("survey.sheets") is None:
        return None
    try:
        sheets = importlib.import_module("survey.sheets")
        if not hasattr(sheets, "mirror_status"):
            return None
        return sheets.mirror_status()
    except Exception as error:
        logger.exception("mirror status failed error=%s", error.__class__.__name__)
        return {"unavailable": True}


def _mirror_failing(mirror: dict | None) -> bool:
    """Return whether the mirror's latest write attempt failed."""
    if not mirror or not mirror.get("last_error_at"):
        return False
    last_success = mirror.get("last_success_at")
    return last_success is None or mirror["last_error_at"] > last_success


# Presentation: numbers formatted for the page, and the charts.


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _share(share: Proportion) -> dict:
    return {
        "percent": _percent(share.share),
        "low": _percent(share.low),
        "high": _percent(share.high),
        "successes": share.successes,
        "trials": share.trials,
    }


def _share_bar(label: str, share: Proportion, *, highlight: bool = False) -> Bar:
    note = f"{_percent(share.share)} · n={share.trials}" if share.trials else _("no answers")
    return Bar(
        label=label,
        value=share.share,
        low=share.low,
        high=share.high,
        note=note,
        highlight=highlight,
    )


def _share_chart(groups: list[GroupShare], *, description: str, wide: bool = False) -> str:
    return bar_chart(
        [_share_bar(group.label, group.proportion) for group in groups],
        description=description,
        reference=CHANCE,
        reference_label=_("chance 1/3"),
        width=WIDE_CHART_WIDTH if wide else CHART_WIDTH,
        label_width=WIDE_LABEL_WIDTH if wide else LABEL_WIDTH,
    )


def _present(stats: SurveyStatistics) -> dict:
    detection = stats.detection
    preference = stats.preference
    timeline = stats.timeline
    # Strengths sum to 1, so with three or more authors they rarely pass 0.5.
    strength_top = 0.5 if all(author.high <= 0.5 for author in preference.authors) else 1.0
    author_count = len(preference.authors)

    def bucket_label(start: str) -> str:
        moment = datetime.fromisoformat(start)
        return (
            moment.strftime("%H:%M") if timeline.bucket_minutes < 1440 else moment.strftime("%m-%d")
        )

    return {
        "detection": _share(detection.overall),
        "detection_p_value": (None if detection.p_value is None else f"{detection.p_value:.2g}"),
        "positions": [
            {
                "question": check.question,
                "total": check.total,
                "unbalanced": check.unbalanced,
                "chi_square": None if check.chi_square is None else f"{check.chi_square:.2f}",
                "p_value": None if check.p_value is None else f"{check.p_value:.2g}",
                "chart": bar_chart(
                    [_share_bar(position, share) for position, share in check.shares.items()],
                    description=_("Share of answers per display position"),
                    reference=CHANCE,
                    reference_label=_("equal use 1/3"),
                ),
            }
            for check in stats.positions
        ],
        "preference": [
            {
                "author": author.author,
                "strength": f"{author.strength:.3f}",
                "low": f"{author.low:.3f}",
                "high": f"{author.high:.3f}",
                "share": _share(author.share),
            }
            for author in preference.authors
        ],
        "charts": {
            "timeline": column_chart(
                [
                    Column(label=bucket_label(bucket.start), value=bucket.per_minute)
                    for bucket in timeline.buckets
                ],
                description=_("Answers per minute, in buckets of %(minutes)s minutes (UTC)")
                % {"minutes": timeline.bucket_minutes},
                tick_format=lambda value: f"{value:g}",
                width=WIDE_CHART_WIDTH,
            ),
            "detection_by_pair": _share_chart(
                detection.by_pair, description=_("Picked the human post, by model pair")
            ),
            "detection_by_language": _share_chart(
                detection.by_language, description=_("Picked the human post, by language")
            ),
            "detection_by_topic": _share_chart(
                detection.by_topic,
                description=_("Picked the human post, by topic"),
                wide=True,
            ),
            "taken_for_human": _share_chart(
                stats.taken_for_human, description=_("Model post picked as the human one")
            ),
            "strength": bar_chart(
                [
                    Bar(
                        label=author.author,
                        value=author.strength,
                        low=author.low,
                        high=author.high,
                        note=f"{author.strength:.3f}",
                        highlight=author.author == HUMAN,
                    )
                    for author in preference.authors
                ],
                description=_("Preference strength per author, Plackett–Luce fit"),
                max_value=strength_top,
                reference=1 / author_count if author_count else None,
                reference_label=_("equal 1/%(count)s") % {"count": author_count},
                tick_format=lambda value: f"{value:.1f}",
                ticks=5 if strength_top == 0.5 else 4,
            ),
            "preference_share": bar_chart(
                [
                    _share_bar(author.author, author.share, highlight=author.author == HUMAN)
                    for author in preference.authors
                ],
                description=_("Picked as rather read, when shown"),
                reference=CHANCE,
                reference_label=_("chance 1/3"),
            ),
        },
    }
