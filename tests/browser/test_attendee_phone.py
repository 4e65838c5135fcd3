"""An attendee on their own phone: English with JavaScript, Korean without, and failures."""

import re

import pytest
from playwright.sync_api import Page, expect

from survey.models import Participant, Response
from tests.browser.pages import (
    NARROW_PHONE,
    PHONE,
    assert_accessible,
    assert_fits_phone,
    check_screen,
    choose,
    round_number,
    screenshot,
    submit_round,
)

pytestmark = pytest.mark.browser

PHONE_OPTIONS = {
    "viewport": PHONE,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36"
    ),
}


def swipe_left(page: Page, *, y: float) -> None:
    """Swipe a finger from right to left across the page with real touch input."""
    session = page.context.new_cdp_session(page)
    width = page.viewport_size["width"]
    for kind, x in (("touchStart", width - 40), ("touchMove", width / 2), ("touchMove", 40)):
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    session.detach()


def visible_post_letters(page: Page) -> list[str]:
    return page.locator(".posts > .post:visible").evaluate_all(
        "(posts) => posts.map((post) => post.dataset.letter)"
    )


def test_phone_english_with_javascript(booth_survey, new_context):
    page = new_context(**PHONE_OPTIONS).new_page()

    page.goto(f"/s/{booth_survey.slug}/?via=qr")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="What we record")).to_be_visible()
    check_screen(page, "phone-en-js-01-welcome", phone=True)

    page.get_by_role("button", name="Start").click()
    expect(page.locator("#consent-error")).to_have_text(
        "Please tick the box to agree before you start."
    )
    expect(page.locator("#id_consent")).to_be_focused()
    check_screen(page, "phone-en-js-02-consent-missing", phone=True)

    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**/round/")

    # The posts become tabs: one post on screen at a time, A first.
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(3)
    expect(page.get_by_role("tab", name=re.compile("^Post A"))).to_have_attribute(
        "aria-selected", "true"
    )
    assert visible_post_letters(page) == ["A"]
    expect(page.locator(".read-progress")).to_have_text("Opened 1 of 3 posts")
    check_screen(page, "phone-en-js-03-round1-post-a", phone=True)

    page.get_by_role("tab", name=re.compile("^Post B")).click()
    assert visible_post_letters(page) == ["B"]
    expect(page.locator(".read-progress")).to_have_text("Opened 2 of 3 posts")
    tab_box = page.locator(".post-tabs").bounding_box()
    swipe_left(page, y=tab_box["y"] + tab_box["height"] + 120)
    assert visible_post_letters(page) == ["C"]
    expect(page.locator(".read-progress")).to_have_text(
        "You have read all three posts. Now answer the questions below."
    )
    expect(page.get_by_role("tab", name="Post A (opened)")).to_be_visible()
    check_screen(page, "phone-en-js-04-round1-post-c-all-read", phone=True)

    # A ballot without choices comes back with the errors, focus on the first one.
    page.get_by_role("button", name="Go to the questions").click()
    expect(page.locator("#id_guessed_human_0")).to_be_focused()
    page.locator("#ballot button[type=submit]").click()
    expect(page.locator(".field-error").first).to_have_text(
        "Pick the post you think a person wrote."
    )
    expect(page.locator("#id_guessed_human_0")).to_be_focused()
    assert round_number(page) == 1
    check_screen(page, "phone-en-js-05-round1-missing-choice", phone=True)

    # While the form is on screen, the submit button stays inside the viewport.
    page.locator("#ballot legend").first.scroll_into_view_if_needed()
    submit_box = page.locator("#ballot button[type=submit]").bounding_box()
    assert submit_box["y"] >= 0
    assert submit_box["y"] + submit_box["height"] <= PHONE["height"]
    screenshot(page, "phone-en-js-05b-round1-submit-bar", full_page=False)

    choose(page, guessed=0, preferred=1)
    submit_round(page, javascript=True)
    expect(page.locator("#round-heading")).to_be_focused()
    assert visible_post_letters(page) == ["A"]
    expect(page.locator(".read-progress")).to_have_text("Opened 1 of 3 posts")
    check_screen(page, "phone-en-js-06-round2", phone=True)

    page.set_viewport_size(NARROW_PHONE)
    assert_fits_phone(page)
    screenshot(page, "phone-en-js-07-round2-320px")
    page.set_viewport_size(PHONE)

    choose(page, guessed=1, preferred=1)
    submit_round(page, javascript=True)
    check_screen(page, "phone-en-js-08-round3", phone=True)
    choose(page, guessed=2, preferred=0)
    submit_round(page, javascript=True)

    expect(page.locator("h1")).to_contain_text(re.compile(r"You spotted the human in \d of 3"))
    check_screen(page, "phone-en-js-09-finish", phone=True)
    participant = Participant.objects.get()
    assert participant.channel == "phone"
    assert participant.language == "en"
    assert participant.finished_at is not None
    assert Response.objects.answered().count() == 3


def test_phone_korean_without_javascript(booth_survey, new_context):
    page = new_context(**PHONE_OPTIONS, locale="ko-KR", javascript=False).new_page()

    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", name="기록하는 내용")).to_be_visible()
    check_screen(page, "phone-ko-nojs-01-welcome", phone=True, javascript=False)

    page.get_by_label("위 내용을 읽었고 참여에 동의해요.").check()
    page.get_by_role("button", name="시작하기").click()
    page.wait_for_url("**/round/")

    # Without JavaScript the three posts stay stacked on the page, all readable.
    expect(page.get_by_role("tab")).to_have_count(0)
    assert visible_post_letters(page) == ["A", "B", "C"]
    expect(page.locator("#round-heading")).to_have_attribute("lang", "ko")
    check_screen(page, "phone-ko-nojs-02-round1", phone=True, javascript=False)

    page.locator("input[name=preferred]").nth(2).check()
    page.locator("#ballot button[type=submit]").click()
    expect(page.locator(".field-error").first).to_have_text(
        "사람이 썼다고 생각하는 글을 골라 주세요."
    )
    expect(page.locator("#id_guessed_human_0")).to_be_focused()
    expect(page.locator("input[name=preferred]").nth(2)).to_be_checked()
    check_screen(page, "phone-ko-nojs-03-round1-missing-choice", phone=True, javascript=False)

    for expected_round in (1, 2, 3):
        assert round_number(page) == expected_round
        choose(page, guessed=expected_round - 1, preferred=0)
        if expected_round == 2:
            check_screen(page, "phone-ko-nojs-04-round2", phone=True, javascript=False)
        submit_round(page, javascript=False)

    expect(page.locator("h1")).to_contain_text("3번 중")
    check_screen(page, "phone-ko-nojs-05-finish", phone=True, javascript=False)
    participant = Participant.objects.get()
    assert participant.language == "ko"
    assert participant.channel == "phone"
    assert set(participant.responses.values_list("topic__language", flat=True)) == {"ko"}

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_contain_text("You spotted the human in")


def test_phone_failures_keep_choices_and_retry(booth_survey, new_context):
    context = new_context(**PHONE_OPTIONS, locale="ko-KR")
    page = context.new_page()
    page.goto("/")
    page.get_by_label("위 내용을 읽었고 참여에 동의해요.").check()
    page.get_by_role("button", name="시작하기").click()
    page.wait_for_url("**/round/")
    status = page.locator("#ballot .submit-status")
    messages = page.locator("#status")

    # Network down: the message reports it in Korean, the choices stay, a retry works.
    choose(page, guessed=0, preferred=2)
    context.set_offline(True)
    page.locator("#ballot button[type=submit]").click()
    expect(status).to_be_visible()
    expect(status).to_have_text(messages.get_attribute("data-message-offline"))
    assert re.search("[가-힣]", status.inner_text())
    expect(page.locator("input[name=preferred]").nth(2)).to_be_checked()
    assert_accessible(page)
    screenshot(page, "phone-ko-js-01-offline", full_page=False)
    context.set_offline(False)
    submit_round(page, javascript=True)
    expect(status).to_be_hidden()

    # A server error: same form, same choices, a retry works.
    page.route("**/round/", lambda route: route.fulfill(status=500, body="boom"))
    choose(page, guessed=1, preferred=1)
    page.locator("#ballot button[type=submit]").click()
    expect(status).to_have_text(messages.get_attribute("data-message-server"))
    expect(page.locator("input[name=guessed_human]").nth(1)).to_be_checked()
    screenshot(page, "phone-ko-js-02-server-error", full_page=False)
    page.unroute("**/round/")
    submit_round(page, javascript=True)

    # A timeout after the server recorded the answer: the retry is counted once.
    held_routes = []

    def record_then_hold(route):
        route.fetch()
        held_routes.append(route)

    page.evaluate("htmx.config.timeout = 1000")
    page.route("**/round/", record_then_hold)
    choose(page, guessed=2, preferred=2)
    page.locator("#ballot button[type=submit]").click()
    expect(status).to_have_text(messages.get_attribute("data-message-timeout"))
    expect(page.locator("#ballot button[type=submit]")).to_be_enabled()
    assert Response.objects.answered().count() == 3
    page.unroute("**/round/")
    page.locator("#ballot button[type=submit]").click()
    page.wait_for_url("**/finish/")

    assert len(held_routes) == 1
    participant = Participant.objects.get()
    assert participant.responses.count() == 3
    assert participant.responses.answered().count() == 3
    third = participant.responses.get(round_number=3)
    assert third.guessed_human_id == third.post_c_id


def test_phone_expired_session_shows_message(booth_survey, new_context):
    context = new_context(**PHONE_OPTIONS)
    page = context.new_page()
    page.goto("/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**/round/")
    choose(page, guessed=0, preferred=0)

    context.clear_cookies()
    page.locator("#ballot button[type=submit]").click()

    status = page.locator("#ballot .submit-status")
    expect(status).to_have_text(re.compile("^Your answer could not be accepted"))
    expect(page.locator("input[name=guessed_human]").first).to_be_checked()
    assert Response.objects.answered().count() == 0
    screenshot(page, "phone-en-js-10-expired-session", full_page=False)


@pytest.mark.parametrize(
    ("locale", "heading", "retry"),
    [
        ("en-US", "Please allow cookies to take part", "Try again"),
        ("ko-KR", "참여하려면 쿠키를 허용해 주세요", "다시 시도하기"),
    ],
)
def test_blocked_cookies_get_friendly_page(
    booth_survey, new_context, settings, locale, heading, retry
):
    settings.CSRF_FAILURE_VIEW = "survey.error_views.csrf_failure"
    context = new_context(**PHONE_OPTIONS, locale=locale, javascript=False)
    page = context.new_page()
    page.goto(f"/s/{booth_survey.slug}/?via=qr")
    context.clear_cookies()

    page.locator("#id_consent").check()
    page.locator(".consent-form button[type=submit]").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    # The page also explains itself in the other language, since switching
    # languages needs cookies.
    expect(page.get_by_role("heading", level=2)).to_have_count(1)
    check_screen(page, f"phone-{locale[:2]}-nojs-cookies-blocked", phone=True, javascript=False)
    assert Participant.objects.count() == 0

    page.get_by_role("link", name=retry).click()
    assert page.url.endswith(f"/s/{booth_survey.slug}/?via=qr")


def test_error_page_in_korean(booth_survey, new_context):
    page = new_context(**PHONE_OPTIONS, locale="ko-KR").new_page()

    response = page.goto("/s/no-such-survey/")

    assert response.status == 404
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("heading", level=1)).to_have_text("페이지를 찾을 수 없어요")
    check_screen(page, "phone-ko-js-404", phone=True)
