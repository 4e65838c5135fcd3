"""Time the results page, its htmx fragment and the booth screen with 20,000 responses.

Usage, from the project root:

    uv run python loadtests/results_bench.py [--responses 20000] [--repeat 20]

It creates a throw-away test database (SQLite by default; PostgreSQL when
DATABASE_URL is set, as test_<name>), fills it with bulk_create, and requests
each page through Django's test client, which runs the whole middleware stack
and template rendering but no HTTP server. Scenarios:

- cold: the per-process row cache (survey.stats_cache) is emptied before each
  request, so every request reads and builds all rows and computes every
  statistic, as the first request of a fresh worker does;
- warm: nothing changed since the previous request, as when an idle booth
  laptop polls;
- busy: ANSWERS_PER_POLL new answers arrive before each request, which is a
  booth spike of 1,000 answers a minute polled every 5 seconds.

Each line gives the median, minimum and maximum wall-clock time of the
repeated requests and their median CPU time in this process. The load average
shows how busy the machine was. The database is dropped at the end.
"""

import argparse
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

from survey import stats_cache  # noqa: E402
from survey.assignment import display_order  # noqa: E402
from survey.models import HUMAN, MODEL, Participant, Post, Response, Survey, Topic  # noqa: E402

MODELS = ("model-a", "model-b", "model-c")
ROUNDS = 5
TOPICS = 40
ANSWERS_PER_POLL = 85


class Booth:
    """A benchmark survey that adds answered participants on demand."""

    def __init__(self, *, seed: int):
        self.rng = random.Random(seed)
        self.survey = Survey.objects.create(
            slug="bench",
            title="Benchmark survey",
            is_default=True,
            screen_enabled=True,
            rounds_per_participant=ROUNDS,
        )
        self.topics = []
        for index in range(TOPICS):
            language = "en" if index % 4 else "ko"
            topic = Topic.objects.create(
                survey=self.survey, title=f"Topic {index}", language=language
            )
            Post.objects.create(topic=topic, author=HUMAN, body=f"A person wrote about {index}.")
            for model in MODELS:
                Post.objects.create(
                    topic=topic, author=MODEL, model=model, body=f"{model} wrote about {index}."
                )
            self.topics.append((topic, list(topic.posts.all())))
        self.served_counts = dict.fromkeys(range(TOPICS), 0)

    def add_answers(
        self,
        count: int,
        *,
        start: datetime,
        arrival_seconds: float = 5.0,
        answer_seconds: tuple[float, float] = (3.0, 90.0),
    ) -> None:
        """Add participants who answered ``count`` rounds in all.

        A participant arrives every ``arrival_seconds`` from ``start`` on, and
        takes a time drawn from ``answer_seconds`` for each round.
        """
        rng = self.rng
        participants = Participant.objects.bulk_create(
            [
                Participant(
                    survey=self.survey,
                    channel=rng.choice(["kiosk", "phone", "phone", "web"]),
                    language="en",
                    consented_at=start + timedelta(seconds=index * arrival_seconds),
                )
                for index in range(-(-count // ROUNDS))
            ],
            batch_size=2000,
        )
        responses = []
        for participant in participants:
            served_at = participant.consented_at
            rounds = min(ROUNDS, count - len(responses))
            for round_number, topic_index in enumerate(rng.sample(range(TOPICS), rounds), start=1):
                topic, posts = self.topics[topic_index]
                shown = display_order(posts, self.served_counts[topic_index])
                self.served_counts[topic_index] += 1
                seconds = rng.uniform(*answer_seconds)
                served_at += timedelta(seconds=seconds + 2)
                human = next(post for post in shown if post.author == HUMAN)
                responses.append(
                    Response(
                        participant=participant,
                        topic=topic,
                        round_number=round_number,
                        post_a=shown[0],
                        post_b=shown[1],
                        post_c=shown[2],
                        served_at=served_at,
                        answered_at=served_at + timedelta(seconds=seconds),
                        guessed_human=human if rng.random() < 0.45 else rng.choice(shown),
                        preferred=rng.choice(shown),
                        confidence=rng.choice([None, 1, 2, 3, 4, 5]),
                        reasons=rng.sample(["style", "tone", "gut"], rng.randint(0, 2)),
                    )
                )
        Response.objects.bulk_create(responses, batch_size=2000)


def time_requests(
    client: Client,
    url: str,
    *,
    repeat: int,
    headers: dict | None = None,
    before_each: Callable[[], None] = lambda: None,
) -> dict:
    """Request ``url`` ``repeat`` times after one untimed request; return times in ms."""
    client.get(url, headers=headers or {})
    wall, cpu = [], []
    for _index in range(repeat):
        before_each()
        began, began_cpu = time.perf_counter(), time.process_time()
        response = client.get(url, headers=headers or {})
        content = response.content
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        if response.status_code != 200 or not content:
            raise RuntimeError(f"GET {url} returned {response.status_code}")
    return {
        "median_ms": statistics.median(wall),
        "min_ms": min(wall),
        "max_ms": max(wall),
        "cpu_median_ms": statistics.median(cpu),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(*, responses: int, repeat: int, seed: int) -> None:
    began = time.perf_counter()
    booth = Booth(seed=seed)
    booth.add_answers(responses, start=datetime(2025, 6, 1, 9, 0, tzinfo=UTC))
    fill_seconds = time.perf_counter() - began
    user = get_user_model().objects.create_user("bench", password="bench-password", is_staff=True)
    organizer = Client()
    organizer.force_login(user)
    screen_url = f"/s/{booth.survey.slug}/screen/"
    htmx = {"HX-Request": "true"}

    def new_answers() -> None:
        # About 70 seconds of answers that ended just now, as in a live spike.
        booth.add_answers(
            ANSWERS_PER_POLL,
            start=timezone.now() - timedelta(seconds=90),
            arrival_seconds=1.0,
            answer_seconds=(10.0, 12.0),
        )

    timings = {
        "results page, cold": time_requests(
            organizer, "/results/", repeat=repeat, before_each=stats_cache.clear
        ),
        "results page, warm": time_requests(organizer, "/results/", repeat=repeat),
        "results fragment, warm": time_requests(
            organizer, "/results/", repeat=repeat, headers=htmx
        ),
        "results fragment, busy": time_requests(
            organizer, "/results/", repeat=repeat, headers=htmx, before_each=new_answers
        ),
        "booth screen, cold": time_requests(
            Client(), screen_url, repeat=repeat, before_each=stats_cache.clear
        ),
        "booth screen, warm": time_requests(Client(), screen_url, repeat=repeat),
    }
    print(
        f"database={connection.vendor} responses_at_start={responses} "
        f"responses_at_end={Response.objects.count()} fill_seconds={fill_seconds:.1f} "
        f"nproc={os.cpu_count()} cpu={cpu_model()!r} python={platform.python_version()} "
        f"django={django.get_version()} date={datetime.now(UTC):%Y-%m-%d} "
        f"load_average={os.getloadavg()[0]:.2f}"
    )
    for name, timing in timings.items():
        print(
            f"{name:<24} median={timing['median_ms']:5.0f} ms  min={timing['min_ms']:5.0f} ms  "
            f"max={timing['max_ms']:5.0f} ms  cpu median={timing['cpu_median_ms']:5.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--responses", type=int, default=20_000, help="Answered responses to create."
    )
    parser.add_argument("--repeat", type=int, default=20, help="Timed requests per scenario.")
    parser.add_argument("--seed", type=int, default=1, help="Random seed of the generated data.")
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(responses=args.responses, repeat=args.repeat, seed=args.seed)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
