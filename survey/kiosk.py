"""The booth kiosk: one shared browser that starts every person in a fresh session.

A kiosk session carries ``KIOSK_SESSION_KEY``, so participants created in it get
the ``kiosk`` channel. Starting or resetting the kiosk flushes the whole session
on the server, so the next person cannot reach the previous person's
participant, choices, comment or score, not even with the Back button.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import rotate_token
from django.urls import reverse

from survey.models import Survey
from survey.participants import KIOSK_SESSION_KEY, SESSION_KEY
from survey.qr import qr_svg

logger = logging.getLogger(__name__)

IDLE_SECONDS_SETTING = "SURVEY_KIOSK_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 90


def idle_seconds() -> int:
    """Return the seconds without use after which a kiosk screen starts over.

    Reads ``SURVEY_KIOSK_IDLE_SECONDS`` (default 90) and raises
    ImproperlyConfigured for anything but a whole number of at least 1.
    """
    value = getattr(settings, IDLE_SECONDS_SETTING, DEFAULT_IDLE_SECONDS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(
            f"{IDLE_SECONDS_SETTING}={value!r} is invalid: "
            f"set a whole number of seconds, 1 or more (the default is {DEFAULT_IDLE_SECONDS})."
        )
    return value


def is_kiosk(request: HttpRequest) -> bool:
    return bool(request.session.get(KIOSK_SESSION_KEY))


def start_kiosk_session(request: HttpRequest, *, survey: Survey) -> None:
    """Replace the browser's session with an empty kiosk session.

    ``flush()`` deletes the old session row and issues a new session key, so a
    request that still carries the old cookie finds nothing. The CSRF token is
    rotated too, so no token of the previous person's pages stays valid.
    """
    previous_participants = len(request.session.get(SESSION_KEY, {}))
    request.session.flush()
    request.session[KIOSK_SESSION_KEY] = True
    rotate_token(request)
    logger.info(
        "kiosk session started survey=%s cleared_participants=%s",
        survey.slug,
        previous_participants,
    )


def forget_language_choice(response: HttpResponse) -> None:
    """Delete the language cookie, so the next person starts in the browser's language."""
    response.delete_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


def phone_url(request: HttpRequest, survey: Survey) -> str:
    """Return the absolute welcome URL that the kiosk's QR code encodes."""
    return request.build_absolute_uri(f"{survey.get_absolute_url()}?via=qr")


@dataclass(frozen=True)
class KioskScreen:
    """Settings that turn an attendee page into a kiosk screen."""

    idle_seconds: int
    reset_url: str
    phone_url: str
    # The idle reset only runs while the session contains a participant,
    # because a fresh welcome screen has nothing to hide.
    resets_when_idle: bool

    def qr_svg(self) -> str:
        return qr_svg(self.phone_url)


def kiosk_screen(request: HttpRequest, survey: Survey) -> KioskScreen | None:
    """Return the kiosk settings for a page of ``survey``, or None outside a kiosk session."""
    if not is_kiosk(request):
        return None
    return KioskScreen(
        idle_seconds=idle_seconds(),
        reset_url=reverse("kiosk:start", kwargs={"slug": survey.slug}),
        phone_url=phone_url(request, survey),
        resets_when_idle=bool(request.session.get(SESSION_KEY)),
    )
