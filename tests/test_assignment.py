from collections import Counter
from itertools import permutations

import pytest
from django.db import connection
from django.utils import timezone

from survey import assignment, catalog
from survey.assignment import PERMUTATIONS, display_order, planned_rounds, serve_next
from survey.models import Participant, Response, Topic
from survey.responses import record_answer
from tests.factories import make_survey, make_topic


def make_participant(survey, language="en"):
    return Participant.objects.create(
        survey=survey, channel="web", language=language, consented_at=timezone.now()
    )


def answer(response):
    record_answer(
        participant=response.participant,
        response_id=response.pk,
        guessed_human_id=response.post_a_id,
        preferred_id=response.post_b_id,
    )


def take_survey(participant):
    served = []
    while (response := serve_next(participant)) is not None:
        served.append(response)
        answer(response)
    return served


def test_permutation_cycle_covers_all_orders():
    assert sorted(PERMUTATIONS) == sorted(permutations(range(3)))


@pytest.mark.parametrize("rotation", [0, 1, 2])
@pytest.mark.parametrize("servings", range(1, 25))
def test_display_order_prefix_balanced(servings, rotation, survey):
    topic = make_topic(survey)
    posts = list(topic.posts.all())
    counts = Counter()
    for index in range(servings):
        for position, post in enumerate(display_order(posts, index, rotation=rotation)):
            counts[(post.pk, position)] += 1

    expected = servings / 3
    for post in posts:
        for position in range(3):
            assert abs(counts[(post.pk, position)] - expected) <= 1


@pytest.mark.django_db
def test_position_balance_over_many_participants():
    survey = make_survey(rounds_per_participant=3)
    topics = [make_topic(survey) for _ in range(4)]
    for _ in range(300):
        take_survey(make_participant(survey))

    counts = Counter()
    servings = Counter()
    for topic in topics:
        for response in topic.responses.all():
            servings[topic.pk] += 1
            for position, post_id in enumerate(
                (response.post_a_id, response.post_b_id, response.post_c_id)
            ):
                counts[(post_id, position)] += 1

    # 300 participants x 3 rounds over 4 topics: least-served-first keeps the
    # topics within one serving of each other.
    assert max(servings.values()) - min(servings.values()) <= 1
    for topic in topics:
        expected = servings[topic.pk] / 3
        for post in topic.posts.all():
            for position in range(3):
                assert abs(counts[(post.pk, position)] - expected) <= 1, (topic, post, position)


@pytest.mark.django_db
def test_model_pairs_rotate_with_three_models():
    survey = make_survey(rounds_per_participant=1)
    topic = make_topic(survey, models=("m1", "m2", "m3"))
    for _ in range(12):
        take_survey(make_participant(survey))

    pairs = Counter()
    for response in topic.responses.all():
        models = sorted(post.model for post in response.displayed_posts if post.model)
        pairs[tuple(models)] += 1
    assert pairs == {("m1", "m2"): 4, ("m1", "m3"): 4, ("m2", "m3"): 4}


@pytest.mark.django_db
def test_every_round_has_distinct_topic_and_human_post():
    survey = make_survey(rounds_per_participant=5)
    for _ in range(6):
        make_topic(survey)
    served = take_survey(make_participant(survey))

    assert [response.round_number for response in served] == [1, 2, 3, 4, 5]
    assert len({response.topic_id for response in served}) == 5
    for response in served:
        authors = sorted(post.author for post in response.displayed_posts)
        assert authors == ["human", "model", "model"]
        assert all(post.topic_id == response.topic_id for post in response.displayed_posts)


@pytest.mark.django_db
def test_fewer_topics_than_rounds_ends_early():
    survey = make_survey(rounds_per_participant=5)
    make_topic(survey)
    make_topic(survey)
    participant = make_participant(survey)

    assert planned_rounds(participant) == 2
    served = take_survey(participant)

    assert len(served) == 2
    participant.refresh_from_db()
    assert participant.finished_at is not None


@pytest.mark.django_db
def test_topics_follow_participant_language():
    survey = make_survey(rounds_per_participant=5)
    english = {make_topic(survey, language="en").pk for _ in range(3)}
    korean = {make_topic(survey, language="ko").pk for _ in range(2)}

    served_ko = take_survey(make_participant(survey, language="ko"))
    served_en = take_survey(make_participant(survey, language="en"))

    assert {response.topic_id for response in served_ko} == korean
    assert {response.topic_id for response in served_en} == english


@pytest.mark.django_db
def test_incomplete_and_inactive_topics_not_served():
    survey = make_survey(rounds_per_participant=5)
    ready = make_topic(survey)
    make_topic(survey, models=("only-one",))
    inactive = make_topic(survey)
    Topic.objects.filter(pk=inactive.pk).update(is_active=False)

    served = take_survey(make_participant(survey))

    assert [response.topic_id for response in served] == [ready.pk]


@pytest.mark.django_db
def test_least_served_topic_first():
    survey = make_survey(rounds_per_participant=1)
    busy = make_topic(survey)
    quiet = make_topic(survey)
    Topic.objects.filter(pk=busy.pk).update(served_count=10)

    response = serve_next(make_participant(survey))

    assert response.topic_id == quiet.pk


@pytest.mark.django_db
def test_unanswered_round_is_served_again():
    survey = make_survey()
    make_topic(survey)
    make_topic(survey)
    participant = make_participant(survey)

    first = serve_next(participant)
    again = serve_next(participant)

    assert again.pk == first.pk
    assert participant.responses.count() == 1


def test_serve_retries_when_topic_vanishes(db, monkeypatch):
    survey = make_survey(rounds_per_participant=1)
    make_topic(survey)
    make_topic(survey)
    participant = make_participant(survey)
    increments = []
    take_serving_index = assignment._take_serving_index

    def vanish_once(topic_id):
        # The first chosen topic is deleted between the candidate query and
        # the increment, as by an organizer in another process.
        increments.append(topic_id)
        return None if len(increments) == 1 else take_serving_index(topic_id)

    monkeypatch.setattr(assignment, "_take_serving_index", vanish_once)

    response = serve_next(participant)

    assert response is not None
    assert len(increments) == 2
    assert Response.objects.filter(participant=participant).count() == 1


def test_serve_reloads_catalog_after_post_deleted(transactional_db, settings):
    settings.SURVEY_CATALOG_SECONDS = 60
    survey = make_survey(rounds_per_participant=1)
    topic = make_topic(survey, models=("model-x", "model-y", "model-z"))
    catalog.for_survey(survey.pk)
    deleted = topic.posts.get(model="model-x")
    # Raw SQL sends no signal, as when another process deletes the post.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM survey_post WHERE id = %s", [deleted.pk])

    response = serve_next(make_participant(survey))

    assert response is not None
    assert deleted.pk not in response.displayed_post_ids
    assert Topic.objects.get(pk=topic.pk).served_count == 1


def human_position(response):
    authors = [post.author for post in response.displayed_posts]
    return authors.index("human")


@pytest.mark.django_db
def test_human_position_varies_within_participant():
    survey = make_survey(rounds_per_participant=5)
    for _ in range(6):
        make_topic(survey)

    # Serving one participant after another keeps the topics' serving counts
    # in step, so every candidate topic is at the same serving index.
    for _ in range(30):
        positions = Counter(
            human_position(response) for response in take_survey(make_participant(survey))
        )

        assert len(positions) >= 2, positions
        assert max(positions.values()) <= 3, positions
