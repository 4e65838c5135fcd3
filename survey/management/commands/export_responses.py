import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from survey.export import export_queryset, iter_rows, write_csv, write_jsonl
from survey.models import Survey


class Command(BaseCommand):
    help = "Write one row per answered response as CSV or JSON Lines."

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument(
            "--output", type=Path, help="File to write; standard output when left out."
        )
        parser.add_argument("--survey", help="Slug of the survey to export; all when left out.")
        parser.add_argument(
            "--include-unanswered",
            action="store_true",
            help="Also write responses that were served but not answered.",
        )

    def handle(self, *args, **options):
        survey = None
        if options["survey"]:
            survey = Survey.objects.filter(slug=options["survey"]).first()
            if survey is None:
                raise CommandError(f"Survey {options['survey']!r} not found.")
        rows = iter_rows(
            export_queryset(
                survey=survey, include_unanswered=options["include_unanswered"]
            ).iterator(chunk_size=2000)
        )
        writer = write_csv if options["format"] == "csv" else write_jsonl
        output: Path | None = options["output"]
        if output is None:
            count = writer(rows, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as stream:
                count = writer(rows, stream)
        self.stderr.write(f"Wrote {count} response row(s).")
