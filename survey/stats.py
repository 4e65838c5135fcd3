"""Survey statistics, computed from export rows (``survey.export.iter_rows`` output).

The results page, ``manage.py survey_stats`` and a researcher working from the
CSV start from the same rows, so they get the same numbers. Answers faster
than the survey's minimum answer time (``too_fast``) are left out unless
``include_too_fast`` is set. The totals and quality figures count them
either way. Related modules: stats_intervals (shares and Wilson intervals),
stats_preference (Plackett–Luce fit) and stats_activity (participation).
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from itertools import compress

from scipy.stats import chisquare

from survey.export import ExportFilter, export_rows
from survey.models import HUMAN, POSITIONS, Survey
from survey.stats_activity import Quality, Timeline, Totals, quality, timeline, totals
from survey.stats_intervals import Proportion, chance_p_value, proportion
from survey.stats_preference import BOOTSTRAP_ITERATIONS, BOOTSTRAP_SEED, Preference, preference

# The position check warns when a chi-square test rejects equal use of A, B
# and C at this level. It needs an expected count of at least 5 per position.
POSITION_WARNING_P_VALUE = 0.01
POSITION_MIN_ANSWERS = 15
# The column that names the author of the post in each display position.
AUTHOR_COLUMNS = {"A": "post_a_author", "B": "post_b_author", "C": "post_c_author"}


@dataclass(frozen=True)
class GroupShare:
    """One line of a breakdown: a group's key, its display label and its share."""

    key: str
    label: str
    proportion: Proportion


@dataclass(frozen=True)
class Detection:
    """How often the post picked as written by a person was the human post.

    ``p_value`` is the two-sided exact binomial test of the overall share
    against chance (1/3).
    """

    overall: Proportion
    p_value: float | None
    by_pair: list[GroupShare]
    by_topic: list[GroupShare]
    by_language: list[GroupShare]


@dataclass(frozen=True)
class PositionCheck:
    """How often each display position was picked for one question.

    ``question`` is ``guessed_human`` or ``preferred``. ``unbalanced`` is True
    when there are enough answers for the chi-square test against equal use and
    its p-value is below POSITION_WARNING_P_VALUE.
    """

    question: str
    counts: dict[str, int]
    shares: dict[str, Proportion]
    total: int
    chi_square: float | None
    p_value: float | None
    unbalanced: bool


@dataclass(frozen=True)
class Headline:
    """The few aggregate numbers that the public booth screen shows."""

    answered: int
    counted: int
    detection: Proportion
    preferred_human: Proportion


@dataclass(frozen=True)
class SurveyStatistics:
    survey: str | None
    include_too_fast: bool
    totals: Totals
    timeline: Timeline
    detection: Detection
    taken_for_human: list[GroupShare]
    preference: Preference
    positions: list[PositionCheck]
    quality: Quality

    def as_dict(self) -> dict:
        return asdict(self)


def counted_rows(rows: Iterable[dict], *, include_too_fast: bool = False) -> list[dict]:
    """Return the answered rows that the statistics use."""
    return [
        row
        for row in rows
        if row["answered_at"] is not None and (include_too_fast or not row["too_fast"])
    ]


def compute_statistics(
    rows: Iterable[dict],
    *,
    survey: str | None = None,
    min_answer_seconds: int | None = None,
    include_too_fast: bool = False,
    bootstrap_iterations: int = BOOTSTRAP_ITERATIONS,
    seed: int = BOOTSTRAP_SEED,
) -> SurveyStatistics:
    """Compute every statistic of the results page from export rows.

    Pass unanswered rows too, so that the totals and the drop-off can count
    them. ``min_answer_seconds`` is only reported; the ``too_fast`` column
    already carries the flag.
    """
    rows = list(rows)
    counted = counted_rows(rows, include_too_fast=include_too_fast)
    return SurveyStatistics(
        survey=survey,
        include_too_fast=include_too_fast,
        totals=totals(rows, counted=len(counted)),
        timeline=timeline(rows),
        detection=detection(counted),
        taken_for_human=taken_for_human(counted),
        preference=preference(counted, bootstrap_iterations=bootstrap_iterations, seed=seed),
        positions=[
            position_check(counted, question="guessed_human"),
            position_check(counted, question="preferred"),
        ],
        quality=quality(
            rows, min_answer_seconds=min_answer_seconds, include_too_fast=include_too_fast
        ),
    )


def survey_rows(survey: Survey) -> list[dict]:
    """Return every row of the survey, unanswered and too-fast ones included."""
    return list(
        export_rows(ExportFilter(survey=survey, include_unanswered=True, include_too_fast=True))
    )


def survey_statistics(
    survey: Survey,
    *,
    include_too_fast: bool = False,
    bootstrap_iterations: int = BOOTSTRAP_ITERATIONS,
    seed: int = BOOTSTRAP_SEED,
) -> SurveyStatistics:
    return compute_statistics(
        survey_rows(survey),
        survey=survey.slug,
        min_answer_seconds=survey.min_answer_seconds,
        include_too_fast=include_too_fast,
        bootstrap_iterations=bootstrap_iterations,
        seed=seed,
    )


def survey_for_results(slug: str | None = None) -> Survey | None:
    """Return the survey to show results for.

    With a ``slug``, that survey, or None when no survey has it. Without one,
    the open default survey, else the newest open survey, else the newest one.
    """
    if slug:
        return Survey.objects.filter(slug=slug).first()
    return Survey.objects.default() or Survey.objects.open().first() or Survey.objects.first()


def headline(rows: Iterable[dict]) -> Headline:
    """Return the booth screen's numbers, without too-fast answers."""
    rows = list(rows)
    counted = counted_rows(rows)
    return Headline(
        answered=sum(1 for row in rows if row["answered_at"] is not None),
        counted=len(counted),
        detection=proportion(sum(1 for row in counted if row["guessed_correctly"]), len(counted)),
        preferred_human=proportion(
            sum(1 for row in counted if row["preferred_author"] == HUMAN), len(counted)
        ),
    )


def detection(counted: list[dict]) -> Detection:
    correct = [bool(row["guessed_correctly"]) for row in counted]
    topic_labels = {str(row["topic_id"]): row["topic"] for row in counted}
    return Detection(
        overall=proportion(sum(correct), len(counted)),
        p_value=chance_p_value(sum(correct), len(counted)),
        by_pair=_breakdown(_model_pairs(counted), correct),
        by_topic=_breakdown(
            [str(row["topic_id"]) for row in counted], correct, labels=topic_labels
        ),
        by_language=_breakdown([row["language"] for row in counted], correct),
    )


def taken_for_human(counted: list[dict]) -> list[GroupShare]:
    """Return, for each model, how often its post was picked as the human one."""
    shown = Counter(
        author
        for row in counted
        for author in (row["post_a_author"], row["post_b_author"], row["post_c_author"])
    )
    picked = Counter(row[AUTHOR_COLUMNS[row["guessed_human_position"]]] for row in counted)
    return [
        GroupShare(key=model, label=model, proportion=proportion(picked[model], shown[model]))
        for model in sorted(shown.keys() - {HUMAN})
    ]


def position_check(counted: list[dict], *, question: str) -> PositionCheck:
    column = {"guessed_human": "guessed_human_position", "preferred": "preferred_position"}[
        question
    ]
    picked = Counter(row[column] for row in counted)
    counts = {position: picked[position] for position in POSITIONS}
    total = sum(counts.values())
    chi_square = p_value = None
    if total:
        result = chisquare([counts[position] for position in POSITIONS])
        chi_square, p_value = float(result.statistic), float(result.pvalue)
    return PositionCheck(
        question=question,
        counts=counts,
        shares={position: proportion(counts[position], total) for position in POSITIONS},
        total=total,
        chi_square=chi_square,
        p_value=p_value,
        unbalanced=(
            total >= POSITION_MIN_ANSWERS
            and p_value is not None
            and p_value < POSITION_WARNING_P_VALUE
        ),
    )


def _model_pairs(counted: list[dict]) -> list[str]:
    """Return the label of the two models shown in each row, such as "model-x vs model-y"."""
    displays = [
        (row["post_a_author"], row["post_b_author"], row["post_c_author"]) for row in counted
    ]
    labels = {
        display: " vs ".join(sorted(author for author in display if author != HUMAN))
        for display in set(displays)
    }
    return [labels[display] for display in displays]


def _breakdown(
    keys: list[str], successes: list[bool], *, labels: dict[str, str] | None = None
) -> list[GroupShare]:
    """Return the share of successes per key, sorted by label; a key is its own label
    unless ``labels`` names it."""
    trials = Counter(keys)
    hits = Counter(compress(keys, successes))
    groups = [
        GroupShare(
            key=key,
            label=labels[key] if labels else key,
            proportion=proportion(hits[key], count),
        )
        for key, count in trials.items()
    ]
    return sorted(groups, key=lambda group: (group.label.casefold(), group.key))
