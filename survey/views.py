import logging

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from survey import assignment, catalog
from survey.forms import BallotForm, ConsentForm
from survey.kiosk import kiosk_screen
from survey.models import Participant, Response, Survey
from survey.participants import (
    current_participant,
    detect_channel,
    detect_device_class,
    forget_participant,
    participant_language,
    remember_participant,
)
from survey.ratelimit import limit_ballots
from survey.responses import BallotRejected, record_answer
from survey.scoring import summarize
from survey.withdrawal import assign_receipt_code

logger = logging.getLogger(__name__)


def _open_survey(slug: str) -> Survey:
    survey = catalog.open_survey(slug)
    if survey is None:
        raise Http404(f"no open survey {slug!r}")
    return survey


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    content = render_to_string("400.html", {"message": message}, request=request)
    return HttpResponseBadRequest(content)


@require_GET
@never_cache
def home(request: HttpRequest) -> HttpResponse:
    survey = Survey.objects.default()
    if survey is None:
        return render(request, "survey/no_survey.html", status=404)
    return _welcome(request, survey)


@require_http_methods(["GET", "POST"])
@never_cache
@limit_ballots
def welcome(request: HttpRequest, slug: str) -> HttpResponse:
    return _welcome(request, _open_survey(slug))


def _welcome(request: HttpRequest, survey: Survey) -> HttpResponse:
    participant = current_participant(request, survey)
    if request.method == "POST":
        form = ConsentForm(request.POST)
        if form.is_valid():
            participant = Participant.objects.create(
                survey=survey,
                channel=detect_channel(request),
                device_class=detect_device_class(request),
                language=participant_language(survey, get_language()),
                consented_at=timezone.now(),
            )
            remember_participant(request, participant)
            logger.info(
                "participant consented participant=%s survey=%s channel=%s language=%s",
                participant.public_id,
                survey.slug,
                participant.channel,
                participant.language,
            )
            return redirect("survey:round", slug=survey.slug)
    else:
        form = ConsentForm()
    form_action = reverse("survey:welcome", kwargs={"slug": survey.slug})
    if request.GET.get("via") == "qr":
        form_action += "?via=qr"
    return render(
        request,
        "survey/welcome.html",
        {
            "survey": survey,
            "form": form,
            "participant": participant,
            "form_action": form_action,
            "kiosk": kiosk_screen(request, survey),
        },
    )


@require_http_methods(["GET", "POST"])
@never_cache
@vary_on_headers("HX-Request")
@limit_ballots
def round_view(request: HttpRequest, slug: str) -> HttpResponse:
    survey = _open_survey(slug)
    participant = current_participant(request, survey)
    if participant is None:
        return redirect("survey:welcome", slug=slug)

    if request.method == "GET":
        served = assignment.serve_next(participant)
        if served is None:
            return redirect("survey:finish", slug=slug)
        return _render_round(request, participant, served, BallotForm(served=served))

    try:
        response_id = int(request.POST.get("response", ""))
    except ValueError:
        return _bad_request(request, _("This answer is missing which round it belongs to."))
    served = Response.objects.filter(pk=response_id, participant=participant).first()
    if served is None:
        logger.warning(
            "ballot for a response not served to this participant participant=%s response=%s",
            participant.public_id,
            response_id,
        )
        return _bad_request(request, _("This answer does not belong to your session."))

    form = BallotForm(request.POST, served=served)
    if not form.is_valid():
        if form.is_tampered():
            logger.warning(
                "invalid ballot participant=%s response=%s errors=%s",
                participant.public_id,
                response_id,
                form.errors.as_json(),
            )
            return _bad_request(
                request, _("This answer contains values that the form does not offer.")
            )
        if served.is_answered:
            return _next_page(request, participant)
        return _render_round(request, participant, served, form)

    try:
        result = record_answer(
            participant=participant,
            response_id=served.pk,
            guessed_human_id=form.cleaned_data["guessed_human"],
            preferred_id=form.cleaned_data["preferred"],
            confidence=form.cleaned_data["confidence"],
            reasons=form.cleaned_data["reasons"],
            comment=form.cleaned_data["comment"],
            served=served,
        )
    except BallotRejected as error:
        logger.warning(
            "ballot rejected participant=%s response=%s reason=%s",
            participant.public_id,
            response_id,
            error,
        )
        return _bad_request(request, _("This answer contains values that the form does not offer."))
    return _next_page(request, participant, answered=result.response if result.recorded else None)


def _next_page(
    request: HttpRequest, participant: Participant, *, answered: Response | None = None
) -> HttpResponse:
    """Continue after a ballot: the next round in place for htmx, a redirect otherwise.

    ``answered`` is the response whose answer this request stored, if it stored one.
    """
    slug = participant.survey.slug
    if not request.htmx:
        # A 303 makes the browser follow with a GET, so a reload of the next
        # page never re-posts the ballot.
        response = redirect("survey:round", slug=slug)
        response.status_code = 303
        return response
    served = assignment.serve_next(participant, answered=answered)
    if served is None:
        return HttpResponseClientRedirect(reverse("survey:finish", kwargs={"slug": slug}))
    return _render_round(request, participant, served, BallotForm(served=served))


def _render_round(
    request: HttpRequest, participant: Participant, served: Response, form: BallotForm
) -> HttpResponse:
    catalog.attach_content(served, survey_id=participant.survey_id)
    total = max(assignment.planned_rounds(participant), served.round_number)
    context = {
        "survey": participant.survey,
        "served": served,
        "form": form,
        "posts": list(zip(("A", "B", "C"), served.displayed_posts, strict=True)),
        "round_number": served.round_number,
        "total_rounds": total,
        "is_last": served.round_number >= total,
        "kiosk": kiosk_screen(request, participant.survey),
    }
    template = "survey/round.html#round" if request.htmx else "survey/round.html"
    return render(request, template, context)


@require_GET
@never_cache
def finish(request: HttpRequest, slug: str) -> HttpResponse:
    survey = _open_survey(slug)
    participant = current_participant(request, survey)
    if participant is None:
        return redirect("survey:welcome", slug=slug)
    if participant.finished_at is None:
        # The participant still has rounds to answer; serve_next marks them
        # finished when none remain.
        if assignment.serve_next(participant) is not None:
            return redirect("survey:round", slug=slug)
        participant.refresh_from_db(fields=["finished_at"])
    summary = summarize(participant)
    receipt_code = assign_receipt_code(participant) if summary.answered else None
    return render(
        request,
        "survey/finish.html",
        {
            "survey": survey,
            "participant": participant,
            "summary": summary,
            "receipt_code": receipt_code,
            "kiosk": kiosk_screen(request, survey),
        },
    )


@require_POST
@never_cache
def restart(request: HttpRequest, slug: str) -> HttpResponse:
    survey = _open_survey(slug)
    forget_participant(request, survey)
    return redirect("survey:welcome", slug=slug)
