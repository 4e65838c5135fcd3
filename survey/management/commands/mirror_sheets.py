"""Mirror answered responses to Google Sheets until stopped.

SIGTERM or a first Ctrl-C stops the worker after the request in progress, and
a second Ctrl-C interrupts at once.
"""

import logging
import math
import signal
import threading
from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError

from survey.sheets import DEFAULT_BATCH_SIZE, MirrorFailed, MirrorWorker
from survey.sheets_client import SheetsNotConfigured

logger = logging.getLogger(__name__)


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ArgumentTypeError(f"{text} is invalid, expected 0 or more seconds")
    return value


def positive_seconds(text: str) -> float:
    value = seconds(text)
    if value == 0:
        raise ArgumentTypeError(f"{text} is invalid, expected more than 0 seconds")
    return value


class Command(BaseCommand):
    help = "Write answered responses to the Google Sheet in batches, until stopped."

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--once", action="store_true", help="Write every pending response, then exit."
        )
        mode.add_argument(
            "--rebuild",
            action="store_true",
            help="Rewrite the whole sheet from the database, then exit. Responses deleted "
            "in the database disappear from the sheet.",
        )
        parser.add_argument(
            "--interval",
            type=positive_seconds,
            default=1.0,
            help="Seconds between checks for new answers (default 1).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Maximum rows per write request (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--min-write-interval",
            type=seconds,
            default=2.0,
            help="Minimum seconds between write requests to Google (default 2, that is at "
            "most 30 writes a minute).",
        )

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError(f"--batch-size must be at least 1, got {options['batch_size']}.")
        worker = MirrorWorker(
            interval=options["interval"],
            batch_size=options["batch_size"],
            min_write_interval=options["min_write_interval"],
        )
        previous = self._install_signal_handlers(worker)
        try:
            written = worker.run(once=options["once"], rebuild=options["rebuild"])
        except SheetsNotConfigured as error:
            raise CommandError(
                f"Google Sheets is not configured: {error}. See docs/sheets.md."
            ) from error
        except MirrorFailed as error:
            raise CommandError(str(error)) from error
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if options["once"] or options["rebuild"]:
            self.stderr.write(f"Wrote {written} row(s) to the sheet.")

    def _install_signal_handlers(self, worker: MirrorWorker) -> dict:
        def request_stop(signum, frame):
            logger.warning("sheets mirror stopping signal=%s", signal.Signals(signum).name)
            worker.stop()
            # A second Ctrl-C raises KeyboardInterrupt as usual.
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = {}
        if threading.current_thread() is not threading.main_thread():
            # Only the main thread may set signal handlers, so here the caller stops the worker.
            return previous
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, request_stop)
        return previous
