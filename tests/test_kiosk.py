import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import translation

from survey.kiosk import idle_seconds
from survey.models import Participant, Response
from survey.participants import KIOSK_SESSION_KEY, SESSION_KEY
from survey.qr import qr_svg
from tests.factories import make_survey, make_topic


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
    survey = make_survey(slug="booth", is_default=True, rounds_per_participant=3)
    for index in range(4):
        make_topic(survey, title=f"Topic {index}")
    return survey


def start_kiosk(client, survey):
    return client.get(reverse("kiosk:start", args=[survey.slug]))


def consent(client, survey):
    return client.post(reverse("survey:welcome", args=[survey.slug]), {"consent": "on"})


def answer_all_rounds(client, survey, *, comment=""):
    url = reverse("survey:round", args=[survey.slug])
    while True:
        page = client.get(url)
        if page.status_code != 200:
            return
        served = page.context["served"]
        post_ids = [post.pk for post in served.displayed_posts]
        client.post(
            url,
            {
                "response": served.pk,
                "guessed_human": post_ids[0],
                "preferred": post_ids[1],
                "comment": comment,
            },
        )


def test_kiosk_root_redirects_to_default_survey(client, survey):
    page = client.get("/kiosk/")

    assert page.status_code == 302
    assert page["Location"] == reverse("kiosk:start", args=[survey.slug])


def test_kiosk_root_without_default_survey_says_so(client, db):
    make_survey(slug="other", is_default=False)

    page = client.get("/kiosk/")

    assert page.status_code == 404
    assert b"No survey is open" in page.content


def test_kiosk_closed_survey_not_found(client, survey):
    survey.is_open = False
    survey.save()

    assert start_kiosk(client, survey).status_code == 404


def test_kiosk_start_marks_session_and_redirects(client, survey):
    page = start_kiosk(client, survey)

    assert page.status_code == 303
    assert page["Location"] == reverse("survey:welcome", args=[survey.slug])
    assert client.session[KIOSK_SESSION_KEY] is True
    assert "no-store" in page["Cache-Control"]


def test_kiosk_participant_gets_kiosk_channel(client, survey):
    start_kiosk(client, survey)

    consent(client, survey)

    assert Participant.objects.get().channel == "kiosk"


def test_kiosk_reset_flushes_previous_session(client, survey):
    start_kiosk(client, survey)
    consent(client, survey)
    answer_all_rounds(client, survey, comment="private words")
    old_key = client.session.session_key
    old_csrf = client.cookies["csrftoken"].value

    page = client.post(reverse("kiosk:start", args=[survey.slug]))

    assert page.status_code == 303
    assert page["Location"] == reverse("survey:welcome", args=[survey.slug])
    assert client.session.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert client.session[KIOSK_SESSION_KEY] is True
    assert SESSION_KEY not in client.session
    assert client.cookies["csrftoken"].value != old_csrf


def test_kiosk_reset_hides_previous_pages(client, survey):
    start_kiosk(client, survey)
    consent(client, survey)
    answer_all_rounds(client, survey, comment="private words")
    assert client.get(reverse("survey:finish", args=[survey.slug])).status_code == 200

    client.post(reverse("kiosk:start", args=[survey.slug]))
    welcome = reverse("survey:welcome", args=[survey.slug])

    for name in ("survey:finish", "survey:round"):
        page = client.get(reverse(name, args=[survey.slug]))
        assert page.status_code == 302
        assert page["Location"] == welcome
    page = client.get(welcome)
    assert b"private words" not in page.content
    assert b"See your score again" not in page.content
    assert b"Continue where you left off" not in page.content
    assert Response.objects.answered().count() == 3


def test_kiosk_reset_by_get_for_meta_refresh(client, survey):
    start_kiosk(client, survey)
    consent(client, survey)
    old_key = client.session.session_key

    page = start_kiosk(client, survey)

    assert page.status_code == 303
    assert client.session.session_key != old_key
    assert SESSION_KEY not in client.session


def test_kiosk_start_rejects_other_methods(client, survey):
    assert client.put(reverse("kiosk:start", args=[survey.slug])).status_code == 405


def test_kiosk_reset_forgets_language_choice(client, survey):
    client.post("/i18n/setlang/", {"language": "ko", "next": "/"})
    assert client.cookies["django_language"].value == "ko"

    page = start_kiosk(client, survey)

    assert page.cookies["django_language"].value == ""
    assert page.cookies["django_language"]["max-age"] == 0
    welcome = client.get(page["Location"])
    assert welcome.context["LANGUAGE_CODE"] == "en"


def test_kiosk_welcome_shows_qr_code_for_phone(client, survey):
    start_kiosk(client, survey)

    page = client.get(reverse("survey:welcome", args=[survey.slug]))

    phone_url = f"http://testserver/s/{survey.slug}/?via=qr"
    assert page.context["kiosk"].phone_url == phone_url
    text = page.content.decode()
    assert qr_svg(phone_url) in text
    assert phone_url in text
    assert "js/kiosk.js" in text


def test_kiosk_idle_reset_without_javascript(client, survey, settings):
    settings.SURVEY_KIOSK_IDLE_SECONDS = 45
    start_kiosk(client, survey)
    refresh = (
        f'<noscript><meta http-equiv="refresh" content="45;url=/kiosk/{survey.slug}/"></noscript>'
    )

    welcome = client.get(reverse("survey:welcome", args=[survey.slug]))
    consent(client, survey)
    round_page = client.get(reverse("survey:round", args=[survey.slug]))

    # A fresh welcome screen has nothing to hide, so it does not reload itself.
    assert refresh not in welcome.content.decode()
    assert refresh in round_page.content.decode()
    assert 'data-idle-seconds="45"' in round_page.content.decode()


def test_kiosk_forms_disable_autofill(client, survey):
    start_kiosk(client, survey)
    welcome = client.get(reverse("survey:welcome", args=[survey.slug])).content.decode()
    consent(client, survey)
    round_page = client.get(reverse("survey:round", args=[survey.slug])).content.decode()

    assert 'class="consent-form" autocomplete="off"' in welcome
    assert 'autocomplete="off" novalidate' in round_page
    assert 'rows="3" maxlength="500" autocomplete="off"' in round_page


def test_kiosk_finish_button_resets(client, survey):
    start_kiosk(client, survey)
    consent(client, survey)
    answer_all_rounds(client, survey)

    page = client.get(reverse("survey:finish", args=[survey.slug]))

    assert f'action="/kiosk/{survey.slug}/"' in page.content.decode()
    assert b"Done: clear the screen for the next person" in page.content


def test_phone_pages_have_no_kiosk_parts(client, survey):
    welcome = client.get(reverse("survey:welcome", args=[survey.slug]))
    consent(client, survey)
    answer_all_rounds(client, survey)
    finish = client.get(reverse("survey:finish", args=[survey.slug]))

    for page in (welcome, finish):
        assert page.context["kiosk"] is None
        text = page.content.decode()
        assert "js/kiosk.js" not in text
        assert "http-equiv" not in text
        assert 'class="qr"' not in text
    assert f'action="/s/{survey.slug}/restart/"' in finish.content.decode()


def test_idle_seconds_defaults_to_90(settings):
    del settings.SURVEY_KIOSK_IDLE_SECONDS

    assert idle_seconds() == 90


@pytest.mark.parametrize("value", [0, -5, "90", 1.5, True, None])
def test_idle_seconds_rejects_invalid_setting(settings, value):
    settings.SURVEY_KIOSK_IDLE_SECONDS = value

    with pytest.raises(ImproperlyConfigured, match="SURVEY_KIOSK_IDLE_SECONDS"):
        idle_seconds()
