"""The results page and the booth screen in Debian's Chromium at 1920×1080, with screenshots."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from survey.assignment import serve_next
from survey.models import Response
from survey.responses import record_answer
from tests.browser.chromium import launched_chromium
from tests.factories import make_survey, make_topic
from tests.test_stats import new_participant

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
FULL_HD = {"width": 1920, "height": 1080}
MODELS = ("model-x", "model-y", "model-z")
PASSWORD = "organizer-password-for-tests"


@pytest.fixture(scope="module")
def chromium():
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def open_page(chromium, live_server):
    """Open a 1920×1080 page on the live server that collects console errors (CSP violations
    among them), script errors and failed responses in ``page.problems``."""
    contexts = []

    def open_new(*, javascript: bool = True):
        context = chromium.new_context(
            base_url=live_server.url, viewport=FULL_HD, java_script_enabled=javascript
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.problems = []
        page.on(
            "console",
            lambda message: (
                page.problems.append(message.text)
                if message.type == "error" and "Failed to load resource" not in message.text
                else None
            ),
        )
        page.on("pageerror", lambda error: page.problems.append(str(error)))
        # Chromium requests /favicon.ico on its own, and the app has none.
        page.on(
            "response",
            lambda response: (
                page.problems.append(f"{response.status} {response.url}")
                if response.status >= 400 and not response.url.endswith("/favicon.ico")
                else None
            ),
        )
        return page

    yield open_new
    for context in contexts:
        context.close()


@pytest.fixture
def booth_survey(transactional_db):
    """Sixty participants over four topics and three models, answering across half an hour."""
    survey = make_survey(
        title="Human or AI? PyCon booth",
        slug="pycon-booth",
        rounds_per_participant=3,
        is_default=True,
        screen_enabled=True,
        screen_min_responses=20,
    )
    for title in ("Learning Rust after Python", "My first conference talk", "Sourdough", "Trains"):
        make_topic(survey, title=title, models=MODELS)
    now = timezone.now()
    for index in range(60):
        participant = new_participant(survey, channel=("kiosk", "phone", "phone", "web")[index % 4])
        for round_index in range(3):
            response = serve_next(participant)
            if index % 11 == 10 and round_index == 2:
                break
            by_author = {post.author_label: post for post in response.displayed_posts}
            models_shown = sorted(author for author in by_author if author != "human")
            guess = "human" if (index + round_index) % 5 < 2 else models_shown[index % 2]
            prefer = ("human", *models_shown)[(index * 3 + round_index) % 3]
            record_answer(
                participant=participant,
                response_id=response.pk,
                guessed_human_id=by_author[guess].pk,
                preferred_id=by_author[prefer].pk,
            )
            answered = now - timedelta(minutes=30) + timedelta(seconds=index * 28 + round_index * 9)
            seconds = 4 if index % 17 == 0 else 15 + (index * 7) % 60
            Response.objects.filter(pk=response.pk).update(
                answered_at=answered, served_at=answered - timedelta(seconds=seconds)
            )
        serve_next(participant)
    get_user_model().objects.create_user("organizer", password=PASSWORD, is_staff=True)
    return survey


def save_screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page) -> None:
    page.goto("/results/")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/results/"))
    page.fill("#id_username", "organizer")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/results/$"))
    # The URL changes before the deferred results.js runs; a test that changes
    # the survey picker earlier finds no listener to submit the form.
    page.wait_for_load_state("load")


def test_results_page_at_full_hd(open_page, booth_survey):
    page = open_page()

    log_in(page)

    expect(page.locator("h1")).to_have_text("Human or AI? PyCon booth")
    expect(page.locator(".kpi-value").first).to_have_text("60")
    assert page.locator("#live svg.chart").count() >= 9
    with page.expect_response(
        lambda response: (
            "/results/" in response.url and response.request.headers.get("hx-request") == "true"
        )
    ) as polled:
        pass
    assert polled.value.status == 200
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("h1")).to_have_text("Human or AI? PyCon booth")
    save_screenshot(page, "results-1920x1080")
    assert page.problems == []


def test_results_page_without_javascript(open_page, booth_survey):
    page = open_page(javascript=False)

    log_in(page)

    expect(page.locator("#live-status")).to_have_text("Reload the page to update")
    assert page.locator("#live svg.chart").count() >= 9
    page.select_option("#survey-picker", booth_survey.slug)
    page.check("#include-too-fast")
    page.click(".survey-picker button[type=submit]")
    expect(page).to_have_url(re.compile(r"too_fast=1"))


def test_results_survey_picker_switches_survey(open_page, booth_survey):
    other = make_survey(title="Second booth day", slug="day-two")
    make_topic(other)
    page = open_page()
    log_in(page)

    page.select_option("#survey-picker", other.slug)

    expect(page).to_have_url(re.compile(r"survey=day-two"))
    expect(page.locator("h1")).to_have_text("Second booth day")
    assert page.problems == []


def test_booth_screen_at_full_hd(open_page, booth_survey):
    page = open_page()

    page.goto(f"/s/{booth_survey.slug}/screen/")

    expect(page.locator(".screen-number").first).to_have_text(re.compile(r"^\d+%$"))
    expect(page.locator(".screen-qr svg")).to_be_visible()
    box = page.locator(".screen-qr svg").bounding_box()
    assert box["width"] >= 400
    assert box["y"] + box["height"] <= FULL_HD["height"]
    page_height = page.evaluate("document.documentElement.scrollHeight")
    assert page_height <= FULL_HD["height"]
    with page.expect_response(
        lambda response: (
            "/screen/" in response.url and response.request.headers.get("hx-request") == "true"
        ),
        timeout=15_000,
    ):
        pass
    save_screenshot(page, "screen-1920x1080")
    assert page.problems == []


def test_booth_screen_without_javascript(open_page, booth_survey):
    page = open_page(javascript=False)

    page.goto(f"/s/{booth_survey.slug}/screen/")

    expect(page.locator(".screen-number").first).to_have_text(re.compile(r"^\d+%$"))
    expect(page.locator(".screen-url")).to_contain_text("/s/pycon-booth/?via=qr")


def test_booth_screen_before_threshold(open_page, transactional_db):
    survey = make_survey(title="Quiet morning", screen_enabled=True, screen_min_responses=20)
    make_topic(survey)
    page = open_page()

    page.goto(f"/s/{survey.slug}/screen/")

    expect(page.locator(".screen-waiting")).to_have_text("Results appear here after 20 answers.")
    assert page.locator(".screen-number").count() == 0
    save_screenshot(page, "screen-waiting-1920x1080")
