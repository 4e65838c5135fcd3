import pytest
from django.template.loader import get_template
from django.test import Client
from django.urls import reverse
from django.utils import translation

from survey.models import Participant
from tests.factories import make_survey


@pytest.fixture(autouse=True)
def default_language_afterwards():
    """Deactivate the language that the last request activated in this thread.

    LocaleMiddleware leaves a Korean request's language active in the test
    thread, where later tests that run code outside a request expect English.
    """
    yield
    translation.deactivate()


@pytest.fixture
def survey(db):
    return make_survey(slug="booth", is_default=True)


@pytest.fixture
def csrf_client(settings):
    settings.CSRF_FAILURE_VIEW = "survey.error_views.csrf_failure"
    return Client(enforce_csrf_checks=True)


def test_csrf_failure_without_cookie_explains_cookies(csrf_client, survey):
    page = csrf_client.post(f"/s/{survey.slug}/?via=qr", {"consent": "on"})

    text = page.content.decode()
    assert page.status_code == 403
    assert "no-store" in page["Cache-Control"]
    assert '<h1 id="csrf-heading">' in text
    assert "Please allow cookies to take part" in text
    assert "참여하려면 쿠키를 허용해 주세요" in text
    assert text.index("Please allow cookies") < text.index("참여하려면")
    assert f'href="/s/{survey.slug}/?via=qr"' in text
    assert "language-switcher" not in text
    assert "CSRF verification failed" not in text
    assert Participant.objects.count() == 0


def test_csrf_failure_in_korean_puts_korean_first(csrf_client, survey):
    page = csrf_client.post(f"/s/{survey.slug}/", {"consent": "on"}, HTTP_ACCEPT_LANGUAGE="ko")

    text = page.content.decode()
    assert '<html lang="ko">' in text
    assert text.index("참여하려면") < text.index("Please allow cookies")
    assert "다시 시도하기" in text


def test_csrf_failure_with_stale_token_says_page_expired(csrf_client, survey):
    csrf_client.get(f"/s/{survey.slug}/")

    page = csrf_client.post(
        f"/s/{survey.slug}/round/", {"response": "1", "csrfmiddlewaretoken": "x" * 64}
    )

    assert page.status_code == 403
    assert b"This page was out of date" in page.content
    assert f'href="/s/{survey.slug}/"'.encode() in page.content


def test_csrf_failure_on_kiosk_reset_links_to_kiosk(csrf_client, survey):
    page = csrf_client.post(reverse("kiosk:start", args=[survey.slug]))

    assert page.status_code == 403
    assert f'href="/kiosk/{survey.slug}/"'.encode() in page.content


def test_csrf_failure_elsewhere_links_to_start(csrf_client, survey):
    page = csrf_client.post("/i18n/setlang/", {"language": "ko"})

    assert page.status_code == 403
    assert b'href="/"' in page.content


def test_server_error_page_renders_without_context():
    html = get_template("500.html").render()

    assert "Something went wrong on our side" in html
    assert "서버에 문제가 생겼어요" in html
    assert 'href="/static/css/survey.css"' in html


def test_not_found_page_follows_browser_language(client, survey):
    page = client.get("/s/missing/", HTTP_ACCEPT_LANGUAGE="ko")

    assert page.status_code == 404
    assert "페이지를 찾을 수 없어요" in page.content.decode()
