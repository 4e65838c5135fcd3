"""Rate limits that respect shared conference Wi-Fi.

Many attendees share one public IP address behind a venue NAT, so the tight
limit is per participant session (answers per minute), and the per-IP limit is
only a generous ceiling against scripted floods. Ballot counters live in a
database table, so every gunicorn worker and app server reads the same counts
at the cost of one statement per POST. Failed admin logins are counted in the
cache. IP addresses are hashed before they become keys and are never stored.
"""

import hashlib
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from survey.models import RateCounter

logger = logging.getLogger(__name__)

CACHE_ALIAS = "default"
PURGE_EVERY = 1000
_calls = itertools.count(1)


def _limit(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def client_ip(request: HttpRequest) -> str:
    """Return the client address, trusting X-Forwarded-For only behind known proxies.

    ``SURVEY_TRUSTED_PROXY_COUNT`` is the number of proxies in front of the app
    (0 when gunicorn faces clients). The address that the nearest untrusted hop
    reported is used, so a client cannot forge its own address.
    """
    proxies = _limit("SURVEY_TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.headers.get("X-Forwarded-For", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def count_hits(
    keys: Sequence[str], *, window_seconds: int, now: float | None = None
) -> dict[str, int]:
    """Count one event for each key in its current fixed window and return the new counts.

    One statement for all keys: an upsert into ``RateCounter`` that starts a
    key at 1 in a new window and adds 1 within it, returning the new counts
    (SQLite 3.35 or newer, PostgreSQL). Every ``PURGE_EVERY`` calls, the process
    also deletes counters whose window has ended. ``now`` is Unix time in
    seconds, the current time unless given.
    """
    now = int(time.time() if now is None else now)
    window_end = (now // window_seconds + 1) * window_seconds
    table, key, end, hits = (
        connection.ops.quote_name(name)
        for name in (RateCounter._meta.db_table, "key", "window_end", "hits")
    )
    rows = ", ".join(["(%s, %s, 1)"] * len(keys))
    params = [value for counter_key in keys for value in (counter_key, window_end)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key}, {end}, {hits}) VALUES {rows} "
            f"ON CONFLICT ({key}) DO UPDATE SET "
            f"{hits} = CASE WHEN {table}.{end} = excluded.{end} "
            f"THEN {table}.{hits} + 1 ELSE 1 END, "
            f"{end} = excluded.{end} "
            f"RETURNING {key}, {hits}",
            params,
        )
        counts = dict(cursor.fetchall())
    if next(_calls) % PURGE_EVERY == 0:
        deleted, _by_model = RateCounter.objects.filter(window_end__lt=now).delete()
        logger.info("rate-limit counters purged count=%s", deleted)
    return counts


def hashed_ip(request: HttpRequest) -> str:
    digest = hashlib.sha256((settings.SECRET_KEY + client_ip(request)).encode()).hexdigest()
    return digest[:24]


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    content = render_to_string("429.html", {"retry_after": retry_after}, request=request)
    response = HttpResponse(content, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def limit_ballots(view: Callable) -> Callable:
    """Limit POSTs to a view: per participant session first, then a per-IP ceiling."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        window = 60
        session_key = request.session.session_key
        per_session = _limit("SURVEY_RATE_BALLOTS_PER_MINUTE", 30)
        per_ip = _limit("SURVEY_RATE_POSTS_PER_IP_PER_MINUTE", 1200)
        ip_key = f"ip:{hashed_ip(request)}"
        # A first visit has no session yet, so only the per-IP ceiling applies.
        session_counter_key = f"session:{session_key}" if session_key else None
        keys = [ip_key, session_counter_key] if session_counter_key else [ip_key]
        counts = count_hits(keys, window_seconds=window)
        if session_counter_key and counts[session_counter_key] > per_session:
            logger.warning("rate limit reached scope=session path=%s", request.path)
            return too_many_requests(request, retry_after=window)
        if counts[ip_key] > per_ip:
            logger.warning("rate limit reached scope=ip path=%s", request.path)
            return too_many_requests(request, retry_after=window)
        return view(request, *args, **kwargs)

    return wrapper


class AdminLoginThrottleMiddleware:
    """Refuse admin login attempts from an address after repeated failures.

    Failures are counted by ``record_login_failure`` (connected to Django's
    ``user_login_failed`` signal); a successful login does not reset the count,
    which expires with its window.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path.startswith("/admin/login"):
            window = _limit("SURVEY_ADMIN_LOGIN_WINDOW_SECONDS", 900)
            limit = _limit("SURVEY_ADMIN_LOGIN_FAILURES", 10)
            key = f"ratelimit:admin-login:{hashed_ip(request)}"
            if caches[CACHE_ALIAS].get(key, 0) >= limit:
                logger.warning("admin login throttled after %s failures", limit)
                return too_many_requests(request, retry_after=window)
            request._admin_login_key = key
        return self.get_response(request)


def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    key = getattr(request, "_admin_login_key", None)
    if key is None:
        return
    window = _limit("SURVEY_ADMIN_LOGIN_WINDOW_SECONDS", 900)
    cache = caches[CACHE_ALIAS]
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=window)
    logger.warning("admin login failed username=%r", credentials.get("username", ""))
