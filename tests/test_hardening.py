"""Production settings, security headers, health endpoints and malformed input."""

import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.urls import reverse

from survey.models import Participant, Response
from tests.factories import make_survey, make_topic

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "0",
    "DJANGO_HTTPS": "1",
    "DJANGO_SECRET_KEY": "k3y-" + "x7Qp2Lm9Zr4Tv8Wn1Bc6Hd5Jf0Gs3Ka" * 2,
    "DJANGO_ALLOWED_HOSTS": "survey.example.org",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DJANGO_") and key != "DATABASE_URL"
    }
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "survey.settings"
    clean["DJANGO_VAR_DIR"] = env.get("DJANGO_VAR_DIR", str(settings.BASE_DIR / "var"))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(missing):
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}

    result = run_manage("check", env=env)

    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr


def test_debug_flag_must_be_boolean():
    result = run_manage("check", env={**PRODUCTION_ENV, "DJANGO_DEBUG": "maybe"})

    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_deploy_check_passes_with_production_variables():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_https_settings_follow_flag():
    script = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_HSTS_SECONDS > 0, s.SECURE_PROXY_SSL_HEADER)"
    )
    with_https = run_manage("shell", "--no-imports", "-c", script, env=PRODUCTION_ENV)
    without = run_manage(
        "shell", "--no-imports", "-c", script, env={**PRODUCTION_ENV, "DJANGO_HTTPS": "0"}
    )

    https_values = with_https.stdout.strip().splitlines()[-1]
    plain_values = without.stdout.strip().splitlines()[-1]
    assert https_values.split()[:4] == ["True", "True", "True", "True"]
    assert "HTTP_X_FORWARDED_PROTO" in https_values
    assert plain_values.split()[:4] == ["False", "False", "False", "False"]


@pytest.fixture
def open_survey(db):
    survey = make_survey(slug="booth", is_default=True, rounds_per_participant=1)
    make_topic(survey)
    return survey


def page_urls(client, survey) -> dict[str, tuple[str, int]]:
    client.post(reverse("survey:welcome", args=[survey.slug]), {"consent": "on"})
    return {
        "welcome": ("/", 200),
        "round": (reverse("survey:round", args=[survey.slug]), 200),
        "not found": ("/s/no-such-survey/", 404),
        "admin login": ("/admin/login/", 200),
    }


def test_security_headers_on_every_page_type(client, open_survey):
    for name, (url, status) in page_urls(client, open_survey).items():
        page = client.get(url)
        assert page.status_code == status, name
        csp = page.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp, name
        assert "script-src 'self'" in csp, name
        assert "unsafe-inline" not in csp, name
        assert page["X-Content-Type-Options"] == "nosniff", name
        assert page["Referrer-Policy"] == "same-origin", name
        assert page["X-Request-ID"], name


def test_headers_on_bad_request_and_finish(client, open_survey):
    client.post(reverse("survey:welcome", args=[open_survey.slug]), {"consent": "on"})
    bad = client.post(reverse("survey:round", args=[open_survey.slug]), {"response": "x"})
    served = client.get(reverse("survey:round", args=[open_survey.slug])).context["served"]
    client.post(
        reverse("survey:round", args=[open_survey.slug]),
        {"response": served.pk, "guessed_human": served.post_a_id, "preferred": served.post_a_id},
    )
    finish = client.get(reverse("survey:finish", args=[open_survey.slug]))

    for page in (bad, finish):
        assert "default-src 'self'" in page["Content-Security-Policy"]
        assert page["X-Content-Type-Options"] == "nosniff"
    assert bad.status_code == 400
    assert finish.status_code == 200


def test_healthz_ignores_host_header(client, db):
    page = client.get("/healthz", HTTP_HOST="10.1.2.3")

    assert page.status_code == 200
    assert page.json() == {"status": "ok"}


def test_readyz_reports_database_and_migrations(client, db):
    page = client.get("/readyz", HTTP_HOST="10.1.2.3")

    assert page.status_code == 200
    assert page.json() == {"status": "ok", "database": "ok"}


def test_request_id_from_proxy_kept_when_well_formed(client, db):
    kept = client.get("/", HTTP_X_REQUEST_ID="lb-0123456789abcdef")
    replaced = client.get("/", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert kept["X-Request-ID"] == "lb-0123456789abcdef"
    assert replaced["X-Request-ID"] != "bad id\nwith newline"
    assert len(replaced["X-Request-ID"]) == 32


def test_invalid_utf8_in_form_body_rejected(client, open_survey):
    client.post(reverse("survey:welcome", args=[open_survey.slug]), {"consent": "on"})
    served = client.get(reverse("survey:round", args=[open_survey.slug])).context["served"]
    body = (
        f"response={served.pk}&guessed_human={served.post_a_id}"
        f"&preferred={served.post_a_id}&comment=%FF%FEbad"
    ).encode()

    page = client.post(
        reverse("survey:round", args=[open_survey.slug]),
        data=body,
        content_type="application/x-www-form-urlencoded",
    )

    assert page.status_code == 400
    assert Response.objects.answered().count() == 0


def test_invalid_utf8_in_query_string_rejected(client, open_survey):
    page = client.get("/s/booth/?via=%C3%28")

    assert page.status_code == 400


def test_oversized_body_rejected(client, open_survey):
    client.post(reverse("survey:welcome", args=[open_survey.slug]), {"consent": "on"})

    page = client.post(
        reverse("survey:round", args=[open_survey.slug]),
        data=b"comment=" + b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10),
        content_type="application/x-www-form-urlencoded",
    )

    assert page.status_code == 400
    assert Response.objects.answered().count() == 0


def test_nothing_personal_stored_with_participant(client, open_survey):
    client.post(
        reverse("survey:welcome", args=[open_survey.slug]),
        {"consent": "on"},
        HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36",
        REMOTE_ADDR="203.0.113.9",
    )

    participant = Participant.objects.get()
    stored = " ".join(
        str(getattr(participant, field.attname)) for field in Participant._meta.concrete_fields
    )
    assert "203.0.113.9" not in stored
    assert "Android" not in stored
    assert participant.device_class == "mobile"
