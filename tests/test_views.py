import re

import pytest
from django.urls import reverse

from survey.models import Participant, Response
from tests.factories import make_survey, make_topic

PHONE_USER_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"


@pytest.fixture
def survey(db):
    survey = make_survey(slug="booth", is_default=True, rounds_per_participant=3)
    for index in range(4):
        make_topic(survey, title=f"Topic {index}")
    return survey


def consent(client, survey, **extra):
    return client.post(reverse("survey:welcome", args=[survey.slug]), {"consent": "on"}, **extra)


def current_ballot(client, survey):
    """Return the response id and the three post ids of the round on screen."""
    page = client.get(reverse("survey:round", args=[survey.slug]))
    assert page.status_code == 200
    served = page.context["served"]
    return served, [post.pk for post in served.displayed_posts]


def ballot_data(served, guessed, preferred, **extra):
    data = {"response": served.pk, "guessed_human": guessed, "preferred": preferred}
    data.update(extra)
    return data


def test_root_serves_default_survey(client, survey):
    page = client.get("/")

    assert page.status_code == 200
    assert page.context["survey"] == survey
    assert b"What we record" in page.content
    assert "no-store" in page["Cache-Control"]


def test_root_without_open_survey_says_so(client, db):
    page = client.get("/")

    assert page.status_code == 404
    assert b"No survey is open" in page.content


def test_closed_survey_not_found(client, survey):
    survey.is_open = False
    survey.save()

    assert client.get(f"/s/{survey.slug}/").status_code == 404


def test_consent_required(client, survey):
    page = client.post(reverse("survey:welcome", args=[survey.slug]), {})

    assert page.status_code == 200
    assert b"Please tick the box" in page.content
    assert Participant.objects.count() == 0


def test_round_without_consent_redirects_to_welcome(client, survey):
    page = client.get(reverse("survey:round", args=[survey.slug]))

    assert page.status_code == 302
    assert page["Location"] == reverse("survey:welcome", args=[survey.slug])


def test_full_survey_without_javascript(client, survey):
    page = consent(client, survey, HTTP_USER_AGENT=PHONE_USER_AGENT)
    assert page.status_code == 302
    participant = Participant.objects.get()
    assert participant.channel == "phone"
    assert participant.device_class == "mobile"

    correct = 0
    for round_number in range(1, 4):
        served, post_ids = current_ballot(client, survey)
        assert served.round_number == round_number
        human = next(post.pk for post in served.displayed_posts if post.author == "human")
        guess = human if round_number != 2 else next(pk for pk in post_ids if pk != human)
        correct += guess == human
        page = client.post(
            reverse("survey:round", args=[survey.slug]),
            ballot_data(served, guess, post_ids[0], confidence="3", reasons=["gut"]),
        )
        assert page.status_code == 303
        assert page["Location"] == reverse("survey:round", args=[survey.slug])

    page = client.get(reverse("survey:round", args=[survey.slug]), follow=True)
    assert page.redirect_chain[-1][0] == reverse("survey:finish", args=[survey.slug])
    text = page.content.decode()
    assert "You spotted the human in 2 of 3" in text
    assert text.count("written by a person") == 3
    participant.refresh_from_db()
    assert participant.finished_at is not None
    assert Response.objects.answered().count() == 3


def test_round_page_has_labelled_posts_and_questions(client, survey):
    consent(client, survey)
    page = client.get(reverse("survey:round", args=[survey.slug]))
    text = page.content.decode()

    for letter in "ABC":
        assert f'id="post-{letter}"' in text
    assert "Which one did a person write?" in text
    assert "Which one would you rather read?" in text
    assert 'maxlength="500"' in text
    assert page["Vary"] and "HX-Request" in page["Vary"]


def test_missing_choice_shows_form_again(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)

    page = client.post(
        reverse("survey:round", args=[survey.slug]),
        {"response": served.pk, "preferred": post_ids[1], "comment": "kept"},
    )

    assert page.status_code == 200
    assert b"Pick the post you think a person wrote." in page.content
    assert b"kept" in page.content
    assert Response.objects.answered().count() == 0


def test_missing_choice_keeps_other_choices_checked(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)

    page = client.post(
        reverse("survey:round", args=[survey.slug]),
        {
            "response": served.pk,
            "preferred": post_ids[1],
            "confidence": "4",
            "reasons": ["style", "gut"],
        },
    )

    html = page.content.decode()
    assert f'value="{post_ids[1]}" id="id_preferred_1" checked' in html
    assert not re.search(r'name="guessed_human"[^>]* checked', html)
    assert 'value="4" id="id_confidence_3" checked' in html
    assert 'value="style" id="id_reasons_0" checked' in html
    assert 'value="gut" id="id_reasons_5" checked' in html
    assert 'value="tone" id="id_reasons_4">' in html


def test_htmx_answer_round_trip_queries(client, survey, django_assert_max_num_queries):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)

    # Rate counter, session, participant, response, the answer; then the
    # served topics, the candidates, the increment and the new response, with
    # a savepoint and its release around them.
    with django_assert_max_num_queries(11):
        page = client.post(
            reverse("survey:round", args=[survey.slug]),
            ballot_data(served, post_ids[0], post_ids[1]),
            HTTP_HX_REQUEST="true",
        )

    assert page.context["served"].round_number == 2


def test_double_submit_records_one_and_same_next_page(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)
    url = reverse("survey:round", args=[survey.slug])

    first = client.post(url, ballot_data(served, post_ids[0], post_ids[1]))
    second = client.post(url, ballot_data(served, post_ids[2], post_ids[2]))

    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    stored = Response.objects.get(pk=served.pk)
    assert stored.guessed_human_id == post_ids[0]
    assert Response.objects.answered().count() == 1
    assert Response.objects.filter(participant=stored.participant).count() == 1


def test_ballot_for_other_participants_response_rejected(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)
    other = client.__class__()
    consent(other, survey)

    page = other.post(
        reverse("survey:round", args=[survey.slug]), ballot_data(served, post_ids[0], post_ids[0])
    )

    assert page.status_code == 400
    assert b"does not belong to your session" in page.content
    assert Response.objects.answered().count() == 0


def test_post_from_other_comparison_rejected(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)
    foreign = make_topic(survey, title="Elsewhere").posts.first()

    page = client.post(
        reverse("survey:round", args=[survey.slug]), ballot_data(served, foreign.pk, post_ids[0])
    )

    assert page.status_code == 400
    assert Response.objects.answered().count() == 0


@pytest.mark.parametrize(
    "tamper",
    [
        {"response": "abc"},
        {"guessed_human": "not-a-number"},
        {"confidence": "9"},
        {"reasons": ["bribery"]},
        {"comment": "nul\x00"},
    ],
)
def test_tampered_ballot_gets_400(client, survey, tamper):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)
    data = ballot_data(served, post_ids[0], post_ids[1])
    data.update(tamper)

    page = client.post(reverse("survey:round", args=[survey.slug]), data)

    assert page.status_code == 400
    assert Response.objects.answered().count() == 0


def test_long_comment_shows_form_again(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)

    page = client.post(
        reverse("survey:round", args=[survey.slug]),
        ballot_data(served, post_ids[0], post_ids[1], comment="x" * 501),
    )

    assert page.status_code == 200
    assert b"under 500 characters" in page.content
    assert Response.objects.answered().count() == 0


def test_htmx_ballot_swaps_next_round(client, survey):
    consent(client, survey)
    served, post_ids = current_ballot(client, survey)

    page = client.post(
        reverse("survey:round", args=[survey.slug]),
        ballot_data(served, post_ids[0], post_ids[1]),
        HTTP_HX_REQUEST="true",
    )

    assert page.status_code == 200
    text = page.content.decode()
    assert text.lstrip().startswith('<section id="round"')
    assert "<html" not in text
    assert page.context["served"].round_number == 2


def test_htmx_last_ballot_redirects_to_finish(client, survey):
    consent(client, survey)
    url = reverse("survey:round", args=[survey.slug])
    for _ in range(3):
        served, post_ids = current_ballot(client, survey)
        page = client.post(
            url, ballot_data(served, post_ids[0], post_ids[1]), HTTP_HX_REQUEST="true"
        )

    assert page.status_code == 200
    assert page["HX-Redirect"] == reverse("survey:finish", args=[survey.slug])


def test_finish_before_last_round_redirects_back(client, survey):
    consent(client, survey)

    page = client.get(reverse("survey:finish", args=[survey.slug]))

    assert page.status_code == 302
    assert page["Location"] == reverse("survey:round", args=[survey.slug])


def test_restart_forgets_participant(client, survey):
    consent(client, survey)
    current_ballot(client, survey)

    client.post(reverse("survey:restart", args=[survey.slug]))
    page = client.get(reverse("survey:round", args=[survey.slug]))

    assert page.status_code == 302
    assert page["Location"] == reverse("survey:welcome", args=[survey.slug])


def test_korean_interface_and_topics(client, survey):
    korean = make_topic(survey, title="자전거 출근", language="ko")
    client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

    consent(client, survey)
    served, _post_ids = current_ballot(client, survey)

    participant = Participant.objects.get()
    assert participant.language == "ko"
    assert served.topic_id == korean.pk


def test_language_without_topics_falls_back(client, survey):
    client.post("/i18n/setlang/", {"language": "ko", "next": "/"})

    consent(client, survey)

    assert Participant.objects.get().language == "en"


def test_qr_link_marks_phone_channel(client, survey):
    page = client.get(f"/s/{survey.slug}/?via=qr")
    action = re.search(r'class="consent-form"', page.content.decode())
    assert action
    assert f'action="/s/{survey.slug}/?via=qr"' in page.content.decode()

    client.post(f"/s/{survey.slug}/?via=qr", {"consent": "on"})

    assert Participant.objects.get().channel == "phone"
