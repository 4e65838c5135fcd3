"""Generating model posts through an OpenAI-compatible chat-completions endpoint.

Every topic of a survey that has a human post and no post by the model gets
one request, asking for a post on the same topic, in the topic's language, of
about the human post's length. Worker threads only send requests. Their
results come back to the calling thread, which checks each response and stores
an accepted post in its own transaction, so the database sees one writer and a
stopped run leaves no half-written post behind. A rerun requests only the
topics that still have no post by the model.
"""

import functools
import logging
import queue
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Prefetch, QuerySet
from django.template import Context, Engine, TemplateDoesNotExist
from django.utils.translation import get_language_info
from tqdm import tqdm

from survey.generation_checks import (
    confound_flags,
    count_words,
    find_rejection,
    length_ratio,
    uses_markdown_structure,
)
from survey.generation_client import (
    Completion,
    CompletionRequest,
    RequestCancelled,
    RequestFailed,
    RetryPolicy,
    make_client,
    send_with_retries,
)
from survey.generation_stats import GenerationSummary
from survey.models import HUMAN, MODEL, Post, Survey, Topic

logger = logging.getLogger(__name__)

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT_VERSION = "post_v1"
PROMPT_VERSION_PATTERN = re.compile(r"[a-z0-9_]+")
MODEL_MAX_LENGTH = Post._meta.get_field("model").max_length
# Request fields that the command's options set. --extra-body must not replace them.
RESERVED_BODY_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "stream",
        "stream_options",
    }
)


class InvalidGenerationConfig(ValueError):
    """A generation setting is out of range. The message names each one."""


class GenerationAborted(Exception):
    """The endpoint rejected a request in a way that every request would repeat."""


@dataclass(frozen=True)
class GenerationConfig:
    base_url: str
    model: str
    api_key: str
    concurrency: int = 4
    max_tokens: int = 2048
    temperature: float = 0.7
    timeout: float = 300.0  # seconds per request, from sending to the last byte
    stream: bool = True
    # A post is rejected outside [human words / ratio, human words * ratio].
    max_length_ratio: float = 1.6
    # A stored post is flagged outside [human words / ratio, human words * ratio].
    flag_length_ratio: float = 1.25
    retries: int = 4
    retry_base_delay: float = 1.0  # seconds before the first retry, doubled for each next one
    prompt_version: str = DEFAULT_PROMPT_VERSION
    limit: int | None = None  # at most this many topics per run; None for all
    # More JSON fields for every request body, for server options such as
    # {"chat_template_kwargs": {"enable_thinking": false}}.
    extra_body: dict = field(default_factory=dict)

    def __post_init__(self):
        errors = []
        if not _is_http_url(self.base_url):
            errors.append(
                f"base URL {self.base_url!r} is not an http(s) URL such as http://gpu-host:8000/v1"
            )
        if not self.model.strip():
            errors.append("model name is empty")
        elif len(self.model) > MODEL_MAX_LENGTH:
            errors.append(f"model name is longer than {MODEL_MAX_LENGTH} characters")

        if self.concurrency < 1:
            errors.append(f"concurrency must be at least 1, not {self.concurrency}")
        if self.max_tokens < 1:
            errors.append(f"max tokens must be at least 1, not {self.max_tokens}")
        if not 0 <= self.temperature <= 2:
            errors.append(f"temperature must be between 0 and 2, not {self.temperature:g}")
        if self.timeout <= 0:
            errors.append(f"timeout must be more than 0 seconds, not {self.timeout:g}")

        if self.max_length_ratio <= 1:
            errors.append(f"max length ratio must be more than 1, not {self.max_length_ratio:g}")
        if self.flag_length_ratio <= 1:
            errors.append(f"flag length ratio must be more than 1, not {self.flag_length_ratio:g}")

        if self.retries < 0:
            errors.append(f"retries must be 0 or more, not {self.retries}")
        if self.retry_base_delay < 0:
            errors.append(f"retry base delay must be 0 or more, not {self.retry_base_delay:g}")
        if self.limit is not None and self.limit < 1:
            errors.append(f"limit must be at least 1, not {self.limit}")

        if not isinstance(self.extra_body, dict):
            errors.append("extra body must be a JSON object")
        else:
            overridden = sorted(RESERVED_BODY_FIELDS & set(self.extra_body))
            if overridden:
                errors.append(
                    f"extra body must not set {', '.join(overridden)}; use the options for them"
                )
        if self.prompt_version not in prompt_versions():
            errors.append(
                f"prompt version {self.prompt_version!r} not found in {PROMPTS_DIR}; "
                f"available: {', '.join(prompt_versions())}"
            )

        if errors:
            raise InvalidGenerationConfig("; ".join(errors))

    @property
    def endpoint(self) -> str:
        """Return the base URL without user, password or query, fit to log and store."""
        parts = urlsplit(self.base_url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def stored_parameters(self) -> dict:
        """Return the request settings that every stored post keeps."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stream": self.stream,
            "timeout_s": self.timeout,
            "prompt_version": self.prompt_version,
            "max_length_ratio": self.max_length_ratio,
            "extra_body": self.extra_body,
        }


@dataclass(frozen=True)
class PostJob:
    """One topic to request a post for, read from the database up front so that
    worker threads never query it."""

    topic_id: int
    title: str
    language: str
    target_words: int
    human_body: str
    prompt: str


def prompt_versions() -> list[str]:
    return sorted(
        path.stem
        for path in PROMPTS_DIR.glob("*.txt")
        if PROMPT_VERSION_PATTERN.fullmatch(path.stem)
    )


@functools.cache
def _prompt_engine() -> Engine:
    # Prompts are plain text, so nothing is HTML-escaped.
    return Engine(dirs=[str(PROMPTS_DIR)], autoescape=False)


def build_prompt(
    *,
    version: str,
    title: str,
    brief: str,
    language: str,
    target_words: int,
    plain_text: bool,
) -> str:
    """Render the prompt template ``version`` for one topic.

    ``plain_text`` requests plain paragraphs without headings or lists, for topics
    whose human post has none. Raises InvalidGenerationConfig when the template
    does not exist and KeyError when Django knows no name for ``language``.
    """
    try:
        template = _prompt_engine().get_template(f"{version}.txt")
    except TemplateDoesNotExist as error:
        raise InvalidGenerationConfig(f"prompt version {version!r} not found") from error
    text = template.render(
        Context(
            {
                "title": title,
                "brief": brief.strip(),
                "language": language,
                "language_name": get_language_info(language)["name"],
                "word_count": target_words,
                "plain_text": plain_text,
            },
            autoescape=False,
        )
    )
    # Template tags leave blank lines and trailing spaces behind. The stored
    # prompt is this tidied text, exactly as sent.
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def pending_topics(*, survey: Survey, model: str) -> QuerySet[Topic]:
    """Return the survey's topics that have a human post and no post by ``model``."""
    done = Post.objects.filter(author=MODEL, model=model).values("topic_id")
    return (
        Topic.objects.filter(survey=survey, posts__author=HUMAN)
        .exclude(pk__in=done)
        .prefetch_related(
            Prefetch("posts", queryset=Post.objects.filter(author=HUMAN), to_attr="human_posts")
        )
        .order_by("pk")
    )


def plan_jobs(*, survey: Survey, config: GenerationConfig) -> list[PostJob]:
    topics = pending_topics(survey=survey, model=config.model)
    if config.limit is not None:
        topics = topics[: config.limit]
    jobs = []
    for topic in topics:
        human = topic.human_posts[0]
        target_words = human.word_count or count_words(human.body)
        prompt = build_prompt(
            version=config.prompt_version,
            title=topic.title,
            brief=topic.brief,
            language=topic.language,
            target_words=target_words,
            plain_text=not uses_markdown_structure(human.body),
        )
        jobs.append(
            PostJob(
                topic_id=topic.pk,
                title=topic.title,
                language=topic.language,
                target_words=target_words,
                human_body=human.body,
                prompt=prompt,
            )
        )
    return jobs


class PostGenerator:
    """One generation run: requests in worker threads, checks and writes here.

    ``summary`` is filled in as results arrive, so it is complete up to the
    point of an interrupt too.
    """

    def __init__(
        self,
        *,
        survey: Survey,
        config: GenerationConfig,
        progress: bool = True,
        rng: random.Random | None = None,
    ):
        self.survey = survey
        self.config = config
        self.progress = progress
        self.rng = rng or random.Random()
        self.policy = RetryPolicy(retries=config.retries, base_delay=config.retry_base_delay)
        self.summary = GenerationSummary(
            survey=survey.slug,
            model=config.model,
            endpoint=config.endpoint,
            stream=config.stream,
            concurrency=config.concurrency,
        )

    def run(self) -> GenerationSummary:
        """Generate a post for every pending topic and return the summary.

        Raises GenerationAborted when the endpoint rejects the API key, the model
        or the URL (HTTP 401, 403, 404). KeyboardInterrupt passes through after
        the worker threads are signalled to stop, and posts stored before it stay.
        """
        config = self.config
        jobs = plan_jobs(survey=self.survey, config=config)
        self.summary.topics = len(jobs)
        logger.info(
            "generation started survey=%s model=%s endpoint=%s topics=%s concurrency=%s "
            "stream=%s max_tokens=%s prompt=%s",
            self.survey.slug,
            config.model,
            config.endpoint,
            len(jobs),
            config.concurrency,
            config.stream,
            config.max_tokens,
            config.prompt_version,
        )
        if not jobs:
            logger.info(
                "generation finished survey=%s model=%s: no topic is missing a post",
                self.survey.slug,
                config.model,
            )
            return self.summary

        client = make_client(
            base_url=config.base_url, api_key=config.api_key, timeout=config.timeout
        )
        stop = threading.Event()
        bar = tqdm(
            total=len(jobs),
            desc=config.model,
            unit="post",
            file=sys.stderr,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        started = time.perf_counter()
        try:
            results = self._start_workers(client, jobs, stop)
            for _done in range(len(jobs)):
                job, outcome = results.get()
                self._record(job, outcome)
                bar.update(1)
                bar.set_postfix(
                    stored=self.summary.stored,
                    rejected=sum(self.summary.rejected.values()),
                    failed=sum(self.summary.failed.values()),
                    refresh=False,
                )
        except KeyboardInterrupt:
            self.summary.interrupted = True
            logger.warning(
                "generation interrupted survey=%s model=%s stored=%s",
                self.survey.slug,
                config.model,
                self.summary.stored,
            )
            raise
        except GenerationAborted as error:
            logger.error(
                "generation stopped survey=%s model=%s stored=%s error=%s",
                self.survey.slug,
                config.model,
                self.summary.stored,
                error,
            )
            raise
        finally:
            self.summary.wall_seconds = time.perf_counter() - started
            # Stop retries, streams and queued requests. A worker blocked on a
            # silent server does not see this, but it is a daemon thread, so
            # it cannot keep an interrupted process alive until its timeout.
            stop.set()
            client.close()
            bar.close()

        summary = self.summary
        logger.info(
            "generation finished survey=%s model=%s topics=%s requests=%s stored=%s "
            "rejected=%s failed=%s wall_s=%.2f",
            self.survey.slug,
            config.model,
            summary.topics,
            summary.requests,
            summary.stored,
            sum(summary.rejected.values()),
            sum(summary.failed.values()),
            summary.wall_seconds,
        )
        return summary

    def _start_workers(
        self, client, jobs: list[PostJob], stop: threading.Event
    ) -> queue.SimpleQueue:
        """Start the worker threads and return the queue of (job, outcome) pairs.

        The outcome is a Completion or the exception its request raised. Each
        job yields one pair unless ``stop`` is set before a worker takes it.
        """
        pending: queue.SimpleQueue[PostJob] = queue.SimpleQueue()
        for job in jobs:
            pending.put(job)
        results: queue.SimpleQueue = queue.SimpleQueue()

        def work() -> None:
            while not stop.is_set():
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    outcome = self._request(client, job, stop)
                except Exception as error:
                    outcome = error
                results.put((job, outcome))

        for number in range(min(self.config.concurrency, len(jobs))):
            threading.Thread(target=work, name=f"generate-{number}", daemon=True).start()
        return results

    def _request(self, client, job: PostJob, stop: threading.Event) -> Completion:
        request = CompletionRequest(
            model=self.config.model,
            prompt=job.prompt,
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            stream=self.config.stream,
            timeout=self.config.timeout,
            extra_body=self.config.extra_body or None,
        )
        try:
            return send_with_retries(
                client, request, policy=self.policy, stop=stop, rng=self.rng, topic_id=job.topic_id
            )
        except RequestFailed as failure:
            # Stopping here, before the next queued request of this thread
            # starts, keeps a bad key or model name to one request per thread.
            if failure.fatal:
                stop.set()
            raise

    def _record(self, job: PostJob, outcome: Completion | Exception) -> None:
        summary = self.summary
        if isinstance(outcome, RequestCancelled):
            return
        if isinstance(outcome, RequestFailed):
            summary.requests += outcome.attempts
            summary.retries += outcome.attempts - 1
            self._record_failure(job, outcome)
            return
        if isinstance(outcome, Exception):
            error = outcome
            # A malformed response that the openai client could not parse. The
            # run goes on with the other topics.
            logger.error(
                "request failed with an unexpected error topic=%s model=%s",
                job.topic_id,
                self.config.model,
                exc_info=error,
            )
            summary.requests += 1
            summary.add_problem(
                topic_id=job.topic_id,
                topic=job.title,
                outcome="failed",
                reason="unexpected_error",
                detail=f"{type(error).__name__}: {error}",
            )
            return

        completion = outcome
        summary.requests += completion.attempts
        summary.retries += completion.attempts - 1
        self._measure(completion)
        rejection = find_rejection(
            text=completion.text,
            reasoning=completion.reasoning,
            finish_reason=completion.finish_reason,
            target_words=job.target_words,
            max_length_ratio=self.config.max_length_ratio,
        )
        if rejection is not None:
            logger.warning(
                "post rejected topic=%s model=%s reason=%s detail=%s",
                job.topic_id,
                self.config.model,
                rejection.reason,
                rejection.detail,
            )
            summary.add_problem(
                topic_id=job.topic_id,
                topic=job.title,
                outcome="rejected",
                reason=rejection.reason,
                detail=rejection.detail,
            )
            return
        self._store(job, completion)

    def _record_failure(self, job: PostJob, failure: RequestFailed) -> None:
        logger.warning(
            "request failed topic=%s model=%s reason=%s attempts=%s detail=%s",
            job.topic_id,
            self.config.model,
            failure.reason,
            failure.attempts,
            failure.detail,
        )
        self.summary.add_problem(
            topic_id=job.topic_id,
            topic=job.title,
            outcome="failed",
            reason=failure.reason,
            detail=failure.detail,
        )
        if failure.fatal:
            raise GenerationAborted(
                f"the endpoint {self.config.endpoint} rejected the request for topic "
                f"{job.topic_id} ({failure.detail}); check --base-url (it usually ends in /v1), "
                f"--model and --api-key"
            )

    def _measure(self, completion: Completion) -> None:
        summary = self.summary
        if completion.ttft_ms is not None:
            summary.ttft_ms.append(completion.ttft_ms)
        summary.duration_ms.append(completion.duration_ms)
        if completion.tokens_per_second is not None:
            summary.tokens_per_second.append(completion.tokens_per_second)
        summary.completion_tokens += completion.completion_tokens
        summary.usage_sources[completion.usage_source] += 1

    def _store(self, job: PostJob, completion: Completion) -> None:
        config = self.config
        body = completion.text.strip()
        ratio = length_ratio(words=count_words(body), target_words=job.target_words)
        flags = confound_flags(
            text=body,
            human_text=job.human_body,
            ratio=ratio,
            flag_length_ratio=config.flag_length_ratio,
        )
        parameters = {
            **config.stored_parameters(),
            "target_words": job.target_words,
            "attempts": completion.attempts,
            "served_model": completion.served_model,
            "local_token_count": completion.local_count_method,
            "reasoning_returned": bool(completion.reasoning),
        }
        # A caller's open transaction owns the connection, so only a
        # connection in autocommit mode is checked for staleness here.
        if not connection.in_atomic_block:
            close_old_connections()
        try:
            with transaction.atomic():
                post = Post.objects.create(
                    topic_id=job.topic_id,
                    author=MODEL,
                    model=config.model,
                    body=body,
                    endpoint=config.endpoint,
                    prompt=job.prompt,
                    parameters=parameters,
                    ttft_ms=_round(completion.ttft_ms),
                    duration_ms=_round(completion.duration_ms),
                    completion_tokens=completion.completion_tokens,
                    tokens_per_second=_round(completion.tokens_per_second),
                    finish_reason=completion.finish_reason,
                    usage_source=completion.usage_source,
                    length_ratio=ratio,
                    confound_flags=flags,
                )
        except IntegrityError as error:
            # Another run stored a post by this model for the topic first, or
            # the topic was deleted while its request ran.
            logger.warning(
                "post not stored topic=%s model=%s error=%s", job.topic_id, config.model, error
            )
            self.summary.add_problem(
                topic_id=job.topic_id,
                topic=job.title,
                outcome="failed",
                reason="not_saved",
                detail=str(error),
            )
            return
        self.summary.stored += 1
        logger.info(
            "post stored topic=%s post=%s model=%s words=%s length_ratio=%.2f flags=%s",
            job.topic_id,
            post.pk,
            config.model,
            post.word_count,
            ratio,
            ",".join(flags) or "-",
        )


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        # Reading the port raises ValueError when it is not a number.
        return (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)
        )
    except ValueError:
        return False


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
