"""The shared booth kiosk: side-by-side posts, keyboard use, and resets that hide everything."""

import re

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import BrowserContext, Page, expect

from survey.models import Participant, Response
from tests.browser.pages import (
    KIOSK,
    assert_accessible,
    check_screen,
    choose,
    round_number,
    screenshot,
    submit_round,
    tab_to,
)

pytestmark = pytest.mark.browser

SECRET_COMMENT = "kiosk-secret-7f3a"


def session_key(context: BrowserContext) -> str | None:
    for cookie in context.cookies():
        if cookie["name"] == "sessionid":
            return cookie["value"]
    return None


def assert_nothing_of_previous_person(page: Page, *, slug: str) -> None:
    """The page is the empty welcome screen: no score, comment, choice or way back in."""
    assert re.search(rf"/s/{slug}/$", page.url), page.url
    text = page.locator("body").inner_text()
    assert SECRET_COMMENT not in text
    expect(page.locator("#score-heading")).to_have_count(0)
    expect(page.locator("#round")).to_have_count(0)
    expect(page.locator(f"a[href='/s/{slug}/round/']")).to_have_count(0)
    expect(page.locator(f"a[href='/s/{slug}/finish/']")).to_have_count(0)
    expect(page.locator("#id_consent")).not_to_be_checked()


def assert_posts_side_by_side(page: Page) -> None:
    boxes = [page.locator(f"#post-{letter}").bounding_box() for letter in "ABC"]
    assert len({round(box["y"]) for box in boxes}) == 1
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    expect(page.get_by_role("tab")).to_have_count(0)


def assert_reset_left_nothing(
    page: Page, context: BrowserContext, *, slug: str, old_key: str
) -> None:
    assert_nothing_of_previous_person(page, slug=slug)
    new_key = session_key(context)
    assert new_key and new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()

    # Back walks through the previous person's pages, and each one now finds
    # an empty session and lands on the welcome screen.
    page.go_back()
    assert_nothing_of_previous_person(page, slug=slug)
    page.go_back()
    assert_nothing_of_previous_person(page, slug=slug)


def test_kiosk_korean_keyboard_only(booth_survey, new_context, live_server):
    context = new_context(viewport=KIOSK, locale="ko-KR")
    page = context.new_page()
    slug = booth_survey.slug

    page.goto("/kiosk/")
    page.wait_for_url(f"**/s/{slug}/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.locator(".qr-frame svg")).to_be_visible()
    expect(page.locator(".phone-link .url")).to_have_text(f"{live_server.url}/s/{slug}/?via=qr")
    check_screen(page, "kiosk-ko-js-01-welcome", phone=False)

    tab_to(page, "#id_consent")
    page.keyboard.press("Space")
    tab_to(page, ".consent-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/round/")
    assert_posts_side_by_side(page)
    check_screen(page, "kiosk-ko-js-02-round1", phone=False)

    for expected_round in (1, 2, 3):
        assert round_number(page) == expected_round
        tab_to(page, "input[name=guessed_human]")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#id_guessed_human_1")).to_be_checked()
        outline = page.locator("label[for=id_guessed_human_1]").evaluate(
            "(label) => getComputedStyle(label).outlineStyle"
        )
        assert outline == "solid", "the focused choice has no visible focus outline"
        tab_to(page, "input[name=preferred]")
        page.keyboard.press("Space")
        expect(page.locator("#id_preferred_0")).to_be_checked()
        if expected_round == 1:
            tab_to(page, "details.optional summary")
            page.keyboard.press("Enter")
            tab_to(page, "#id_comment")
            page.keyboard.type(SECRET_COMMENT)
            check_screen(page, "kiosk-ko-js-03-round1-answered", phone=False)
        tab_to(page, "#ballot button[type=submit]")
        page.keyboard.press("Enter")
        if expected_round < 3:
            expect(page.locator("#round progress")).to_have_attribute(
                "value", str(expected_round + 1)
            )
            expect(page.locator("#round-heading")).to_be_focused()

    page.wait_for_url("**/finish/")
    expect(page.locator("#score-heading")).to_contain_text("3번 중")
    check_screen(page, "kiosk-ko-js-04-finish", phone=False)
    participant = Participant.objects.get()
    assert participant.channel == "kiosk"
    assert participant.language == "ko"
    assert participant.responses.get(round_number=1).comment == SECRET_COMMENT
    old_key = session_key(context)

    tab_to(page, ".finish-actions button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/s/{slug}/")
    check_screen(page, "kiosk-ko-js-05-after-reset", phone=False)
    assert_reset_left_nothing(page, context, slug=slug, old_key=old_key)


def test_kiosk_english_without_javascript(booth_survey, new_context):
    context = new_context(viewport=KIOSK, javascript=False)
    page = context.new_page()
    slug = booth_survey.slug

    page.goto(f"/kiosk/{slug}/")
    page.wait_for_url(f"**/s/{slug}/")
    expect(page.locator(".qr-frame svg")).to_be_visible()
    # Nothing to hide yet, so the fresh welcome screen does not reload itself.
    expect(page.locator("meta[http-equiv=refresh]")).to_have_count(0)
    check_screen(page, "kiosk-en-nojs-01-welcome", phone=False, javascript=False)

    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**/round/")
    expect(page.locator("meta[http-equiv=refresh]")).to_have_attribute(
        "content", f"90;url=/kiosk/{slug}/"
    )
    assert_posts_side_by_side(page)

    for expected_round in (1, 2, 3):
        assert round_number(page) == expected_round
        choose(page, guessed=expected_round - 1, preferred=2)
        if expected_round == 1:
            page.get_by_text("Tell us more (optional)").click()
            page.get_by_label("Anything else? (optional)").fill(SECRET_COMMENT)
            check_screen(page, "kiosk-en-nojs-02-round1-answered", phone=False, javascript=False)
        submit_round(page, javascript=False)

    expect(page.locator("#score-heading")).to_contain_text("of 3")
    check_screen(page, "kiosk-en-nojs-03-finish", phone=False, javascript=False)
    assert Participant.objects.get().channel == "kiosk"
    old_key = session_key(context)

    page.get_by_role("button", name="Done: clear the screen for the next person").click()
    page.wait_for_url(f"**/s/{slug}/")
    assert_reset_left_nothing(page, context, slug=slug, old_key=old_key)


def test_kiosk_idle_countdown_resets(booth_survey, new_context, settings):
    settings.SURVEY_KIOSK_IDLE_SECONDS = 4
    context = new_context(viewport=KIOSK)
    page = context.new_page()
    slug = booth_survey.slug

    page.goto("/kiosk/")
    page.get_by_label("I have read the above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url("**/round/")
    choose(page, guessed=0, preferred=1)
    page.get_by_text("Tell us more (optional)").click()
    page.get_by_label("Anything else? (optional)").fill(SECRET_COMMENT)
    old_key = session_key(context)

    dialog = page.get_by_role("dialog", name="Are you still there?")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("button", name="I’m still here")).to_be_focused()
    assert_accessible(page)
    screenshot(page, "kiosk-en-js-idle-warning", full_page=False)

    # "I'm still here" keeps the page and its answers.
    page.get_by_role("button", name="I’m still here").click()
    expect(dialog).to_be_hidden()
    assert page.url.endswith("/round/")
    expect(page.locator("#id_preferred_1")).to_be_checked()
    expect(page.get_by_label("Anything else? (optional)")).to_have_value(SECRET_COMMENT)

    # Left alone, the countdown runs out and the kiosk starts over.
    expect(dialog).to_be_visible()
    page.wait_for_url(f"**/s/{slug}/")
    screenshot(page, "kiosk-en-js-idle-after-reset")
    assert_reset_left_nothing(page, context, slug=slug, old_key=old_key)
    served = Response.objects.get()
    assert not served.is_answered


def test_kiosk_idle_reset_without_javascript(booth_survey, new_context, settings):
    settings.SURVEY_KIOSK_IDLE_SECONDS = 2
    context = new_context(viewport=KIOSK, locale="ko-KR", javascript=False)
    page = context.new_page()
    slug = booth_survey.slug

    page.goto("/kiosk/")
    page.get_by_label("위 내용을 읽었고 참여에 동의해요.").check()
    page.get_by_role("button", name="시작하기").click()
    page.wait_for_url("**/round/")
    choose(page, guessed=0, preferred=1)
    old_key = session_key(context)

    # The <noscript> meta refresh sends the idle page to the kiosk reset.
    page.wait_for_url(f"**/s/{slug}/")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    assert_reset_left_nothing(page, context, slug=slug, old_key=old_key)
