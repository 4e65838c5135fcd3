import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from survey import ratelimit
from survey.models import Participant, RateCounter, Response
from survey.ratelimit import client_ip, count_hits
from tests.factories import make_survey, make_topic


@pytest.fixture(autouse=True)
def empty_cache(db):
    cache.clear()


@pytest.fixture
def survey(db):
    survey = make_survey(slug="wifi", rounds_per_participant=3)
    for index in range(3):
        make_topic(survey, title=f"Topic {index}")
    return survey


def take_survey(client: Client, survey) -> list[int]:
    statuses = [client.post(f"/s/{survey.slug}/", {"consent": "on"}).status_code]
    round_url = reverse("survey:round", args=[survey.slug])
    for _round in range(3):
        served = client.get(round_url).context["served"]
        page = client.post(
            round_url,
            {
                "response": served.pk,
                "guessed_human": served.post_a_id,
                "preferred": served.post_b_id,
            },
        )
        statuses.append(page.status_code)
    return statuses


def test_fifty_participants_behind_one_ip_all_finish(survey):
    for _ in range(50):
        statuses = take_survey(Client(REMOTE_ADDR="198.51.100.7"), survey)
        assert statuses == [302, 303, 303, 303]

    assert Participant.objects.filter(finished_at__isnull=True).count() == 50
    assert Response.objects.answered().count() == 150


def test_session_limit_stops_ballot_flood(survey, settings):
    settings.SURVEY_RATE_BALLOTS_PER_MINUTE = 3
    client = Client()
    client.post(f"/s/{survey.slug}/", {"consent": "on"})
    round_url = reverse("survey:round", args=[survey.slug])
    served = client.get(round_url).context["served"]
    ballot = {
        "response": served.pk,
        "guessed_human": served.post_a_id,
        "preferred": served.post_a_id,
    }

    statuses = [client.post(round_url, ballot).status_code for _ in range(4)]

    assert statuses == [303, 303, 303, 429]
    limited = client.post(round_url, ballot)
    assert limited.status_code == 429
    assert limited["Retry-After"] == "60"
    assert Response.objects.answered().count() == 1


def test_ip_ceiling_stops_scripted_consents(survey, settings):
    settings.SURVEY_RATE_POSTS_PER_IP_PER_MINUTE = 5

    statuses = [
        Client(REMOTE_ADDR="192.0.2.1").post(f"/s/{survey.slug}/", {"consent": "on"}).status_code
        for _ in range(7)
    ]
    other_ip = Client(REMOTE_ADDR="192.0.2.2").post(f"/s/{survey.slug}/", {"consent": "on"})

    assert statuses == [302] * 5 + [429] * 2
    assert other_ip.status_code == 302
    assert Participant.objects.count() == 6


def test_counter_starts_over_in_next_window(db):
    start = 1_800_000_000

    assert count_hits(["a"], window_seconds=60, now=start) == {"a": 1}
    assert count_hits(["a", "b"], window_seconds=60, now=start + 59) == {"a": 2, "b": 1}
    assert count_hits(["a"], window_seconds=60, now=start + 60) == {"a": 1}


def test_purge_deletes_counters_of_ended_windows(db, monkeypatch):
    monkeypatch.setattr(ratelimit, "PURGE_EVERY", 1)
    start = 1_800_000_000
    count_hits(["old"], window_seconds=60, now=start)

    count_hits(["new"], window_seconds=60, now=start + 120)

    assert list(RateCounter.objects.values_list("key", flat=True)) == ["new"]


def test_forwarded_for_trusted_only_behind_configured_proxies(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")

    settings.SURVEY_TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.SURVEY_TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.5"


def test_admin_login_throttled_after_failures(db, settings):
    settings.SURVEY_ADMIN_LOGIN_FAILURES = 3
    get_user_model().objects.create_superuser("organizer", "", "right-password-123")
    client = Client(REMOTE_ADDR="192.0.2.50")
    login = {"username": "organizer", "password": "wrong", "next": "/admin/"}

    statuses = [client.post("/admin/login/", login).status_code for _ in range(4)]
    right = client.post("/admin/login/", {**login, "password": "right-password-123"})

    assert statuses == [200, 200, 200, 429]
    assert right.status_code == 429
    elsewhere = Client(REMOTE_ADDR="192.0.2.51").post(
        "/admin/login/", {**login, "password": "right-password-123"}
    )
    assert elsewhere.status_code == 302
