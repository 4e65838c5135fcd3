"""The booth spike benchmark behind ``make bench``.

It serves the app as production does (gunicorn with gunicorn.conf.py,
DJANGO_DEBUG=0, static files from whitenoise's manifest) on a fresh database
with the sample survey, runs the Sheets mirror against the local Sheets API
emulator at 60 writes a minute, and then:

1. runs Locust headless with the spike shape (loadtests/shapes.py);
2. waits for the mirror to drain and reconciles the answers Locust saw
   succeed, the answered responses in the database and the rows in the sheet;
3. measures, at one concurrency, the requests per second of a bare Django
   request and of the answer round trip (loadtests/capacity.py).

The last line it prints is ``RESULT key=value ...``. It exits with status 1
when an answer was lost or duplicated or a request failed, 2 when a step
could not run, and 130 on Ctrl-C or SIGTERM.
Every process it started is stopped on exit; all traffic goes to 127.0.0.1.

Settings come from the environment: ``BENCH_USERS`` (default 1000),
``BENCH_SPAWN_SECONDS`` (60), ``BENCH_DURATION`` (180, seconds from the start
of the spike to the drop), ``DATABASE_URL`` (empty: SQLite in the run folder;
a PostgreSQL URL on this machine: a fresh database is created beside the one
it names and dropped at the end), ``REDIS_URL`` (rate-limit cache; default: the
database cache table), ``BENCH_CAPACITY_USERS`` (24), ``BENCH_CAPACITY_SECONDS``
(15), ``BENCH_SPIKE`` (1, or 0 to run the capacity phase alone), and
gunicorn's ``WEB_CONCURRENCY``, ``GUNICORN_THREADS`` and
``GUNICORN_WORKER_CLASS``. Logs and Locust's CSV files go to var/bench/<time>/.
"""

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests import reconcile  # noqa: E402
from loadtests.bench_config import (  # noqa: E402
    BenchConfig,
    BenchError,
    FreshPostgres,
    config_from_env,
)
from loadtests.bench_report import print_summary  # noqa: E402
from loadtests.bench_spike import (  # noqa: E402
    SPREADSHEET_ID,
    SURVEY,
    MirrorSupervisor,
    spike_phase,
)
from loadtests.services import LOOPBACK, ServiceFailed, Services, free_port  # noqa: E402

logger = logging.getLogger("bench")

# Every simulated attendee comes from 127.0.0.1, so the per-IP ceiling on POSTs
# (1200 a minute by default, meant for a venue NAT) is raised for the run.
BENCH_POSTS_PER_IP_PER_MINUTE = "100000000"


def server_env(
    config: BenchConfig, *, run_dir: Path, port: int, sheets_port: int, database_url: str
):
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL", "GOOGLE_APPLICATION_CREDENTIALS", "LOCUST_SHAPE"):
        env.pop(name, None)
    env.update(
        DJANGO_SETTINGS_MODULE="survey.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS=f"{LOOPBACK},localhost",
        DJANGO_VAR_DIR=str(run_dir),
        SURVEY_RATE_POSTS_PER_IP_PER_MINUTE=BENCH_POSTS_PER_IP_PER_MINUTE,
        SHEETS_API_URL=f"http://{LOOPBACK}:{sheets_port}",
        SHEETS_SPREADSHEET_ID=SPREADSHEET_ID,
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if config.redis_url:
        env["REDIS_URL"] = config.redis_url
    return env


def prepare_app(services: Services, *, password_file: Path) -> None:
    python = sys.executable
    services.run("migrate", [python, "manage.py", "migrate", "--noinput", "-v0"])
    services.run("createcachetable", [python, "manage.py", "createcachetable"])
    services.run(
        "import_posts",
        [python, "manage.py", "import_posts", "survey/sample/posts.jsonl", "--sample"],
    )
    services.run("collectstatic", [python, "manage.py", "collectstatic", "--noinput", "-v0"])
    services.run(
        "create_organizer",
        [python, "manage.py", "create_organizer", "--password-file", str(password_file)],
    )


def warm_up(host: str, *, timeout: float = 180) -> float:
    """Request the welcome page from many threads until every response is fast; return seconds.

    Django imports the URLconf, and with it every view module, on a worker's
    first request, which takes seconds on a busy machine. Production workers
    are warm by the time a keynote ends, so the spike starts after this.
    """
    url = f"{host}/s/{SURVEY}/"
    concurrency = 16

    def timed_get(_index: int) -> float:
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
        return time.perf_counter() - started

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with ThreadPoolExecutor(concurrency) as pool:
            slowest = max(pool.map(timed_get, range(concurrency * 2)))
        if slowest < 1.0:
            return time.monotonic() - started
    raise BenchError(f"the server still responds slowly after {timeout} s of warm-up")


def run_capacity(config: BenchConfig, services: Services, *, host: str, target: str) -> dict:
    server_pid = services.processes["gunicorn"].pid
    args = [
        sys.executable,
        "loadtests/capacity.py",
        "--host",
        host,
        "--target",
        target,
        "--users",
        str(config.capacity_users),
        "--seconds",
        str(config.capacity_seconds),
        "--survey",
        SURVEY,
        "--server-pid",
        str(server_pid),
    ]
    log = services.log_path(f"capacity-{target}")
    with log.open("ab") as errors:
        completed = subprocess.run(
            args,
            cwd=ROOT,
            env=services.env,
            stdout=subprocess.PIPE,
            stderr=errors,
            timeout=config.capacity_seconds + 400,
            check=False,
        )
    lines = completed.stdout.decode().strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise BenchError(
            f"capacity phase {target} failed (status {completed.returncode}); see {log}"
        )
    return json.loads(lines[-1])


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = config_from_env(dict(os.environ))
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    run_dir = ROOT / "var" / "bench" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    services = None
    database = None
    try:
        database = FreshPostgres(config.database_url) if config.database_url else None
        port, sheets_port = free_port(), free_port()
        env = server_env(
            config,
            run_dir=run_dir,
            port=port,
            sheets_port=sheets_port,
            database_url=database.url if database else "",
        )
        services = Services(log_dir=run_dir, env=env, cwd=ROOT)
        return run(config, services, run_dir=run_dir, port=port, sheets_port=sheets_port)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    except (BenchError, ServiceFailed) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    finally:
        # A second Ctrl-C or SIGTERM must not cut the clean-up short and leave
        # gunicorn, the mirror or the emulator running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if services is not None:
            services.stop_all()
        _close_django_connections()
        if database is not None:
            database.drop()
        logger.info("logs and Locust CSV files are in %s", run_dir)


def _close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def run(
    config: BenchConfig, services: Services, *, run_dir: Path, port: int, sheets_port: int
) -> int:
    host = f"http://{LOOPBACK}:{port}"
    sheets_url = f"http://{LOOPBACK}:{sheets_port}"
    password_file = run_dir / "organizer-password"
    python = sys.executable
    logger.info(
        "bench users=%s spawn_s=%s duration_s=%s database=%s cache=%s spike=%s run_dir=%s",
        config.users,
        config.spawn_seconds,
        config.duration_seconds,
        config.database_label,
        "redis" if config.redis_url else "database",
        config.spike,
        run_dir,
    )
    prepare_app(services, password_file=password_file)
    services.start(
        "sheets-emulator",
        [
            python,
            "-m",
            "tests.fakes.sheets_server",
            "--port",
            str(sheets_port),
            "--writes-per-minute",
            "60",
            "--spreadsheet-id",
            SPREADSHEET_ID,
        ],
    )
    services.wait_for_http("sheets-emulator", f"{sheets_url}/_fake/stats")
    services.start("gunicorn", [python, "-m", "gunicorn", "-c", "gunicorn.conf.py"])
    services.wait_for_http("gunicorn", f"{host}/readyz")
    mirror = MirrorSupervisor(services)
    mirror.start()
    logger.info("warm-up finished seconds=%.1f", warm_up(host))

    os.environ.update(services.env)
    import django

    django.setup()

    values = dict.fromkeys(reconcile.RESULT_KEYS)
    details = {
        "config": config.__dict__ | {"database_url": config.database_label},
        "server": {
            "worker_class": os.environ.get("GUNICORN_WORKER_CLASS", "gunicorn.conf.py default"),
            "workers": os.environ.get("WEB_CONCURRENCY", "gunicorn.conf.py default"),
            "threads": os.environ.get("GUNICORN_THREADS", "gunicorn.conf.py default"),
            "extra_arguments": os.environ.get("GUNICORN_CMD_ARGS", ""),
        },
    }
    clean = True
    spike_errors = 0
    if config.spike:
        spike_values, spike_details = spike_phase(
            config,
            services,
            host=host,
            sheets_url=sheets_url,
            run_dir=run_dir,
            password_file=password_file,
            mirror=mirror,
        )
        values.update(spike_values)
        details.update(spike_details)
        clean = spike_details["clean"]
        spike_errors = spike_values["errors"]
    services.stop("mirror")

    logger.info(
        "capacity phase users=%s seconds=%s", config.capacity_users, config.capacity_seconds
    )
    bare = run_capacity(config, services, host=host, target="bare")
    answer = run_capacity(config, services, host=host, target="answer")
    cpu_ratio = None
    if bare.get("server_cpu_ms_per_request") and answer.get("server_cpu_ms_per_request"):
        cpu_ratio = answer["server_cpu_ms_per_request"] / bare["server_cpu_ms_per_request"]
    values["errors"] = spike_errors + bare["failures"] + answer["failures"]
    values["cost_ratio"] = reconcile.cost_ratio(
        bare_per_second=bare["per_second"], answers_per_second=answer["per_second"]
    )
    details.update(
        capacity={"bare": bare, "answer": answer},
        server_cpu_cost_ratio=cpu_ratio,
        result=values,
    )

    (run_dir / "result.json").write_text(json.dumps(details, indent=2, default=str))
    print_summary(details)
    print(reconcile.result_line(values), flush=True)
    return 0 if clean and values["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
