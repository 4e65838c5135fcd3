"""Page weight: HTML, CSS and JavaScript of an attendee page, gzip-compressed, under 60 KB.

Run with ``-s`` to print the table that docs/benchmarks.md records.
"""

import gzip

import pytest
from playwright.sync_api import Page

from tests.browser.pages import KIOSK, PHONE

pytestmark = pytest.mark.browser

BUDGET_BYTES = 60 * 1024
# whitenoise stores static files gzip-compressed at level 9, so the HTML is
# compressed at the same level here.
GZIP_LEVEL = 9


def weigh(page: Page) -> list[dict]:
    """Fetch the current document and every stylesheet and script it loads, then weigh them."""
    urls = [page.url] + page.evaluate(
        """() => [
            ...document.querySelectorAll("link[rel=stylesheet][href], script[src], img[src]"),
        ].map((element) => element.href || element.src)"""
    )
    rows = []
    for url in urls:
        response = page.context.request.get(url)
        assert response.ok, f"{url} returned {response.status}"
        body = response.body()
        rows.append(
            {
                "url": url.removeprefix(page.url.split("/s/")[0]),
                "bytes": len(body),
                "gzip": len(gzip.compress(body, compresslevel=GZIP_LEVEL)),
            }
        )
    return rows


def report(name: str, rows: list[dict]) -> int:
    total = sum(row["gzip"] for row in rows)
    print(f"\n{name}")
    for row in rows:
        print(f"  {row['url']:<48} {row['bytes']:>7} B  gzip {row['gzip']:>6} B")
    print(f"  {'total':<48} {sum(row['bytes'] for row in rows):>7} B  gzip {total:>6} B")
    return total


def test_attendee_pages_under_budget(booth_survey, new_context):
    phone = new_context(viewport=PHONE).new_page()
    phone.goto(f"/s/{booth_survey.slug}/")
    welcome = report("phone welcome", weigh(phone))
    phone.locator("#id_consent").check()
    phone.locator(".consent-form button[type=submit]").click()
    phone.wait_for_url("**/round/")
    round_page = report("phone round", weigh(phone))

    kiosk = new_context(viewport=KIOSK).new_page()
    kiosk.goto("/kiosk/")
    kiosk_welcome = report("kiosk welcome with QR code", weigh(kiosk))

    for total in (welcome, round_page, kiosk_welcome):
        assert total < BUDGET_BYTES
