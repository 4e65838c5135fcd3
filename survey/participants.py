"""The participant of the current browser session, its channel and language."""

import logging
import re

from django.http import HttpRequest

from survey import catalog
from survey.models import Participant, Survey
from survey.request_logging import set_log_participant

logger = logging.getLogger(__name__)

SESSION_KEY = "participants"
KIOSK_SESSION_KEY = "kiosk"
# A coarse check on purpose: the channel is recorded, the user-agent string is not.
MOBILE_USER_AGENT = re.compile(r"Mobi|Android|iPhone|iPad", re.IGNORECASE)


def current_participant(request: HttpRequest, survey: Survey) -> Participant | None:
    participant_id = request.session.get(SESSION_KEY, {}).get(str(survey.pk))
    if participant_id is None:
        return None
    participant = Participant.objects.filter(pk=participant_id, survey=survey).first()
    if participant is not None:
        participant.survey = survey
        set_log_participant(participant.public_id)
    else:
        logger.info(
            "session names a participant that no longer exists participant_pk=%s survey=%s",
            participant_id,
            survey.slug,
        )
    return participant


def remember_participant(request: HttpRequest, participant: Participant) -> None:
    # A new session key at consent, so a session id seen before consent is not
    # the one that carries the answers.
    request.session.cycle_key()
    participants = dict(request.session.get(SESSION_KEY, {}))
    participants[str(participant.survey_id)] = participant.pk
    request.session[SESSION_KEY] = participants


def forget_participant(request: HttpRequest, survey: Survey) -> None:
    participants = dict(request.session.get(SESSION_KEY, {}))
    participants.pop(str(survey.pk), None)
    request.session[SESSION_KEY] = participants


def detect_device_class(request: HttpRequest) -> str:
    if MOBILE_USER_AGENT.search(request.headers.get("User-Agent", "")):
        return "mobile"
    return "desktop"


def detect_channel(request: HttpRequest) -> str:
    if request.session.get(KIOSK_SESSION_KEY):
        return "kiosk"
    if request.GET.get("via") == "qr" or detect_device_class(request) == "mobile":
        return "phone"
    return "web"


def participant_language(survey: Survey, interface_language: str | None) -> str:
    """Return the topic language for a new participant.

    The interface language when the survey has topics in it, otherwise the first of
    the survey's languages that has topics, so nobody starts a survey with nothing
    to read.
    """
    available = catalog.for_survey(survey.pk).languages
    preferred = (interface_language or "").split("-")[0]
    if preferred in available:
        return preferred
    for language in survey.languages:
        if language in available:
            return language
    return preferred or "en"
