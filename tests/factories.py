"""Small builders for test data."""

from itertools import count

from survey.models import HUMAN, MODEL, Post, Survey, Topic

_sequence = count(1)


def make_survey(**fields) -> Survey:
    number = next(_sequence)
    defaults = {
        "slug": f"survey-{number}",
        "title": f"Survey {number}",
        "is_open": True,
        "is_default": False,
        "rounds_per_participant": 5,
    }
    defaults.update(fields)
    return Survey.objects.create(**defaults)


def make_topic(
    survey: Survey,
    *,
    title: str | None = None,
    language: str = "en",
    models: tuple[str, ...] = ("model-x", "model-y"),
) -> Topic:
    topic = Topic.objects.create(
        survey=survey, title=title or f"Topic {next(_sequence)}", language=language
    )
    Post.objects.create(topic=topic, author=HUMAN, body=f"A person wrote about {topic.title}.")
    for model in models:
        Post.objects.create(
            topic=topic, author=MODEL, model=model, body=f"{model} wrote about {topic.title}."
        )
    return topic
