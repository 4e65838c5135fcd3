import pytest
from django.utils import timezone

from survey import catalog
from survey.assignment import serve_next
from survey.models import Participant, Response, Topic
from tests.factories import make_survey, make_topic


@pytest.fixture
def survey(db):
    survey = make_survey(slug="booth", rounds_per_participant=2)
    make_topic(survey, title="Coffee")
    make_topic(survey, title="Trains")
    make_topic(survey, title="Kimchi", language="ko")
    return survey


def titles(content, language="en"):
    return sorted(content.topics[topic_id].title for topic_id in content.topic_ids(language))


def test_catalog_lists_servable_topics_by_language(survey):
    make_topic(survey, title="One model only", models=("model-x",))

    content = catalog.for_survey(survey.pk)

    assert titles(content) == ["Coffee", "Trains"]
    assert titles(content, "ko") == ["Kimchi"]
    assert content.languages == {"en", "ko"}


def test_catalog_loaded_once_within_max_age(survey, django_assert_num_queries):
    first = catalog.for_survey(survey.pk)

    with django_assert_num_queries(0):
        again = catalog.for_survey(survey.pk)
        topic = again.topics[again.topic_ids("en")[0]]
        posts = list(topic.posts.all())

    assert again is first
    assert len(posts) == 3


def test_catalog_reloads_after_max_age(survey, settings):
    settings.SURVEY_CATALOG_SECONDS = 0
    catalog.for_survey(survey.pk)

    # update() sends no signal, like an edit made in another process.
    Topic.objects.filter(title="Trains").update(is_active=False)

    assert titles(catalog.for_survey(survey.pk)) == ["Coffee"]


def test_change_in_other_process_waits_for_max_age(survey, settings):
    settings.SURVEY_CATALOG_SECONDS = 60
    catalog.for_survey(survey.pk)

    Topic.objects.filter(title="Trains").update(is_active=False)

    assert titles(catalog.for_survey(survey.pk)) == ["Coffee", "Trains"]


def test_saving_topic_clears_catalog(survey, settings):
    settings.SURVEY_CATALOG_SECONDS = 60
    catalog.for_survey(survey.pk)
    topic = Topic.objects.get(title="Trains")

    topic.is_active = False
    topic.save()

    assert titles(catalog.for_survey(survey.pk)) == ["Coffee"]


def test_open_survey_cached_until_saved(survey, django_assert_num_queries):
    assert catalog.open_survey("booth") == survey
    with django_assert_num_queries(0):
        assert catalog.open_survey("booth") == survey

    survey.is_open = False
    survey.save()

    assert catalog.open_survey("booth") is None
    assert catalog.open_survey("no-such-survey") is None


def test_attach_content_loads_topic_left_catalog(survey):
    participant = Participant.objects.create(
        survey=survey, channel="web", language="en", consented_at=timezone.now()
    )
    served = serve_next(participant)
    Topic.objects.filter(pk=served.topic_id).update(is_active=False)
    catalog.clear()
    pending = Response.objects.get(pk=served.pk)

    catalog.attach_content(pending, survey_id=survey.pk)

    assert pending.topic.pk == served.topic_id
    assert [post.pk for post in pending.displayed_posts] == served.displayed_post_ids
    assert pending.post_a.body_html.startswith("<p>")


def test_body_html_escapes_and_keeps_paragraphs(survey):
    post = Topic.objects.get(title="Coffee").posts.first()
    post.body = "First <b>line</b>\nsecond line\n\nNext paragraph & more"

    assert post.body_html == (
        "<p>First &lt;b&gt;line&lt;/b&gt;<br>second line</p>\n\n<p>Next paragraph &amp; more</p>"
    )
