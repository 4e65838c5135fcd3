"""Booth traffic after a keynote: phone attendees, kiosks, double tappers and an organizer.

Run it from the project root, against a server on this machine::

    LOCUST_SHAPE=spike uv run locust -f loadtests/locustfile.py \\
        --host http://127.0.0.1:8000 --headless --stop-timeout 180 \\
        --organizer-password-file var/organizer-password

``LOCUST_SHAPE`` picks a load shape from loadtests/shapes.py (``spike``,
``steady`` or ``step``); without it ``--users`` and ``--spawn-rate`` apply.
Every answer that a user saw succeed is counted once per response id, and
``--answers-file`` writes those ids at the end for the benchmark to compare
with the database and the sheet.
"""

import logging
import os
import random
from pathlib import Path

from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser
from locust.runners import WorkerRunner

from loadtests import attendee, pages
from loadtests.ledger import LEDGER
from loadtests.shapes import selected_shape

logger = logging.getLogger(__name__)

if os.environ.get("LOCUST_SHAPE", "").strip():
    BoothShape = selected_shape(os.environ["LOCUST_SHAPE"].strip())

MOBILE_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
# Wait of a user whose attendees have all left, in seconds. Locust stops a
# waiting user at once, so it costs nothing and ends with the test.
IDLE_SECONDS = 3600.0


@events.init_command_line_parser.add_listener
def add_options(parser):
    parser.add_argument("--survey", default="booth", help="Slug of the survey to take.")
    parser.add_argument(
        "--organizer-username", default="organizer", help="Staff login of the organizer user."
    )
    parser.add_argument(
        "--organizer-password-file",
        default="",
        help="File holding the organizer's password, as create_organizer --password-file "
        "writes it. Without it the organizer user stops at start.",
    )
    parser.add_argument(
        "--answers-file",
        default="",
        help="JSON file to write, at the end, the response ids of the answers that succeeded.",
    )


def option(environment, name: str, default: str) -> str:
    """Return a custom command-line option, or ``default`` when Locust runs as a library."""
    value = getattr(environment.parsed_options, name, None)
    return default if value in (None, "") else value


def journey_limit(environment) -> int:
    """Return the journeys per phone user that the load shape sets, or 0 for no limit.

    Locust gives the shape only to the master of a distributed run, so a
    worker reads the class that ``LOCUST_SHAPE`` selects in this module.
    """
    shape = environment.shape_class or globals().get("BoothShape")
    return int(getattr(shape, "journeys_per_user", 0) or 0)


@events.report_to_master.add_listener
def send_answers(client_id, data):
    data["answers"] = LEDGER.take_report()


@events.worker_report.add_listener
def merge_answers(client_id, data):
    LEDGER.merge_report(data.get("answers", {}))


@events.test_start.add_listener
def reset_answers(environment, **kwargs):
    LEDGER.reset()


# CPU use of this Locust process in percent of one core, sampled every few seconds.
CPU_SAMPLES: list[float] = []


@events.usage_monitor.add_listener
def sample_cpu(environment, cpu_usage, memory_usage, **kwargs):
    CPU_SAMPLES.append(cpu_usage)


@events.quitting.add_listener
def write_answers(environment, **kwargs):
    path = option(environment, "answers_file", "")
    if path and not isinstance(environment.runner, WorkerRunner):
        cpu = {
            "samples": len(CPU_SAMPLES),
            "max_percent": max(CPU_SAMPLES, default=None),
            # Locust warns when its process passes 90 % of a core.
            "over_90_percent": sum(1 for value in CPU_SAMPLES if value > 90),
        }
        LEDGER.write(path, extra={"locust_cpu": cpu})
        logger.info("answers written path=%s answers=%s", path, len(LEDGER.response_ids))


class Attendee(FastHttpUser):
    """One simulated phone: an attendee takes the survey on it, then leaves.

    With a shape that limits journeys per user (the spike), the user idles
    after its journeys. Otherwise the next attendee picks the phone up after
    ``next_attendee_seconds``.
    """

    abstract = True
    default_headers = {"User-Agent": MOBILE_USER_AGENT}
    # Seconds an attendee reads the welcome page, and each round, before answering.
    consent_seconds = (2.0, 6.0)
    reading_seconds = (5.0, 20.0)
    # Seconds from one attendee's finish to the next attendee's first request.
    next_attendee_seconds = (10.0, 60.0)
    welcome_query = "?via=qr"

    def on_start(self):
        self.slug = option(self.environment, "survey", "booth")
        self.journeys = 0

    def wait_time(self):
        limit = journey_limit(self.environment)
        if limit and self.journeys >= limit:
            return IDLE_SECONDS
        return random.uniform(*self.next_attendee_seconds)

    @task
    def take_survey(self):
        self.journeys += 1
        self.hand_over()
        visit = attendee.SurveyVisit(self.client, slug=self.slug, ledger=LEDGER)
        finished = self.journey(visit)
        LEDGER.count_journey("finished" if finished else "abandoned")

    def hand_over(self):
        """Prepare the browser for the next attendee. A new phone has no cookies or session."""
        self.client.cookiejar.clear()

    def journey(self, visit: attendee.SurveyVisit) -> bool:
        form = visit.open_welcome(visit.welcome_path + self.welcome_query)
        if form is None:
            return False
        attendee.pause(self.consent_seconds)
        if not visit.consent(form, fallback_action=visit.welcome_path):
            return False
        return self.answer_rounds(visit) and visit.finish() is not None

    def answer_rounds(self, visit: attendee.SurveyVisit) -> bool:
        current = visit.open_round()
        while isinstance(current, pages.Ballot):
            attendee.pause(self.reading_seconds)
            current = self.answer(visit, current)
        return current == attendee.FINISHED

    def answer(self, visit: attendee.SurveyVisit, ballot: pages.Ballot):
        return visit.answer_htmx(ballot)


class PhoneAttendee(Attendee):
    """Scans the booth QR code, consents, answers five rounds with htmx, reads the score."""

    weight = 19


class DoubleTapper(Attendee):
    """A phone with JavaScript off whose owner taps every submit button twice.

    Both copies of each ballot are sent at once. Both must get the redirect
    back to the round page, the next round must follow, and the answer counts once.
    """

    weight = 1
    welcome_query = ""

    def answer(self, visit: attendee.SurveyVisit, ballot: pages.Ballot):
        if not visit.answer_form(ballot, taps=2):
            return None
        return visit.next_after_form(ballot)


class KioskAttendee(Attendee):
    """The booth laptop: one person after another, each started in a fresh kiosk session.

    Kiosks are devices, not crowd members, so their number stays fixed and
    they keep serving people whatever the shape's journey limit. After the
    score the person presses Done, and the next person's welcome page must not
    offer the previous person's rounds or score.
    """

    fixed_count = 2
    default_headers = {"User-Agent": DESKTOP_USER_AGENT}
    next_attendee_seconds = (5.0, 20.0)

    def wait_time(self):
        return random.uniform(*self.next_attendee_seconds)

    def on_start(self):
        super().on_start()
        self.client.cookiejar.clear()
        self.needs_start = True

    # Locust runs the task that Attendee defines. Overriding the task method
    # itself would register a second task, and Locust would pick either at random.
    def hand_over(self):
        """Keep the kiosk's cookies, because the previous person's Done button reset its session."""

    def journey(self, visit: attendee.SurveyVisit) -> bool:
        finished = self.kiosk_journey(visit)
        # A kiosk that lost track of its session starts the next person afresh.
        self.needs_start = not finished
        return finished

    def kiosk_journey(self, visit: attendee.SurveyVisit) -> bool:
        if self.needs_start and not self.start_kiosk(visit):
            return False
        form = visit.open_welcome(visit.welcome_path, name="welcome (kiosk)", require_fresh=True)
        if form is None:
            return False
        attendee.pause(self.consent_seconds)
        if not visit.consent(form, fallback_action=visit.welcome_path):
            return False
        if not self.answer_rounds(visit):
            return False
        score_page = visit.finish()
        return score_page is not None and self.press_done(visit, score_page)

    def start_kiosk(self, visit: attendee.SurveyVisit) -> bool:
        with self.client.get(
            f"/kiosk/{self.slug}/", name="kiosk start", allow_redirects=False, catch_response=True
        ) as response:
            location = attendee.url_path(response.headers.get("Location"))
            if response.status_code not in (302, 303) or location != visit.welcome_path:
                response.failure(
                    f"kiosk start got {attendee.status(response)} to {location or 'nowhere'}, "
                    f"expected a redirect to {visit.welcome_path}"
                )
                return False
            response.success()
            return True

    def press_done(self, visit: attendee.SurveyVisit, score_page: str) -> bool:
        form = pages.form_posting_to(score_page, "/kiosk/")
        if form is None:
            self.client.request_event.fire(
                request_type="CHECK",
                name="kiosk done button",
                response_time=0,
                response_length=0,
                exception=AssertionError("kiosk score page has no Done form posting to /kiosk/"),
                context={},
            )
            return False
        data = {"csrfmiddlewaretoken": form.value("csrfmiddlewaretoken")}
        with self.client.post(
            form.action, data=data, name="kiosk done", allow_redirects=False, catch_response=True
        ) as response:
            location = attendee.url_path(response.headers.get("Location"))
            if response.status_code not in (302, 303) or location != visit.welcome_path:
                response.failure(
                    f"kiosk done got {attendee.status(response)} to {location or 'nowhere'}"
                )
                return False
            response.success()
            return True


class Organizer(FastHttpUser):
    """An organizer with the live results page open, which polls every 5 seconds.

    On a server without /results/ (it answers 404) the organizer watches the
    admin index instead, so the scenario also runs against older deployments.
    """

    fixed_count = 1
    default_headers = {"User-Agent": DESKTOP_USER_AGENT}
    wait_time = constant(5)

    def on_start(self):
        self.slug = option(self.environment, "survey", "booth")
        self.results_path = f"/results/?survey={self.slug}"
        self.page_loaded = False
        self.watch_admin = False
        password_file = option(self.environment, "organizer_password_file", "")
        if not password_file:
            logger.warning("organizer user stopped: no --organizer-password-file given")
            raise StopUser()
        username = option(self.environment, "organizer_username", "organizer")
        password = Path(password_file).read_text().strip()
        if not self.log_in(username, password):
            raise StopUser()

    def log_in(self, username: str, password: str) -> bool:
        login_path = "/admin/login/?next=/results/"
        with self.client.get(login_path, name="admin login", catch_response=True) as response:
            form = pages.form_with_field(response.text or "", "username")
            if response.status_code != 200 or form is None:
                response.failure(f"admin login page got {attendee.status(response)}")
                return False
            response.success()
        data = {
            "csrfmiddlewaretoken": form.value("csrfmiddlewaretoken"),
            "username": username,
            "password": password,
            "next": "/results/",
        }
        with self.client.post(
            login_path, data=data, name="admin login", allow_redirects=False, catch_response=True
        ) as response:
            # A failed login shows the form again with 200; a good one redirects.
            if response.status_code != 302:
                response.failure(f"admin login got {attendee.status(response)}, not 302")
                return False
            response.success()
        return True

    @task
    def watch_results(self):
        if self.watch_admin:
            self.check_page("/admin/", name="admin index", marker='id="site-name"')
        elif not self.page_loaded:
            self.page_loaded = self.load_results_page()
        else:
            self.check_page(
                self.results_path,
                name="results poll",
                marker='id="live"',
                headers={"HX-Request": "true", "HX-Current-URL": self.results_path},
            )

    def load_results_page(self) -> bool:
        with self.client.get(self.results_path, name="results", catch_response=True) as response:
            if response.status_code == 404:
                response.success()
                self.watch_admin = True
                logger.info("no results page on this server; the organizer watches /admin/")
                return False
            if response.status_code != 200 or 'id="live"' not in (response.text or ""):
                response.failure(
                    f"results page got {attendee.status(response)} without the live section"
                )
                return False
            response.success()
            return True

    def check_page(self, path: str, *, name: str, marker: str, headers=None) -> None:
        with self.client.get(path, headers=headers, name=name, catch_response=True) as response:
            if response.status_code != 200 or marker not in (response.text or ""):
                response.failure(f"{name} got {attendee.status(response)} without {marker}")
                return
            response.success()
