import logging
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from survey.export import ExportFilterForm, export_rows, write_csv, write_jsonl

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Write one row per answered response as CSV or JSON Lines. Answers faster than "
        "the survey's minimum answer time are left out unless --include-too-fast is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument(
            "--output", type=Path, help="File to write; standard output when left out."
        )
        parser.add_argument("--survey", help="Slug of the survey to export; all when left out.")
        parser.add_argument(
            "--since",
            help="First day (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM, UTC) a comparison was served.",
        )
        parser.add_argument(
            "--until",
            help=(
                "Last day to include (YYYY-MM-DD), or a time (YYYY-MM-DDTHH:MM, UTC) "
                "before which comparisons were served."
            ),
        )
        parser.add_argument(
            "--include-unanswered",
            action="store_true",
            help="Also write responses that were served but not answered.",
        )
        parser.add_argument(
            "--include-too-fast",
            action="store_true",
            help="Also write answers faster than the survey's minimum answer time.",
        )

    def handle(self, *args, **options):
        form = ExportFilterForm(
            data={
                "survey": options["survey"] or "",
                "since": options["since"] or "",
                "until": options["until"] or "",
                "include_unanswered": options["include_unanswered"],
                "include_too_fast": options["include_too_fast"],
            }
        )
        if not form.is_valid():
            messages = [
                f"--{field.replace('_', '-')}: {error}" if field != "__all__" else str(error)
                for field, errors in form.errors.items()
                for error in errors
            ]
            raise CommandError("Invalid export filter. " + " ".join(messages))
        export_filter = form.export_filter()

        rows = export_rows(export_filter)
        writer = write_csv if options["format"] == "csv" else write_jsonl
        output: Path | None = options["output"]
        if output is None:
            count = writer(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as stream:
                count = writer(rows, stream)
        logger.info(
            "responses exported rows=%s format=%s survey=%s output=%s",
            count,
            options["format"],
            export_filter.survey.slug if export_filter.survey else "all",
            output or "stdout",
        )
        self.stderr.write(f"Wrote {count} response row(s).")
