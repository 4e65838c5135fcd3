"""Property-based fuzzing of the consent and ballot forms.

Whatever arrives, the status is never 500, and every stored response stays
valid: the chosen posts are among the three shown, values are in range, and
text is stored as sent.
"""

from urllib.parse import urlencode

from django.core.cache import cache
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from survey.models import Participant, Response
from survey.responses import COMMENT_MAX_LENGTH, REASON_CODES
from tests.factories import make_survey, make_topic

# Text as a browser can send it: any character except lone surrogates, which
# cannot be encoded as UTF-8.
form_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=600)
id_like = st.one_of(
    form_text,
    st.integers(min_value=-(2**63), max_value=2**64).map(str),
    st.just(""),
)
ALLOWED_STATUSES = {200, 302, 303, 400, 429}


class BallotFuzz(TestCase):
    # Each example runs in its own rolled-back transaction, so it builds its
    # own survey and participant.
    def start_round(self):
        cache.clear()
        survey = make_survey(slug="fuzz", rounds_per_participant=2)
        make_topic(survey, title="One")
        make_topic(survey, title="Two")
        self.client.post(reverse("survey:welcome", args=["fuzz"]), {"consent": "on"})
        self.round_url = reverse("survey:round", args=["fuzz"])
        self.served = self.client.get(self.round_url).context["served"]

    def assert_stored_responses_valid(self):
        for response in Response.objects.answered().select_related("post_a", "post_b", "post_c"):
            shown = {response.post_a_id, response.post_b_id, response.post_c_id}
            assert response.guessed_human_id in shown
            assert response.preferred_id in shown
            assert response.confidence is None or 1 <= response.confidence <= 5
            assert set(response.reasons) <= REASON_CODES
            assert len(response.comment) <= COMMENT_MAX_LENGTH
            assert "\x00" not in response.comment

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        response=st.one_of(id_like, st.just("served")),
        guessed=st.one_of(id_like, st.sampled_from(["a", "b", "c"])),
        preferred=st.one_of(id_like, st.sampled_from(["a", "b", "c"])),
        confidence=st.one_of(id_like, st.sampled_from(["1", "3", "5", "0", "6"])),
        reasons=st.lists(st.one_of(form_text, st.sampled_from(sorted(REASON_CODES))), max_size=8),
        comment=form_text,
    )
    def test_ballot_never_500_and_stores_only_valid(
        self, response, guessed, preferred, confidence, reasons, comment
    ):
        self.start_round()
        letters = {
            "a": self.served.post_a_id,
            "b": self.served.post_b_id,
            "c": self.served.post_c_id,
        }
        data = {
            "response": self.served.pk if response == "served" else response,
            "guessed_human": letters.get(guessed, guessed),
            "preferred": letters.get(preferred, preferred),
            "confidence": confidence,
            "reasons": reasons,
            "comment": comment,
        }

        page = self.client.post(self.round_url, data)

        assert page.status_code in ALLOWED_STATUSES, page.status_code
        self.assert_stored_responses_valid()
        stored = Response.objects.answered().filter(pk=self.served.pk).first()
        if page.status_code == 303 and stored is not None and stored.comment:
            assert stored.comment == comment.strip()


class ConsentFuzz(TestCase):
    @settings(max_examples=80, deadline=None)
    @given(
        fields=st.dictionaries(
            st.sampled_from(["consent", "csrfmiddlewaretoken", "language", "extra"]),
            form_text,
            max_size=4,
        ),
        via=form_text,
    )
    def test_consent_never_500(self, fields, via):
        cache.clear()
        make_survey(slug="fuzz", rounds_per_participant=1)
        before = Participant.objects.count()

        page = self.client.post(
            reverse("survey:welcome", args=["fuzz"]),
            fields,
            QUERY_STRING=urlencode({"via": via}),
        )

        assert page.status_code in ALLOWED_STATUSES, page.status_code
        created = Participant.objects.count() - before
        if page.status_code == 302:
            assert created == 1
        else:
            assert created == 0
