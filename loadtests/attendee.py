"""One attendee's visit to the survey, step by step, on a Locust user's HTTP client.

Every step checks the page by its content, not only its status, and marks
the request failed with the reason when the page is wrong. A step that fails
returns None, and the journey ends there, as it would for a person who gives
up. An answer counts in the ledger once the page after it proves that the
server took it: the next round, the finish redirect, or the 303 back to the
round page.
"""

import logging
import random
from urllib.parse import urlencode, urlsplit

import gevent

from loadtests import pages
from loadtests.ledger import AnswerLedger

logger = logging.getLogger(__name__)

# Comments that a spreadsheet would run as a formula or read as a number unless
# the mirror writes them as raw text. The benchmark compares each with its cell.
TRICKY_COMMENTS = (
    "=SUM(1,2)",
    "+1 for the second post",
    "-the first one",
    "@channel",
    "0012",
    "사람이 쓴 글 같아요",
    'It\'s the one with the typo, "obviously"',
)
REASONS = ["style", "personal", "structure", "errors", "tone", "gut"]
FORM_CONTENT_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
FINISHED = "finished"


def status(response) -> str:
    """Describe what a request got: its HTTP status, or the connection error behind status 0."""
    if response.status_code:
        return f"HTTP {response.status_code}"
    return f"no response ({getattr(response, 'error', None)!r})"


def url_path(location: str | None) -> str:
    return urlsplit(location or "").path


class SurveyVisit:
    """The steps of one attendee through the survey ``slug``.

    ``client`` is a Locust HTTP client whose cookie jar contains the attendee's
    session, and ``ledger`` collects the response ids of the answers that succeeded.
    """

    def __init__(self, client, *, slug: str, ledger: AnswerLedger):
        self.client = client
        self.slug = slug
        self.ledger = ledger
        self.answered: set[int] = set()
        self.welcome_path = f"/s/{slug}/"
        self.round_path = f"/s/{slug}/round/"
        self.finish_path = f"/s/{slug}/finish/"

    def open_welcome(
        self, path: str, *, name: str = "welcome", require_fresh: bool = False
    ) -> pages.Form | None:
        """Open the welcome page at ``path`` and return its consent form.

        With ``require_fresh`` the page must not offer to continue an earlier
        participant's rounds or show their score, as a kiosk's next person must never see.
        """
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"welcome page got {status(response)}")
                return None
            html = response.text or ""
            form = pages.consent_form(html)
            if form is None:
                response.failure("welcome page has no consent form with a CSRF token")
                return None
            if require_fresh:
                for earlier in (self.round_path, self.finish_path):
                    if f'href="{earlier}"' in html:
                        response.failure(f"welcome page links to {earlier} of an earlier person")
                        return None
            response.success()
            return form

    def consent(self, form: pages.Form, *, fallback_action: str) -> bool:
        """Tick the consent box and send the form; the server must redirect to the round."""
        action = form.action or fallback_action
        data = {"csrfmiddlewaretoken": form.value("csrfmiddlewaretoken"), "consent": "on"}
        with self.client.post(
            action, data=data, name="consent", allow_redirects=False, catch_response=True
        ) as response:
            location = url_path(response.headers.get("Location") if response.headers else None)
            if response.status_code != 302 or location != self.round_path:
                response.failure(
                    f"consent got {status(response)} to {location or 'nowhere'}, "
                    f"expected 302 to {self.round_path}"
                )
                return False
            response.success()
            return True

    def open_round(self) -> pages.Ballot | str | None:
        """Open the round page; return its ballot, or FINISHED when it redirects to the score."""
        with self.client.get(
            self.round_path, name="round page", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code == 302:
                location = url_path(response.headers.get("Location"))
                if location == self.finish_path:
                    response.success()
                    return FINISHED
                response.failure(f"round page redirected to {location}, expected the finish page")
                return None
            if response.status_code != 200:
                response.failure(f"round page got {status(response)}")
                return None
            ballot = pages.ballot(response.text or "")
            if ballot is None:
                response.failure("round page has no complete ballot")
                return None
            response.success()
            return ballot

    def answer_htmx(self, ballot: pages.Ballot) -> pages.Ballot | str | None:
        """Send the ballot as htmx does; return the next ballot, FINISHED after the last."""
        headers = {
            **FORM_CONTENT_TYPE,
            "HX-Request": "true",
            "HX-Target": "round",
            "HX-Current-URL": self.round_path,
            "X-CSRFToken": ballot.csrf_token,
        }
        with self.client.post(
            self.round_path,
            data=ballot_data(ballot),
            headers=headers,
            name="answer",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"htmx answer got {status(response)}")
                return None
            if ballot.is_last:
                redirect = url_path(response.headers.get("HX-Redirect"))
                if redirect != self.finish_path:
                    response.failure(
                        f"last answer sent HX-Redirect {redirect or 'none'}, "
                        f"expected {self.finish_path}"
                    )
                    return None
                response.success()
                self._record(ballot)
                return FINISHED
            following = pages.ballot(response.text or "")
            problem = _next_ballot_problem(ballot, following)
            if problem:
                response.failure(problem)
                return None
            response.success()
            self._record(ballot)
            return following

    def answer_form(self, ballot: pages.Ballot, *, taps: int = 1) -> bool:
        """Send the ballot as a plain form ``taps`` times at once, as a double tap does.

        Every copy must get the 303 back to the round page, and the answer
        counts once however many copies were sent.
        """
        data = ballot_data(ballot)
        outcomes = []

        def send() -> None:
            with self.client.post(
                self.round_path,
                data=data,
                headers=FORM_CONTENT_TYPE,
                name="answer",
                allow_redirects=False,
                catch_response=True,
            ) as response:
                location = url_path(response.headers.get("Location") if response.headers else None)
                if response.status_code != 303 or location != self.round_path:
                    response.failure(
                        f"form answer got {status(response)} to "
                        f"{location or 'nowhere'}, expected 303 to {self.round_path}"
                    )
                    outcomes.append(False)
                    return
                response.success()
                outcomes.append(True)

        if taps == 1:
            send()
        else:
            # Locust 2.47's FastHttpSession turns redirect following off for
            # each allow_redirects=False request and back on when it ends, so a
            # concurrent copy could follow the 303. It stays off until all are back.
            agent = self.client.client
            redirect_codes = agent.redirect_response_codes
            agent.redirect_response_codes = frozenset()
            try:
                gevent.joinall([gevent.spawn(send) for _tap in range(taps)], raise_error=True)
            finally:
                agent.redirect_response_codes = redirect_codes
        if not all(outcomes):
            return False
        self._record(ballot)
        return True

    def next_after_form(self, ballot: pages.Ballot) -> pages.Ballot | str | None:
        """Open the round page after a form answer; it must show the very next round."""
        following = self.open_round()
        if following is None or following == FINISHED:
            if following == FINISHED and not ballot.is_last:
                self._flag("round page redirected to the score before the last round")
                return None
            return following
        problem = _next_ballot_problem(ballot, following)
        if problem:
            self._flag(problem)
            return None
        return following

    def finish(self) -> str | None:
        """Open the score page; it must count every answer of this visit. Return its HTML."""
        with self.client.get(self.finish_path, name="finish", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"finish page got {status(response)}")
                return None
            html = response.text or ""
            result = pages.score(html)
            if result is None:
                response.failure("finish page shows no score")
                return None
            spotted, answered = result
            if answered != len(self.answered) or not 0 <= spotted <= answered:
                response.failure(
                    f"finish page says {spotted} of {answered}, "
                    f"but this visit answered {len(self.answered)} rounds"
                )
                return None
            response.success()
            return html

    def _record(self, ballot: pages.Ballot) -> None:
        self.answered.add(ballot.response_id)
        self.ledger.record(ballot.response_id)

    def _flag(self, problem: str) -> None:
        # The request itself succeeded, so the problem is reported as a failed
        # check of its own, which Locust counts with the other failures.
        self.client.request_event.fire(
            request_type="CHECK",
            name="next round",
            response_time=0,
            response_length=0,
            exception=AssertionError(problem),
            context={},
        )


def ballot_data(ballot: pages.Ballot) -> str:
    """Return the url-encoded form body of a random but valid answer to ``ballot``.

    The body is encoded here because the reasons checkboxes repeat one field
    name, which a dict of fields cannot express.
    """
    fields = [
        ("csrfmiddlewaretoken", ballot.csrf_token),
        ("response", str(ballot.response_id)),
        ("guessed_human", str(random.choice(ballot.post_ids))),
        ("preferred", str(random.choice(ballot.post_ids))),
    ]
    if random.random() < 0.5:
        fields.append(("confidence", str(random.randint(1, 5))))
    if random.random() < 0.3:
        fields.extend(("reasons", reason) for reason in random.sample(REASONS, k=2))
    if random.random() < 0.1:
        fields.append(("comment", random.choice(TRICKY_COMMENTS)))
    return urlencode(fields)


def _next_ballot_problem(ballot: pages.Ballot, following: pages.Ballot | None) -> str | None:
    if following is None:
        return f"the page after round {ballot.round_number} has no complete ballot"
    if following.response_id == ballot.response_id:
        return f"round {ballot.round_number} was shown again after its answer"
    if following.round_number != ballot.round_number + 1:
        return (
            f"round {following.round_number} followed round {ballot.round_number}; "
            "a round was skipped or repeated"
        )
    return None


def pause(seconds_range: tuple[float, float]) -> None:
    """Sleep a random time in ``seconds_range``: reading a page, or waiting for the next person."""
    gevent.sleep(random.uniform(*seconds_range))
