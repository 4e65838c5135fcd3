"""The response row shape, and writing it as CSV or JSON Lines.

One row describes a response wherever it leaves the database. The columns are
documented in docs/data-dictionary.md; change both together.
"""

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO

from survey.models import Response, Survey

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
    human = next(post for post in shown if post.author == "human")
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
    }


def export_queryset(
    *, survey: Survey | None = None, include_unanswered: bool = False
):
    responses = Response.objects.with_posts().order_by("served_at", "pk")
    if survey is not None:
        responses = responses.filter(topic__survey=survey)
    if not include_unanswered:
        responses = responses.answered()
    return responses


def iter_rows(responses: Iterable[Response]) -> Iterator[dict]:
    for response in responses:
        yield response_row(response)


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


def write_csv(rows: Iterable[dict], stream: IO[str]) -> int:
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([csv_value(row[column]) for column in COLUMNS])
        count += 1
    return count


def write_jsonl(rows: Iterable[dict], stream: IO[str]) -> int:
    count = 0
    for row in rows:
        stream.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
