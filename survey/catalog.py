"""Open surveys and their servable topics with posts, cached in the process.

Serving and rendering a round reads the same survey, topics and posts for
every participant, so each process keeps them after one load instead of
running the ``Topic.objects.servable()`` aggregate and the post queries on
every request. Each entry is reloaded after ``SURVEY_CATALOG_SECONDS``
(default 5). Saving or deleting a survey, topic or post clears the caches of
the process that saved it at once, so an edit in the admin reaches the other
workers within that time.

Only content is cached. ``Topic.served_count``, which assignment reads and
increments, always comes from the database.
"""

import logging
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from survey.models import Post, Response, Survey, Topic

logger = logging.getLogger(__name__)

DEFAULT_MAX_AGE_SECONDS = 5.0


@dataclass(frozen=True)
class Catalog:
    """The servable topics of one survey, by language, each with its posts loaded."""

    survey_id: int
    topics: dict[int, Topic]
    topic_ids_by_language: dict[str, tuple[int, ...]]
    posts: dict[int, Post]
    loaded_at: float = field(default_factory=time.monotonic)

    def topic_ids(self, language: str) -> tuple[int, ...]:
        return self.topic_ids_by_language.get(language, ())

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.topic_ids_by_language)


_catalogs: dict[int, Catalog] = {}
# Open surveys by slug, each with the monotonic time it was loaded.
_open_surveys: dict[str, tuple[Survey, float]] = {}
_lock = threading.Lock()


def max_age_seconds() -> float:
    return float(getattr(settings, "SURVEY_CATALOG_SECONDS", DEFAULT_MAX_AGE_SECONDS))


def open_survey(slug: str) -> Survey | None:
    """Return the open survey ``slug``, or None when it is closed or unknown.

    A survey found open is kept for the max age, so closing it takes up to
    that long to reach the other processes. An unknown slug is not cached.
    """
    cached = _open_surveys.get(slug)
    if cached is not None and time.monotonic() - cached[1] <= max_age_seconds():
        return cached[0]
    survey = Survey.objects.open().filter(slug=slug).first()
    with _lock:
        if survey is None:
            _open_surveys.pop(slug, None)
        else:
            _open_surveys[slug] = (survey, time.monotonic())
    return survey


def for_survey(survey_id: int) -> Catalog:
    """Return the catalog of a survey, loading it when missing or older than the max age."""
    catalog = _catalogs.get(survey_id)
    if catalog is None or time.monotonic() - catalog.loaded_at > max_age_seconds():
        catalog = _load(survey_id)
        with _lock:
            _catalogs[survey_id] = catalog
    return catalog


def clear() -> None:
    """Forget every catalog of this process, so the next request reloads from the database."""
    with _lock:
        _catalogs.clear()
        _open_surveys.clear()


def attach_content(response: Response, *, survey_id: int) -> Response:
    """Set the topic and the three posts of ``response`` from its survey's catalog.

    A response whose topic has left the catalog (deactivated since it was
    served, say) gets them from the database instead, so it can still be shown.
    Returns the same response.
    """
    catalog = for_survey(survey_id)
    post_ids = (response.post_a_id, response.post_b_id, response.post_c_id)
    topic = catalog.topics.get(response.topic_id)
    posts = [catalog.posts.get(post_id) for post_id in post_ids]
    if topic is None or None in posts:
        topic = Topic.objects.get(pk=response.topic_id)
        loaded = Post.objects.in_bulk(post_ids)
        posts = [loaded[post_id] for post_id in post_ids]
    response.topic = topic
    response.post_a, response.post_b, response.post_c = posts
    return response


def _load(survey_id: int) -> Catalog:
    topics = {
        topic.pk: topic
        for topic in Topic.objects.servable().filter(survey_id=survey_id).order_by("pk")
    }
    posts = {post.pk: post for post in Post.objects.filter(topic_id__in=topics).order_by("pk")}
    by_topic: dict[int, list[Post]] = {topic_id: [] for topic_id in topics}
    for post in posts.values():
        by_topic[post.topic_id].append(post)
    ids_by_language: dict[str, list[int]] = {}
    for topic in topics.values():
        # Prefetched, so display_order() and templates read the posts without a query.
        topic._prefetched_objects_cache = {"posts": by_topic[topic.pk]}
        ids_by_language.setdefault(topic.language, []).append(topic.pk)
    for post in posts.values():
        post.topic = topics[post.topic_id]
    logger.debug("catalog loaded survey=%s topics=%s posts=%s", survey_id, len(topics), len(posts))
    return Catalog(
        survey_id=survey_id,
        topics=topics,
        topic_ids_by_language={language: tuple(ids) for language, ids in ids_by_language.items()},
        posts=posts,
    )


def clear_on_content_change(sender, **kwargs) -> None:
    """Clear this process's caches when a survey, topic or post is saved or deleted."""
    clear()
