"""Choosing the next comparison for a participant.

Topics are served least-served first, with random tie-breaks, so that every
topic collects about as many answers. Display orders are counterbalanced by
construction: the k-th serving of a topic uses a model pair and a permutation
picked from k, so that over every six servings of a pair each of its three
posts sits in each position exactly twice, and after any number of servings
each post is within one of an equal share of every position.
"""

import logging
import random
from itertools import combinations

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from survey.models import HUMAN, MODEL, Participant, Post, Response, Topic

logger = logging.getLogger(__name__)

# All six orders of (human, first model, second model). The first three and the
# last three are each a Latin square, so any prefix of this cycle keeps every
# post within one of an equal count in every position.
PERMUTATIONS = (
    (0, 1, 2),
    (1, 2, 0),
    (2, 0, 1),
    (0, 2, 1),
    (2, 1, 0),
    (1, 0, 2),
)

_rng = random.SystemRandom()


def display_order(posts: list[Post], serving_index: int) -> list[Post]:
    """Return the three posts to show for the ``serving_index``-th serving of a topic.

    ``posts`` holds the topic's human post and two or more model posts. The model
    pair cycles fastest, then the permutation, so that each pair sees all six
    orders in turn.
    """
    human = [post for post in posts if post.author == HUMAN]
    models = sorted(
        (post for post in posts if post.author == MODEL), key=lambda post: (post.model, post.pk)
    )
    if len(human) != 1 or len(models) < 2:
        raise ValueError(
            f"topic needs one human post and two model posts, got {len(human)} and {len(models)}"
        )
    pairs = list(combinations(models, 2))
    pair = pairs[serving_index % len(pairs)]
    permutation = PERMUTATIONS[(serving_index // len(pairs)) % len(PERMUTATIONS)]
    canonical = [human[0], *pair]
    return [canonical[index] for index in permutation]


def pending_response(participant: Participant) -> Response | None:
    return (
        participant.responses.pending_answer()
        .select_related("topic", "post_a", "post_b", "post_c")
        .first()
    )


def serve_next(participant: Participant) -> Response | None:
    """Return the participant's current unanswered response, serving a new one if needed.

    Returns None when the participant has answered all their rounds or no unseen
    topic in their language remains, and then marks the participant finished.
    Calling it again before an answer returns the same response, so a reload or
    a second tab never serves a second comparison.
    """
    for _attempt in range(3):
        current = pending_response(participant)
        if current is not None:
            return current
        try:
            return _serve_new(participant)
        except IntegrityError:
            # Another request of the same participant served this round first;
            # the loop returns the response it created.
            logger.info("concurrent serve resolved participant=%s", participant.public_id)
    return pending_response(participant)


def _serve_new(participant: Participant) -> Response | None:
    with transaction.atomic():
        served_topic_ids = list(participant.responses.values_list("topic_id", flat=True))
        rounds = participant.survey.rounds_per_participant
        if len(served_topic_ids) >= rounds:
            _mark_finished(participant)
            return None

        candidates = list(
            Topic.objects.servable()
            .filter(survey_id=participant.survey_id, language=participant.language)
            .exclude(pk__in=served_topic_ids)
            .values_list("pk", "served_count")
        )
        if not candidates:
            _mark_finished(participant)
            return None
        fewest = min(count for _pk, count in candidates)
        topic_id = _rng.choice([pk for pk, count in candidates if count == fewest])

        # The row lock serializes servings of one topic on PostgreSQL, so no two
        # participants get the same serving index. SQLite's IMMEDIATE
        # transactions already serialize every writer.
        topic = Topic.objects.select_for_update().get(pk=topic_id)
        serving_index = topic.served_count
        Topic.objects.filter(pk=topic_id).update(served_count=F("served_count") + 1)

        posts = display_order(list(topic.posts.all()), serving_index)
        response = Response.objects.create(
            participant=participant,
            topic=topic,
            round_number=len(served_topic_ids) + 1,
            post_a=posts[0],
            post_b=posts[1],
            post_c=posts[2],
        )
    return response


def _mark_finished(participant: Participant) -> None:
    if participant.finished_at is None:
        participant.finished_at = timezone.now()
        Participant.objects.filter(pk=participant.pk, finished_at__isnull=True).update(
            finished_at=participant.finished_at
        )


def planned_rounds(participant: Participant) -> int:
    """Return how many rounds the participant will see: the survey's rounds, or fewer
    when their language has fewer servable topics."""
    available = (
        Topic.objects.servable()
        .filter(survey_id=participant.survey_id, language=participant.language)
        .count()
    )
    return min(participant.survey.rounds_per_participant, available)
