"""Preference strengths of the authors from the "rather read" choices.

Each answer picks one of three shown posts, which is a top-1 choice from a set
of three. Under the Plackett–Luce model, which is Bradley–Terry extended from
pairs to larger sets, author ``i`` is picked from the shown set ``S`` with
probability ``exp(theta_i) / sum(exp(theta_j) for j in S)``. The fit
maximizes the same penalized log-likelihood as ``choix.opt_top1`` (choix
0.4.1): ``log L(theta) - PRIOR_PENALTY * sum(theta ** 2)``.

choix loops over every observation in Python: on a 2-core virtual machine one
fit of 20,000 answers took 0.08 s with ``ilsr_top1`` and 11 s with
``opt_top1``, and the bootstrap needs hundreds of fits. The choices are therefore aggregated into
counts per (shown set, chosen author), and Newton's method runs on every
bootstrap replicate at once with numpy. tests/test_stats.py checks the result
against choix and against scipy.optimize on the same data.
"""

import logging
from dataclasses import dataclass

import numpy as np

from survey.models import HUMAN
from survey.stats_intervals import Proportion, proportion

logger = logging.getLogger(__name__)

# Weak Gaussian prior on the log-strengths (variance 1 / (2 * 0.01) = 50). It
# keeps the fit finite when an author was never picked, and moves the estimate
# by far less than its interval once there are a few dozen answers.
PRIOR_PENALTY = 0.01
BOOTSTRAP_ITERATIONS = 200
MAX_BOOTSTRAP_ITERATIONS = 2000
BOOTSTRAP_SEED = 0
NEWTON_MAX_ITERATIONS = 100
NEWTON_TOLERANCE = 1e-10
LINE_SEARCH_HALVINGS = 40
ROUNDING_SLACK = 1e-12


@dataclass(frozen=True)
class AuthorPreference:
    """One author's preference strength and plain share of "rather read" picks.

    ``strength`` is the author's Plackett–Luce weight normalized so that all
    authors sum to 1: the chance that the author's post would be picked if every
    author's post were shown at once. ``low`` and ``high`` bound its bootstrap
    95% percentile interval. ``share`` counts picks out of the comparisons that
    showed the author.
    """

    author: str
    strength: float
    low: float
    high: float
    share: Proportion


@dataclass(frozen=True)
class Preference:
    authors: list[AuthorPreference]
    answers: int
    participants: int
    bootstrap_iterations: int
    seed: int
    prior_penalty: float


@dataclass(frozen=True)
class ChoiceData:
    """Top-1 choices aggregated per participant.

    ``wins[p, s, i]`` counts how often participant ``p`` picked author ``i`` from
    choice set ``s``. ``membership[s, i]`` is True when set ``s`` shows author ``i``.
    """

    authors: tuple[str, ...]
    membership: np.ndarray
    wins: np.ndarray


def choice_data(rows: list[dict]) -> ChoiceData:
    """Aggregate the "rather read" choices of answered rows.

    The human author comes first, then the models by name.
    """
    if not rows:
        return ChoiceData(
            authors=(), membership=np.zeros((0, 0), dtype=bool), wins=np.zeros((0, 0, 0))
        )
    displays = {(row["post_a_author"], row["post_b_author"], row["post_c_author"]) for row in rows}
    models = sorted({author for display in displays for author in display} - {HUMAN})
    authors = (HUMAN, *models)
    author_index = {author: index for index, author in enumerate(authors)}
    # Participants are numbered in sorted order of their ids, so that the
    # bootstrap draws the same resamples whatever order the rows come in.
    participant_ids = sorted({row["participant"] for row in rows})
    participant_index = {participant: index for index, participant in enumerate(participant_ids)}

    # One pass over the rows: the three shown authors, the preferred author and
    # the participant, as indices.
    encoded = np.array(
        [
            (
                author_index[row["post_a_author"]],
                author_index[row["post_b_author"]],
                author_index[row["post_c_author"]],
                author_index[row["preferred_author"]],
                participant_index[row["participant"]],
            )
            for row in rows
        ],
        dtype=np.intp,
    )
    shown, winners, participants = encoded[:, :3], encoded[:, 3], encoded[:, 4]
    # A choice set is the same three authors in any display order, numbered by
    # its sorted author indices read as digits in base len(authors).
    ordered = np.sort(shown, axis=1)
    codes = (ordered[:, 0] * len(authors) + ordered[:, 1]) * len(authors) + ordered[:, 2]
    set_codes, first_rows, sets = np.unique(codes, return_index=True, return_inverse=True)

    membership = np.zeros((len(set_codes), len(authors)), dtype=bool)
    membership[np.arange(len(set_codes))[:, None], ordered[first_rows]] = True
    wins = np.zeros((len(participant_index), len(set_codes), len(authors)))
    np.add.at(wins, (participants, sets, winners), 1)
    return ChoiceData(authors=authors, membership=membership, wins=wins)


def fit_log_strengths(
    wins: np.ndarray, membership: np.ndarray, *, penalty: float = PRIOR_PENALTY
) -> np.ndarray:
    """Return the penalized maximum-likelihood log-strengths, one row per replicate.

    ``wins[r, s, i]`` counts how often author ``i`` was picked from choice set
    ``s`` in replicate ``r``. The objective is strictly convex for a positive
    penalty, so Newton's method with step halving converges from zero. Each
    row of the result sums to 0, because the penalty pins the free shift.
    """
    if penalty <= 0:
        raise ValueError(f"penalty must be positive, got {penalty}")
    wins = np.asarray(wins, dtype=float)
    replicates, _sets, items = wins.shape
    totals = wins.sum(axis=2)
    picks = wins.sum(axis=1)
    diagonal = np.arange(items)

    theta = np.zeros((replicates, items))
    objective = _negative_log_posterior(theta, wins, totals, membership, penalty)
    for _iteration in range(NEWTON_MAX_ITERATIONS):
        probabilities = _choice_probabilities(theta, membership)
        expected = np.einsum("rs,rsi->ri", totals, probabilities)
        gradient = expected - picks + 2 * penalty * theta
        if np.max(np.abs(gradient)) < NEWTON_TOLERANCE * (1 + totals.max()):
            break
        hessian = -np.einsum("rs,rsi,rsj->rij", totals, probabilities, probabilities)
        hessian[:, diagonal, diagonal] += expected + 2 * penalty
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]

        scale = np.ones(replicates)
        for _halving in range(LINE_SEARCH_HALVINGS):
            candidate = theta - scale[:, None] * step
            candidate_objective = _negative_log_posterior(
                candidate, wins, totals, membership, penalty
            )
            # The slack keeps rounding noise near the optimum from halving a good step.
            worse = candidate_objective > objective + ROUNDING_SLACK * (1 + np.abs(objective))
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        improved = ~worse
        theta = np.where(improved[:, None], candidate, theta)
        objective = np.where(improved, candidate_objective, objective)
        if np.max(np.abs(scale[:, None] * step)) < NEWTON_TOLERANCE:
            break
    else:
        logger.warning(
            "preference fit stopped before convergence iterations=%s replicates=%s",
            NEWTON_MAX_ITERATIONS,
            replicates,
        )
    return theta


def _choice_probabilities(theta: np.ndarray, membership: np.ndarray) -> np.ndarray:
    logits = np.where(membership[None, :, :], theta[:, None, :], -np.inf)
    logits -= logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=2, keepdims=True)


def _negative_log_posterior(
    theta: np.ndarray,
    wins: np.ndarray,
    totals: np.ndarray,
    membership: np.ndarray,
    penalty: float,
) -> np.ndarray:
    logits = np.where(membership[None, :, :], theta[:, None, :], -np.inf)
    peak = logits.max(axis=2)
    log_normalizer = peak + np.log(np.exp(logits - peak[..., None]).sum(axis=2))
    log_likelihood = np.einsum("rsi,ri->r", wins, theta) - (totals * log_normalizer).sum(axis=1)
    return -log_likelihood + penalty * (theta**2).sum(axis=1)


def normalized_strengths(log_strengths: np.ndarray) -> np.ndarray:
    """Return the weights ``exp(theta)`` scaled to sum to 1 along the last axis."""
    shifted = np.exp(log_strengths - log_strengths.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def preference(
    rows: list[dict],
    *,
    bootstrap_iterations: int = BOOTSTRAP_ITERATIONS,
    seed: int = BOOTSTRAP_SEED,
) -> Preference:
    """Fit the authors' preference strengths to answered rows, with bootstrap intervals.

    The bootstrap resamples participants rather than answers, because one
    person's answers are not independent of each other. The same ``seed``
    gives the same intervals for the same rows.
    """
    if not 0 <= bootstrap_iterations <= MAX_BOOTSTRAP_ITERATIONS:
        raise ValueError(
            f"bootstrap_iterations must be between 0 and {MAX_BOOTSTRAP_ITERATIONS}, "
            f"got {bootstrap_iterations}"
        )
    data = choice_data(rows)
    participants = data.wins.shape[0]
    if participants == 0:
        return Preference(
            authors=[],
            answers=0,
            participants=0,
            bootstrap_iterations=bootstrap_iterations,
            seed=seed,
            prior_penalty=PRIOR_PENALTY,
        )

    per_participant = data.wins.reshape(participants, -1)
    draws = np.random.default_rng(seed).integers(
        0, participants, size=(bootstrap_iterations, participants)
    )
    # How often each participant was drawn into each resample.
    offsets = np.arange(bootstrap_iterations)[:, None] * participants
    resample_counts = np.bincount(
        (draws + offsets).ravel(), minlength=bootstrap_iterations * participants
    ).reshape(bootstrap_iterations, participants)
    replicates = np.vstack([per_participant.sum(axis=0), resample_counts @ per_participant])
    log_strengths = fit_log_strengths(
        replicates.reshape(len(replicates), *data.wins.shape[1:]), data.membership
    )
    strengths = normalized_strengths(log_strengths)
    if bootstrap_iterations:
        low, high = np.percentile(strengths[1:], [2.5, 97.5], axis=0)
    else:
        low = high = strengths[0]

    picks = data.wins.sum(axis=(0, 1))
    shown = np.einsum("si,s->i", data.membership, data.wins.sum(axis=(0, 2)))
    authors = [
        AuthorPreference(
            author=author,
            strength=float(strengths[0, index]),
            low=float(low[index]),
            high=float(high[index]),
            share=proportion(int(picks[index]), int(shown[index])),
        )
        for index, author in enumerate(data.authors)
    ]
    return Preference(
        authors=authors,
        answers=int(picks.sum()),
        participants=participants,
        bootstrap_iterations=bootstrap_iterations,
        seed=seed,
        prior_penalty=PRIOR_PENALTY,
    )
