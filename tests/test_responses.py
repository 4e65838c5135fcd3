import pytest
from django.utils import timezone

from survey.assignment import serve_next
from survey.models import Participant, Response
from survey.responses import BallotRejected, record_answer
from tests.factories import make_topic


@pytest.fixture
def participant(survey, topics):
    return Participant.objects.create(
        survey=survey, channel="phone", language="en", consented_at=timezone.now()
    )


@pytest.fixture
def served(participant):
    return serve_next(participant)


def test_answer_recorded(served):
    result = record_answer(
        participant=served.participant,
        response_id=served.pk,
        guessed_human_id=served.post_b_id,
        preferred_id=served.post_c_id,
        confidence=4,
        reasons=["style", "tone"],
        comment="Post B sounded like my uncle.",
    )

    assert result.recorded is True
    stored = Response.objects.get(pk=served.pk)
    assert stored.answered_at is not None
    assert stored.guessed_human_id == served.post_b_id
    assert stored.preferred_id == served.post_c_id
    assert stored.confidence == 4
    assert stored.reasons == ["style", "tone"]
    assert stored.comment == "Post B sounded like my uncle."


def test_double_submit_records_one_answer(served):
    first = record_answer(
        participant=served.participant,
        response_id=served.pk,
        guessed_human_id=served.post_a_id,
        preferred_id=served.post_a_id,
    )
    second = record_answer(
        participant=served.participant,
        response_id=served.pk,
        guessed_human_id=served.post_c_id,
        preferred_id=served.post_c_id,
    )

    assert first.recorded is True
    assert second.recorded is False
    stored = Response.objects.get(pk=served.pk)
    assert stored.guessed_human_id == served.post_a_id
    assert Response.objects.answered().count() == 1


def test_other_participants_response_rejected(served, survey):
    stranger = Participant.objects.create(
        survey=survey, channel="web", language="en", consented_at=timezone.now()
    )

    with pytest.raises(BallotRejected):
        record_answer(
            participant=stranger,
            response_id=served.pk,
            guessed_human_id=served.post_a_id,
            preferred_id=served.post_a_id,
        )

    assert Response.objects.answered().count() == 0


def test_post_from_other_comparison_rejected(served, survey):
    other_topic = make_topic(survey, title="Somewhere else")
    foreign_post = other_topic.posts.first()

    for field in ("guessed_human_id", "preferred_id"):
        ballot = {"guessed_human_id": served.post_a_id, "preferred_id": served.post_a_id}
        ballot[field] = foreign_post.pk
        with pytest.raises(BallotRejected):
            record_answer(participant=served.participant, response_id=served.pk, **ballot)

    assert Response.objects.answered().count() == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"confidence": 0},
        {"confidence": 6},
        {"reasons": ["style", "bribery"]},
        {"comment": "x" * 501},
        {"comment": "nul\x00byte"},
    ],
)
def test_out_of_range_values_rejected(served, extra):
    with pytest.raises(BallotRejected):
        record_answer(
            participant=served.participant,
            response_id=served.pk,
            guessed_human_id=served.post_a_id,
            preferred_id=served.post_b_id,
            **extra,
        )

    assert Response.objects.answered().count() == 0


def test_preloaded_response_of_other_participant_rejected(served, survey):
    stranger = Participant.objects.create(
        survey=survey, channel="web", language="en", consented_at=timezone.now()
    )

    with pytest.raises(BallotRejected):
        record_answer(
            participant=stranger,
            response_id=served.pk,
            guessed_human_id=served.post_a_id,
            preferred_id=served.post_a_id,
            served=served,
        )

    assert Response.objects.answered().count() == 0


def test_preloaded_response_updated_in_memory(served):
    result = record_answer(
        participant=served.participant,
        response_id=served.pk,
        guessed_human_id=served.post_b_id,
        preferred_id=served.post_c_id,
        served=served,
    )

    assert result.recorded is True
    assert result.response is served
    assert served.answered_at is not None
    assert served.guessed_human_id == served.post_b_id
    assert served.guessed_correctly == (served.post_b.author == "human")
    assert Response.objects.get(pk=served.pk).preferred_id == served.post_c_id
