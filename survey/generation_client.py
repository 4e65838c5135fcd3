"""Sending one chat-completion request to an OpenAI-compatible endpoint, measured,
with retries.

Workers of a generation run call ``send_with_retries`` from threads. Nothing
here touches the database.
"""

import email.utils
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import openai

logger = logging.getLogger(__name__)

SERVER = "server"
LOCAL = "local"
# How a token count is made when the server sends no usage. A streamed response
# counts its chunks that carry text: vLLM, SGLang, TGI, Ollama and llama.cpp
# send about one token per chunk, so this is close but not exact. A
# non-streamed response counts words and punctuation marks, which undercounts
# subword tokens (more so for Korean).
STREAM_CHUNKS = "stream_chunks"
WORDS_AND_PUNCTUATION = "words_and_punctuation"
APPROXIMATE_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class CompletionRequest:
    model: str
    prompt: str
    max_tokens: int
    temperature: float
    stream: bool
    timeout: float  # seconds for the whole request, from sending to the last byte
    # More JSON fields for the request body, such as vLLM's chat_template_kwargs.
    extra_body: dict | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    # Reasoning that the server returned in a separate field: ``reasoning``
    # (vLLM 0.11 and later, Ollama) or ``reasoning_content`` (SGLang, older vLLM).
    reasoning: str
    finish_reason: str
    served_model: str
    ttft_ms: float | None  # None for a non-streamed response, which arrives all at once
    duration_ms: float
    completion_tokens: int
    usage_source: str  # SERVER or LOCAL
    local_count_method: str | None  # set when usage_source is LOCAL
    attempts: int = 1

    @property
    def tokens_per_second(self) -> float | None:
        """Output tokens per second of this request: completion tokens over duration."""
        if self.duration_ms <= 0:
            return None
        return self.completion_tokens / (self.duration_ms / 1000)


class RequestFailed(Exception):
    """A request that got no usable response.

    ``retryable`` is true for 429, 5xx and connection errors. ``fatal`` is true
    when the endpoint rejects every request alike (401, 403, 404), so the run
    stops. ``attempts`` counts the requests sent for this topic.
    """

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        retryable: bool = False,
        fatal: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable
        self.fatal = fatal
        self.retry_after = retry_after
        self.attempts = 1


class RequestCancelled(Exception):
    """The run is stopping, so the request was abandoned."""

    def __init__(self, attempts: int):
        super().__init__("request cancelled because the run is stopping")
        self.attempts = attempts


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Retry n waits between half and all of ``base_delay * 2 ** (n - 1)`` seconds,
    capped at ``max_delay``, or longer when the server's Retry-After header requests it
    (also capped at ``max_delay``).
    """

    retries: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, retry_number: int, *, retry_after: float | None, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        delay = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay


def make_client(*, base_url: str, api_key: str, timeout: float) -> openai.OpenAI:
    # max_retries=0: RetryPolicy is the only retry policy, so every retry is
    # counted and logged.
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0)


def send_with_retries(
    client: openai.OpenAI,
    request: CompletionRequest,
    *,
    policy: RetryPolicy,
    stop: threading.Event,
    rng: random.Random,
    topic_id: int,
) -> Completion:
    """Send ``request`` until it gets a response or fails for good.

    Raises RequestFailed when the error is not retryable or the retries are used
    up, and RequestCancelled as soon as ``stop`` is set. A waiting retry wakes up
    when ``stop`` is set, so an interrupt never waits out a backoff.
    """
    attempt = 0
    while True:
        if stop.is_set():
            raise RequestCancelled(attempts=attempt)
        attempt += 1
        try:
            return replace(send_once(client, request, stop=stop), attempts=attempt)
        except openai.OpenAIError as error:
            failure = classify_error(error, timeout=request.timeout)
        except RequestFailed as error:
            failure = error
        except RequestCancelled as error:
            error.attempts = attempt
            raise
        failure.attempts = attempt

        if stop.is_set():
            # Closing the client at a stop breaks the requests in flight, so
            # these errors come from the stop and not from the server.
            raise RequestCancelled(attempts=attempt)
        if not failure.retryable or attempt > policy.retries:
            raise failure
        delay = policy.delay(attempt, retry_after=failure.retry_after, rng=rng)
        logger.warning(
            "request retry topic=%s attempt=%s retries=%s delay_s=%.2f reason=%s detail=%s",
            topic_id,
            attempt,
            policy.retries,
            delay,
            failure.reason,
            failure.detail,
        )
        if stop.wait(delay):
            raise RequestCancelled(attempts=attempt)


def send_once(
    client: openai.OpenAI, request: CompletionRequest, *, stop: threading.Event
) -> Completion:
    if request.stream:
        return _send_streaming(client, request, stop=stop)
    return _send_non_streaming(client, request)


def _send_streaming(
    client: openai.OpenAI, request: CompletionRequest, *, stop: threading.Event
) -> Completion:
    started = time.perf_counter()
    # The client's timeout applies to each read, so a server that trickles
    # tokens slower than the deadline would never time out without this check.
    deadline = started + request.timeout
    first_token_at = None
    text_parts: list[str] = []
    reasoning_parts: list[str] = []
    chunks_with_text = 0
    finish_reason = ""
    served_model = ""
    server_tokens = None

    stream = client.chat.completions.create(
        model=request.model,
        messages=[{"role": "user", "content": request.prompt}],
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        stream=True,
        stream_options={"include_usage": True},
        timeout=request.timeout,
        extra_body=request.extra_body,
    )
    with stream:
        for chunk in stream:
            if stop.is_set():
                raise RequestCancelled(attempts=1)
            served_model = chunk.model or served_model
            if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                server_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.index != 0 or choice.delta is None:
                    continue
                content = choice.delta.content or ""
                reasoning = _reasoning_text(choice.delta)
                if content or reasoning:
                    chunks_with_text += 1
                    if first_token_at is None:
                        first_token_at = time.perf_counter()
                text_parts.append(content)
                reasoning_parts.append(reasoning)
                if choice.finish_reason:
                    finish_reason = choice.finish_reason
            if time.perf_counter() > deadline:
                raise RequestFailed(
                    "timeout", f"the response was still streaming after {request.timeout:g} s"
                )
    finished = time.perf_counter()

    return _completion(
        text="".join(text_parts),
        reasoning="".join(reasoning_parts),
        finish_reason=finish_reason,
        served_model=served_model,
        ttft_ms=None if first_token_at is None else (first_token_at - started) * 1000,
        duration_ms=(finished - started) * 1000,
        server_tokens=server_tokens,
        local_tokens=chunks_with_text,
        local_count_method=STREAM_CHUNKS,
    )


def _send_non_streaming(client: openai.OpenAI, request: CompletionRequest) -> Completion:
    # NOTE: only the client's timeout for each read applies here. A server that
    # sent a non-streamed body in slow pieces could take longer than the timeout.
    started = time.perf_counter()
    response = client.chat.completions.create(
        model=request.model,
        messages=[{"role": "user", "content": request.prompt}],
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        stream=False,
        timeout=request.timeout,
        extra_body=request.extra_body,
    )
    finished = time.perf_counter()

    choice = next((choice for choice in response.choices or [] if choice.index == 0), None)
    text = ""
    reasoning = ""
    finish_reason = ""
    if choice is not None:
        text = (choice.message.content or "") if choice.message else ""
        reasoning = _reasoning_text(choice.message) if choice.message else ""
        finish_reason = choice.finish_reason or ""
    usage = response.usage
    return _completion(
        text=text,
        reasoning=reasoning,
        finish_reason=finish_reason,
        served_model=response.model or "",
        ttft_ms=None,
        duration_ms=(finished - started) * 1000,
        server_tokens=usage.completion_tokens if usage is not None else None,
        local_tokens=len(APPROXIMATE_TOKEN.findall(reasoning + " " + text)),
        local_count_method=WORDS_AND_PUNCTUATION,
    )


def _completion(
    *, server_tokens: int | None, local_tokens: int, local_count_method: str, **fields
) -> Completion:
    if server_tokens is not None:
        return Completion(
            **fields,
            completion_tokens=server_tokens,
            usage_source=SERVER,
            local_count_method=None,
        )
    return Completion(
        **fields,
        completion_tokens=local_tokens,
        usage_source=LOCAL,
        local_count_method=local_count_method,
    )


def _reasoning_text(message) -> str:
    # The openai client keeps fields it does not know as extra attributes.
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def classify_error(error: openai.OpenAIError, *, timeout: float) -> RequestFailed:
    """Turn an error of the openai client into a RequestFailed with its retry policy."""
    # APITimeoutError is a subclass of APIConnectionError, so it comes first. A
    # timed-out request is not retried: the server may still be generating it,
    # and a retry adds load to a server that is already too slow.
    if isinstance(error, openai.APITimeoutError):
        return RequestFailed("timeout", f"no response within {timeout:g} s")
    if isinstance(error, openai.APIConnectionError):
        cause = error.__cause__ or error
        return RequestFailed("connection_error", f"{type(cause).__name__}: {cause}", retryable=True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        detail = f"HTTP {status}: {_shorten(_server_message(error))}"
        if status == 429 or status >= 500:
            return RequestFailed(
                f"http_{status}",
                detail,
                retryable=True,
                retry_after=_retry_after_seconds(error.response.headers.get("retry-after")),
            )
        if status in (401, 403, 404):
            return RequestFailed(f"http_{status}", detail, fatal=True)
        return RequestFailed(f"http_{status}", detail)
    # An error event inside the stream, or a response the client could not parse.
    return RequestFailed("api_error", f"{type(error).__name__}: {_shorten(str(error))}")


def _server_message(error: openai.APIStatusError) -> str:
    # The client keeps the "error" object of the response body as error.body.
    if isinstance(error.body, dict) and isinstance(error.body.get("message"), str):
        return error.body["message"]
    return error.message


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse Retry-After, given either as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _shorten(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
