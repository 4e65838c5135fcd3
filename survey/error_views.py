"""Friendly error pages that replace Django's technical ones."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.middleware.csrf import REASON_NO_CSRF_COOKIE
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import get_language


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Explain a failed CSRF check: blocked cookies, or a page left open too long.

    Django's CsrfViewMiddleware already logs each failure with its reason on the
    ``django.security.csrf`` logger, so this view adds no log line of its own.
    """
    context = {
        "cookies_missing": reason == REASON_NO_CSRF_COOKIE,
        "retry_url": _retry_url(request),
        "languages": _page_languages(),
    }
    response = HttpResponseForbidden(
        render_to_string("csrf_failure.html", context, request=request)
    )
    add_never_cache_headers(response)
    return response


def _page_languages() -> list[str]:
    """Return the active language first, then the others.

    The page explains itself in every language because its language switcher
    would need the very cookies that may be blocked.
    """
    codes = [code for code, _name in settings.LANGUAGES]
    current = get_language() or settings.LANGUAGE_CODE
    if current not in codes:
        current = current.split("-")[0]
    if current not in codes:
        return codes
    return [current, *(code for code in codes if code != current)]


def _retry_url(request: HttpRequest) -> str:
    """Return a page that the attendee can open with a GET to try the failed step again."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return reverse("survey:home")
    slug = match.kwargs.get("slug")
    if match.namespace == "kiosk" and slug:
        return reverse("kiosk:start", kwargs={"slug": slug})
    if match.namespace == "survey" and slug:
        url = reverse("survey:welcome", kwargs={"slug": slug})
        if request.GET.get("via") == "qr":
            url += "?via=qr"
        return url
    if match.namespace == "admin":
        return request.path
    return reverse("survey:home")
