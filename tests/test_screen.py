from datetime import timedelta

import pytest
from django.utils import timezone

from survey import stats_cache
from survey.assignment import serve_next
from survey.models import Participant, Response
from survey.qr import qr_svg
from survey.responses import record_answer
from tests.factories import make_survey, make_topic
from tests.test_stats import new_participant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_stats_cache():
    stats_cache.clear()
    yield
    stats_cache.clear()


@pytest.fixture
def screen_survey():
    survey = make_survey(
        title="Booth challenge",
        screen_enabled=True,
        screen_min_responses=4,
        rounds_per_participant=1,
    )
    make_topic(survey, title="Secret topic title")
    return survey


def answer(survey, *, guess: str, prefer: str = "human", comment: str = "", seconds: float = 30):
    participant = new_participant(survey)
    response = serve_next(participant)
    by_author = {post.author_label: post for post in response.displayed_posts}
    Response.objects.filter(pk=response.pk).update(
        served_at=timezone.now() - timedelta(seconds=seconds)
    )
    record_answer(
        participant=participant,
        response_id=response.pk,
        guessed_human_id=by_author[guess].pk,
        preferred_id=by_author[prefer].pk,
        comment=comment,
    )
    return participant


def screen_url(survey) -> str:
    return f"/s/{survey.slug}/screen/"


def test_screen_is_404_when_disabled(client):
    survey = make_survey(screen_enabled=False)

    assert client.get(screen_url(survey)).status_code == 404
    assert client.get("/s/no-such-survey/screen/").status_code == 404


def test_screen_shows_nothing_before_threshold(client, screen_survey):
    for _index in range(3):
        answer(screen_survey, guess="human")

    page = client.get(screen_url(screen_survey))

    html = page.content.decode()
    assert page.status_code == 200
    assert page.context["numbers"] is None
    assert "Results appear here after 4 answers." in html
    assert "spotted the human post" not in html
    assert "answers so far" not in html


def test_screen_shows_aggregates_after_threshold(client, screen_survey):
    for guess in ("human", "human", "human", "model-x"):
        answer(screen_survey, guess=guess, prefer="model-y")

    page = client.get(screen_url(screen_survey))

    html = page.content.decode()
    numbers = page.context["numbers"]
    assert numbers["detected_percent"] == 75
    assert numbers["answered"] == 4
    assert numbers["preferred_human_percent"] == 0
    assert '<p class="screen-number">75%</p>' in html
    assert "answers so far" in html


def test_screen_threshold_ignores_too_fast_answers(client, screen_survey):
    for _index in range(3):
        answer(screen_survey, guess="human")
    answer(screen_survey, guess="human", seconds=2)

    page = client.get(screen_url(screen_survey))

    assert page.context["numbers"] is None


def test_screen_never_shows_per_person_data(client, screen_survey):
    participants = [
        answer(screen_survey, guess="human", comment=f"private note {index}") for index in range(5)
    ]

    html = client.get(screen_url(screen_survey)).content.decode()

    assert "private note" not in html
    assert "Secret topic title" not in html
    for participant in participants:
        assert str(participant.public_id) not in html


def test_screen_qr_code_points_at_welcome_page(client, screen_survey):
    page = client.get(screen_url(screen_survey))

    html = page.content.decode()
    welcome = f"http://testserver/s/{screen_survey.slug}/?via=qr"
    assert page.context["welcome_url"] == welcome
    assert qr_svg(welcome) in html
    assert welcome in html


def test_screen_of_closed_survey_has_no_qr_code(client, screen_survey):
    screen_survey.is_open = False
    screen_survey.save()

    page = client.get(screen_url(screen_survey))

    assert page.status_code == 200
    assert page.context["qr"] is None
    assert "This survey is closed" in page.content.decode()


def test_screen_htmx_request_renders_fragment(client, screen_survey):
    for _index in range(4):
        answer(screen_survey, guess="human")

    page = client.get(screen_url(screen_survey), headers={"HX-Request": "true"})

    html = page.content.decode()
    assert "HX-Request" in page["Vary"]
    assert html.lstrip().startswith('<div id="live"')
    assert "<svg" not in html
    assert "100%" in html


def test_screen_works_without_login_or_session(client, screen_survey):
    for _index in range(4):
        answer(screen_survey, guess="model-x")

    page = client.get(screen_url(screen_survey))

    assert page.status_code == 200
    assert page.context["numbers"]["detected_percent"] == 0
    assert "sessionid" not in page.cookies
    assert Participant.objects.count() == 4


def test_screen_counts_unanswered_as_nothing(client, screen_survey):
    for _index in range(4):
        answer(screen_survey, guess="human")
    serve_next(new_participant(screen_survey))

    numbers = client.get(screen_url(screen_survey)).context["numbers"]

    assert numbers["answered"] == 4


def test_screen_has_no_inline_script_or_style(client, screen_survey):
    html = client.get(screen_url(screen_survey)).content.decode()

    assert " style=" not in html
    assert "<script>" not in html
