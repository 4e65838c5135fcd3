"""Playwright fixtures: one Debian Chromium for this package's tests, driven against live_server."""

from pathlib import Path

import pytest
from django.conf import settings

from survey.importing import import_posts
from survey.models import Survey
from tests.browser.chromium import launched_chromium

SAMPLE_POSTS = Path(settings.BASE_DIR) / "survey" / "sample" / "posts.jsonl"
ROUNDS = 3


# One Chromium serves every test of this package. The scope is the package, not
# the session, because a running sync Playwright blocks starting another one in
# the same thread, and browser tests outside this package start their own.
@pytest.fixture(scope="package")
def browser():
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def booth_survey(transactional_db):
    """The bundled sample survey (English and Korean topics), cut to three rounds."""
    import_posts(SAMPLE_POSTS, sample=True)
    survey = Survey.objects.get(is_default=True)
    survey.rounds_per_participant = ROUNDS
    survey.save(update_fields=["rounds_per_participant"])
    return survey


@pytest.fixture
def new_context(browser, live_server):
    """Open a browser context on the live server; every context is closed after the test."""
    contexts = []

    def open_context(*, viewport: dict, locale: str = "en-US", javascript: bool = True, **options):
        context = browser.new_context(
            base_url=live_server.url,
            viewport=viewport,
            locale=locale,
            java_script_enabled=javascript,
            **options,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
