"""The response row shape, the export filters, and writing rows as CSV or JSON Lines.

One row describes a response wherever it leaves the database: the downloads,
the Google Sheet and the statistics all use it. The columns are documented in
docs/data-dictionary.md; change both together.
"""

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import batched
from typing import IO

from django import forms
from django.db import connections
from django.db.models import F, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _

from survey.models import HUMAN, POSITIONS, Participant, Post, Response, Survey, Topic

COLUMNS = (
    "response_id",
    "survey",
    "participant",
    "channel",
    "language",
    "round",
    "topic_id",
    "topic",
    "post_a_id",
    "post_a_author",
    "post_b_id",
    "post_b_author",
    "post_c_id",
    "post_c_author",
    "human_post_id",
    "guessed_human_post_id",
    "guessed_human_position",
    "guessed_correctly",
    "preferred_post_id",
    "preferred_position",
    "preferred_author",
    "confidence",
    "reasons",
    "comment",
    "served_at",
    "answered_at",
    "answer_seconds",
    "too_fast",
)

# A spreadsheet program runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _timestamp(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value else None


def response_row(response: Response) -> dict:
    """Return the export row of one response, with JSON-friendly values.

    Expects the posts, topic, survey and participant to be loaded, as
    ``Response.objects.with_posts()`` does.
    """
    shown = response.displayed_posts
    human = next(post for post in shown if post.author == HUMAN)
    answered = response.is_answered
    preferred = response.preferred if answered else None
    seconds = (
        round((response.answered_at - response.served_at).total_seconds(), 3) if answered else None
    )
    return {
        "response_id": response.pk,
        "survey": response.topic.survey.slug,
        "participant": str(response.participant.public_id),
        "channel": response.participant.channel,
        "language": response.topic.language,
        "round": response.round_number,
        "topic_id": response.topic_id,
        "topic": response.topic.title,
        "post_a_id": shown[0].pk,
        "post_a_author": shown[0].author_label,
        "post_b_id": shown[1].pk,
        "post_b_author": shown[1].author_label,
        "post_c_id": shown[2].pk,
        "post_c_author": shown[2].author_label,
        "human_post_id": human.pk,
        "guessed_human_post_id": response.guessed_human_id,
        "guessed_human_position": response.position_of(response.guessed_human_id),
        "guessed_correctly": response.guessed_correctly,
        "preferred_post_id": response.preferred_id,
        "preferred_position": response.position_of(response.preferred_id),
        "preferred_author": preferred.author_label if preferred else None,
        "confidence": response.confidence,
        "reasons": list(response.reasons),
        "comment": response.comment,
        "served_at": _timestamp(response.served_at),
        "answered_at": _timestamp(response.answered_at),
        "answer_seconds": seconds,
        "too_fast": is_too_fast(seconds, response.topic.survey.min_answer_seconds),
    }


def is_too_fast(answer_seconds: float | None, min_answer_seconds: int) -> bool | None:
    """Return whether an answer came faster than the survey allows; None when unanswered.

    ``answer_seconds`` is the rounded value that the row carries, so a researcher
    who applies the survey's minimum to the exported column gets the same flag.
    """
    if answer_seconds is None:
        return None
    return answer_seconds < min_answer_seconds


# The response columns that the lean row builder reads, in the order it unpacks
# them. Participants, topics and posts are looked up once each per export
# instead of being joined into every row. The last three are annotations that
# _raw_values adds.
_VALUE_FIELDS = (
    "pk",
    "participant_id",
    "topic_id",
    "round_number",
    "post_a_id",
    "post_b_id",
    "post_c_id",
    "guessed_human_id",
    "preferred_id",
    "confidence",
    "comment",
    "reasons_text",
    "served_raw",
    "answered_raw",
)


def export_queryset(
    *,
    survey: Survey | None = None,
    include_unanswered: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Return the responses to export, oldest served first.

    ``since`` and ``until`` bound the time the comparison was served: ``since``
    is inclusive, ``until`` exclusive.
    """
    responses = Response.objects.with_posts().order_by("served_at", "pk")
    if survey is not None:
        responses = responses.filter(topic__survey=survey)
    if not include_unanswered:
        responses = responses.answered()
    if since is not None:
        responses = responses.filter(served_at__gte=since)
    if until is not None:
        responses = responses.filter(served_at__lt=until)
    return responses


def iter_rows(responses: Iterable[Response], *, chunk_size: int = 2000) -> Iterator[dict]:
    """Yield the export row of each response.

    A Response queryset is read with a ``values_list()`` query in chunks of
    ``chunk_size``, plus one lookup of the chunk's new participants, topics and
    posts. That skips building model instances and was 13 times faster than
    ``response_row`` at 20,000 rows (loadtests/results_bench.py data). Any
    other iterable goes through ``response_row``. Both paths yield the same rows.
    """
    if isinstance(responses, QuerySet):
        yield from _rows_from_values(responses, chunk_size=chunk_size)
        return
    for response in responses:
        yield response_row(response)


def _raw_values(responses: QuerySet) -> QuerySet:
    """Return the row values with no per-value converter for Django to run.

    Django decodes every JSON value and, on SQLite, parses every timestamp and
    then makes it timezone-aware. Under cProfile those converters took about
    half the time of reading 20,000 rows. Here ``reasons`` comes as JSON text,
    decoded once per distinct value, and SQLite's timestamps come as text,
    which _moment parses once each. PostgreSQL returns aware datetimes already.
    """
    annotations = {"reasons_text": Cast("reasons", TextField())}
    if connections[responses.db].vendor == "sqlite":
        annotations["served_raw"] = Cast("served_at", TextField())
        annotations["answered_raw"] = Cast("answered_at", TextField())
    else:
        annotations["served_raw"] = F("served_at")
        annotations["answered_raw"] = F("answered_at")
    return responses.annotate(**annotations).values_list(*_VALUE_FIELDS)


def _moment(value: datetime | str | None) -> tuple[datetime | None, str | None]:
    """Return a stored timestamp and its export text.

    SQLite's text is naive UTC, "YYYY-MM-DD HH:MM:SS" with ".ffffff" unless the
    microseconds are 0, as Django's SQLite backend writes it. Slicing that text
    into the export form is several times faster than formatting a datetime,
    and the moment stays naive because only differences are taken from it.
    """
    if value is None:
        return None, None
    if isinstance(value, datetime):
        return value, _timestamp(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        return moment, _timestamp(moment)
    if len(value) == 26:
        return moment, f"{value[:10]}T{value[11:23]}+00:00"
    if len(value) == 19:
        return moment, f"{value[:10]}T{value[11:]}.000+00:00"
    return moment, moment.isoformat(timespec="milliseconds") + "+00:00"


def _rows_from_values(responses: QuerySet, *, chunk_size: int) -> Iterator[dict]:
    lookups = _RowLookups()
    decoded_reasons: dict[str, list[str]] = {}
    values = _raw_values(responses).iterator(chunk_size=chunk_size)
    for chunk in batched(values, chunk_size, strict=False):
        lookups.load(chunk)
        for (
            pk,
            participant_id,
            topic_id,
            round_number,
            post_a_id,
            post_b_id,
            post_c_id,
            guessed_human_id,
            preferred_id,
            confidence,
            comment,
            reasons_text,
            served_raw,
            answered_raw,
        ) in chunk:
            reasons = decoded_reasons.get(reasons_text)
            if reasons is None:
                reasons = decoded_reasons[reasons_text] = json.loads(reasons_text)
            served_at, served_text = _moment(served_raw)
            answered_at, answered_text = _moment(answered_raw)
            public_id, channel = lookups.participants[participant_id]
            survey_slug, min_answer_seconds, language, topic_title = lookups.topics[topic_id]
            display = lookups.display(post_a_id, post_b_id, post_c_id)
            if answered_at is None:
                seconds = too_fast = preferred_author = None
            else:
                seconds = round((answered_at - served_at).total_seconds(), 3)
                too_fast = seconds < min_answer_seconds
                preferred_author = display.authors.get(preferred_id)
            yield {
                "response_id": pk,
                "survey": survey_slug,
                "participant": public_id,
                "channel": channel,
                "language": language,
                "round": round_number,
                "topic_id": topic_id,
                "topic": topic_title,
                "post_a_id": post_a_id,
                "post_a_author": display.labels[0],
                "post_b_id": post_b_id,
                "post_b_author": display.labels[1],
                "post_c_id": post_c_id,
                "post_c_author": display.labels[2],
                "human_post_id": display.human_post_id,
                "guessed_human_post_id": guessed_human_id,
                "guessed_human_position": display.positions.get(guessed_human_id),
                "guessed_correctly": (
                    None if guessed_human_id is None else guessed_human_id == display.human_post_id
                ),
                "preferred_post_id": preferred_id,
                "preferred_position": display.positions.get(preferred_id),
                "preferred_author": preferred_author,
                "confidence": confidence,
                "reasons": list(reasons),
                "comment": comment,
                "served_at": served_text,
                "answered_at": answered_text,
                "answer_seconds": seconds,
                "too_fast": too_fast,
            }


@dataclass(frozen=True)
class _Display:
    """The three posts of one display order: their authors and positions."""

    labels: tuple[str, str, str]
    human_post_id: int
    positions: dict[int, str]
    authors: dict[int, str]


class _RowLookups:
    """Participant, topic and post values of the rows, loaded once per id."""

    def __init__(self):
        self.participants: dict[int, tuple[str, str]] = {}
        self.topics: dict[int, tuple[str, int, str, str]] = {}
        self.post_authors: dict[int, str] = {}
        self.displays: dict[tuple[int, int, int], _Display] = {}

    def load(self, chunk: tuple[tuple, ...]) -> None:
        participant_ids = {values[1] for values in chunk} - self.participants.keys()
        if participant_ids:
            for pk, public_id, channel in Participant.objects.filter(
                pk__in=participant_ids
            ).values_list("pk", "public_id", "channel"):
                self.participants[pk] = (str(public_id), channel)
        topic_ids = {values[2] for values in chunk} - self.topics.keys()
        if topic_ids:
            for pk, *fields in Topic.objects.filter(pk__in=topic_ids).values_list(
                "pk", "survey__slug", "survey__min_answer_seconds", "language", "title"
            ):
                self.topics[pk] = tuple(fields)
            # Posts are loaded per topic: a topic has few posts, and every
            # shown post belongs to the row's topic.
            for pk, author, model in Post.objects.filter(topic_id__in=topic_ids).values_list(
                "pk", "author", "model"
            ):
                self.post_authors[pk] = HUMAN if author == HUMAN else model

    def display(self, post_a_id: int, post_b_id: int, post_c_id: int) -> _Display:
        """Return the display of these posts in positions A, B and C, built once per order."""
        key = (post_a_id, post_b_id, post_c_id)
        display = self.displays.get(key)
        if display is None:
            labels = tuple(self.post_authors[post_id] for post_id in key)
            display = _Display(
                labels=labels,
                human_post_id=key[labels.index(HUMAN)],
                positions=dict(zip(key, POSITIONS, strict=True)),
                authors=dict(zip(key, labels, strict=True)),
            )
            self.displays[key] = display
        return display


@dataclass(frozen=True)
class ExportFilter:
    """The selection of responses that an export contains. ``until`` is exclusive."""

    survey: Survey | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_unanswered: bool = False
    include_too_fast: bool = False


def export_rows(export_filter: ExportFilter) -> Iterator[dict]:
    """Yield the rows that ``export_filter`` selects, oldest served first."""
    responses = export_queryset(
        survey=export_filter.survey,
        include_unanswered=export_filter.include_unanswered,
        since=export_filter.since,
        until=export_filter.until,
    )
    for row in iter_rows(responses):
        if row["too_fast"] and not export_filter.include_too_fast:
            continue
        yield row


DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


class ExportFilterForm(forms.Form):
    """The export filters, from a query string or the export_responses options."""

    survey = forms.ModelChoiceField(
        Survey.objects.all(),
        to_field_name="slug",
        required=False,
        empty_label=_("All surveys"),
        label=_("Survey"),
        error_messages={"invalid_choice": _("No survey has the slug %(value)s.")},
    )
    since = forms.DateTimeField(
        label=_("Served from"),
        required=False,
        help_text=_("First day (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM) to include, in UTC."),
    )
    until = forms.DateTimeField(
        label=_("Served until"),
        required=False,
        help_text=_(
            "Last day to include (YYYY-MM-DD), or a time (YYYY-MM-DDTHH:MM) before which "
            "responses were served, in UTC."
        ),
    )
    include_too_fast = forms.BooleanField(
        label=_("Include answers faster than the survey's minimum answer time"), required=False
    )
    include_unanswered = forms.BooleanField(
        label=_("Include comparisons served but not answered"), required=False
    )

    def clean_until(self):
        until = self.cleaned_data["until"]
        # A bare date names the last day to include, so the bound moves to the
        # start of the next day.
        if until is not None and DATE_ONLY.match(str(self.data.get(self.add_prefix("until")))):
            until += timedelta(days=1)
        return until

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since is not None and until is not None and since >= until:
            raise forms.ValidationError(
                _("The start of the date range must come before its end."), code="empty_range"
            )
        return cleaned

    def export_filter(self) -> ExportFilter:
        """Return the validated filters; call only after ``is_valid()`` returned True."""
        data = self.cleaned_data
        return ExportFilter(
            survey=data["survey"],
            since=data["since"],
            until=data["until"],
            include_unanswered=data["include_unanswered"],
            include_too_fast=data["include_too_fast"],
        )


def neutralize_formula(text: str) -> str:
    """Prefix an apostrophe to text that a spreadsheet program would run as a formula."""
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    if isinstance(value, str):
        return neutralize_formula(value)
    return str(value)


class _LineBuffer:
    """A file-like object whose ``write`` returns the text, so csv.writer can feed a generator."""

    def write(self, text: str) -> str:
        return text


def iter_csv(rows: Iterable[dict]) -> Iterator[str]:
    """Yield the CSV header line, then one line per row, with formula-like cells neutralized."""
    writer = csv.writer(_LineBuffer())
    yield writer.writerow(COLUMNS)
    for row in rows:
        yield writer.writerow([csv_value(row[column]) for column in COLUMNS])


def iter_jsonl(rows: Iterable[dict]) -> Iterator[str]:
    """Yield one JSON object per line, with every text value verbatim."""
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def write_csv(rows: Iterable[dict], stream: IO[str]) -> int:
    """Write the header and the rows to ``stream`` and return the number of rows."""
    lines = iter_csv(rows)
    stream.write(next(lines))
    count = 0
    for line in lines:
        stream.write(line)
        count += 1
    return count


def write_jsonl(rows: Iterable[dict], stream: IO[str]) -> int:
    """Write the rows to ``stream`` as JSON Lines and return the number of rows."""
    count = 0
    for line in iter_jsonl(rows):
        stream.write(line)
        count += 1
    return count
