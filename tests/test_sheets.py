"""The Google Sheets mirror, run with the real gspread client against a local fake API.

Every test that writes checks the sheet against the database: the header, then
exactly one row per answered response, each cell as the export row has it.
"""

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import gspread
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone
from google.auth.credentials import AnonymousCredentials
from google.oauth2 import service_account

from survey import sheets_ledger as ledger
from survey.assignment import serve_next
from survey.export import COLUMNS
from survey.models import MirrorStatus, Participant, Response, WithdrawnSheetRow
from survey.responses import record_answer
from survey.sheets import MirrorFailed, MirrorWorker, cell_value, mirror_status, sheet_cells
from survey.sheets_client import (
    RoutedSession,
    SheetsNotConfigured,
    contiguous_runs,
    load_config,
    load_credentials,
)
from survey.sheets_retry import Backoff
from survey.withdrawal import assign_receipt_code, withdraw
from tests.factories import make_survey, make_topic
from tests.fakes.sheets_server import FakeSheetsServer, formatted_value

pytestmark = pytest.mark.django_db(transaction=True)

SPREADSHEET = "mirror-test-sheet"
WORKSHEET = "responses"
BASE_DIR = Path(__file__).resolve().parent.parent
# Comments that a spreadsheet would turn into formulas, numbers or booleans
# when parsed as typed input.
TRICKY_COMMENTS = [
    '=HYPERLINK("https://example.com/win","click me")',
    "+1",
    "@SUM(A1)",
    "0012",
    "6.10",
    "-3",
    "=1+2",
    "'quoted",
    "TRUE",
    "50%",
    "1e5",
    "  padded  ",
    "한국어 댓글\n두 번째 줄",
]


# Fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def sheets_server():
    with FakeSheetsServer(writes_per_minute=None) as server:
        server.state.add_spreadsheet(SPREADSHEET)
        yield server


@pytest.fixture
def sheets_settings(settings, sheets_server):
    settings.SHEETS_API_URL = sheets_server.url
    settings.SHEETS_SPREADSHEET_ID = SPREADSHEET
    settings.SHEETS_WORKSHEET = WORKSHEET
    settings.GOOGLE_APPLICATION_CREDENTIALS = ""
    return settings


@pytest.fixture
def survey_with_topics(db):
    survey = make_survey(slug="mirror", rounds_per_participant=5)
    for index in range(6):
        make_topic(survey, title=f"Mirror topic {index}")
    return survey


def make_worker(**options) -> MirrorWorker:
    defaults = {
        "interval": 0.01,
        "min_write_interval": 0,
        "backoff": Backoff(base=0.01, cap=0.05, jitter=0.01, rng=random.Random(7)),
        "retry_budget": 30.0,
        "timeout": (2.0, 5.0),
    }
    defaults.update(options)
    return MirrorWorker(**defaults)


def answer_responses(survey, count: int, *, comments=(), unanswered: int = 0) -> list[int]:
    """Answer ``count`` comparisons, five per participant, and leave ``unanswered`` served."""
    comments = list(comments)
    answered: list[int] = []
    while len(answered) < count:
        participant = Participant.objects.create(
            survey=survey, channel="phone", language="en", consented_at=timezone.now()
        )
        for _round in range(survey.rounds_per_participant):
            if len(answered) == count:
                break
            response = serve_next(participant)
            record_answer(
                participant=participant,
                response_id=response.pk,
                guessed_human_id=response.post_a_id,
                preferred_id=response.post_b_id,
                confidence=1 + len(answered) % 5,
                reasons=["style", "gut"] if len(answered) % 2 else [],
                comment=comments.pop(0) if comments else "",
            )
            answered.append(response.pk)
    for _index in range(unanswered):
        participant = Participant.objects.create(
            survey=survey, channel="kiosk", language="en", consented_at=timezone.now()
        )
        serve_next(participant)
    return answered


def sheet_rows(server: FakeSheetsServer, spreadsheet: str = SPREADSHEET) -> list[list[str]]:
    return server.state.values(spreadsheet, WORKSHEET)


def expected_text(response: Response) -> list[str]:
    """The row as the sheet shows it: every typed value formatted, trailing blanks dropped."""
    cells = ["" if value == "" else formatted_value(value) for value in sheet_cells(response)]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def assert_sheet_matches_database(server: FakeSheetsServer, spreadsheet: str = SPREADSHEET):
    rows = sheet_rows(server, spreadsheet)
    answered = {response.pk: response for response in Response.objects.with_posts().answered()}

    assert rows[0] == list(COLUMNS)
    data_rows = rows[1:]
    sheet_ids = [int(row[0]) for row in data_rows]
    assert Counter(sheet_ids) == Counter(answered.keys())
    for row in data_rows:
        assert row == expected_text(answered[int(row[0])])
    for response in answered.values():
        assert response.mirrored_at is not None
        assert rows[response.mirror_row - 1][0] == str(response.pk)


def written_response_ids(server: FakeSheetsServer) -> Counter:
    """How many times any request wrote each response id, the header excluded."""
    return Counter(
        int(value) for value in server.written_first_cells() if value not in ("", COLUMNS[0])
    )


def wait_until(condition, *, timeout: float = 60.0, message: str = "condition") -> None:
    """Poll ``condition`` until it holds; a generous bound that only catches hangs."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {message}")
        time.sleep(0.02)


def gspread_worksheet(server: FakeSheetsServer, spreadsheet: str = SPREADSHEET):
    client = gspread.Client(
        auth=None, session=RoutedSession(AnonymousCredentials(), api_url=server.url)
    )
    client.set_timeout(5)
    return client.open_by_key(spreadsheet).worksheet(WORKSHEET)


def gspread_worksheet_with_tab(server: FakeSheetsServer, *, rows: int = 1000):
    server.state.add_worksheet(SPREADSHEET, WORKSHEET, rows=rows, columns=len(COLUMNS))
    return gspread_worksheet(server)


def run_in_thread(worker: MirrorWorker, **run_options) -> tuple[threading.Thread, list]:
    errors: list[BaseException] = []

    def target():
        try:
            worker.run(**run_options)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="mirror-worker")
    thread.start()
    return thread, errors


def subprocess_env(server: FakeSheetsServer) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items() if key != "GOOGLE_APPLICATION_CREDENTIALS"
    }
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        database_url = f"sqlite:///{database['NAME']}"
    else:
        user = quote(database["USER"] or "", safe="")
        password = quote(database["PASSWORD"] or "", safe="")
        credentials = f"{user}:{password}@" if password else f"{user}@"
        database_url = (
            f"postgres://{credentials}{database['HOST']}:{database['PORT'] or 5432}/"
            f"{database['NAME']}"
        )
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url,
            "SHEETS_API_URL": server.url,
            "SHEETS_SPREADSHEET_ID": SPREADSHEET,
            "SHEETS_WORKSHEET": WORKSHEET,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def wait_for_command(process: subprocess.Popen, condition, *, message: str) -> None:
    """Wait as wait_until does; on a timeout, fail with the command's output."""
    try:
        wait_until(condition, message=message)
    except AssertionError:
        process.kill()
        output, _ = process.communicate(timeout=30)
        raise AssertionError(f"gave up waiting for {message}, command output:\n{output}") from None


def start_command(server: FakeSheetsServer, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "mirror_sheets", *arguments],
        cwd=BASE_DIR,
        env=subprocess_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


# Row shape ----------------------------------------------------------------------


def test_cell_value_joins_lists_and_blanks_none():
    assert cell_value(["style", "gut"]) == "style;gut"
    assert cell_value([]) == ""
    assert cell_value(None) == ""
    assert cell_value(True) is True
    assert cell_value(12) == 12
    assert cell_value("0012") == "0012"


def test_contiguous_runs_groups_consecutive_rows():
    runs = contiguous_runs({5: ["e"], 2: ["b"], 3: ["c"], 9: ["i"]})

    assert runs == [(2, [["b"], ["c"]]), (5, [["e"]]), (9, [["i"]])]


def test_backoff_grows_exponentially_with_jitter_and_cap():
    backoff = Backoff(base=1.0, cap=60.0, jitter=1.0, rng=random.Random(1))

    delays = [backoff.delay(attempt) for attempt in range(10)]

    for attempt, delay in enumerate(delays):
        floor = min(60.0, 2.0**attempt)
        assert floor <= delay <= min(60.0, floor + 1.0)
    assert delays[-1] == 60.0
    assert len({round(delay % 1, 6) for delay in delays[:5]}) > 1


def test_percentile_uses_nearest_rank():
    assert ledger.percentile([], 0.95) is None
    assert ledger.percentile([3.0], 0.95) == 3.0
    assert ledger.percentile([float(value) for value in range(1, 101)], 0.95) == 95.0


# Configuration --------------------------------------------------------------------


def test_config_requires_spreadsheet_id(settings):
    settings.SHEETS_SPREADSHEET_ID = ""

    with pytest.raises(SheetsNotConfigured, match="SHEETS_SPREADSHEET_ID"):
        load_config()


def test_config_requires_credentials_for_google(settings):
    settings.SHEETS_SPREADSHEET_ID = "abc"
    settings.SHEETS_API_URL = ""
    settings.GOOGLE_APPLICATION_CREDENTIALS = ""

    with pytest.raises(SheetsNotConfigured, match="GOOGLE_APPLICATION_CREDENTIALS"):
        load_config()


def test_config_requires_credentials_for_remote_emulator(settings):
    settings.SHEETS_SPREADSHEET_ID = "abc"
    settings.SHEETS_API_URL = "http://sheets-emulator.internal:8765"
    settings.GOOGLE_APPLICATION_CREDENTIALS = ""

    with pytest.raises(SheetsNotConfigured, match="GOOGLE_APPLICATION_CREDENTIALS"):
        load_config()


def test_config_rejects_non_http_api_url(settings):
    settings.SHEETS_SPREADSHEET_ID = "abc"
    settings.SHEETS_API_URL = "ftp://127.0.0.1/"

    with pytest.raises(SheetsNotConfigured, match="not an http or https URL"):
        load_config()


def test_config_reads_environment_when_settings_lack_it(settings, monkeypatch):
    for name in ("SHEETS_SPREADSHEET_ID", "SHEETS_API_URL", "GOOGLE_APPLICATION_CREDENTIALS"):
        if hasattr(django_settings, name):
            delattr(settings, name)
    monkeypatch.setenv("SHEETS_SPREADSHEET_ID", "from-env")
    monkeypatch.setenv("SHEETS_API_URL", "http://127.0.0.1:9/")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)

    config = load_config()

    assert config.spreadsheet_id == "from-env"
    assert config.api_url == "http://127.0.0.1:9"
    assert isinstance(load_credentials(config), AnonymousCredentials)


def test_credentials_file_gives_service_account(settings, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "booth",
                "private_key_id": "0",
                "private_key": pem,
                "client_email": "mirror@booth.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    settings.SHEETS_SPREADSHEET_ID = "abc"
    settings.SHEETS_API_URL = ""
    settings.GOOGLE_APPLICATION_CREDENTIALS = str(key_file)

    credentials = load_credentials(load_config())

    assert isinstance(credentials, service_account.Credentials)
    assert credentials.service_account_email == "mirror@booth.iam.gserviceaccount.com"
    assert "https://www.googleapis.com/auth/spreadsheets" in credentials.scopes


# The fake itself: proof that the checks below can fail -------------------------------


def test_fake_parses_user_entered_values(sheets_server):
    worksheet = gspread_worksheet_with_tab(sheets_server)

    worksheet.update([TRICKY_COMMENTS[:7]], "A1", raw=False)
    worksheet.update([TRICKY_COMMENTS[:7]], "A2", raw=True)

    parsed, raw = sheets_server.state.values(SPREADSHEET, WORKSHEET)[:2]
    assert parsed == ["click me", "1", "@SUM(A1)", "12", "6.1", "-3", "3"]
    assert raw == TRICKY_COMMENTS[:7]


def test_fake_rejects_writes_beyond_the_grid(sheets_server):
    worksheet = gspread_worksheet_with_tab(sheets_server, rows=3)

    with pytest.raises(gspread.exceptions.APIError) as error:
        worksheet.update([["x"]], "A4")

    assert error.value.response.status_code == 400
    assert "exceeds grid limits" in str(error.value)


def test_fake_enforces_write_quota():
    with FakeSheetsServer(writes_per_minute=1) as server:
        server.state.add_spreadsheet(SPREADSHEET)
        worksheet = gspread_worksheet_with_tab(server)
        worksheet.update([["a"]], "A1")

        with pytest.raises(gspread.exceptions.APIError) as error:
            worksheet.update([["b"]], "A2")

    assert error.value.response.status_code == 429
    assert error.value.error["status"] == "RESOURCE_EXHAUSTED"
    assert "Write requests per minute per user" in error.value.error["message"]


def test_fake_runs_as_a_process():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.sheets_server",
            "--port",
            str(port),
            "--writes-per-minute",
            "1",
            "--spreadsheet-id",
            "bench",
        ],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _responds(f"{base}/_fake/stats"), timeout=30, message="fake to start")
        client = gspread.Client(
            auth=None, session=RoutedSession(AnonymousCredentials(), api_url=base)
        )
        worksheet = client.open_by_key("bench").sheet1
        worksheet.update([["0012", "=1+2"]], "A1")
        with pytest.raises(gspread.exceptions.APIError) as error:
            worksheet.update([["over quota"]], "A2")
        with urlopen(f"{base}/_fake/spreadsheets/bench/values/Sheet1", timeout=5) as answer:
            dumped = json.load(answer)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)

    assert error.value.response.status_code == 429
    assert dumped == {"values": [["0012", "=1+2"]]}
    assert process.returncode == 0
    assert "fake Sheets API stopped" in output


def _responds(url: str) -> bool:
    try:
        with urlopen(url, timeout=1):
            return True
    except OSError:
        return False


# Mirroring ----------------------------------------------------------------------------


def test_mirror_writes_each_answered_response_once(
    sheets_settings, sheets_server, survey_with_topics
):
    answered = answer_responses(survey_with_topics, 12, unanswered=3)

    written = make_worker().run(once=True)

    assert written == 12
    assert_sheet_matches_database(sheets_server)
    assert len(sheet_rows(sheets_server)) == 1 + len(answered)
    assert written_response_ids(sheets_server) == Counter(answered)


def test_mirror_keeps_cells_verbatim(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, len(TRICKY_COMMENTS), comments=TRICKY_COMMENTS)

    make_worker().run(once=True)

    rows = sheet_rows(sheets_server)
    comment_column = COLUMNS.index("comment")
    comments = {
        Response.objects.get(pk=int(row[0])).comment: row[comment_column] for row in rows[1:]
    }
    for typed in TRICKY_COMMENTS:
        assert comments[typed] == typed
    formulas = sheets_server.state.values(SPREADSHEET, WORKSHEET, render_option="FORMULA")
    assert all(not isinstance(row[comment_column], int | float) for row in formulas[1:])
    assert_sheet_matches_database(sheets_server)


def test_mirror_joins_reasons_with_semicolons(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 2)

    make_worker().run(once=True)

    reasons_column = COLUMNS.index("reasons")
    by_id = {int(row[0]): row for row in sheet_rows(sheets_server)[1:]}
    with_reasons = Response.objects.answered().exclude(reasons=[]).get()
    assert by_id[with_reasons.pk][reasons_column] == "style;gut"


def test_mirror_sends_no_credentials_to_loopback(
    sheets_settings, sheets_server, survey_with_topics
):
    answer_responses(survey_with_topics, 3)

    make_worker().run(once=True)

    stats = sheets_server.state.snapshot_stats()
    assert stats["requests"] > 0
    assert stats["authorized_requests"] == 0


def test_mirror_adds_only_new_answers(sheets_settings, sheets_server, survey_with_topics):
    first = answer_responses(survey_with_topics, 5)
    make_worker().run(once=True)
    second = answer_responses(survey_with_topics, 4)

    written = make_worker().run(once=True)

    assert written == 4
    assert written_response_ids(sheets_server) == Counter(first + second)
    assert_sheet_matches_database(sheets_server)


def test_mirror_splits_large_backlog_into_batches(
    sheets_settings, sheets_server, survey_with_topics, caplog
):
    answer_responses(survey_with_topics, 11)
    caplog.set_level(logging.INFO, logger="survey.sheets")

    make_worker(batch_size=4).run(once=True)

    batches = [record for record in caplog.records if "sheets batch written" in record.message]
    assert len(batches) == 3
    assert_sheet_matches_database(sheets_server)


def test_mirror_creates_worksheet_and_header(sheets_settings, sheets_server, survey_with_topics):
    make_worker().run(once=True)

    assert sheet_rows(sheets_server) == [list(COLUMNS)]
    rows, columns = sheets_server.state.grid_size(SPREADSHEET, WORKSHEET)
    assert rows == 1000
    assert columns == len(COLUMNS)


def test_mirror_restores_overwritten_header(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 3)
    make_worker().run(once=True)
    gspread_worksheet(sheets_server).update([["id", "who"]], "A1")

    make_worker().run(once=True)

    assert sheet_rows(sheets_server)[0] == list(COLUMNS)
    assert_sheet_matches_database(sheets_server)


def test_mirror_grows_a_small_grid(sheets_settings, sheets_server, survey_with_topics):
    sheets_server.state.add_worksheet(SPREADSHEET, WORKSHEET, rows=4, columns=10)
    answer_responses(survey_with_topics, 12)

    make_worker(batch_size=5).run(once=True)

    rows, columns = sheets_server.state.grid_size(SPREADSHEET, WORKSHEET)
    assert rows >= 13
    assert columns == len(COLUMNS)
    assert_sheet_matches_database(sheets_server)


# Failures and retries ------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault", ["rate_limit", "server_error", "unavailable", "drop_before_apply", "drop_after_apply"]
)
def test_mirror_retries_fault_without_duplicates(
    sheets_settings, sheets_server, survey_with_topics, caplog, fault
):
    answered = answer_responses(survey_with_topics, 6)
    make_worker().run(once=True)
    more = answer_responses(survey_with_topics, 6)
    sheets_server.state.inject(fault, times=2)
    caplog.set_level(logging.INFO)

    make_worker().run(once=True)

    retries = [record for record in caplog.records if "retrying" in record.message]
    assert len(retries) == 2
    assert sheets_server.state.snapshot_stats()["faults_served"] == 2
    assert_sheet_matches_database(sheets_server)
    assert sorted(int(row[0]) for row in sheet_rows(sheets_server)[1:]) == sorted(answered + more)


def test_mirror_retries_after_connection_dropped_once_applied(
    sheets_settings, sheets_server, survey_with_topics
):
    make_worker().run(once=True)
    answered = answer_responses(survey_with_topics, 5)
    sheets_server.state.inject("drop_after_apply", times=1)

    make_worker().run(once=True)

    # The dropped write and its retry both reached the sheet, on the same rows.
    assert written_response_ids(sheets_server) == Counter({pk: 2 for pk in answered})
    assert_sheet_matches_database(sheets_server)


def test_mirror_retries_slow_answer_after_timeout(
    sheets_settings, sheets_server, survey_with_topics, caplog
):
    make_worker().run(once=True)
    answer_responses(survey_with_topics, 5)
    # The server applies the write only after the client gave up waiting.
    sheets_server.state.inject("slow", times=1, delay=1.5)
    caplog.set_level(logging.WARNING, logger="survey.sheets_retry")

    make_worker(timeout=(2.0, 0.5)).run(once=True)
    wait_until(
        lambda: len(list(written_response_ids(sheets_server).elements())) == 10,
        message="the late write to land",
    )

    assert any("timed out" in record.message for record in caplog.records)
    assert_sheet_matches_database(sheets_server)


def test_mirror_waits_out_the_write_quota(survey_with_topics, settings):
    with FakeSheetsServer(writes_per_minute=2, quota_window=1.0) as server:
        server.state.add_spreadsheet(SPREADSHEET)
        settings.SHEETS_API_URL = server.url
        settings.SHEETS_SPREADSHEET_ID = SPREADSHEET
        settings.SHEETS_WORKSHEET = WORKSHEET
        settings.GOOGLE_APPLICATION_CREDENTIALS = ""
        answer_responses(survey_with_topics, 12)

        make_worker(batch_size=2, backoff=Backoff(base=0.25, cap=2.0, jitter=0.25)).run(once=True)

        assert server.state.snapshot_stats()["quota_rejections"] > 0
        assert_sheet_matches_database(server)


def test_mirror_gives_up_once_budget_is_spent(sheets_settings, sheets_server, survey_with_topics):
    make_worker().run(once=True)
    answer_responses(survey_with_topics, 4)
    sheets_server.state.inject("drop_after_apply", times=1000)

    with pytest.raises(MirrorFailed, match="write rows failed"):
        make_worker(retry_budget=0.5).run(once=True)

    # Rows were applied but never acknowledged: they keep their sheet rows and
    # go back to the queue.
    pending = Response.objects.pending_mirror()
    assert pending.count() == 4
    assert not pending.filter(mirror_row__isnull=True).exists()
    assert not pending.filter(mirror_claim__isnull=False).exists()
    assert mirror_status()["last_error"].startswith("RetriesExhausted")

    sheets_server.state.clear_faults()
    make_worker().run(once=True)

    assert_sheet_matches_database(sheets_server)


def test_mirror_recovers_from_claim_never_written(
    sheets_settings, sheets_server, survey_with_topics
):
    make_worker().run(once=True)
    answer_responses(survey_with_topics, 5)
    abandoned = ledger.claim_batch(limit=3).claim
    assert make_worker().run(once=True) == 2

    Response.objects.filter(mirror_claim=abandoned.token).update(
        mirror_claimed_at=timezone.now() - ledger.CLAIM_LEASE - timedelta(seconds=1)
    )
    written = make_worker().run(once=True)

    assert written == 3
    assert_sheet_matches_database(sheets_server)


def test_killed_worker_rows_rewritten_in_place(sheets_settings, sheets_server, survey_with_topics):
    """A worker killed after its write was applied but before it marked the rows."""
    make_worker().run(once=True)
    answered = answer_responses(survey_with_topics, 7)
    # The server applies the write, then delays its response long enough to kill the worker.
    sheets_server.state.inject("drop_after_apply", times=1, delay=60)
    process = start_command(sheets_server, "--interval", "0.05", "--min-write-interval", "0")
    try:
        wait_for_command(
            process, lambda: len(sheet_rows(sheets_server)) == 8, message="the write to land"
        )
    finally:
        process.kill()
        process.communicate(timeout=30)

    claimed = Response.objects.filter(pk__in=answered)
    assert not claimed.filter(mirrored_at__isnull=False).exists()
    assert not claimed.filter(mirror_claim__isnull=True).exists()

    claimed.update(mirror_claimed_at=timezone.now() - ledger.CLAIM_LEASE - timedelta(seconds=1))
    written = make_worker().run(once=True)

    assert written == 7
    assert written_response_ids(sheets_server) == Counter({pk: 2 for pk in answered})
    assert_sheet_matches_database(sheets_server)


def test_stop_interrupts_backoff_and_releases_claim(
    sheets_settings, sheets_server, survey_with_topics
):
    make_worker().run(once=True)
    answer_responses(survey_with_topics, 3)
    sheets_server.state.inject("server_error", times=10_000)
    worker = make_worker(backoff=Backoff(base=0.05, cap=0.2, jitter=0.05))

    thread, errors = run_in_thread(worker)
    wait_until(
        lambda: sheets_server.state.snapshot_stats()["faults_served"] >= 2,
        message="two failed writes",
    )
    worker.stop()
    thread.join(timeout=30)

    assert not thread.is_alive()
    assert errors == []
    pending = Response.objects.pending_mirror()
    assert pending.count() == 3
    assert not pending.filter(mirror_claim__isnull=False).exists()


# Status ------------------------------------------------------------------------------


def test_status_reports_success_and_lag(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 4, unanswered=2)
    assert mirror_status()["pending"] == 4

    make_worker().run(once=True)

    status = mirror_status()
    assert status["configured"] is True
    assert status["pending"] == 0
    assert status["last_success_at"] is not None
    assert status["last_error"] is None
    assert status["lag_seconds_last"] >= 0
    assert status["lag_seconds_p95"] <= status["lag_seconds_last"]
    assert status["rebuilding"] is False


def test_status_reads_no_sheet(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 2)
    before = sheets_server.state.snapshot_stats()["requests"]

    mirror_status()

    assert sheets_server.state.snapshot_stats()["requests"] == before


def test_status_records_missing_spreadsheet(sheets_settings, sheets_server, survey_with_topics):
    sheets_settings.SHEETS_SPREADSHEET_ID = "no-such-sheet"
    answer_responses(survey_with_topics, 2)

    with pytest.raises(MirrorFailed, match="not found"):
        make_worker().run(once=True)

    status = mirror_status()
    assert status["pending"] == 2
    assert "no-such-sheet" in status["last_error"]
    assert status["last_error_at"] is not None
    assert status["last_success_at"] is None


def test_status_records_missing_permission(sheets_settings, sheets_server, survey_with_topics):
    sheets_server.state.inject("forbidden", times=1, applies_to="read")

    with pytest.raises(MirrorFailed, match="Share it with"):
        make_worker().run(once=True)

    assert "no access" in mirror_status()["last_error"]


def test_status_admin_pages_render(
    sheets_settings, sheets_server, survey_with_topics, admin_client
):
    answer_responses(survey_with_topics, 3)
    make_worker().run(once=True)
    status = MirrorStatus.objects.get()

    listing = admin_client.get(reverse("admin:survey_mirrorstatus_changelist"))
    detail = admin_client.get(reverse("admin:survey_mirrorstatus_change", args=[status.pk]))

    assert listing.status_code == 200
    assert SPREADSHEET in listing.content.decode()
    assert detail.status_code == 200
    assert "Answered, not in the sheet yet" in detail.content.decode()


def test_status_when_not_configured(settings):
    settings.SHEETS_SPREADSHEET_ID = ""

    status = mirror_status()

    assert status["configured"] is False
    assert status["pending"] == 0
    assert status["last_success_at"] is None
    assert status["lag_seconds_p95"] is None


# Rebuild and target changes -------------------------------------------------------------


def test_rebuild_drops_deleted_responses_and_stray_rows(
    sheets_settings, sheets_server, survey_with_topics
):
    answer_responses(survey_with_topics, 10)
    make_worker().run(once=True)
    gone = Participant.objects.order_by("pk").first()
    gone_ids = list(gone.responses.values_list("pk", flat=True))
    gone.delete()
    gspread_worksheet(sheets_server).update([["999999", "stray"]], "A40")

    call_command("mirror_sheets", "--rebuild", "--min-write-interval", "0")

    rows = sheet_rows(sheets_server)
    assert len(rows) == 1 + 5
    assert not {str(pk) for pk in gone_ids} & {row[0] for row in rows}
    assert_sheet_matches_database(sheets_server)
    assert mirror_status()["rebuilding"] is False


def test_first_run_clears_rows_left_in_the_sheet(
    sheets_settings, sheets_server, survey_with_topics
):
    # A worksheet left from an earlier database, with rows this one never wrote.
    worksheet = gspread_worksheet_with_tab(sheets_server)
    worksheet.update([["1", "old"], ["2", "old"], ["3", "old"], ["4", "old"]], "A2")
    answer_responses(survey_with_topics, 2)

    make_worker().run(once=True)

    assert len(sheet_rows(sheets_server)) == 3
    assert_sheet_matches_database(sheets_server)


def test_withdrawn_rows_blanked_then_compacted(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 10)
    make_worker().run(once=True)
    leaving = Participant.objects.order_by("pk").first()
    leaving_rows = sorted(leaving.responses.values_list("mirror_row", flat=True))
    withdraw(receipt_code=assign_receipt_code(leaving))

    make_worker().run(once=True)

    rows = sheet_rows(sheets_server)
    for row in leaving_rows:
        assert rows[row - 1] == []
    remaining = set(Response.objects.answered().values_list("pk", flat=True))
    assert {int(row[0]) for row in rows[1:] if row} == remaining
    assert not WithdrawnSheetRow.objects.exists()

    call_command("mirror_sheets", "--rebuild", "--min-write-interval", "0")

    assert len(sheet_rows(sheets_server)) == 1 + len(remaining)
    assert_sheet_matches_database(sheets_server)


def test_rebuild_voids_claims_of_older_generation(
    sheets_settings, sheets_server, survey_with_topics
):
    make_worker().run(once=True)
    answer_responses(survey_with_topics, 3)
    claim = ledger.claim_batch(limit=10).claim

    ledger.begin_rebuild_if_needed(
        spreadsheet_id=SPREADSHEET, worksheet_title=WORKSHEET, columns=COLUMNS, force=True
    )

    with pytest.raises(ledger.StaleClaim):
        ledger.check_current(claim)
    assert ledger.claim_batch(limit=10).waiting_for_rebuild


def test_rebuild_leaves_later_answers_to_ordinary_claims(
    sheets_settings, sheets_server, survey_with_topics
):
    make_worker().run(once=True)
    earlier = answer_responses(survey_with_topics, 3)
    start = ledger.begin_rebuild_if_needed(
        spreadsheet_id=SPREADSHEET, worksheet_title=WORKSHEET, columns=COLUMNS, force=True
    )
    answer_responses(survey_with_topics, 2)

    first = ledger.claim_batch(limit=10, rebuild_token=start.token, answered_until=start.started_at)
    second = ledger.claim_batch(
        limit=10, rebuild_token=start.token, answered_until=start.started_at
    )

    assert sorted(first.claim.rows) == sorted(earlier)
    assert second.claim is None


def test_abandoned_rebuild_is_taken_over(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 6)
    make_worker().run(once=True)
    ledger.begin_rebuild_if_needed(
        spreadsheet_id=SPREADSHEET, worksheet_title=WORKSHEET, columns=COLUMNS, force=True
    )
    assert make_worker().run(once=True) == 0

    MirrorStatus.objects.update(
        rebuild_heartbeat_at=timezone.now() - ledger.CLAIM_LEASE - timedelta(seconds=1)
    )
    written = make_worker().run(once=True)

    assert written == 6
    assert mirror_status()["rebuilding"] is False
    assert_sheet_matches_database(sheets_server)


def test_changed_columns_rebuild_the_sheet(
    sheets_settings, sheets_server, survey_with_topics, caplog
):
    answer_responses(survey_with_topics, 4)
    make_worker().run(once=True)
    # As if the rows had been written by a release whose row shape lacked a column.
    MirrorStatus.objects.update(columns=list(COLUMNS[:-1]))
    caplog.set_level(logging.INFO, logger="survey.sheets")

    written = make_worker().run(once=True)

    assert written == 4
    assert any("reason=new columns" in record.message for record in caplog.records)
    assert_sheet_matches_database(sheets_server)


def test_new_spreadsheet_gets_every_row(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 5)
    make_worker().run(once=True)
    sheets_server.state.add_spreadsheet("second-sheet")
    sheets_settings.SHEETS_SPREADSHEET_ID = "second-sheet"

    written = make_worker().run(once=True)

    assert written == 5
    assert_sheet_matches_database(sheets_server, "second-sheet")


# Several workers ---------------------------------------------------------------------------


def run_workers_during_spike(server: FakeSheetsServer, survey, *, workers: int) -> list[int]:
    """Run ``workers`` workers while answers arrive, and return the answered ids."""
    # The first run's rebuild is done, so the workers go straight to claiming.
    make_worker().run(once=True)
    answered = answer_responses(survey, 10)
    # Pacing each worker's writes makes the others take the batches it cannot.
    running = [make_worker(batch_size=3, min_write_interval=0.05) for _index in range(workers)]
    threads = [run_in_thread(worker) for worker in running]
    answered += answer_responses(survey, 30)
    wait_until(
        lambda: not Response.objects.pending_mirror().exists(), message="the backlog to drain"
    )
    for worker in running:
        worker.stop()
    for thread, errors in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert errors == []
    assert sum(worker.rows_written for worker in running) == len(answered)
    # Ten answers wait when the workers start, so more than one of them gets a batch.
    assert sum(1 for worker in running if worker.rows_written) >= 2
    return answered


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (set DATABASE_URL)")
def test_three_workers_write_once_on_postgresql(sheets_settings, sheets_server, survey_with_topics):
    """Three workers claim with FOR UPDATE SKIP LOCKED while answers keep arriving.

    It runs when DATABASE_URL points at PostgreSQL, as CI does on its
    PostgreSQL run, and is skipped on SQLite.
    """
    answered = run_workers_during_spike(sheets_server, survey_with_topics, workers=3)

    assert written_response_ids(sheets_server) == Counter(answered)
    assert_sheet_matches_database(sheets_server)


def test_two_workers_write_each_response_once(sheets_settings, sheets_server, survey_with_topics):
    answered = run_workers_during_spike(sheets_server, survey_with_topics, workers=2)

    assert written_response_ids(sheets_server) == Counter(answered)
    assert_sheet_matches_database(sheets_server)


# The command ----------------------------------------------------------------------------------


def test_command_once_logs_start_batches_and_stop(
    sheets_settings, sheets_server, survey_with_topics, caplog, capsys
):
    answer_responses(survey_with_topics, 3)
    caplog.set_level(logging.INFO, logger="survey.sheets")

    call_command("mirror_sheets", "--once", "--min-write-interval", "0")

    messages = [record.message for record in caplog.records]
    assert any(message.startswith("sheets mirror started") for message in messages)
    assert any(message.startswith("sheets batch written rows=3") for message in messages)
    assert messages[-1] == "sheets mirror stopped rows_written=3"
    assert "Wrote 3 row(s)" in capsys.readouterr().err
    assert_sheet_matches_database(sheets_server)


def test_command_once_without_configuration_fails(settings):
    settings.SHEETS_SPREADSHEET_ID = ""

    with pytest.raises(CommandError, match="not configured: SHEETS_SPREADSHEET_ID is not set"):
        call_command("mirror_sheets", "--once")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--interval", "0", "expected more than 0 seconds"),
        ("--interval", "soon", "is not a number of seconds"),
        ("--min-write-interval", "-1", "expected 0 or more seconds"),
        ("--min-write-interval", "nan", "expected 0 or more seconds"),
    ],
)
def test_command_rejects_bad_seconds(sheets_settings, option, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("mirror_sheets", "--once", option, value)


def test_command_rejects_bad_batch_size(sheets_settings):
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("mirror_sheets", "--once", "--batch-size", "0")


def test_unconfigured_worker_idles_until_stopped(settings, caplog):
    settings.SHEETS_SPREADSHEET_ID = ""
    caplog.set_level(logging.INFO, logger="survey.sheets")
    worker = make_worker()

    thread, errors = run_in_thread(worker)
    wait_until(
        lambda: any("not configured" in r.message for r in caplog.records),
        message="the not-configured message",
    )
    worker.stop()
    thread.join(timeout=30)

    assert errors == []
    not_configured = [r for r in caplog.records if "not configured" in r.message]
    assert len(not_configured) == 1
    assert not_configured[0].levelno == logging.WARNING


def test_command_stops_on_sigterm(sheets_settings, sheets_server, survey_with_topics):
    answer_responses(survey_with_topics, 4)
    process = start_command(sheets_server, "--interval", "0.05", "--min-write-interval", "0")
    try:
        wait_for_command(
            process,
            lambda: not Response.objects.pending_mirror().exists(),
            message="the mirror to drain",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)

    assert process.returncode == 0
    assert "sheets mirror stopping signal=SIGTERM" in output
    assert "sheets mirror stopped rows_written=4" in output
    assert_sheet_matches_database(sheets_server)
