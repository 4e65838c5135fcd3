"""Importing posts from a JSON Lines file, all or nothing.

Each line is one post: ``topic`` (title), ``body``, ``author`` (``human`` or
``model``), ``model`` (required for model posts), and optionally ``language``
(default ``en``), ``brief`` and ``survey`` (a slug). Posts without ``survey`` go
to the default survey, which is created, open, when none exists.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import transaction

from survey.models import HUMAN, MODEL, Post, Survey, Topic

logger = logging.getLogger(__name__)

ALLOWED_KEYS = frozenset({"topic", "body", "author", "model", "language", "brief", "survey"})
TITLE_MAX_LENGTH = Topic._meta.get_field("title").max_length
MODEL_MAX_LENGTH = Post._meta.get_field("model").max_length
DEFAULT_SURVEY_TITLE = "Human or AI? The blog post challenge"


class ImportFailed(Exception):
    """Raised with every invalid line; nothing was imported."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        lines = "\n".join(f"line {number}: {reason}" for number, reason in errors)
        super().__init__(f"{len(errors)} invalid line(s), nothing imported:\n{lines}")


@dataclass(frozen=True)
class PostLine:
    line_number: int
    survey_slug: str | None
    topic: str
    language: str
    brief: str
    author: str
    model: str
    body: str


@dataclass
class ImportSummary:
    topics_created: int = 0
    posts_created: int = 0
    posts_unchanged: int = 0
    surveys: set[str] = field(default_factory=set)


def import_posts(path: Path, *, sample: bool = False) -> ImportSummary:
    """Validate every line of ``path``, then import them in one transaction.

    Raises ImportFailed listing each bad line, with nothing written. Posts
    already stored with the same text are skipped, so importing a file twice
    adds nothing. ``sample`` marks new topics as bundled sample content.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ImportFailed([(0, f"the file is not valid UTF-8 ({error.reason})")]) from error
    return import_lines(text.splitlines(), sample=sample)


def import_lines(lines: list[str], *, sample: bool = False) -> ImportSummary:
    parsed, errors = _parse_lines(lines)
    if not errors and not parsed:
        errors.append((0, "the file contains no posts"))
    if errors:
        raise ImportFailed(errors)

    with transaction.atomic():
        surveys, errors = _resolve_surveys(parsed)
        if errors:
            raise ImportFailed(errors)
        summary = ImportSummary()
        for line in parsed:
            error = _store_line(line, surveys[line.survey_slug], sample=sample, summary=summary)
            if error:
                errors.append((line.line_number, error))
        if errors:
            # Leaving the atomic block by exception rolls back every write above.
            raise ImportFailed(errors)
    logger.info(
        "posts imported topics_created=%s posts_created=%s posts_unchanged=%s surveys=%s",
        summary.topics_created,
        summary.posts_created,
        summary.posts_unchanged,
        ",".join(sorted(summary.surveys)),
    )
    return summary


def _parse_lines(lines: list[str]) -> tuple[list[PostLine], list[tuple[int, str]]]:
    parsed: list[PostLine] = []
    errors: list[tuple[int, str]] = []
    seen: dict[tuple, int] = {}
    briefs: dict[tuple, tuple[str, int]] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = _parse_line(number, raw)
        except ValueError as error:
            errors.append((number, str(error)))
            continue
        topic_key = (line.survey_slug, line.language, line.topic)
        post_key = (*topic_key, line.author, line.model)
        if post_key in seen:
            who = "the human post" if line.author == HUMAN else f"a post by model {line.model!r}"
            errors.append(
                (number, f"{who} for topic {line.topic!r} already appears on line {seen[post_key]}")
            )
            continue
        seen[post_key] = number
        if line.brief:
            first_brief = briefs.setdefault(topic_key, (line.brief, number))
            if first_brief[0] != line.brief:
                errors.append(
                    (
                        number,
                        f"brief differs from the one on line {first_brief[1]} for the same topic",
                    )
                )
                continue
        parsed.append(line)
    return parsed, errors


def _parse_line(number: int, raw: str) -> PostLine:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON ({error.msg} at column {error.colno})") from error
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(record) - ALLOWED_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ALLOWED_KEYS))}"
        )

    topic = _text(record, "topic", required=True)
    if len(topic) > TITLE_MAX_LENGTH:
        raise ValueError(f"topic is longer than {TITLE_MAX_LENGTH} characters")
    body = _text(record, "body", required=True)
    author = _text(record, "author", required=True)
    if author not in (HUMAN, MODEL):
        raise ValueError(f"author must be 'human' or 'model', not {author!r}")
    model = _text(record, "model")
    if author == MODEL and not model:
        raise ValueError("model posts need a 'model' name")
    if author == HUMAN and model:
        raise ValueError("human posts must not name a model")
    if len(model) > MODEL_MAX_LENGTH:
        raise ValueError(f"model is longer than {MODEL_MAX_LENGTH} characters")
    language = _text(record, "language") or "en"
    known_languages = [code for code, _name in settings.LANGUAGES]
    if language not in known_languages:
        raise ValueError(f"language {language!r} is not one of {', '.join(known_languages)}")
    survey_slug = _text(record, "survey") or None
    return PostLine(
        line_number=number,
        survey_slug=survey_slug,
        topic=topic,
        language=language,
        brief=_text(record, "brief"),
        author=author,
        model=model,
        body=body,
    )


def _text(record: dict, key: str, *, required: bool = False) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing '{key}'")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string")
    if "\x00" in value:
        raise ValueError(f"'{key}' contains a NUL character")
    value = value.strip()
    if required and not value:
        raise ValueError(f"'{key}' is empty")
    return value


def _resolve_surveys(parsed: list[PostLine]) -> tuple[dict, list[tuple[int, str]]]:
    surveys: dict[str | None, Survey] = {}
    errors = []
    for line in parsed:
        if line.survey_slug in surveys:
            continue
        if line.survey_slug is None:
            surveys[None] = default_survey()
            continue
        survey = Survey.objects.filter(slug=line.survey_slug).first()
        if survey is None:
            errors.append(
                (
                    line.line_number,
                    f"survey {line.survey_slug!r} does not exist; create it in the admin "
                    "or leave out 'survey' to use the default survey",
                )
            )
            surveys[line.survey_slug] = None
        else:
            surveys[line.survey_slug] = survey
    return surveys, errors


def default_survey() -> Survey:
    """Return the default survey, creating it open when none exists."""
    survey = Survey.objects.filter(is_default=True).first()
    if survey is not None:
        return survey
    survey, created = Survey.objects.get_or_create(
        slug=settings.SURVEY_DEFAULT_SLUG,
        defaults={"title": DEFAULT_SURVEY_TITLE, "is_open": True, "is_default": True},
    )
    if not created:
        survey.is_default = True
        survey.save(update_fields=["is_default"])
    logger.info("default survey ready survey=%s created=%s", survey.slug, created)
    return survey


def _store_line(line: PostLine, survey: Survey, *, sample: bool, summary: ImportSummary) -> str:
    """Store one post; return an error message when it conflicts with a stored post."""
    topic, created = Topic.objects.get_or_create(
        survey=survey,
        language=line.language,
        title=line.topic,
        defaults={"brief": line.brief, "is_sample": sample},
    )
    summary.surveys.add(survey.slug)
    if created:
        summary.topics_created += 1
    elif line.brief and not topic.brief:
        topic.brief = line.brief
        topic.save(update_fields=["brief"])

    existing = topic.posts.filter(author=line.author, model=line.model).first()
    if existing is not None:
        if existing.body == line.body:
            summary.posts_unchanged += 1
            return ""
        who = "a human post" if line.author == HUMAN else f"a post by model {line.model!r}"
        return (
            f"topic {line.topic!r} already has {who} with different text; "
            "edit or delete it in the admin first"
        )
    Post.objects.create(topic=topic, author=line.author, model=line.model, body=line.body)
    summary.posts_created += 1
    return ""
