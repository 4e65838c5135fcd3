"""The capacity phase: requests per second of a bare Django request and of an answer round trip.

Both run with the same number of Locust users and no wait time, one after the
other, against the same server:

- ``bare``: ``GET /i18n/setlang/?next=/``. Django's own ``set_language`` view
  answers it with a 302 and touches neither the database nor a template, but
  the request passes the whole middleware stack and the URL resolver. (The
  ``/healthz`` probe would be cheaper, because a middleware answers it before
  any other, so it is not a fair yardstick for a Django request.)
- ``answer``: the htmx ballot POST that records an answer and renders the
  next round (after the last round it returns the HX-Redirect to the score).
  Each user first prepares a pool of participants (welcome page, consent,
  first round), so that the measured window holds answers only.

Run as a script it prints one JSON line with the measurement::

    uv run python loadtests/capacity.py --host http://127.0.0.1:8000 --target answer

The file is also a locustfile (``locust -f loadtests/capacity.py``), for a step
test of zero-wait users with ``LOCUST_SHAPE=step``.
"""

import argparse
import json
import logging
import os
import sys
import time
from collections import deque
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
import psutil
from gevent.event import Event
from locust import FastHttpUser, constant, events, task
from locust.env import Environment

from loadtests import attendee, pages
from loadtests.ledger import AnswerLedger
from loadtests.shapes import selected_shape

logger = logging.getLogger(__name__)

if __name__ != "__main__" and os.environ.get("LOCUST_SHAPE", "").strip():
    CapacityShape = selected_shape(os.environ["LOCUST_SHAPE"].strip())

BARE_PATH = "/i18n/setlang/?next=/"
BARE_NAME = "bare request"
ANSWER_NAME = "answer"
CAPACITY_LEDGER = AnswerLedger()


class BareRequestUser(FastHttpUser):
    """Sends the bare Django request back to back."""

    wait_time = constant(0)

    @task
    def bare_request(self):
        with self.client.get(
            BARE_PATH, name=BARE_NAME, allow_redirects=False, catch_response=True
        ) as response:
            location = attendee.url_path(response.headers.get("Location"))
            if response.status_code != 302 or location != "/":
                response.failure(
                    f"set_language got {attendee.status(response)} to {location or 'nowhere'}"
                )
                return
            response.success()


class AnswerRoundTripUser(FastHttpUser):
    """Answers rounds back to back, for a pool of participants prepared at start.

    Participants are served in turn, each with its own cookies, so that no
    session reaches the per-session ballot limit (30 a minute by default).
    """

    wait_time = constant(0)
    slug = "booth"
    # Participants each user prepares before the measurement; each one gives
    # as many answers as the survey has rounds (5 for the sample survey).
    participants_per_user = 40
    # Users that must finish preparing before any answer is sent; 0 sends at once.
    expected_users = 0
    prepared_users = 0
    all_prepared = Event()

    def on_start(self):
        self.participants: deque = deque()
        for _index in range(self.participants_per_user):
            self.prepare_participant()
        cls = type(self)
        cls.prepared_users += 1
        if cls.prepared_users >= cls.expected_users:
            cls.all_prepared.set()

    def prepare_participant(self) -> None:
        self.client.cookiejar.clear()
        visit = attendee.SurveyVisit(self.client, slug=self.slug, ledger=CAPACITY_LEDGER)
        form = visit.open_welcome(visit.welcome_path)
        if form is None or not visit.consent(form, fallback_action=visit.welcome_path):
            return
        ballot = visit.open_round()
        if isinstance(ballot, pages.Ballot):
            self.participants.append((list(self.client.cookiejar), ballot))

    @task
    def answer(self):
        type(self).all_prepared.wait()
        if not self.participants:
            self.prepare_participant()
            if not self.participants:
                return
        cookies, ballot = self.participants.popleft()
        jar = self.client.cookiejar
        jar.clear()
        for cookie in cookies:
            jar.set_cookie(cookie)
        visit = attendee.SurveyVisit(self.client, slug=self.slug, ledger=CAPACITY_LEDGER)
        following = visit.answer_htmx(ballot)
        if isinstance(following, pages.Ballot):
            self.participants.append((list(jar), following))


def server_cpu_seconds(server_pid: int | None) -> float | None:
    """Return the CPU seconds that the server process and all its workers have used so far.

    Workers that gunicorn restarted (after ``max_requests``) count through the
    master's reaped-children times, so a restart in the window loses nothing.
    """
    if server_pid is None:
        return None
    try:
        server = psutil.Process(server_pid)
        times = server.cpu_times()
        workers = server.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    total = times.user + times.system + times.children_user + times.children_system
    for worker in workers:
        try:
            worker_times = worker.cpu_times()
        except psutil.NoSuchProcess:
            # It exited between the two calls; its time is not reaped yet either.
            continue
        total += worker_times.user + worker_times.system
    return total


def measure(
    *,
    host: str,
    target: str,
    users: int,
    seconds: float,
    slug: str,
    server_pid: int | None = None,
) -> dict:
    """Run ``users`` zero-wait users of ``target`` for ``seconds`` and return the measurement.

    With ``server_pid`` (the gunicorn master) the result also contains the CPU
    milliseconds the server spent per request in the window, which a busy
    machine distorts far less than the requests per second.
    """
    user_class = {"bare": BareRequestUser, "answer": AnswerRoundTripUser}[target]
    name = BARE_NAME if target == "bare" else ANSWER_NAME
    if target == "answer":
        AnswerRoundTripUser.slug = slug
        AnswerRoundTripUser.expected_users = users
        AnswerRoundTripUser.prepared_users = 0
        AnswerRoundTripUser.all_prepared.clear()

    cpu_samples: list[float] = []
    environment = Environment(user_classes=[user_class], host=host, events=events)
    environment.events.usage_monitor.add_listener(
        lambda environment, cpu_usage, memory_usage, **kwargs: cpu_samples.append(cpu_usage)
    )
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=users)
    if target == "answer":
        if not AnswerRoundTripUser.all_prepared.wait(timeout=300):
            runner.quit()
            raise RuntimeError("participants were not prepared within 300 s")
    else:
        gevent.sleep(2)

    environment.stats.reset_all()
    cpu_before = server_cpu_seconds(server_pid)
    started = time.perf_counter()
    gevent.sleep(seconds)
    elapsed = time.perf_counter() - started
    cpu_after = server_cpu_seconds(server_pid)
    entry = environment.stats.get(name, "GET" if target == "bare" else "POST")
    total = environment.stats.total
    result = {
        "target": target,
        "path": BARE_PATH if target == "bare" else f"/s/{slug}/round/",
        "users": users,
        "seconds": round(elapsed, 3),
        "requests": entry.num_requests,
        "failures": total.num_failures,
        "other_requests": total.num_requests - entry.num_requests,
        "per_second": entry.num_requests / elapsed if elapsed else 0.0,
        "p50_ms": entry.get_response_time_percentile(0.5),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
        "server_cpu_ms_per_request": (
            (cpu_after - cpu_before) * 1000 / entry.num_requests
            if cpu_before is not None and cpu_after is not None and entry.num_requests
            else None
        ),
        "locust_cpu_max": max(cpu_samples, default=None),
        "locust_cpu_warnings": sum(1 for value in cpu_samples if value > 90),
        "errors": {str(key): error.occurrences for key, error in environment.stats.errors.items()},
    }
    runner.quit()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="Base URL of the server, on 127.0.0.1.")
    parser.add_argument("--target", choices=["bare", "answer"], required=True)
    parser.add_argument("--users", type=int, default=24, help="Concurrent users (default 24).")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="Length of the measured window (default 20)."
    )
    parser.add_argument("--survey", default="booth", help="Slug of the survey to answer.")
    parser.add_argument(
        "--participants-per-user",
        type=int,
        default=AnswerRoundTripUser.participants_per_user,
        help="Participants each answer user prepares before the window (default %(default)s).",
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        default=None,
        help="PID of the gunicorn master, to measure the server's CPU time per request.",
    )
    options = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    AnswerRoundTripUser.participants_per_user = options.participants_per_user
    result = measure(
        host=options.host,
        target=options.target,
        users=options.users,
        seconds=options.seconds,
        slug=options.survey,
        server_pid=options.server_pid,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
