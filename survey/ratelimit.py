"""Rate limits that respect shared conference Wi-Fi.

Many attendees share one public IP address behind a venue NAT, so the tight
limit is per participant session (answers per minute), and the per-IP limit is
only a generous ceiling against scripted floods. Counters live in the shared
cache, so every gunicorn worker and app server sees the same counts. IP
addresses are hashed before they become cache keys and are never stored.
"""

import hashlib
import logging
import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

CACHE_ALIAS = "default"


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


def hit(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one event for ``key`` in the current fixed window; return False past ``limit``."""
    window = int(time.time() // window_seconds)
    cache_key = f"ratelimit:{key}:{window}"
    cache = caches[CACHE_ALIAS]
    # add() is a no-op when the key exists, so the first event of a window sets
    # it to 1 and later ones increment it.
    if cache.add(cache_key, 1, timeout=window_seconds * 2):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:
            # The key expired between add() and incr(); start a new count.
            cache.set(cache_key, 1, timeout=window_seconds * 2)
            count = 1
    return count <= limit


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
        # A first visit has no session yet, so only the per-IP ceiling applies.
        if session_key and not hit(
            f"session:{session_key}", limit=per_session, window_seconds=window
        ):
            logger.warning("rate limit reached scope=session path=%s", request.path)
            return too_many_requests(request, retry_after=window)
        if not hit(f"ip:{hashed_ip(request)}", limit=per_ip, window_seconds=window):
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
