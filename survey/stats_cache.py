"""A per-process cache of each survey's rows and statistics, so polling stays cheap.

An answered row never changes, so a refresh reads only the responses served
or answered since shortly before the previous read, and the statistics are
reused while no row changed. Rows also carry topic titles, languages and
model names; each refresh compares those with the ones the rows were built
from (two small queries). A full reload happens on the first read in a
process, when the survey's minimum answer time or one of those labels
changed, when the number of responses in the database differs from the
cache (after a deletion), and at least every FULL_RELOAD_SECONDS, which
bounds how long any other edit, such as a participant's channel changed in
the admin, stays unseen.

Every process (each gunicorn worker) keeps its own copy, at most MAX_SURVEYS
surveys, and reads the database itself, so workers never share stale state.
"""

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from survey.export import export_queryset, iter_rows
from survey.models import Post, Response, Survey, Topic
from survey.stats import SurveyStatistics, compute_statistics

logger = logging.getLogger(__name__)

# A refresh re-reads responses touched this long before the previous read
# started, so that a transaction which committed late, or an app server whose
# clock runs behind, cannot hide a change.
REFRESH_OVERLAP = timedelta(minutes=2)
FULL_RELOAD_SECONDS = 30 * 60
MAX_SURVEYS = 4


@dataclass
class _Entry:
    rows: dict[int, dict]
    labels: tuple
    read_from: datetime
    loaded_at: float
    statistics: dict[bool, SurveyStatistics] = field(default_factory=dict)


_entries: OrderedDict[tuple, _Entry] = OrderedDict()
_lock = threading.Lock()


def cached_rows(survey: Survey) -> list[dict]:
    """Return every row of the survey, unanswered and too-fast ones included, in no
    particular order."""
    return list(_refresh(survey).rows.values())


def cached_statistics(survey: Survey, *, include_too_fast: bool = False) -> SurveyStatistics:
    """Return the survey's statistics with default bootstrap settings, computed again only
    when a row changed."""
    entry = _refresh(survey)
    statistics = entry.statistics.get(include_too_fast)
    if statistics is None:
        statistics = compute_statistics(
            entry.rows.values(),
            survey=survey.slug,
            min_answer_seconds=survey.min_answer_seconds,
            include_too_fast=include_too_fast,
        )
        entry.statistics[include_too_fast] = statistics
    return statistics


def clear() -> None:
    with _lock:
        _entries.clear()


def warm_open_surveys() -> int:
    """Load the rows and statistics of every open survey, and return how many surveys.

    gunicorn calls it in each new worker, so that the first results page that
    worker serves reads a warm cache instead of building every row.
    """
    surveys = list(Survey.objects.open()[:MAX_SURVEYS])
    for survey in surveys:
        cached_statistics(survey)
    return len(surveys)


def _key(survey: Survey) -> tuple:
    # The creation time tells apart two surveys that reuse a primary key, as
    # test databases do. The slug and minimum answer time are in every row.
    return (survey.pk, survey.created_at, survey.slug, survey.min_answer_seconds)


def _labels(survey: Survey) -> tuple:
    """Return the topic and post fields that rows copy, to tell when they were edited."""
    topics = Topic.objects.filter(survey=survey).order_by("pk")
    posts = Post.objects.filter(topic__survey=survey).order_by("pk")
    return (
        tuple(topics.values_list("pk", "title", "language")),
        tuple(posts.values_list("pk", "author", "model")),
    )


def _refresh(survey: Survey) -> _Entry:
    key = _key(survey)
    with _lock:
        entry = _entries.get(key)
        if entry is not None:
            _entries.move_to_end(key)
    started = timezone.now()
    labels = _labels(survey)
    if (
        entry is None
        or entry.labels != labels
        or time.monotonic() - entry.loaded_at > FULL_RELOAD_SECONDS
    ):
        entry = _load(survey, started, labels)
    else:
        entry = _update(survey, entry, started)
    with _lock:
        _entries[key] = entry
        _entries.move_to_end(key)
        while len(_entries) > MAX_SURVEYS:
            _entries.popitem(last=False)
    return entry


def _load(survey: Survey, started: datetime, labels: tuple) -> _Entry:
    # The statistics do not depend on row order, so the database need not sort.
    responses = export_queryset(survey=survey, include_unanswered=True).order_by()
    rows = {row["response_id"]: row for row in iter_rows(responses)}
    logger.info("survey rows loaded survey=%s rows=%s", survey.slug, len(rows))
    return _Entry(
        rows=rows,
        labels=labels,
        read_from=started - REFRESH_OVERLAP,
        loaded_at=time.monotonic(),
    )


def _update(survey: Survey, entry: _Entry, started: datetime) -> _Entry:
    touched = (
        export_queryset(survey=survey, include_unanswered=True)
        .filter(Q(served_at__gte=entry.read_from) | Q(answered_at__gte=entry.read_from))
        .order_by()
    )
    changed = {
        row["response_id"]: row
        for row in iter_rows(touched)
        if entry.rows.get(row["response_id"]) != row
    }
    stored = Response.objects.filter(topic__survey=survey).count()
    if stored != len(entry.rows.keys() | changed.keys()):
        logger.info(
            "survey rows reloaded after a deletion survey=%s cached=%s stored=%s",
            survey.slug,
            len(entry.rows),
            stored,
        )
        return _load(survey, started, entry.labels)
    if not changed:
        entry.read_from = started - REFRESH_OVERLAP
        return entry
    # A new entry rather than an update in place, so that a request still
    # reading the old rows in another thread never sees a half-merged dict.
    return _Entry(
        rows={**entry.rows, **changed},
        labels=entry.labels,
        read_from=started - REFRESH_OVERLAP,
        loaded_at=entry.loaded_at,
    )
