"""Mirror answered responses to a Google Sheet, in batches, from a background worker.

The database is the source of truth, and the sheet is a live copy for
researchers. No web request calls Google, because the results page reads
``mirror_status()``, which only queries the database. ``manage.py mirror_sheets``
runs ``MirrorWorker``.

One sheet row per answered response, in the export row shape
(``survey.export.COLUMNS``), under a header row. How each response keeps
exactly one row through retries, crashes and several workers is described in
``survey.sheets_ledger``.
"""

import logging
import threading
import time

import requests
from django.db import DatabaseError, close_old_connections
from django.utils import timezone
from google.auth.exceptions import GoogleAuthError
from gspread.exceptions import GSpreadException

from survey import sheets_ledger as ledger
from survey.export import COLUMNS, response_row
from survey.models import Response, WithdrawnSheetRow
from survey.sheets_client import (
    REQUEST_TIMEOUT,
    MirrorSheet,
    SheetsAccessError,
    SheetsConfig,
    SheetsNotConfigured,
    load_config,
)
from survey.sheets_retry import Backoff, Retrier, RetriesExhausted, StopRequested, WriteThrottle
from survey.withdrawal import due_sheet_rows

logger = logging.getLogger(__name__)

LIST_SEPARATOR = ";"
# Rows per write request. A row with a 500-character Korean comment is about
# 4 kB of JSON (each character escaped as \uXXXX), so 300 such rows stay under
# the 2 MB request payload that Google recommends.
DEFAULT_BATCH_SIZE = 300
# Failures with a known cause, logged without a traceback. OSError and
# ValueError come from a missing or malformed credentials file.
EXPECTED_ERRORS = (
    SheetsAccessError,
    GSpreadException,
    requests.RequestException,
    GoogleAuthError,
    RetriesExhausted,
    DatabaseError,
    OSError,
    ValueError,
)


class MirrorFailed(Exception):
    """A one-shot run (``--once`` or ``--rebuild``) could not finish."""


def cell_value(value):
    """Return the value to send for one export field.

    Text stays text and numbers and booleans stay typed, because the mirror
    writes RAW. None becomes an empty string, because the API skips null
    cells instead of clearing them.
    """
    if value is None:
        return ""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(item) for item in value)
    return value


def sheet_cells(response: Response) -> list:
    row = response_row(response)
    return [cell_value(row[column]) for column in COLUMNS]


def mirror_status() -> dict:
    """Return the mirror's state for organizers. It reads the database and never calls Google.

    Keys: ``configured``, ``pending`` (answered responses not in the sheet yet),
    ``last_success_at``, ``last_error``, ``last_error_at``, ``lag_seconds_last``
    (the oldest answer of the last batch, from answer to write), ``lag_seconds_p95``
    (over the most recent rows) and ``rebuilding``.
    """
    try:
        load_config()
        configured = True
    except SheetsNotConfigured:
        configured = False
    status = ledger.current_status()
    samples = list(status.lag_samples) if status else []
    return {
        "configured": configured,
        "pending": Response.objects.pending_mirror().count(),
        "last_success_at": status.last_success_at if status else None,
        "last_error": (status.last_error or None) if status else None,
        "last_error_at": status.last_error_at if status else None,
        "lag_seconds_last": status.lag_seconds_last if status else None,
        "lag_seconds_p95": ledger.percentile(samples, 0.95),
        "rebuilding": bool(status and status.rebuild_claim),
    }


class MirrorWorker:
    """Claim answered responses in batches, write them to their sheet rows, mark them mirrored.

    Each wake drains everything pending in batches of up to ``batch_size`` rows,
    with write requests at least ``min_write_interval`` seconds apart, so a
    spike of answers becomes a few large writes, far below Google's quota of
    60 write requests a minute per user.
    """

    def __init__(
        self,
        *,
        config: SheetsConfig | None = None,
        interval: float = 1.0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        min_write_interval: float = 2.0,
        backoff: Backoff | None = None,
        retry_budget: float = 300.0,
        timeout: float | tuple[float, float] = REQUEST_TIMEOUT,
        header_check_interval: float = 300.0,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.config = config
        self.interval = interval
        self.batch_size = batch_size
        self.timeout = timeout
        self.header_check_interval = header_check_interval
        self.stop_event = threading.Event()
        self.backoff = backoff or Backoff()
        self.retrier = Retrier(
            backoff=self.backoff, stop_event=self.stop_event, budget_seconds=retry_budget
        )
        self.throttle = WriteThrottle(min_interval=min_write_interval, stop_event=self.stop_event)
        self.sheet: MirrorSheet | None = None
        # Responses this worker marked as mirrored, over all runs.
        self.rows_written = 0
        self._header_checked_at = 0.0
        self._waiting_logged = False

    def stop(self) -> None:
        """Ask the worker to stop after the current request. Safe to call from a signal handler."""
        self.stop_event.set()

    def run(self, *, once: bool = False, rebuild: bool = False) -> int:
        """Mirror until stopped and return the number of rows written.

        ``once`` drains what is pending and returns; ``rebuild`` rewrites the
        whole sheet from the database and returns. Both raise
        SheetsNotConfigured or MirrorFailed instead of idling or retrying later.
        """
        one_shot = once or rebuild
        try:
            self.config = self.config or load_config()
        except SheetsNotConfigured as error:
            if one_shot:
                raise
            logger.warning("sheets mirror not configured, idling until stopped reason=%s", error)
            self.stop_event.wait()
            logger.info("sheets mirror stopped rows_written=0")
            return 0

        mode = "continuous"
        if rebuild:
            mode = "rebuild"
        elif once:
            mode = "once"
        logger.info(
            "sheets mirror started spreadsheet=%s worksheet=%s mode=%s batch_size=%s "
            "interval_s=%s min_write_interval_s=%s",
            self.config.spreadsheet_id,
            self.config.worksheet_title,
            mode,
            self.batch_size,
            self.interval,
            self.throttle.min_interval,
        )
        written_before = self.rows_written
        failures = 0
        force_rebuild = rebuild
        try:
            while not self.stop_event.is_set():
                close_old_connections()
                try:
                    self._cycle(force_rebuild=force_rebuild)
                    force_rebuild = False
                    failures = 0
                except StopRequested:
                    break
                except ledger.StaleClaim as error:
                    logger.info("sheets mirror batch dropped reason=%s", error)
                except Exception as error:
                    failures += 1
                    self._record_failure(error)
                    if one_shot:
                        raise MirrorFailed(f"Sheets mirror failed: {error}") from error
                    delay = self.backoff.delay(failures - 1)
                    logger.info("sheets mirror retrying after failure delay_s=%.1f", delay)
                    if self.stop_event.wait(delay):
                        break
                    continue
                if one_shot:
                    break
                self.stop_event.wait(self.interval)
        finally:
            logger.info("sheets mirror stopped rows_written=%s", self.rows_written - written_before)
        return self.rows_written - written_before

    def _cycle(self, *, force_rebuild: bool) -> None:
        if self.sheet is None:
            self._connect()
        elif time.monotonic() - self._header_checked_at > self.header_check_interval:
            self.sheet.ensure_header()
            self._header_checked_at = time.monotonic()

        start = ledger.begin_rebuild_if_needed(
            spreadsheet_id=self.config.spreadsheet_id,
            worksheet_title=self.config.worksheet_title,
            columns=COLUMNS,
            force=force_rebuild,
        )
        if start is not None:
            self._rebuild(start)
        else:
            self._drain()
            self._blank_withdrawn()

    def _connect(self) -> None:
        sheet = MirrorSheet(
            config=self.config,
            header=COLUMNS,
            retrier=self.retrier,
            throttle=self.throttle,
            timeout=self.timeout,
        )
        sheet.open()
        self.sheet = sheet
        self._header_checked_at = time.monotonic()

    def _drain(self, *, rebuild: ledger.RebuildStart | None = None) -> None:
        """Mirror batches until nothing is left to claim. Raise StopRequested on a stop request."""
        while True:
            if self.stop_event.is_set():
                raise StopRequested("stop requested between batches")
            if rebuild is None and not Response.objects.pending_mirror().exists():
                return
            # Claim only once the next write may go, so that the batch takes in
            # every answer that arrived during the wait and leaves at once.
            self.throttle.wait()
            outcome = ledger.claim_batch(
                limit=self.batch_size,
                rebuild_token=rebuild.token if rebuild else None,
                answered_until=rebuild.started_at if rebuild else None,
            )
            if outcome.rebuild_abandoned:
                logger.warning("sheets mirror taking over an abandoned rebuild")
                start = ledger.begin_rebuild_if_needed(
                    spreadsheet_id=self.config.spreadsheet_id,
                    worksheet_title=self.config.worksheet_title,
                    columns=COLUMNS,
                    force=False,
                )
                if start is not None:
                    self._rebuild(start)
                return
            if outcome.waiting_for_rebuild:
                if not self._waiting_logged:
                    logger.info("sheets mirror waiting for another worker's rebuild")
                    self._waiting_logged = True
                return
            self._waiting_logged = False
            if outcome.claim is None:
                return
            # A rebuild's rows were in the sheet before, except on a first run.
            self._mirror(
                outcome.claim, record_lag=rebuild is None or not rebuild.rewrites_mirrored_rows
            )

    def _mirror(self, claim: ledger.Claim, *, record_lag: bool) -> None:
        try:
            rows = self._rows_for(claim)
            self.sheet.write_rows(rows, before_attempt=lambda: ledger.check_current(claim))
        except BaseException:
            self._release(claim)
            raise
        written_at = timezone.now()
        marked = ledger.mark_mirrored(claim, written_at=written_at, record_lag=record_lag)
        self.rows_written += marked
        lag = max(
            ((written_at - answered).total_seconds() for answered in claim.answered_at.values()),
            default=0.0,
        )
        logger.info(
            "sheets batch written rows=%s marked=%s first_row=%s last_row=%s max_lag_s=%.2f "
            "rebuild=%s",
            len(rows),
            marked,
            min(rows),
            max(rows),
            lag,
            claim.for_rebuild,
        )

    def _blank_withdrawn(self) -> None:
        """Blank the sheet rows of withdrawn responses (see survey.withdrawal)."""
        if not WithdrawnSheetRow.objects.exists():
            return
        status = ledger.current_status()
        if status is None or status.rebuild_claim is not None:
            # The rebuild leaves withdrawn responses out. Rows withdrawn while
            # it runs belong to its generation and are blanked after it.
            return
        due = due_sheet_rows(generation=status.generation)
        if not due:
            return
        rows = {tombstone.row: [""] * len(COLUMNS) for tombstone in due}
        self.sheet.write_rows(
            rows, before_attempt=lambda: ledger.check_generation(status.generation)
        )
        WithdrawnSheetRow.objects.filter(pk__in=[tombstone.pk for tombstone in due]).delete()
        logger.info(
            "withdrawn sheet rows blanked rows=%s generation=%s",
            sorted(rows),
            status.generation,
        )

    def _rows_for(self, claim: ledger.Claim) -> dict[int, list]:
        responses = Response.objects.with_posts().in_bulk(list(claim.rows))
        rows = {}
        for response_id, row in claim.rows.items():
            response = responses.get(response_id)
            if response is None:
                # Deleted after the claim: blank its row, which an earlier
                # attempt may have filled.
                logger.warning(
                    "claimed response deleted before writing response=%s row=%s",
                    response_id,
                    row,
                )
                rows[row] = [""] * len(COLUMNS)
            else:
                rows[row] = sheet_cells(response)
        return rows

    def _rebuild(self, start: ledger.RebuildStart) -> None:
        written_before = self.rows_written
        logger.info(
            "sheets rebuild started reason=%s generation=%s live_claims=%s",
            start.reason,
            start.generation,
            start.live_claims,
        )
        try:
            if start.live_claims:
                # Another worker may have a write in flight with row numbers
                # that are now void, so let it land before rewriting those rows.
                wait = _read_timeout(self.timeout) + 1.0
                logger.info("sheets rebuild waiting for in-flight writes wait_s=%.0f", wait)
                if self.stop_event.wait(wait):
                    raise StopRequested("stop requested while the rebuild waited")
            self.sheet.ensure_header()
            self._drain(rebuild=start)
            self.sheet.clear_rows_from(ledger.next_row())
            ledger.finish_rebuild(start.token)
        except BaseException:
            ledger.abandon_rebuild(start.token)
            logger.warning(
                "sheets rebuild stopped before finishing; the next worker run restarts it "
                "generation=%s",
                start.generation,
            )
            raise
        logger.info(
            "sheets rebuild finished rows=%s generation=%s",
            self.rows_written - written_before,
            start.generation,
        )

    def _release(self, claim: ledger.Claim) -> None:
        try:
            released = ledger.release(claim)
        except Exception:
            # The lease expires on its own, and the next claim after it rewrites the rows.
            logger.exception("releasing a claim failed claim=%s", claim.token)
            return
        logger.info("sheets claim released claim=%s responses=%s", claim.token, released)

    def _record_failure(self, error: Exception) -> None:
        # The connection may be broken or the worksheet deleted, so reopen next time.
        self.sheet = None
        message = f"{type(error).__name__}: {error}"
        if isinstance(error, EXPECTED_ERRORS):
            logger.error("sheets mirror cycle failed error=%s", message)
        else:
            logger.exception("sheets mirror cycle failed unexpectedly error=%s", message)
        try:
            ledger.record_error(message)
        except Exception:
            logger.exception("recording the mirror error failed error=%s", message)


def _read_timeout(timeout: float | tuple[float, float]) -> float:
    return timeout[1] if isinstance(timeout, tuple) else timeout
