"""A request id on every log line, and the participant id where one is known."""

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
participant_var: contextvars.ContextVar[str] = contextvars.ContextVar("participant", default="-")

# A proxy's X-Request-ID is kept only when it looks like an id, so that a client
# cannot put arbitrary text into the logs.
INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if INCOMING_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        request_token = request_id_var.set(request_id)
        participant_token = participant_var.set("-")
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(request_token)
            participant_var.reset(participant_token)
        response["X-Request-ID"] = request_id
        return response


def set_log_participant(public_id: object) -> None:
    """Name the participant on the remaining log lines of this request."""
    participant_var.set(str(public_id))


class RequestContextFilter(logging.Filter):
    """Add ``request_id`` and ``participant`` attributes to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.participant = participant_var.get()
        return True
