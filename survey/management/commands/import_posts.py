from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from survey.importing import ImportFailed, import_posts


class Command(BaseCommand):
    help = (
        "Import posts from a JSON Lines file, one post per line. Every line is "
        "validated first; if any is invalid, nothing is imported."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="Path of the .jsonl file.")
        parser.add_argument(
            "--sample",
            action="store_true",
            help="Mark new topics as bundled sample content in the admin.",
        )

    def handle(self, *args, file: Path, sample: bool, **options):
        if not file.is_file():
            raise CommandError(f"{file} does not exist or is not a file.")
        try:
            summary = import_posts(file, sample=sample)
        except ImportFailed as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary.posts_created} post(s) in {summary.topics_created} new "
                f"topic(s) into survey {', '.join(sorted(summary.surveys))}; "
                f"{summary.posts_unchanged} post(s) were already there."
            )
        )
