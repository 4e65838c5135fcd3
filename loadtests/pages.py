"""Reading the survey pages as a browser would: forms, the ballot, the score.

The load-test users check every page by its content, so these parsers return
None when a page lacks what the attendee needs, and the caller marks the
request as failed with the reason.
"""

import re
from dataclasses import dataclass
from html.parser import HTMLParser

ROUND_SECTION = '<section id="round"'
ROUND_PROGRESS = re.compile(r"Round\s+(\d+)\s+of\s+(\d+)")
SCORE = re.compile(r"You spotted the human in\s+(\d+)\s+of\s+(\d+)")


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    type: str


@dataclass(frozen=True)
class Form:
    action: str
    method: str
    fields: tuple[Field, ...]

    def values(self, name: str) -> list[str]:
        return [field.value for field in self.fields if field.name == name]

    def value(self, name: str) -> str | None:
        values = self.values(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Ballot:
    """The comparison a round page shows, with what a ballot for it must send."""

    response_id: int
    post_ids: tuple[int, ...]
    round_number: int
    total_rounds: int
    csrf_token: str

    @property
    def is_last(self) -> bool:
        return self.round_number >= self.total_rounds


class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = {
                "action": attributes.get("action", ""),
                "method": attributes.get("method", "get").lower(),
                "fields": [],
            }
        elif tag in {"input", "textarea", "button", "select"} and self._open is not None:
            if "name" in attributes:
                self._open["fields"].append(
                    Field(
                        name=attributes["name"],
                        value=attributes.get("value", ""),
                        type=attributes.get("type", tag).lower(),
                    )
                )

    def handle_endtag(self, tag):
        if tag == "form" and self._open is not None:
            self.forms.append(
                Form(
                    action=self._open["action"],
                    method=self._open["method"],
                    fields=tuple(self._open["fields"]),
                )
            )
            self._open = None


def forms(html: str) -> list[Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def form_with_field(html: str, name: str) -> Form | None:
    """Return the first form that has a field called ``name``."""
    for form in forms(html):
        if form.values(name):
            return form
    return None


def form_posting_to(html: str, path_fragment: str) -> Form | None:
    """Return the first POST form whose action contains ``path_fragment``."""
    for form in forms(html):
        if form.method == "post" and path_fragment in form.action:
            return form
    return None


def consent_form(html: str) -> Form | None:
    form = form_with_field(html, "consent")
    if form is None or not form.value("csrfmiddlewaretoken"):
        return None
    return form


def ballot(html: str) -> Ballot | None:
    """Return the ballot of a round page or htmx fragment, or None if the page has none.

    A ballot needs the hidden response id, three distinct posts offered for
    both questions, a CSRF token and the "Round N of M" progress line.
    """
    if ROUND_SECTION not in html:
        return None
    form = form_with_field(html, "response")
    progress = ROUND_PROGRESS.search(html)
    if form is None or progress is None:
        return None
    token = form.value("csrfmiddlewaretoken")
    guessed = form.values("guessed_human")
    preferred = form.values("preferred")
    try:
        response_id = int(form.value("response") or "")
        post_ids = tuple(int(value) for value in guessed)
    except ValueError:
        return None
    if not token or len(set(post_ids)) != 3 or sorted(preferred) != sorted(guessed):
        return None
    return Ballot(
        response_id=response_id,
        post_ids=post_ids,
        round_number=int(progress.group(1)),
        total_rounds=int(progress.group(2)),
        csrf_token=token,
    )


def score(html: str) -> tuple[int, int] | None:
    """Return (spotted, answered) from the finish page, or None if it shows no score."""
    match = SCORE.search(html)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))
