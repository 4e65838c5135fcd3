"""Reject requests whose query string or form body is not valid UTF-8.

Django decodes such bytes with replacement characters, so without this check
a malformed request would store U+FFFD in place of what was sent.
"""

import logging
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def is_valid_utf8_form(raw: bytes) -> bool:
    """Return True when every percent-decoded field of an urlencoded string is UTF-8."""
    for pair in raw.split(b"&"):
        for part in pair.split(b"=", 1):
            try:
                unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return False
    return True


class Utf8InputMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "").encode("latin-1", errors="replace")
        if not is_valid_utf8_form(query):
            return self._reject(request, "query string")
        if request.method == "POST" and request.content_type == FORM_CONTENT_TYPE:
            # Reading the body honours DATA_UPLOAD_MAX_MEMORY_SIZE: an oversized
            # body raises RequestDataTooBig, which Django turns into a 400 response.
            if not is_valid_utf8_form(request.body):
                return self._reject(request, "form body")
        return self.get_response(request)

    def _reject(self, request: HttpRequest, where: str) -> HttpResponse:
        logger.warning("invalid UTF-8 rejected in=%s path=%s", where, request.path)
        return HttpResponseBadRequest(
            "The request is not valid UTF-8 text.", content_type="text/plain; charset=utf-8"
        )
