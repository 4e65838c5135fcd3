"""Time generate_posts at two concurrency levels against a fake endpoint.

The fake chat-completions server from the test suite responds to every
request after a fixed latency, so the run time measures how well generate_posts
overlaps requests, not how fast a model is. The server runs in its own
process, as a real endpoint would, so that it does not compete with the
command for the interpreter lock. Each level generates a post for every topic
under its own model name, in a fresh SQLite database.

    uv run python loadtests/generation_bench.py --topics 32 --latency 0.5

Prints one line per level and a final ``RESULT key=value ...`` line, and exits
with status 1 when the speedup is below --min-speedup.
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def serve(connection, *, text: str, latency: float) -> None:
    """Run the fake endpoint in this process until the parent sends anything."""
    from tests.fakes.openai_server import FakeChatServer, Reply

    with FakeChatServer(default=Reply(text=text, latency=latency)) as server:
        connection.send(server.base_url)
        connection.recv()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", type=int, default=32, help="Topics to generate (default 32).")
    parser.add_argument(
        "--latency", type=float, default=0.5, help="Seconds before each response (default 0.5)."
    )
    parser.add_argument("--words", type=int, default=150, help="Words per post (default 150).")
    parser.add_argument(
        "--levels", default="1,8", help="Comma-separated concurrency levels (default 1,8)."
    )
    parser.add_argument(
        "--min-speedup",
        type=float,
        default=6.0,
        help="Required ratio of the first level's time to the last level's (default 6).",
    )
    parser.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Stream the responses (default) or not.",
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]

    # The server process starts before Django, so it inherits no database connection.
    sys.path.insert(0, str(REPO))
    from tests.fakes.openai_server import words

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(
        target=serve,
        args=(child,),
        kwargs={"text": words(args.words, "model"), "latency": args.latency},
        daemon=True,
    )
    server.start()
    base_url = parent.recv()

    workdir = Path(tempfile.mkdtemp(prefix="generation-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "survey.settings"
    os.environ["DJANGO_DEBUG"] = "1"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["DJANGO_LOG_LEVEL"] = "WARNING"

    import django

    django.setup()

    from django.core.management import call_command

    from survey.models import HUMAN, Post, Survey, Topic

    call_command("migrate", verbosity=0)
    survey = Survey.objects.create(slug="bench", title="Generation benchmark", is_default=True)
    for number in range(args.topics):
        topic = Topic.objects.create(survey=survey, title=f"Benchmark topic {number}")
        Post.objects.create(topic=topic, author=HUMAN, body=words(args.words, "human"))

    timings = {}
    try:
        for level in levels:
            summary_path = workdir / f"summary-{level}.json"
            options = [
                "--base-url",
                base_url,
                "--model",
                f"bench-c{level}",
                "--concurrency",
                str(level),
                "--no-progress",
                "--json",
                str(summary_path),
            ]
            if not args.stream:
                options.append("--no-stream")
            started = time.perf_counter()
            with open(os.devnull, "w") as devnull:
                call_command("generate_posts", *options, stdout=devnull, stderr=devnull)
            elapsed = time.perf_counter() - started
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            timings[level] = elapsed
            duration = summary["duration_ms"]
            print(
                f"concurrency {level:>3}: {elapsed:7.2f} s wall, {summary['stored']} stored, "
                f"{summary['requests']} requests, duration mean {duration['mean']:.1f} ms "
                f"p95 {duration['p95']:.1f} ms, {summary['output_tokens_per_second']:.0f} tok/s"
            )
            if summary["stored"] != args.topics:
                print(f"error: expected {args.topics} stored posts, got {summary['stored']}")
                return 1
    finally:
        parent.send("stop")
        server.join(timeout=10)

    speedup = timings[levels[0]] / timings[levels[-1]]
    fields = " ".join(f"concurrency_{level}_s={timings[level]:.2f}" for level in levels)
    print(
        f"RESULT topics={args.topics} latency_s={args.latency} stream={int(args.stream)} "
        f"{fields} speedup={speedup:.2f} min_speedup={args.min_speedup}"
    )
    return 0 if speedup >= args.min_speedup else 1


if __name__ == "__main__":
    sys.exit(main())
