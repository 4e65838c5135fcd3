"""Retries with exponential backoff for Google Sheets calls, and write pacing.

Google's advice for 429 and 5xx responses is truncated exponential backoff:
wait 2**n seconds plus a random fraction of a second, up to a maximum of 32 or
64 seconds (https://developers.google.com/sheets/api/limits). Timeouts and
dropped connections are retried the same way, which is safe because every
write the mirror sends is idempotent: it targets fixed cells.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import requests
from gspread.exceptions import APIError

logger = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset(
    {
        HTTPStatus.REQUEST_TIMEOUT,
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)


class StopRequested(Exception):
    """The worker was asked to stop while it waited to retry."""


class RetriesExhausted(Exception):
    """A call kept failing with retryable errors until its time budget ran out."""


@dataclass
class Backoff:
    """Truncated exponential backoff with random jitter, in seconds."""

    base: float = 1.0
    cap: float = 60.0
    jitter: float = 1.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        """Return the wait before retry number ``attempt`` (0 for the first retry)."""
        exponential = self.base * 2 ** min(attempt, 32)
        return min(self.cap, exponential + self.rng.uniform(0, self.jitter))


def retry_reason(error: Exception) -> str | None:
    """Return why ``error`` is worth retrying, or None when retrying cannot help."""
    if isinstance(error, APIError):
        # gspread takes the code from the JSON body, which a proxy's 502 page
        # lacks, so the HTTP status is the reliable one.
        status = error.response.status_code
        if status in RETRYABLE_STATUSES:
            message = error.error.get("message", "") if isinstance(error.error, dict) else ""
            return f"HTTP {status} {message}".strip()
        return None
    if isinstance(error, requests.Timeout):
        return f"timed out ({type(error).__name__})"
    if isinstance(error, requests.ConnectionError):
        return f"connection failed ({error})"
    return None


def _retry_after(error: Exception) -> float | None:
    if not isinstance(error, APIError):
        return None
    value = error.response.headers.get("Retry-After", "")
    try:
        return float(value)
    except ValueError:
        return None


class Retrier:
    """Run a Sheets call, retrying retryable errors until a time budget runs out.

    Waits use ``stop_event``, so a stop request (SIGTERM, or SIGINT through the
    command's handler) ends a wait at once with StopRequested. Nothing here
    catches KeyboardInterrupt.
    """

    def __init__(
        self,
        *,
        backoff: Backoff,
        stop_event: threading.Event,
        budget_seconds: float = 300.0,
    ):
        self.backoff = backoff
        self.stop_event = stop_event
        self.budget_seconds = budget_seconds

    def call[T](self, operation: str, function: Callable[[], T]) -> T:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return function()
            except (APIError, requests.RequestException) as error:
                reason = retry_reason(error)
                if reason is None:
                    raise
                delay = self.backoff.delay(attempt)
                retry_after = _retry_after(error)
                if retry_after is not None:
                    delay = max(delay, min(retry_after, self.backoff.cap))
                attempt += 1
                if time.monotonic() - started + delay > self.budget_seconds:
                    raise RetriesExhausted(
                        f"{operation} failed {attempt} times in "
                        f"{time.monotonic() - started:.1f}s, last error: {reason}"
                    ) from error
                logger.warning(
                    "sheets call failed, retrying operation=%s attempt=%s delay_s=%.2f reason=%s",
                    operation,
                    attempt,
                    delay,
                    reason,
                )
                if self.stop_event.wait(delay):
                    raise StopRequested(f"stop requested while retrying {operation}") from error


class WriteThrottle:
    """Space write requests at least ``min_interval`` seconds apart.

    Google's quota is 60 write requests a minute per user. Two seconds between
    writes keeps one worker at half of it, which leaves room for retries.
    """

    def __init__(self, *, min_interval: float, stop_event: threading.Event):
        self.min_interval = min_interval
        self.stop_event = stop_event
        self._last: float | None = None

    def wait(self) -> None:
        """Block until the next write may go. Raise StopRequested on a stop request meanwhile."""
        if self._last is None:
            return
        remaining = self._last + self.min_interval - time.monotonic()
        if remaining > 0 and self.stop_event.wait(remaining):
            raise StopRequested("stop requested while pacing writes")

    def sent(self) -> None:
        """Note that a write request is going out now."""
        self._last = time.monotonic()
