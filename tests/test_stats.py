"""Statistics against values computed by hand on small fixed data sets."""

import math
from datetime import UTC, datetime, timedelta

import choix
import numpy as np
import pytest
from django.utils import timezone
from scipy.optimize import minimize
from scipy.stats import binomtest

from survey import stats_cache
from survey.assignment import serve_next
from survey.export import COLUMNS
from survey.models import Participant, Response, Topic
from survey.responses import record_answer
from survey.stats import (
    compute_statistics,
    counted_rows,
    detection,
    headline,
    position_check,
    survey_for_results,
    survey_rows,
    survey_statistics,
    taken_for_human,
)
from survey.stats_activity import drop_off, timeline, totals
from survey.stats_intervals import proportion, wilson_interval
from survey.stats_preference import (
    MAX_BOOTSTRAP_ITERATIONS,
    PRIOR_PENALTY,
    choice_data,
    fit_log_strengths,
    normalized_strengths,
    preference,
)
from tests.factories import make_survey, make_topic

START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def make_row(
    *,
    participant: str = "p1",
    shown: tuple[str, str, str] = ("human", "model-x", "model-y"),
    guessed: str | None = "human",
    preferred: str | None = "human",
    seconds: float | None = 30.0,
    minimum: int = 10,
    round_number: int = 1,
    topic_id: int = 1,
    topic: str = "Topic 1",
    language: str = "en",
    channel: str = "web",
    answered_at: datetime = START,
) -> dict:
    """Build one export row by hand; ``guessed`` and ``preferred`` name authors."""
    answered = seconds is not None
    ids = {author: topic_id * 10 + index for index, author in enumerate(shown)}
    positions = dict(zip(shown, "ABC", strict=True))
    row = {
        "response_id": None,
        "survey": "fixed",
        "participant": participant,
        "channel": channel,
        "language": language,
        "round": round_number,
        "topic_id": topic_id,
        "topic": topic,
        "post_a_id": ids[shown[0]],
        "post_a_author": shown[0],
        "post_b_id": ids[shown[1]],
        "post_b_author": shown[1],
        "post_c_id": ids[shown[2]],
        "post_c_author": shown[2],
        "human_post_id": ids["human"],
        "guessed_human_post_id": ids[guessed] if answered else None,
        "guessed_human_position": positions[guessed] if answered else None,
        "guessed_correctly": guessed == "human" if answered else None,
        "preferred_post_id": ids[preferred] if answered else None,
        "preferred_position": positions[preferred] if answered else None,
        "preferred_author": preferred if answered else None,
        "confidence": None,
        "reasons": [],
        "comment": "",
        "served_at": (answered_at - timedelta(seconds=seconds or 0)).isoformat(),
        "answered_at": answered_at.isoformat() if answered else None,
        "answer_seconds": seconds,
        "too_fast": seconds < minimum if answered else None,
    }
    assert set(row) == set(COLUMNS)
    return row


# Wilson score intervals


def test_wilson_interval_seven_of_ten():
    low, high = wilson_interval(7, 10)

    # z = 1.959964: center (0.7 + z²/20) / (1 + z²/10) = 0.644493 and
    # half-width z * sqrt(0.021 + z²/400) / (1 + z²/10) = 0.247715.
    assert low == pytest.approx(0.396778, abs=1e-6)
    assert high == pytest.approx(0.892209, abs=1e-6)


def test_wilson_interval_zero_and_all():
    zero_low, zero_high = wilson_interval(0, 10)
    all_low, all_high = wilson_interval(10, 10)

    z2 = 1.959963984540054**2
    assert zero_low == 0.0
    assert zero_high == pytest.approx(z2 / (10 + z2))
    assert all_low == pytest.approx(10 / (10 + z2))
    assert all_high == pytest.approx(1.0)


def test_wilson_interval_matches_scipy():
    for successes, trials in [(1, 3), (40, 120), (333, 1000), (0, 1)]:
        expected = binomtest(successes, trials).proportion_ci(method="wilson")

        low, high = wilson_interval(successes, trials)

        assert low == pytest.approx(expected.low, abs=1e-12)
        assert high == pytest.approx(expected.high, abs=1e-12)


def test_wilson_interval_rejects_bad_counts():
    with pytest.raises(ValueError, match="trials must be positive"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="successes must be between 0 and 5"):
        wilson_interval(6, 5)


def test_proportion_without_trials_is_empty():
    empty = proportion(0, 0)

    assert empty.share is None
    assert empty.low is None
    assert not empty.above_chance
    assert not empty.below_chance


def test_proportion_compares_with_chance():
    assert proportion(80, 100).above_chance
    assert proportion(5, 100).below_chance
    assert not proportion(33, 100).above_chance
    assert not proportion(33, 100).below_chance


# Human detection and "taken for human"


def detection_rows() -> list[dict]:
    rows = []
    # Topic 1 (en), pair x/y: 3 of 4 picked the human post.
    for index, guessed in enumerate(["human", "human", "human", "model-x"]):
        rows.append(make_row(participant=f"a{index}", guessed=guessed, topic_id=1, topic="Bees"))
    # Topic 2 (ko), pair x/z: 1 of 4, and one too-fast answer that guessed right.
    for index, guessed in enumerate(["human", "model-x", "model-z", "model-z"]):
        rows.append(
            make_row(
                participant=f"b{index}",
                shown=("model-x", "human", "model-z"),
                guessed=guessed,
                topic_id=2,
                topic="Autumn",
                language="ko",
            )
        )
    rows.append(
        make_row(participant="fast", guessed="human", seconds=3.0, topic_id=1, topic="Bees")
    )
    return rows


def test_detection_overall_and_breakdowns():
    counted = counted_rows(detection_rows())

    result = detection(counted)

    assert (result.overall.successes, result.overall.trials) == (4, 8)
    assert result.overall.share == 0.5
    assert result.p_value == pytest.approx(binomtest(4, 8, 1 / 3).pvalue)
    by_pair = {group.label: group.proportion for group in result.by_pair}
    assert (by_pair["model-x vs model-y"].successes, by_pair["model-x vs model-y"].trials) == (3, 4)
    assert (by_pair["model-x vs model-z"].successes, by_pair["model-x vs model-z"].trials) == (1, 4)
    by_language = {group.key: group.proportion.share for group in result.by_language}
    assert by_language == {"en": 0.75, "ko": 0.25}
    assert [group.label for group in result.by_topic] == ["Autumn", "Bees"]
    assert [group.key for group in result.by_topic] == ["2", "1"]
    low, high = wilson_interval(3, 4)
    assert result.by_topic[1].proportion.low == low
    assert result.by_topic[1].proportion.high == high


def test_too_fast_answers_left_out_unless_included():
    rows = detection_rows()

    default = detection(counted_rows(rows))
    included = detection(counted_rows(rows, include_too_fast=True))

    assert default.overall.trials == 8
    assert (included.overall.successes, included.overall.trials) == (5, 9)


def test_taken_for_human_per_model():
    counted = counted_rows(detection_rows())

    result = {group.key: group.proportion for group in taken_for_human(counted)}

    # model-x is shown in all 8 counted rows and picked twice; model-y in 4,
    # never picked; model-z in 4, picked twice.
    assert (result["model-x"].successes, result["model-x"].trials) == (2, 8)
    assert (result["model-y"].successes, result["model-y"].trials) == (0, 4)
    assert (result["model-z"].successes, result["model-z"].trials) == (2, 4)
    assert list(result) == ["model-x", "model-y", "model-z"]


# Position check


def position_rows(guessed_counts: dict[str, int]) -> list[dict]:
    shown = ("human", "model-x", "model-y")
    rows = []
    for position, count in guessed_counts.items():
        author = shown["ABC".index(position)]
        rows += [
            make_row(participant=f"{position}{index}", guessed=author) for index in range(count)
        ]
    return rows


def test_position_check_counts_and_chi_square():
    rows = position_rows({"A": 10, "B": 5, "C": 0})

    check = position_check(rows, question="guessed_human")

    assert check.counts == {"A": 10, "B": 5, "C": 0}
    assert check.total == 15
    # Expected 5 per position: (25 + 0 + 25) / 5 = 10; with 2 degrees of
    # freedom the p-value is exp(-10 / 2).
    assert check.chi_square == pytest.approx(10.0)
    assert check.p_value == pytest.approx(math.exp(-5))
    assert check.unbalanced
    assert check.shares["A"].share == pytest.approx(10 / 15)


def test_position_check_balanced():
    rows = position_rows({"A": 6, "B": 5, "C": 4})

    check = position_check(rows, question="guessed_human")

    assert check.chi_square == pytest.approx(0.4)
    assert check.p_value == pytest.approx(math.exp(-0.2))
    assert not check.unbalanced


def test_position_check_needs_enough_answers():
    rows = position_rows({"A": 7, "B": 0, "C": 0})

    check = position_check(rows, question="guessed_human")

    assert check.p_value < 0.01
    assert not check.unbalanced


def test_position_check_preferred_column():
    rows = [make_row(preferred="model-y"), make_row(preferred="model-y"), make_row()]

    check = position_check(rows, question="preferred")

    assert check.counts == {"A": 1, "B": 0, "C": 2}


# Preference: Plackett–Luce fit


# Choices among four authors in three choice sets: (shown set, winner) -> count.
FIXED_CHOICES = {
    (("human", "m1", "m2"), "human"): 9,
    (("human", "m1", "m2"), "m1"): 6,
    (("human", "m1", "m2"), "m2"): 3,
    (("human", "m1", "m3"), "human"): 5,
    (("human", "m1", "m3"), "m1"): 7,
    (("human", "m1", "m3"), "m3"): 4,
    (("m2", "human", "m3"), "human"): 4,
    (("m2", "human", "m3"), "m2"): 2,
    (("m2", "human", "m3"), "m3"): 6,
}
AUTHORS = ("human", "m1", "m2", "m3")


def fixed_preference_rows() -> list[dict]:
    rows = []
    for (shown, winner), count in FIXED_CHOICES.items():
        for index in range(count):
            rows.append(
                make_row(
                    participant=f"{winner}{shown}{index}",
                    shown=shown,
                    preferred=winner,
                    topic_id=3,
                    topic="Choices",
                )
            )
    return rows


def direct_log_likelihood(theta: np.ndarray) -> float:
    """Log-likelihood written out observation by observation."""
    total = 0.0
    for (shown, winner), count in FIXED_CHOICES.items():
        weights = [math.exp(theta[AUTHORS.index(author)]) for author in shown]
        total += count * math.log(math.exp(theta[AUTHORS.index(winner)]) / sum(weights))
    return total


def test_fit_matches_direct_maximization():
    data = choice_data(fixed_preference_rows())
    assert data.authors == AUTHORS

    fitted = fit_log_strengths(data.wins.sum(axis=0)[None], data.membership)[0]
    direct = minimize(
        lambda theta: -direct_log_likelihood(theta) + PRIOR_PENALTY * np.sum(theta**2),
        np.zeros(4),
        method="BFGS",
        options={"gtol": 1e-10},
    )

    assert direct.success
    np.testing.assert_allclose(fitted, direct.x, atol=1e-5)


def test_fit_matches_choix():
    data = choice_data(fixed_preference_rows())
    observations = []
    for (shown, winner), count in FIXED_CHOICES.items():
        losers = [AUTHORS.index(author) for author in shown if author != winner]
        observations += [(AUTHORS.index(winner), losers)] * count

    fitted = fit_log_strengths(data.wins.sum(axis=0)[None], data.membership)[0]
    penalized = choix.opt_top1(4, observations, alpha=PRIOR_PENALTY, tol=1e-10)
    unpenalized = fit_log_strengths(data.wins.sum(axis=0)[None], data.membership, penalty=1e-9)[0]
    maximum_likelihood = choix.ilsr_top1(4, observations, tol=1e-12)

    np.testing.assert_allclose(fitted, penalized, atol=1e-6)
    np.testing.assert_allclose(
        unpenalized, maximum_likelihood - maximum_likelihood.mean(), atol=1e-5
    )


def test_fit_with_one_choice_set_gives_shares():
    # With the same three authors in every comparison, the maximum-likelihood
    # strengths are the plain shares of picks.
    rows = (
        [make_row(participant=f"h{i}", preferred="human") for i in range(50)]
        + [make_row(participant=f"x{i}", preferred="model-x") for i in range(30)]
        + [make_row(participant=f"y{i}", preferred="model-y") for i in range(20)]
    )
    data = choice_data(rows)

    strengths = normalized_strengths(
        fit_log_strengths(data.wins.sum(axis=0)[None], data.membership, penalty=1e-9)
    )[0]

    np.testing.assert_allclose(strengths, [0.5, 0.3, 0.2], atol=1e-6)


def test_fit_stays_finite_when_an_author_never_wins():
    rows = [make_row(participant=f"p{i}", preferred="human") for i in range(10)]
    data = choice_data(rows)

    theta = fit_log_strengths(data.wins.sum(axis=0)[None], data.membership)[0]

    assert np.all(np.isfinite(theta))
    assert theta[0] > theta[1]
    assert theta.sum() == pytest.approx(0.0, abs=1e-9)


def test_fit_rejects_non_positive_penalty():
    data = choice_data(fixed_preference_rows())

    with pytest.raises(ValueError, match="penalty must be positive"):
        fit_log_strengths(data.wins.sum(axis=0)[None], data.membership, penalty=0)


def test_preference_strengths_intervals_and_shares():
    rows = fixed_preference_rows()

    result = preference(rows, bootstrap_iterations=300, seed=7)

    by_author = {author.author: author for author in result.authors}
    assert list(by_author) == list(AUTHORS)
    assert result.answers == 46
    assert sum(author.strength for author in result.authors) == pytest.approx(1.0)
    for author in result.authors:
        assert author.low <= author.strength <= author.high
    # Plain shares: human shown in all 46 answers and picked 18 times; m3
    # shown in the 28 answers of sets two and three and picked 10 times.
    assert (by_author["human"].share.successes, by_author["human"].share.trials) == (18, 46)
    assert (by_author["m3"].share.successes, by_author["m3"].share.trials) == (10, 28)


def test_preference_bootstrap_is_seeded():
    rows = fixed_preference_rows()

    first = preference(rows, bootstrap_iterations=50, seed=3)
    again = preference(rows, bootstrap_iterations=50, seed=3)
    other = preference(rows, bootstrap_iterations=50, seed=4)

    assert first == again
    assert [a.low for a in first.authors] != [a.low for a in other.authors]


def test_preference_ignores_row_order():
    rows = fixed_preference_rows()

    forward = preference(rows, bootstrap_iterations=50, seed=3)
    backward = preference(rows[::-1], bootstrap_iterations=50, seed=3)

    assert forward == backward


def test_preference_bootstrap_resamples_participants():
    # One participant gave every answer, so every resample is the full data
    # and the interval collapses onto the estimate.
    rows = [make_row(participant="solo", preferred=winner) for winner in ["human", "model-x"] * 5]

    result = preference(rows, bootstrap_iterations=20, seed=1)

    for author in result.authors:
        assert author.low == pytest.approx(author.strength)
        assert author.high == pytest.approx(author.strength)


def test_preference_bounds_bootstrap_iterations():
    with pytest.raises(ValueError, match="between 0 and"):
        preference([make_row()], bootstrap_iterations=MAX_BOOTSTRAP_ITERATIONS + 1)


def test_preference_without_answers():
    result = preference([])

    assert result.authors == []
    assert result.answers == 0


# Participation


def test_totals_started_finished_and_channels():
    rows = [
        make_row(participant="done", round_number=1, channel="kiosk"),
        make_row(participant="done", round_number=2, channel="kiosk"),
        make_row(participant="left", round_number=1, channel="phone"),
        make_row(participant="left", round_number=2, channel="phone", seconds=None),
        make_row(participant="fast", round_number=1, channel="phone", seconds=2.0),
    ]

    result = totals(rows, counted=3)

    assert result.participants_started == 3
    assert result.participants_finished == 2
    assert (result.served, result.answered, result.counted) == (5, 4, 3)
    channels = {
        channel.channel: (channel.participants, channel.answered) for channel in result.channels
    }
    assert channels == {"kiosk": (1, 2), "phone": (2, 2)}


def test_drop_off_per_round():
    rows = [
        make_row(participant="a", round_number=1),
        make_row(participant="a", round_number=2),
        make_row(participant="a", round_number=3, seconds=None),
        make_row(participant="b", round_number=1),
        make_row(participant="b", round_number=2, seconds=None),
        make_row(participant="c", round_number=1, seconds=None),
    ]

    result = [(row.round, row.served, row.answered, row.left) for row in drop_off(rows)]

    assert result == [(1, 3, 2, 1), (2, 2, 1, 1), (3, 1, 0, 1)]


def test_timeline_counts_answers_per_minute():
    rows = [
        make_row(answered_at=START + timedelta(seconds=5)),
        make_row(answered_at=START + timedelta(seconds=50)),
        make_row(answered_at=START + timedelta(minutes=3, seconds=1)),
        make_row(seconds=None),
    ]

    result = timeline(rows)

    assert result.bucket_minutes == 1
    assert [bucket.answers for bucket in result.buckets] == [2, 0, 0, 1]
    assert result.buckets[0].start == START.isoformat()
    assert result.peak_per_minute == 2


def test_timeline_widens_buckets_for_long_spans():
    rows = [make_row(answered_at=START), make_row(answered_at=START + timedelta(hours=5))]

    result = timeline(rows)

    # Five hours fit in at most 59 buckets from 10 minutes up.
    assert result.bucket_minutes == 10
    assert sum(bucket.answers for bucket in result.buckets) == 2
    assert result.buckets[-1].per_minute == pytest.approx(0.1)


def test_timeline_without_answers():
    assert timeline([make_row(seconds=None)]).buckets == []


def test_quality_counts_too_fast_and_unanswered():
    rows = [
        make_row(participant="a", seconds=3.0),
        make_row(participant="b", seconds=12.0),
        make_row(participant="c", seconds=40.0),
        make_row(participant="d", seconds=None),
    ]

    stats = compute_statistics(rows, min_answer_seconds=10, bootstrap_iterations=10)

    assert stats.quality.too_fast == 1
    assert stats.quality.unanswered == 1
    assert stats.quality.median_answer_seconds == 12.0
    assert stats.totals.counted == 2
    assert stats.detection.overall.trials == 2


def test_headline_leaves_out_too_fast():
    rows = [
        make_row(participant="a", guessed="human", preferred="human"),
        make_row(participant="b", guessed="model-x", preferred="human"),
        make_row(participant="c", guessed="human", seconds=1.0),
        make_row(participant="d", seconds=None),
    ]

    result = headline(rows)

    assert result.answered == 3
    assert result.counted == 2
    assert result.detection.share == 0.5
    assert result.preferred_human.share == 1.0


def test_statistics_as_dict_is_plain_data():
    stats = compute_statistics(detection_rows(), bootstrap_iterations=5)

    data = stats.as_dict()

    assert data["detection"]["overall"]["trials"] == 8
    assert data["positions"][0]["counts"] == {"A": 4, "B": 2, "C": 2}


# Rows from the database


def answer_round(
    participant: Participant, *, guess: str, prefer: str, seconds: float = 30.0
) -> Response:
    """Serve the participant's next comparison and answer it by author ("human" or a model).

    The served time is moved back by ``seconds`` so that the answer time is known.
    """
    response = serve_next(participant)
    assert response is not None, "no comparison left to serve"
    by_author = {post.author_label: post for post in response.displayed_posts}
    Response.objects.filter(pk=response.pk).update(
        served_at=timezone.now() - timedelta(seconds=seconds)
    )
    record_answer(
        participant=participant,
        response_id=response.pk,
        guessed_human_id=by_author[guess].pk,
        preferred_id=by_author[prefer].pk,
    )
    return response


def new_participant(survey, *, channel: str = "web", language: str = "en") -> Participant:
    return Participant.objects.create(
        survey=survey, channel=channel, language=language, consented_at=timezone.now()
    )


@pytest.mark.django_db
def test_survey_statistics_from_database():
    survey = make_survey(rounds_per_participant=2)
    make_topic(survey, title="Bees")
    make_topic(survey, title="Autumn")
    first = new_participant(survey, channel="kiosk")
    answer_round(first, guess="human", prefer="model-x")
    answer_round(first, guess="model-y", prefer="human")
    serve_next(first)
    second = new_participant(survey, channel="phone")
    answer_round(second, guess="human", prefer="human", seconds=2)
    serve_next(second)

    stats = survey_statistics(survey, bootstrap_iterations=10)

    assert stats.totals.participants_started == 2
    assert stats.totals.participants_finished == 1
    assert (stats.totals.served, stats.totals.answered, stats.totals.counted) == (4, 3, 2)
    assert stats.quality.too_fast == 1
    assert stats.quality.min_answer_seconds == 10
    assert (stats.detection.overall.successes, stats.detection.overall.trials) == (1, 2)
    assert {author.author for author in stats.preference.authors} == {
        "human",
        "model-x",
        "model-y",
    }


@pytest.mark.django_db
def test_survey_for_results_picks_default_then_open():
    closed = make_survey(is_open=False)
    assert survey_for_results() == closed
    newest_open = make_survey()
    assert survey_for_results() == newest_open
    default = make_survey(is_default=True)
    make_survey()

    assert survey_for_results() == default
    assert survey_for_results(closed.slug) == closed
    assert survey_for_results("no-such-survey") is None


# The per-process cache of rows and statistics


@pytest.fixture
def cache():
    stats_cache.clear()
    yield stats_cache
    stats_cache.clear()


def sorted_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: row["response_id"])


@pytest.fixture
def cached_survey(cache):
    survey = make_survey(rounds_per_participant=2)
    make_topic(survey, title="Bees")
    make_topic(survey, title="Autumn")
    participant = new_participant(survey)
    answer_round(participant, guess="human", prefer="human")
    serve_next(participant)
    return survey


@pytest.mark.django_db
def test_cache_matches_fresh_rows(cached_survey, cache):
    assert sorted_rows(cache.cached_rows(cached_survey)) == survey_rows(cached_survey)


@pytest.mark.django_db
def test_cache_picks_up_new_answers(cached_survey, cache):
    cache.cached_rows(cached_survey)
    (participant,) = Participant.objects.filter(survey=cached_survey)
    answer_round(participant, guess="model-x", prefer="human")
    newcomer = new_participant(cached_survey, channel="phone")
    serve_next(newcomer)

    rows = sorted_rows(cache.cached_rows(cached_survey))

    assert rows == survey_rows(cached_survey)
    assert sum(1 for row in rows if row["answered_at"]) == 2
    assert len(rows) == 3


@pytest.mark.django_db
def test_cache_reuses_statistics_until_a_row_changes(cached_survey, cache):
    first = cache.cached_statistics(cached_survey)
    again = cache.cached_statistics(cached_survey)
    (participant,) = Participant.objects.filter(survey=cached_survey)
    answer_round(participant, guess="model-x", prefer="human")

    changed = cache.cached_statistics(cached_survey)

    assert again is first
    assert changed is not first
    assert changed == survey_statistics(cached_survey)
    assert changed.totals.answered == 2


@pytest.mark.django_db
def test_cache_reloads_after_a_deletion(cached_survey, cache):
    cache.cached_rows(cached_survey)

    Participant.objects.filter(survey=cached_survey).delete()

    assert cache.cached_rows(cached_survey) == []


@pytest.mark.django_db
def test_cache_follows_minimum_answer_time(cached_survey, cache):
    assert not any(row["too_fast"] for row in cache.cached_rows(cached_survey))

    cached_survey.min_answer_seconds = 60
    cached_survey.save()

    assert [row["too_fast"] for row in sorted_rows(cache.cached_rows(cached_survey))] == [
        True,
        None,
    ]


def age_rows(survey) -> None:
    """Move every response of the survey back an hour, out of the refresh overlap."""
    hour_ago = timezone.now() - timedelta(hours=1)
    Response.objects.filter(topic__survey=survey).update(served_at=hour_ago)
    Response.objects.filter(topic__survey=survey).answered().update(answered_at=hour_ago)


@pytest.mark.django_db
def test_cache_reloads_after_topic_edit(cached_survey, cache):
    age_rows(cached_survey)
    cache.cached_rows(cached_survey)

    Topic.objects.filter(survey=cached_survey, title="Bees").update(title="Honey bees")

    assert {row["topic"] for row in cache.cached_rows(cached_survey)} == {"Honey bees", "Autumn"}


@pytest.mark.django_db
def test_cache_reloads_after_max_age(cached_survey, cache, monkeypatch):
    age_rows(cached_survey)
    cache.cached_rows(cached_survey)
    Participant.objects.filter(survey=cached_survey).update(channel="kiosk")

    stale = {row["channel"] for row in cache.cached_rows(cached_survey)}
    monkeypatch.setattr(cache, "FULL_RELOAD_SECONDS", -1)
    fresh = {row["channel"] for row in cache.cached_rows(cached_survey)}

    assert stale == {"web"}
    assert fresh == {"kiosk"}


@pytest.mark.django_db
def test_cache_keeps_a_bounded_number_of_surveys(cache, monkeypatch):
    monkeypatch.setattr(cache, "MAX_SURVEYS", 2)
    surveys = [make_survey() for _index in range(3)]

    for survey in surveys:
        cache.cached_rows(survey)

    assert len(cache._entries) == 2


def test_statistics_ignore_row_order():
    rows = detection_rows() + fixed_preference_rows() + [make_row(participant="z", seconds=None)]

    forward = compute_statistics(rows, bootstrap_iterations=30)
    backward = compute_statistics(rows[::-1], bootstrap_iterations=30)

    assert forward == backward
