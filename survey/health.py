"""Health endpoints for load balancers and the container HEALTHCHECK.

A middleware placed before every other one serves them, so a probe
that addresses the server by IP address is neither rejected by the
ALLOWED_HOSTS check nor redirected to HTTPS.
"""

import json
import logging
from collections.abc import Callable

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


def _json(payload: dict, status: int = 200) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), content_type="application/json", status=status)
    response["Cache-Control"] = "no-store"
    return response


def readiness() -> tuple[bool, dict]:
    """Check that the database responds and every migration is applied."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as error:
        logger.error("readiness check failed: database unreachable error=%s", error)
        return False, {"status": "unavailable", "database": "unreachable"}
    if unapplied:
        names = [f"{migration.app_label}.{migration.name}" for migration, _backwards in unapplied]
        logger.warning("readiness check failed: unapplied migrations=%s", ",".join(names))
        return False, {"status": "unavailable", "database": "ok", "unapplied_migrations": names}
    return True, {"status": "ok", "database": "ok"}


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == LIVENESS_PATH and request.method in ("GET", "HEAD"):
            return _json({"status": "ok"})
        if request.path == READINESS_PATH and request.method in ("GET", "HEAD"):
            ready, payload = readiness()
            return _json(payload, status=200 if ready else 503)
        return self.get_response(request)
