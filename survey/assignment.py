"""Choosing the next comparison for a participant.

Topics are served least-served first, so that every topic collects about as
many answers. Display orders are counterbalanced by construction: the k-th
serving of a topic uses a model pair and a permutation picked from k, so that
over every six servings of a pair each of its three posts sits in each
position exactly twice, and after any number of servings each post is within
one of an equal share of every position.

Least-served-first keeps the topics' serving counts in step, so without care
every round of one participant would get the same permutation and show the
human post in the same position. Each topic therefore starts its cycle at a
different row (from its id), and among the least-served topics a participant
gets one that puts the human post where they have seen it least, with random
tie-breaks.
"""

import logging
import random
from collections import Counter
from itertools import combinations

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from survey import catalog
from survey.models import HUMAN, MODEL, Participant, Post, Response, Topic

logger = logging.getLogger(__name__)

# All six orders of (human, first model, second model). The first three and the
# last three are each a Latin square, so any prefix of this cycle keeps every
# post within one of an equal count in every position. That holds for any
# order of the rows inside each square, which display_order() uses to rotate.
PERMUTATIONS = (
    (0, 1, 2),
    (1, 2, 0),
    (2, 0, 1),
    (0, 2, 1),
    (2, 1, 0),
    (1, 0, 2),
)

_rng = random.SystemRandom()


def display_order(posts: list[Post], serving_index: int, *, rotation: int = 0) -> list[Post]:
    """Return the three posts to show for the ``serving_index``-th serving of a topic.

    ``posts`` holds the topic's human post and two or more model posts. The model
    pair cycles fastest, then the permutation, so that each pair sees all six
    orders in turn. ``rotation`` (0, 1 or 2, fixed per topic) shifts the rows
    inside each Latin square, which changes where the human post appears at a
    given serving index and keeps every balance above.
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
    step = serving_index // len(pairs)
    square = (step // 3) % 2
    permutation = PERMUTATIONS[square * 3 + (step + rotation) % 3]
    canonical = [human[0], *pair]
    return [canonical[index] for index in permutation]


def pending_response(participant: Participant) -> Response | None:
    return participant.responses.pending_answer().order_by("round_number").first()


def serve_next(participant: Participant, *, answered: Response | None = None) -> Response | None:
    """Return the participant's current unanswered response, serving a new one if needed.

    Returns None when the participant has answered all their rounds or no unseen
    topic in their language remains, and then marks the participant finished.
    Calling it again before an answer returns the same response, so a reload or
    a second tab never serves a second comparison. ``answered`` is the response
    whose answer this request has just stored: that was the pending one, so the
    lookup of a pending response is skipped.
    """
    for attempt in range(3):
        if answered is None or attempt > 0:
            current = pending_response(participant)
            if current is not None:
                return current
        try:
            return _serve_new(participant)
        except IntegrityError as error:
            # Most often another request of the same participant served this
            # round first, and the loop returns the response it created. A post
            # deleted since this process loaded its catalog fails the same way,
            # so the retry reads the catalog again.
            logger.info(
                "serve conflicted, retrying participant=%s error=%s", participant.public_id, error
            )
            catalog.clear()
        except _TopicGone as gone:
            logger.info(
                "topic left the catalog while serving participant=%s topic=%s",
                participant.public_id,
                gone.topic_id,
            )
            catalog.clear()
    return pending_response(participant)


class _TopicGone(Exception):
    def __init__(self, topic_id: int):
        super().__init__(topic_id)
        self.topic_id = topic_id


def _serve_new(participant: Participant) -> Response | None:
    with transaction.atomic():
        served = list(
            participant.responses.order_by().values_list(
                "topic_id", "post_a_id", "post_b_id", "post_c_id"
            )
        )
        served_topic_ids = {topic_id for topic_id, *_shown in served}
        rounds = participant.survey.rounds_per_participant
        if len(served_topic_ids) >= rounds:
            _mark_finished(participant)
            return None

        content = catalog.for_survey(participant.survey_id)
        unseen = [
            topic_id
            for topic_id in content.topic_ids(participant.language)
            if topic_id not in served_topic_ids
        ]
        candidates = list(
            Topic.objects.filter(pk__in=unseen).order_by().values_list("pk", "served_count")
        )
        if not candidates:
            _mark_finished(participant)
            return None
        topic_id = _choose_topic(candidates, content, _human_positions(served, content))

        serving_index = _take_serving_index(topic_id)
        topic = content.topics.get(topic_id)
        if serving_index is None or topic is None:
            raise _TopicGone(topic_id)
        posts = display_order(
            list(topic.posts.all()), serving_index, rotation=topic_rotation(topic_id)
        )
        response = Response.objects.create(
            participant=participant,
            topic=topic,
            round_number=len(served_topic_ids) + 1,
            post_a=posts[0],
            post_b=posts[1],
            post_c=posts[2],
        )
    return response


def topic_rotation(topic_id: int) -> int:
    """Return the topic's fixed ``rotation`` for display_order(): 0, 1 or 2, from its id."""
    return topic_id % 3


def _human_positions(served: list[tuple[int, int, int, int]], content: catalog.Catalog) -> Counter:
    """Count the positions (0 for A to 2 for C) of the human post in served rounds.

    ``served`` contains (topic id, post A id, post B id, post C id) per round. A
    round whose topic has left the catalog is not counted.
    """
    positions = Counter()
    for topic_id, *shown in served:
        topic = content.topics.get(topic_id)
        if topic is None:
            continue
        human_ids = {post.pk for post in topic.posts.all() if post.author == HUMAN}
        positions.update(index for index, post_id in enumerate(shown) if post_id in human_ids)
    return positions


def _choose_topic(
    candidates: list[tuple[int, int]], content: catalog.Catalog, seen: Counter
) -> int:
    """Pick a least-served topic whose next order puts the human post where the
    participant has seen it least (``seen`` counts positions), at random among ties."""
    fewest = min(count for _pk, count in candidates)
    scored = []
    for topic_id, count in candidates:
        if count != fewest:
            continue
        topic = content.topics[topic_id]
        order = display_order(list(topic.posts.all()), count, rotation=topic_rotation(topic_id))
        position = next(index for index, post in enumerate(order) if post.author == HUMAN)
        scored.append((seen[position], topic_id))
    least = min(score for score, _topic_id in scored)
    return _rng.choice([topic_id for score, topic_id in scored if score == least])


def _take_serving_index(topic_id: int) -> int | None:
    """Increment the topic's ``served_count``; return its previous value, or None if it is gone.

    One UPDATE with RETURNING (SQLite 3.35 or newer, PostgreSQL): on PostgreSQL
    its row lock serializes servings of one topic, so no two participants get
    the same serving index, and SQLite's IMMEDIATE transactions already
    serialize every writer.
    """
    table = connection.ops.quote_name(Topic._meta.db_table)
    column = connection.ops.quote_name(Topic._meta.get_field("served_count").column)
    key = connection.ops.quote_name(Topic._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {column} + 1 WHERE {key} = %s RETURNING {column}",
            [topic_id],
        )
        row = cursor.fetchone()
    return None if row is None else row[0] - 1


def _mark_finished(participant: Participant) -> None:
    if participant.finished_at is None:
        participant.finished_at = timezone.now()
        Participant.objects.filter(pk=participant.pk, finished_at__isnull=True).update(
            finished_at=participant.finished_at
        )


def planned_rounds(participant: Participant) -> int:
    """Return how many rounds the participant will see: the survey's rounds, or fewer
    when their language has fewer servable topics."""
    available = len(catalog.for_survey(participant.survey_id).topic_ids(participant.language))
    return min(participant.survey.rounds_per_participant, available)
