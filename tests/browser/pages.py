"""Checks and steps shared by the browser tests: screenshots, axe, phone layout, rounds."""

import json
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from playwright.sync_api import Page, expect

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
PHONE = {"width": 375, "height": 667}
NARROW_PHONE = {"width": 320, "height": 568}
KIOSK = {"width": 1280, "height": 800}
BLOCKING_IMPACTS = frozenset({"serious", "critical"})
MIN_FORM_FONT_PX = 16
MIN_TARGET_PX = 44

_axe = Axe()

# Visible form controls and the text that labels them, with their computed font size.
_FORM_TEXT_SIZES = """
() => Array.from(document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button, label, legend, summary"
  ))
  .filter((element) => element.getClientRects().length > 0)
  .map((element) => ({
    element: element.outerHTML.slice(0, 80),
    size: parseFloat(getComputedStyle(element).fontSize),
  }))
"""

# Visible tap targets: choice labels, buttons, links styled as buttons, disclosure summaries.
_TARGET_HEIGHTS = """
() => Array.from(document.querySelectorAll(".option, .check, button, .button, summary"))
  .filter((element) => element.getClientRects().length > 0)
  .map((element) => ({
    element: element.outerHTML.slice(0, 80),
    height: element.getBoundingClientRect().height,
  }))
"""


# A full-page capture lays the whole page out in one tall viewport, where
# sticky bars would sit over the middle of the page, so they are unstuck for
# the capture. The CSP forbids injected <style> elements but not CSSOM writes.
_UNSTICK = """
(restore) => document.querySelectorAll(".submit-bar, .post-tabs").forEach((element) => {
  element.style.position = restore ? "" : "static";
})
"""


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a capture of the page, or of the viewport alone, to test-artifacts/screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:
        page.evaluate(_UNSTICK, False)
        page.screenshot(path=str(path), full_page=True)
        page.evaluate(_UNSTICK, True)
    else:
        page.screenshot(path=str(path))
    return path


def _audit_copy(page: Page) -> dict:
    """Run axe on a copy of a page whose JavaScript is off.

    axe waits on timers, and timers never fire where JavaScript is off, so the
    copy gets the same HTML and CSS in a JavaScript-enabled page that loads none
    of the page's own scripts.
    """
    html = page.content()
    url = page.url
    context = page.context.browser.new_context(viewport=page.viewport_size)
    try:
        copy = context.new_page()

        def serve(route):
            if route.request.url == url:
                route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)
            elif route.request.resource_type == "script":
                route.abort()
            else:
                route.continue_()

        copy.route("**/*", serve)
        copy.goto(url)
        return _axe.run(copy).response
    finally:
        context.close()


def assert_accessible(page: Page, *, javascript: bool = True) -> None:
    """Fail on any serious or critical axe-core violation on the current page."""
    results = _axe.run(page).response if javascript else _audit_copy(page)
    blocking = [
        violation for violation in results["violations"] if violation["impact"] in BLOCKING_IMPACTS
    ]
    summary = [
        {
            "rule": violation["id"],
            "impact": violation["impact"],
            "nodes": [node["html"][:120] for node in violation["nodes"][:3]],
        }
        for violation in blocking
    ]
    assert not blocking, f"axe violations on {page.url}:\n{json.dumps(summary, indent=2)}"


def assert_fits_phone(page: Page) -> None:
    """Fail on horizontal scrolling, form text under 16px or tap targets under 44px."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"

    small_text = [
        item for item in page.evaluate(_FORM_TEXT_SIZES) if item["size"] < MIN_FORM_FONT_PX
    ]
    assert not small_text, f"form text under {MIN_FORM_FONT_PX}px on {page.url}: {small_text}"

    small_targets = [
        item for item in page.evaluate(_TARGET_HEIGHTS) if item["height"] < MIN_TARGET_PX
    ]
    assert not small_targets, f"tap targets under {MIN_TARGET_PX}px on {page.url}: {small_targets}"


def check_screen(page: Page, name: str, *, phone: bool, javascript: bool = True) -> None:
    """Run the checks that every attendee screen gets, then save its screenshot."""
    assert_accessible(page, javascript=javascript)
    if phone:
        assert_fits_phone(page)
    screenshot(page, name)


def round_number(page: Page) -> int:
    return int(page.locator("#round progress").get_attribute("value"))


def choose(page: Page, *, guessed: int, preferred: int) -> None:
    """Tick the guessed-human and preferred posts by their position (0 = A)."""
    page.locator("input[name=guessed_human]").nth(guessed).check()
    page.locator("input[name=preferred]").nth(preferred).check()


def submit_round(page: Page, *, javascript: bool) -> None:
    """Press the submit button and wait for the next round or the finish page."""
    current = round_number(page)
    total = int(page.locator("#round progress").get_attribute("max"))
    page.locator("#ballot button[type=submit]").click()
    if current == total:
        page.wait_for_url("**/finish/")
    elif javascript:
        expect(page.locator("#round progress")).to_have_attribute("value", str(current + 1))
    else:
        page.wait_for_url("**/round/")
        expect(page.locator("#round progress")).to_have_attribute("value", str(current + 1))


def tab_to(page: Page, selector: str, *, max_presses: int = 60) -> None:
    """Press Tab until the focused element matches ``selector``."""
    for _press in range(max_presses):
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector} on {page.url}")
