"""The spike phase of the benchmark: Locust with the spike shape, the mirror, the reconciliation."""

import csv
import json
import logging
import os
import sys
import time
import urllib.request
from pathlib import Path

from loadtests import reconcile
from loadtests.bench_config import BenchConfig, BenchError
from loadtests.ledger import read_answers_file
from loadtests.services import Services

logger = logging.getLogger("bench")

SPREADSHEET_ID = "bench"
WORKSHEET = "responses"
SURVEY = "booth"
# Seconds a leaving user gets to finish its journey: five rounds of at most
# 20 s of reading plus the welcome page, with room for slow answers.
STOP_TIMEOUT_SECONDS = 150
MIRROR_DRAIN_TIMEOUT_SECONDS = 240

MIRROR_COMMAND = ["manage.py", "mirror_sheets"]


class MirrorSupervisor:
    """Keeps one Sheets mirror worker running and counts how often it had to be restarted.

    The mirror claims rows through the database, so a worker that dies and a
    new one that takes over still write every row once. A process manager in
    production restarts it the same way.
    """

    def __init__(self, services: Services):
        self.services = services
        self.restarts = 0

    def start(self) -> None:
        self.services.start("mirror", [sys.executable, *MIRROR_COMMAND])

    def ensure_running(self) -> None:
        process = self.services.processes.get("mirror")
        if process is not None and process.poll() is None:
            return
        status = process.returncode if process is not None else None
        logger.warning("mirror exited status=%s, restarting it", status)
        self.services.stop("mirror")
        self.restarts += 1
        self.start()


def run_spike(
    config: BenchConfig,
    services: Services,
    *,
    host: str,
    run_dir: Path,
    password_file: Path,
    mirror: MirrorSupervisor,
) -> dict:
    """Run Locust headless with the spike shape and return its answers file's content."""
    env = dict(services.env)
    env.update(
        LOCUST_SHAPE="spike",
        BENCH_USERS=str(config.users),
        BENCH_SPAWN_SECONDS=str(config.spawn_seconds),
        BENCH_DURATION=str(config.duration_seconds),
    )
    answers_file = run_dir / "answers.json"
    args = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "loadtests/locustfile.py",
        "--headless",
        "--host",
        host,
        "--csv",
        str(run_dir / "spike"),
        "--stop-timeout",
        str(STOP_TIMEOUT_SECONDS),
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--survey",
        SURVEY,
        "--organizer-password-file",
        str(password_file),
        "--answers-file",
        str(answers_file),
    ]
    process = services.start("locust-spike", args, env=env)
    deadline = time.monotonic() + config.duration_seconds + STOP_TIMEOUT_SECONDS + 120
    next_report = time.monotonic() + 15
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise BenchError("Locust did not finish the spike in time; see locust-spike.log.")
        if time.monotonic() >= next_report:
            _report_progress(run_dir / "spike_stats_history.csv")
            next_report += 15
        mirror.ensure_running()
        time.sleep(1)
    services.stop("locust-spike")
    if not answers_file.exists():
        raise BenchError(
            f"Locust exited with status {process.returncode} without writing {answers_file}; "
            "see locust-spike.log."
        )
    return read_answers_file(answers_file)


def _report_progress(history: Path) -> None:
    rows = _read_csv(history)
    if rows:
        last = rows[-1]
        logger.info(
            "spike users=%s requests_per_s=%s failures=%s p95_ms=%s",
            last.get("User Count"),
            last.get("Requests/s"),
            last.get("Total Failure Count"),
            last.get("95%"),
        )


def _read_csv(path: Path) -> list[dict]:
    try:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []


def spike_stats(run_dir: Path) -> dict:
    """Return the spike's request statistics from Locust's CSV files."""
    rows = {row["Name"]: row for row in _read_csv(run_dir / "spike_stats.csv")}
    history = _read_csv(run_dir / "spike_stats_history.csv")
    answer = rows.get("answer", {})
    total = rows.get("Aggregated", {})

    def number(row: dict, key: str) -> float | None:
        value = row.get(key, "")
        return float(value) if value not in ("", "N/A") else None

    return {
        "peak_users": max((int(row["User Count"]) for row in history), default=0),
        "requests": int(number(total, "Request Count") or 0),
        "failures": int(number(total, "Failure Count") or 0),
        "answers": int(number(answer, "Request Count") or 0),
        "answer_p50_ms": number(answer, "50%"),
        "answer_p95_ms": number(answer, "95%"),
        "answer_p99_ms": number(answer, "99%"),
        "all_p95_ms": number(total, "95%"),
        "all_p99_ms": number(total, "99%"),
        "failure_rows": _read_csv(run_dir / "spike_failures.csv"),
        "per_name": {
            name: (int(row["Request Count"]), row["95%"], row["Failure Count"])
            for name, row in rows.items()
        },
    }


def wait_for_mirror(mirror: MirrorSupervisor, timeout: float) -> int:
    """Wait until the mirror has written every answered response; return those still pending."""
    from survey.models import Response

    deadline = time.monotonic() + timeout
    pending = Response.objects.pending_mirror().count()
    while pending and time.monotonic() < deadline:
        mirror.ensure_running()
        time.sleep(1)
        pending = Response.objects.pending_mirror().count()
    return pending


def database_answers() -> dict[int, dict]:
    """Return every answered response's comment and mirror lag in seconds, by response id."""
    from survey.models import Response

    answers = {}
    for response_id, comment, answered_at, mirrored_at in Response.objects.answered().values_list(
        "pk", "comment", "answered_at", "mirrored_at"
    ):
        lag = (mirrored_at - answered_at).total_seconds() if mirrored_at else None
        answers[response_id] = {"comment": comment, "lag": lag}
    return answers


def sheet_rows(sheets_url: str) -> list[dict]:
    """Return the sheet's data rows as dicts keyed by the header row."""
    url = f"{sheets_url}/_fake/spreadsheets/{SPREADSHEET_ID}/values/{WORKSHEET}"
    with urllib.request.urlopen(url, timeout=30) as response:
        values = json.load(response)["values"]
    if not values:
        return []
    header = values[0]
    rows = []
    for raw in values[1:]:
        if not raw or not raw[0]:
            continue
        rows.append(dict(zip(header, raw + [""] * (len(header) - len(raw)), strict=True)))
    return rows


def spike_phase(
    config: BenchConfig,
    services: Services,
    *,
    host: str,
    sheets_url: str,
    run_dir: Path,
    password_file: Path,
    mirror: MirrorSupervisor,
) -> tuple[dict, dict]:
    """Run the spike, drain the mirror and reconcile; return RESULT values and details.

    ``details["clean"]`` is False when an answer was lost or duplicated, a sheet
    row is unknown, or a comment cell differs from the text stored.
    """
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    answers = run_spike(
        config,
        services,
        host=host,
        run_dir=run_dir,
        password_file=password_file,
        mirror=mirror,
    )
    load_after = os.getloadavg()[0]
    logger.info("spike finished seconds=%.0f", time.monotonic() - started)
    pending = wait_for_mirror(mirror, MIRROR_DRAIN_TIMEOUT_SECONDS)
    if pending:
        logger.warning("mirror did not drain pending=%s", pending)

    stored = database_answers()
    rows = sheet_rows(sheets_url)
    outcome = reconcile.reconcile(
        seen_ok=answers["response_ids"],
        database=stored.keys(),
        sheet=[int(row["response_id"]) for row in rows],
    )
    mismatched_comments = sum(
        1
        for row in rows
        if int(row["response_id"]) in stored
        and row.get("comment", "") != stored[int(row["response_id"])]["comment"]
    )
    lags = [answer["lag"] for answer in stored.values() if answer["lag"] is not None]
    stats = spike_stats(run_dir)
    values = {
        "users": stats["peak_users"],
        "answers_ok": outcome.answers_ok,
        "answers_db": outcome.answers_db,
        "sheet_rows": outcome.sheet_rows,
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "errors": stats["failures"],
        "p50_ms": stats["answer_p50_ms"],
        "p95_ms": stats["answer_p95_ms"],
        "p99_ms": stats["answer_p99_ms"],
        "mirror_lag_p95_s": reconcile.percentile(lags, 0.95),
    }
    details = {
        "spike": {key: value for key, value in stats.items() if key != "failure_rows"},
        "failure_rows": stats["failure_rows"],
        # One-minute load average of the machine, which other work shares.
        "load_average": {"before_spike": load_before, "after_spike": load_after},
        "journeys": answers.get("journeys", {}),
        "locust_cpu": answers.get("locust_cpu", {}),
        "reconciliation": outcome.__dict__ | {"mismatched_comments": mismatched_comments},
        "mirror_pending_after_drain": pending,
        "mirror_restarts": mirror.restarts,
        "clean": outcome.clean and mismatched_comments == 0,
    }
    return values, details
