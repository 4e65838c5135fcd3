"""Generate model posts for a survey's topics through an OpenAI-compatible endpoint."""

import argparse
import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from survey.generation import (
    DEFAULT_PROMPT_VERSION,
    GenerationAborted,
    GenerationConfig,
    InvalidGenerationConfig,
    PostGenerator,
    plan_jobs,
)
from survey.models import Survey

# vLLM, SGLang, Ollama and llama.cpp accept any key unless started with one, but
# the openai client refuses to send a request without a key.
PLACEHOLDER_API_KEY = "EMPTY"


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"invalid JSON ({error.msg})") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object such as '{\"key\": 1}'")
    return value


class Command(BaseCommand):
    help = (
        "Request one post by --model for every topic of the survey that has a human post "
        "and no post by that model, from an OpenAI-compatible chat-completions endpoint. "
        "Rejected responses are reported and never stored. A rerun requests only what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            required=True,
            help="Base URL of the endpoint, usually ending in /v1 (http://gpu-host:8000/v1).",
        )
        parser.add_argument(
            "--model",
            required=True,
            help="Model name the endpoint serves; posts are stored under it.",
        )
        parser.add_argument(
            "--api-key",
            default=None,
            help="API key; default: $OPENAI_API_KEY, or "
            f"{PLACEHOLDER_API_KEY!r} when that is unset.",
        )
        parser.add_argument("--survey", help="Slug of the survey; default: the default survey.")
        parser.add_argument(
            "--concurrency", type=int, default=4, help="Requests in flight at once (default 4)."
        )
        parser.add_argument(
            "--max-tokens",
            type=int,
            default=2048,
            help="max_tokens of every request (default 2048). A response cut off at this "
            "limit is rejected.",
        )
        parser.add_argument(
            "--temperature", type=float, default=0.7, help="Sampling temperature (default 0.7)."
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=300.0,
            help="Seconds one request may take from sending to its last byte (default 300). "
            "A timed-out request is not retried.",
        )
        parser.add_argument(
            "--no-stream",
            action="store_false",
            dest="stream",
            help="Send non-streaming requests, for servers that misbehave when streaming. "
            "Time to first token is then not measured.",
        )
        parser.add_argument(
            "--max-length-ratio",
            type=float,
            default=1.6,
            help="Reject a post whose word count is outside [human / RATIO, human * RATIO] "
            "(default 1.6).",
        )
        parser.add_argument(
            "--flag-length-ratio",
            type=float,
            default=1.25,
            help="Flag a stored post whose word count is outside [human / RATIO, human * RATIO] "
            "(default 1.25).",
        )
        parser.add_argument(
            "--retries",
            type=int,
            default=4,
            help="Retries after a 429, a 5xx or a connection error (default 4).",
        )
        parser.add_argument(
            "--retry-base-delay",
            type=float,
            default=1.0,
            help="Seconds before the first retry, doubled for each next one, with jitter "
            "(default 1).",
        )
        parser.add_argument(
            "--prompt-version",
            default=DEFAULT_PROMPT_VERSION,
            help="Prompt template in survey/prompts/, without .txt "
            f"(default {DEFAULT_PROMPT_VERSION}).",
        )
        parser.add_argument(
            "--extra-body",
            type=_json_object,
            default={},
            help="JSON object merged into every request body, for server options such as "
            '\'{"chat_template_kwargs": {"enable_thinking": false}}\'.',
        )
        parser.add_argument(
            "--limit", type=int, help="Request at most this many topics in this run."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the topics that would be requested and print the first prompt; "
            "send nothing.",
        )
        parser.add_argument(
            "--json", type=Path, help="Also write the summary as JSON to this file."
        )
        parser.add_argument(
            "--no-progress", action="store_false", dest="progress", help="Hide the progress bar."
        )

    def handle(self, *args, **options):
        survey = self._survey(options["survey"])
        api_key = options["api_key"] or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_API_KEY
        try:
            config = GenerationConfig(
                base_url=options["base_url"],
                model=options["model"],
                api_key=api_key,
                concurrency=options["concurrency"],
                max_tokens=options["max_tokens"],
                temperature=options["temperature"],
                timeout=options["timeout"],
                stream=options["stream"],
                max_length_ratio=options["max_length_ratio"],
                flag_length_ratio=options["flag_length_ratio"],
                retries=options["retries"],
                retry_base_delay=options["retry_base_delay"],
                prompt_version=options["prompt_version"],
                limit=options["limit"],
                extra_body=options["extra_body"],
            )
        except InvalidGenerationConfig as error:
            raise CommandError(f"Invalid option: {error}.") from error

        json_path: Path | None = options["json"]
        if json_path is not None and not json_path.parent.is_dir():
            raise CommandError(
                f"Cannot write the summary to {json_path}: its folder does not exist."
            )

        if options["dry_run"]:
            self._print_plan(survey, config)
            return

        generator = PostGenerator(survey=survey, config=config, progress=options["progress"])
        try:
            summary = generator.run()
        except KeyboardInterrupt:
            self.stderr.write("Interrupted; posts stored so far are kept.")
            self.stderr.write(generator.summary.format_report())
            raise
        except GenerationAborted as error:
            self.stdout.write(generator.summary.format_report())
            self._write_json(options["json"], generator.summary)
            raise CommandError(f"Generation stopped: {error}.") from error

        if summary.topics == 0:
            self.stdout.write(
                f"Every topic of survey {survey.slug!r} with a human post already has a post by "
                f"{config.model!r}; nothing to request."
            )
        else:
            self.stdout.write(summary.format_report())
        self._write_json(options["json"], summary)

    def _survey(self, slug: str | None) -> Survey:
        if slug:
            survey = Survey.objects.filter(slug=slug).first()
            if survey is None:
                raise CommandError(f"Survey {slug!r} not found; check the slug in the admin.")
            return survey
        survey = Survey.objects.filter(is_default=True).first()
        if survey is None:
            raise CommandError(
                "No default survey exists; pass --survey SLUG or import posts first."
            )
        return survey

    def _print_plan(self, survey: Survey, config: GenerationConfig) -> None:
        jobs = plan_jobs(survey=survey, config=config)
        self.stdout.write(
            f"{len(jobs)} topic(s) of survey {survey.slug!r} would be requested from "
            f"{config.base_url} as {config.model!r}:"
        )
        for job in jobs:
            self.stdout.write(
                f"  topic {job.topic_id} [{job.language}] {job.title!r}: {job.target_words} words"
            )
        if jobs:
            self.stdout.write(f"Prompt for topic {jobs[0].topic_id}:\n{jobs[0].prompt}")

    def _write_json(self, path: Path | None, summary) -> None:
        if path is None:
            return
        try:
            path.write_text(
                json.dumps(summary.as_dict(), ensure_ascii=False, indent=2) + "\n",
                encoding="utf-8",
            )
        except OSError as error:
            raise CommandError(f"Cannot write the summary to {path}: {error}.") from error
        self.stderr.write(f"Summary written to {path}.")
