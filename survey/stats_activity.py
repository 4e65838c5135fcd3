"""Participation: totals per channel, answers over time, drop-off and answer speed."""

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

# Bucket widths for the answers-over-time chart, in minutes. The narrowest one
# that keeps the chart within MAX_TIMELINE_BUCKETS bars is used.
TIMELINE_BUCKET_MINUTES = (1, 2, 5, 10, 15, 30, 60, 120, 240, 360, 720, 1440, 10080)
MAX_TIMELINE_BUCKETS = 60


@dataclass(frozen=True)
class ChannelTotals:
    channel: str
    participants: int
    answered: int


@dataclass(frozen=True)
class Totals:
    """Counts over all rows of a survey.

    A participant has *started* when a first comparison was served, and has
    *finished* when every comparison served to them is answered: after each
    answer the next comparison is served at once, so only a participant who
    ran out of rounds has no unanswered one. ``counted`` is the number of
    answers that the statistics use.
    """

    participants_started: int
    participants_finished: int
    served: int
    answered: int
    counted: int
    channels: list[ChannelTotals]


@dataclass(frozen=True)
class TimelineBucket:
    start: str
    answers: int
    per_minute: float


@dataclass(frozen=True)
class Timeline:
    bucket_minutes: int
    buckets: list[TimelineBucket]

    @property
    def peak_per_minute(self) -> float:
        return max((bucket.per_minute for bucket in self.buckets), default=0.0)


@dataclass(frozen=True)
class RoundDropOff:
    """Participant counts for one round: served it, answered it, and left without answering it."""

    round: int
    served: int
    answered: int
    left: int


@dataclass(frozen=True)
class Quality:
    min_answer_seconds: int | None
    too_fast: int
    too_fast_included: bool
    unanswered: int
    median_answer_seconds: float | None
    drop_off: list[RoundDropOff]


def totals(rows: list[dict], *, counted: int) -> Totals:
    channel_of = {row["participant"]: row["channel"] for row in rows}
    pending = {row["participant"] for row in rows if row["answered_at"] is None}
    answered_rows = [row for row in rows if row["answered_at"] is not None]
    answered_participants = {row["participant"] for row in answered_rows}
    answered_per_channel = Counter(row["channel"] for row in answered_rows)

    participants_per_channel = Counter(channel_of.values())
    channels = [
        ChannelTotals(
            channel=channel,
            participants=participants_per_channel[channel],
            answered=answered_per_channel[channel],
        )
        for channel in sorted(participants_per_channel)
    ]
    return Totals(
        participants_started=len(channel_of),
        participants_finished=len(answered_participants - pending),
        served=len(rows),
        answered=len(answered_rows),
        counted=counted,
        channels=channels,
    )


def timeline(rows: list[dict]) -> Timeline:
    """Count answers per time bucket, from the first answer's bucket to the last one's.

    Buckets start at multiples of their width since the Unix epoch, in UTC, and
    empty buckets are kept so that the time axis is linear.
    """
    per_minute = Counter(_minute(row["answered_at"]) for row in rows if row["answered_at"])
    if not per_minute:
        return Timeline(bucket_minutes=TIMELINE_BUCKET_MINUTES[0], buckets=[])
    first, last = min(per_minute), max(per_minute)
    width = next(
        (
            minutes
            for minutes in TIMELINE_BUCKET_MINUTES
            if (last - first) / minutes < MAX_TIMELINE_BUCKETS - 1
        ),
        TIMELINE_BUCKET_MINUTES[-1],
    )
    counts = Counter()
    for minute, count in per_minute.items():
        counts[minute // width] += count
    buckets = [
        TimelineBucket(
            start=datetime.fromtimestamp(index * width * 60, tz=UTC).isoformat(),
            answers=counts[index],
            per_minute=counts[index] / width,
        )
        for index in range(min(counts), max(counts) + 1)
    ]
    return Timeline(bucket_minutes=width, buckets=buckets)


@lru_cache(maxsize=8192)
def _minute_of_prefix(prefix: str) -> int:
    return int(datetime.fromisoformat(prefix + "+00:00").timestamp()) // 60


def _minute(timestamp: str) -> int:
    """Return the minute since the Unix epoch of an ISO 8601 timestamp.

    Export rows are in UTC, so their first 16 characters name the minute, and
    each distinct minute is parsed once.
    """
    if timestamp.endswith("+00:00"):
        return _minute_of_prefix(timestamp[:16])
    return int(datetime.fromisoformat(timestamp).timestamp()) // 60


def drop_off(rows: list[dict]) -> list[RoundDropOff]:
    served = Counter(row["round"] for row in rows)
    answered = Counter(row["round"] for row in rows if row["answered_at"] is not None)
    return [
        RoundDropOff(
            round=number,
            served=served[number],
            answered=answered[number],
            left=served[number] - answered[number],
        )
        for number in sorted(served)
    ]


def quality(rows: list[dict], *, min_answer_seconds: int | None, include_too_fast: bool) -> Quality:
    seconds = [row["answer_seconds"] for row in rows if row["answer_seconds"] is not None]
    return Quality(
        min_answer_seconds=min_answer_seconds,
        too_fast=sum(1 for row in rows if row["too_fast"]),
        too_fast_included=include_too_fast,
        unanswered=sum(1 for row in rows if row["answered_at"] is None),
        median_answer_seconds=statistics.median(seconds) if seconds else None,
        drop_off=drop_off(rows),
    )
