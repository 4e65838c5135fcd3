import pytest
from django.core.cache import cache
from django.urls import reverse

from survey.models import Participant, Response
from survey.withdrawal import (
    RECEIPT_ALPHABET,
    InvalidReceiptCode,
    assign_receipt_code,
    new_receipt_code,
    normalize_receipt_code,
)
from tests.factories import make_survey, make_topic


@pytest.fixture(autouse=True)
def empty_cache(db):
    cache.clear()


@pytest.fixture
def finished_client(client, db):
    survey = make_survey(slug="booth", rounds_per_participant=2)
    make_topic(survey)
    make_topic(survey)
    client.post(reverse("survey:welcome", args=["booth"]), {"consent": "on"})
    round_url = reverse("survey:round", args=["booth"])
    for _round in range(2):
        served = client.get(round_url).context["served"]
        client.post(
            round_url,
            {
                "response": served.pk,
                "guessed_human": served.post_a_id,
                "preferred": served.post_b_id,
            },
        )
    return client


def test_receipt_code_format():
    code = new_receipt_code()

    assert len(code) == 9
    assert code[4] == "-"
    assert set(code.replace("-", "")) <= set(RECEIPT_ALPHABET)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("abcd-ef23", "ABCD-EF23"), (" ABCD EF23 ", "ABCD-EF23"), ("abcdef23", "ABCD-EF23")],
)
def test_receipt_code_normalized(typed, stored):
    assert normalize_receipt_code(typed) == stored


@pytest.mark.parametrize(
    "typed", ["", "ABCD-EF2", "ABCD-EF230", "ABCD-EF20", "ABCD-EFI3", "ÀBCD-EF23"]
)
def test_invalid_receipt_code_rejected(typed):
    with pytest.raises(InvalidReceiptCode):
        normalize_receipt_code(typed)


def test_receipt_code_assigned_once(db):
    survey = make_survey()
    participant = Participant.objects.create(
        survey=survey, channel="web", language="en", consented_at="2026-01-01T00:00Z"
    )

    first = assign_receipt_code(participant)
    again = assign_receipt_code(Participant.objects.get(pk=participant.pk))

    assert first == again
    assert Participant.objects.get(pk=participant.pk).receipt_code == first


def test_finish_page_shows_receipt_code(finished_client):
    page = finished_client.get(reverse("survey:finish", args=["booth"]))

    code = Participant.objects.get().receipt_code
    assert code
    assert code in page.content.decode()
    assert f"{reverse('withdraw')}?code={code}" in page.content.decode()


def test_withdraw_deletes_participant_and_responses(finished_client):
    finished_client.get(reverse("survey:finish", args=["booth"]))
    code = Participant.objects.get().receipt_code

    page = finished_client.post(reverse("withdraw"), {"code": code.lower(), "confirm": "on"})

    assert page.status_code == 200
    assert b"We deleted 2 answers" in page.content
    assert Participant.objects.count() == 0
    assert Response.objects.count() == 0
    after = finished_client.get(reverse("survey:round", args=["booth"]))
    assert after.status_code == 302


def test_withdraw_requires_confirmation(finished_client):
    finished_client.get(reverse("survey:finish", args=["booth"]))
    code = Participant.objects.get().receipt_code

    page = finished_client.post(reverse("withdraw"), {"code": code})

    assert page.status_code == 200
    assert b"Tick the box to confirm" in page.content
    assert Response.objects.count() == 2


def test_withdraw_unknown_code_changes_nothing(finished_client):
    page = finished_client.post(reverse("withdraw"), {"code": "ZZZZ-ZZZZ", "confirm": "on"})

    assert page.status_code == 404
    assert b"No answers were found" in page.content
    assert Response.objects.count() == 2


def test_withdraw_malformed_code_explained(finished_client):
    page = finished_client.post(reverse("withdraw"), {"code": "hello", "confirm": "on"})

    assert page.status_code == 200
    assert b"eight letters and digits" in page.content
    assert Response.objects.count() == 2
