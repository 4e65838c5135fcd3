"""Playwright fixtures: one Debian Chromium per test session, driven against live_server."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright

from survey.importing import import_posts
from survey.models import Survey

# Playwright's sync API runs an asyncio event loop in this thread, so Django's
# guard against database queries from async code would trip in the test body.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SAMPLE_POSTS = Path(settings.BASE_DIR) / "survey" / "sample" / "posts.jsonl"
ROUNDS = 3


# One Chromium serves every test of this package. The scope is the package, not
# the session, because a running sync Playwright blocks starting another one in
# the same thread, and browser tests outside this package start their own.
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (make browser).")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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
