import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from survey import generation_checks as checks
from survey.assignment import serve_next
from survey.generation import GenerationConfig, InvalidGenerationConfig, build_prompt
from survey.generation_client import RetryPolicy
from survey.generation_stats import Distribution
from survey.importing import import_lines
from survey.models import HUMAN, MODEL, Participant, Post, Topic
from tests.factories import make_survey
from tests.fakes.openai_server import FakeChatServer, Reply, words

HUMAN_WORDS = 100
MODEL_NAME = "fake-model"


@pytest.fixture
def chat_server():
    with FakeChatServer(default=Reply(text=words(HUMAN_WORDS))) as server:
        yield server


@pytest.fixture
def gen_survey(transactional_db):
    return make_survey(slug="booth-test")


@pytest.fixture(autouse=True)
def no_api_key_in_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def make_human_topic(survey, title, *, body=None, language="en", brief=""):
    topic = Topic.objects.create(survey=survey, title=title, language=language, brief=brief)
    Post.objects.create(topic=topic, author=HUMAN, body=body or words(HUMAN_WORDS))
    return topic


def generate(server, survey, *args, model=MODEL_NAME, json_path=None):
    """Run generate_posts and return its standard output."""
    stdout = StringIO()
    options = [
        "--base-url",
        server.base_url,
        "--model",
        model,
        "--survey",
        survey.slug,
        "--no-progress",
        "--retry-base-delay",
        "0.01",
        *args,
    ]
    if json_path is not None:
        options += ["--json", str(json_path)]
    call_command("generate_posts", *options, stdout=stdout, stderr=StringIO())
    return stdout.getvalue()


def model_posts(model=MODEL_NAME):
    return Post.objects.filter(author=MODEL, model=model)


# Output checks


@pytest.mark.parametrize(
    ("text", "reasoning", "finish_reason", "reason"),
    [
        ("", "", "stop", checks.EMPTY),
        ("   \n ", "", "stop", checks.EMPTY),
        ("", "Let me think about the topic.", "stop", checks.REASONING_ONLY),
        ("<think>Plan the post first.</think>", "", "stop", checks.REASONING_ONLY),
        ("Plan the post first.</think>", "", "stop", checks.REASONING_BLOCK),
        (f"<think>Plan it.</think>\n\n{words(100)}", "", "stop", checks.REASONING_BLOCK),
        ("<think>Plan it and never stop", "", "length", checks.REASONING_ONLY),
        (words(100) + " caf\ufffd", "", "stop", checks.REPLACEMENT_CHARACTER),
        (words(100), "", "length", "finish_reason_length"),
        (words(100), "", "content_filter", "finish_reason_content_filter"),
        (words(100), "", "", "finish_reason_missing"),
        (words(62), "", "stop", checks.TOO_SHORT),
        (words(161), "", "stop", checks.TOO_LONG),
    ],
)
def test_find_rejection_reasons(text, reasoning, finish_reason, reason):
    rejection = checks.find_rejection(
        text=text,
        reasoning=reasoning,
        finish_reason=finish_reason,
        target_words=100,
        max_length_ratio=1.6,
    )

    assert rejection is not None
    assert rejection.reason == reason


@pytest.mark.parametrize("count", [63, 100, 160])
def test_find_rejection_accepts_lengths_within_ratio(count):
    rejection = checks.find_rejection(
        text=words(count),
        reasoning="Separate reasoning is fine when the post itself is there.",
        finish_reason="stop",
        target_words=100,
        max_length_ratio=1.6,
    )

    assert rejection is None


def test_allowed_word_range_rounds_inward():
    assert checks.allowed_word_range(target_words=100, max_length_ratio=1.6) == (63, 160)
    assert checks.allowed_word_range(target_words=7, max_length_ratio=1.5) == (5, 10)


def test_confound_flags_markdown_only_when_human_has_none():
    markdown = "## Why it matters\n\nSome text.\n\n- first point\n- second point\n"

    assert checks.confound_flags(
        text=markdown, human_text="Plain prose.", ratio=1.0, flag_length_ratio=1.25
    ) == [checks.MARKDOWN_HEADINGS, checks.MARKDOWN_LISTS]
    assert (
        checks.confound_flags(text=markdown, human_text=markdown, ratio=1.0, flag_length_ratio=1.25)
        == []
    )


@pytest.mark.parametrize(
    "text",
    [
        "**Getting started**\nIt was a long week.",
        "# Title\nBody.",
        "Intro.\n\n### Part two\nMore.",
    ],
)
def test_confound_flags_detect_headings(text):
    flags = checks.confound_flags(text=text, human_text="Plain.", ratio=1.0, flag_length_ratio=1.25)

    assert flags == [checks.MARKDOWN_HEADINGS]


def test_confound_flags_single_dash_line():
    text = "We shipped it.\n- and then it broke, of course.\nThe end."

    assert (
        checks.confound_flags(text=text, human_text="Plain.", ratio=1.0, flag_length_ratio=1.25)
        == []
    )


@pytest.mark.parametrize(
    "text",
    [
        "As an AI, I have never held a job.",
        "as a language model I cannot say.",
        "As a large language model, I find this topic fascinating.",
        "I'm an AI, but here is a story.",
        "AI로서 저는 직장을 다녀 본 적이 없습니다.",
        "언어 모델로서 말씀드리면 이렇습니다.",
        "인공지능으로서 경험은 없지만 정리해 보겠습니다.",
        "저는 AI라서 직접 겪은 일은 없습니다.",
    ],
)
def test_confound_flags_detect_self_reference(text):
    flags = checks.confound_flags(text=text, human_text="Plain.", ratio=1.0, flag_length_ratio=1.25)

    assert flags == [checks.SELF_REFERENCE]


def test_confound_flags_ignore_words_that_only_contain_ai():
    text = "As a maintainer of the Ollama plugin, I said: as an aide, she helped."

    assert (
        checks.confound_flags(text=text, human_text="Plain.", ratio=1.0, flag_length_ratio=1.25)
        == []
    )


@pytest.mark.parametrize(
    ("ratio", "flags"),
    [
        (1.26, [checks.LONGER_THAN_HUMAN]),
        (1.25, []),
        (0.8, []),
        (0.79, [checks.SHORTER_THAN_HUMAN]),
    ],
)
def test_confound_flags_length(ratio, flags):
    assert (
        checks.confound_flags(
            text="Plain.", human_text="Plain.", ratio=ratio, flag_length_ratio=1.25
        )
        == flags
    )


# Summary statistics and retry policy


def test_distribution_of_values():
    stats = Distribution.of([1.0, 2.0, 3.0, 4.0, 5.0])

    assert stats.count == 5
    assert stats.mean == pytest.approx(3.0)
    assert stats.median == pytest.approx(3.0)
    assert stats.p95 == pytest.approx(4.8)
    assert stats.std == pytest.approx(1.5811388)
    assert stats.cv == pytest.approx(1.5811388 / 3.0)


def test_distribution_of_one_and_no_values():
    single = Distribution.of([7.0])
    empty = Distribution.of([])

    assert single.mean == 7.0
    assert single.std is None
    assert single.cv is None
    assert empty.count == 0
    assert empty.mean is None


def test_retry_delay_backoff_and_retry_after():
    policy = RetryPolicy(retries=5, base_delay=1.0, max_delay=8.0)
    rng = random.Random(7)

    delays = [policy.delay(number, retry_after=None, rng=rng) for number in range(1, 6)]

    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert 2.0 <= delays[2] <= 4.0
    assert 4.0 <= delays[3] <= 8.0
    assert 4.0 <= delays[4] <= 8.0
    assert policy.delay(1, retry_after=3.0, rng=rng) == 3.0
    assert policy.delay(1, retry_after=600.0, rng=rng) == 8.0


# Prompt and settings


def test_build_prompt_english_with_brief():
    prompt = build_prompt(
        version="post_v1",
        title="Debugging at 3 a.m.",
        brief="A night on call, and what it taught the author.",
        language="en",
        target_words=240,
        plain_text=True,
    )

    assert "Debugging at 3 a.m." in prompt
    assert "A night on call, and what it taught the author." in prompt
    assert "about 240 words" in prompt
    assert "in English" in prompt
    assert "no headings" in prompt
    assert "\n\n\n" not in prompt


def test_build_prompt_korean_without_brief():
    prompt = build_prompt(
        version="post_v1",
        title="첫 직장에서 배운 것",
        brief="",
        language="ko",
        target_words=80,
        plain_text=False,
    )

    assert "첫 직장에서 배운 것" in prompt
    assert "in Korean" in prompt
    assert "about 80 words" in prompt
    assert "should cover" not in prompt
    assert "no headings" not in prompt


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("base_url", "gpu-host:8000/v1", "not an http(s) URL"),
        ("base_url", "http://gpu-host:port/v1", "not an http(s) URL"),
        ("model", " ", "model name is empty"),
        ("concurrency", 0, "concurrency must be at least 1"),
        ("max_tokens", 0, "max tokens must be at least 1"),
        ("temperature", 2.5, "temperature must be between 0 and 2"),
        ("timeout", 0, "timeout must be more than 0"),
        ("max_length_ratio", 1.0, "max length ratio must be more than 1"),
        ("retries", -1, "retries must be 0 or more"),
        ("prompt_version", "../settings", "prompt version '../settings' not found"),
        ("limit", 0, "limit must be at least 1"),
    ],
)
def test_config_rejects_invalid_value(field, value, message):
    fields = {"base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key": "EMPTY"}
    fields[field] = value

    with pytest.raises(
        InvalidGenerationConfig, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        GenerationConfig(**fields)


# The command against the fake endpoint


def test_generate_stores_measured_posts(chat_server, gen_survey):
    topics = [make_human_topic(gen_survey, f"Streaming topic {index}") for index in range(3)]

    output = generate(chat_server, gen_survey, "--max-tokens", "900", "--temperature", "0.3")

    posts = {post.topic_id: post for post in model_posts()}
    assert set(posts) == {topic.pk for topic in topics}
    for topic in topics:
        post = posts[topic.pk]
        request = chat_server.requests_for(topic.title)[0]
        assert post.body == words(HUMAN_WORDS)
        assert post.prompt == request.prompt
        assert post.endpoint == chat_server.base_url
        assert post.finish_reason == "stop"
        assert post.usage_source == "server"
        assert post.completion_tokens == HUMAN_WORDS
        assert post.ttft_ms is not None and post.ttft_ms > 0
        assert post.duration_ms >= post.ttft_ms
        assert post.tokens_per_second == pytest.approx(
            HUMAN_WORDS / (post.duration_ms / 1000), rel=1e-3
        )
        assert post.length_ratio == 1.0
        assert post.confound_flags == []
        assert post.parameters["max_tokens"] == 900
        assert post.parameters["temperature"] == 0.3
        assert post.parameters["prompt_version"] == "post_v1"
        assert post.parameters["target_words"] == HUMAN_WORDS
        assert post.parameters["served_model"] == MODEL_NAME
    for request in chat_server.requests:
        assert request.body["model"] == MODEL_NAME
        assert request.body["max_tokens"] == 900
        assert request.body["temperature"] == 0.3
        assert request.body["stream"] is True
        assert request.body["stream_options"] == {"include_usage": True}
        assert request.headers["authorization"] == "Bearer EMPTY"
    assert "Posts stored:" in output
    assert "Time to first token (ms)" in output


def test_config_endpoint_drops_credentials():
    config = GenerationConfig(
        base_url="https://user:secret@models.example.org:8443/v1?key=secret",
        model="m",
        api_key="EMPTY",
    )

    assert config.endpoint == "https://models.example.org:8443/v1"


def test_generate_non_streaming(chat_server, gen_survey):
    topic = make_human_topic(gen_survey, "Non-streaming topic")

    generate(chat_server, gen_survey, "--no-stream")

    post = model_posts().get(topic=topic)
    request = chat_server.requests[0]
    assert request.body.get("stream") in (None, False)
    assert "stream_options" not in request.body
    assert request.body["max_tokens"] == 2048
    assert post.ttft_ms is None
    assert post.duration_ms > 0
    assert post.completion_tokens == HUMAN_WORDS
    assert post.usage_source == "server"
    assert post.parameters["stream"] is False


@pytest.mark.parametrize(
    ("stream", "tokens", "method"),
    [
        # One streamed chunk per word.
        (True, HUMAN_WORDS, "stream_chunks"),
        # Words plus one full stop per ten-word sentence.
        (False, HUMAN_WORDS + HUMAN_WORDS // 10, "words_and_punctuation"),
    ],
    ids=["stream", "no-stream"],
)
def test_generate_counts_tokens_locally_without_usage(
    chat_server, gen_survey, stream, tokens, method
):
    chat_server.default = Reply(text=words(HUMAN_WORDS), send_usage=False)
    topic = make_human_topic(gen_survey, "No usage topic")
    args = [] if stream else ["--no-stream"]

    output = generate(chat_server, gen_survey, *args)

    post = model_posts().get(topic=topic)
    assert post.usage_source == "local"
    assert post.completion_tokens == tokens
    assert post.parameters["local_token_count"] == method
    assert "(local 1)" in output


def test_generate_prefers_server_usage_over_chunk_count(chat_server, gen_survey):
    chat_server.default = Reply(text=words(HUMAN_WORDS), completion_tokens=137)
    topic = make_human_topic(gen_survey, "Usage topic")

    generate(chat_server, gen_survey)

    post = model_posts().get(topic=topic)
    assert post.usage_source == "server"
    assert post.completion_tokens == 137
    assert post.parameters["local_token_count"] is None


REJECTED_REPLIES = [
    (Reply(text=""), checks.EMPTY),
    (Reply(text="", reasoning="First I will outline the post."), checks.REASONING_ONLY),
    (Reply(text=f"<think>Outline first.</think> {words(HUMAN_WORDS)}"), checks.REASONING_BLOCK),
    (Reply(text=words(HUMAN_WORDS) + " \ufffd"), checks.REPLACEMENT_CHARACTER),
    (Reply(text=words(HUMAN_WORDS), finish_reason="length"), "finish_reason_length"),
    (Reply(text=words(30)), checks.TOO_SHORT),
    (Reply(text=words(200)), checks.TOO_LONG),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize(
    ("reply", "reason"), REJECTED_REPLIES, ids=[r for _, r in REJECTED_REPLIES]
)
def test_generate_rejects_bad_output(
    chat_server, gen_survey, caplog, tmp_path, reply, reason, stream
):
    bad = make_human_topic(gen_survey, "Troubled topic")
    good = make_human_topic(gen_survey, "Fine topic")
    chat_server.script("Troubled topic", reply)
    summary_path = tmp_path / "summary.json"
    args = [] if stream else ["--no-stream"]

    with caplog.at_level(logging.WARNING, logger="survey.generation"):
        output = generate(chat_server, gen_survey, *args, json_path=summary_path)

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert not model_posts().filter(topic=bad).exists()
    assert model_posts().filter(topic=good).exists()
    assert f"topic {bad.pk} 'Troubled topic': rejected {reason}" in output
    assert summary["rejected"] == {reason: 1}
    assert summary["stored"] == 1
    assert summary["problems"][0]["topic_id"] == bad.pk
    assert f"post rejected topic={bad.pk} model={MODEL_NAME} reason={reason}" in caplog.text


def test_generate_stores_confound_flags(chat_server, gen_survey):
    text = (
        "## What I learned\n\nAs an AI, I have read many stories like this.\n\n"
        "- first lesson\n- second lesson\n\n" + words(120)
    )
    chat_server.default = Reply(text=text)
    topic = make_human_topic(gen_survey, "Flagged topic")

    generate(chat_server, gen_survey)

    post = model_posts().get(topic=topic)
    assert post.confound_flags == [
        checks.LONGER_THAN_HUMAN,
        checks.MARKDOWN_HEADINGS,
        checks.MARKDOWN_LISTS,
        checks.SELF_REFERENCE,
    ]
    assert post.length_ratio == pytest.approx(post.word_count / HUMAN_WORDS, abs=1e-3)


@pytest.mark.parametrize(
    "failure",
    [
        Reply(status=503, retry_after="0"),
        Reply(status=429, retry_after="0"),
        Reply(status=500),
        Reply(disconnect=True),
    ],
    ids=["503", "429", "500", "dropped-connection"],
)
def test_generate_retries_then_succeeds(chat_server, gen_survey, caplog, tmp_path, failure):
    topic = make_human_topic(gen_survey, "Flaky topic")
    chat_server.script("Flaky topic", failure, failure, Reply(text=words(HUMAN_WORDS)))
    summary_path = tmp_path / "summary.json"

    with caplog.at_level(logging.WARNING, logger="survey.generation_client"):
        generate(chat_server, gen_survey, json_path=summary_path)

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    retries = [record for record in caplog.records if record.message.startswith("request retry")]
    assert model_posts().filter(topic=topic).count() == 1
    assert len(chat_server.requests_for("Flaky topic")) == 3
    assert summary["requests"] == 3
    assert summary["retries"] == 2
    assert len(retries) == 2
    assert f"topic={topic.pk}" in retries[0].message
    assert model_posts().get(topic=topic).parameters["attempts"] == 3


def test_generate_gives_up_after_retries(chat_server, gen_survey):
    topic = make_human_topic(gen_survey, "Broken topic")
    chat_server.script("Broken topic", Reply(status=503))

    output = generate(chat_server, gen_survey, "--retries", "2")

    assert not model_posts().filter(topic=topic).exists()
    assert len(chat_server.requests_for("Broken topic")) == 3
    assert f"topic {topic.pk} 'Broken topic': failed http_503" in output


@pytest.mark.parametrize("status", [400, 422])
def test_generate_does_not_retry_client_errors(chat_server, gen_survey, status):
    bad = make_human_topic(gen_survey, "Too long for the context")
    good = make_human_topic(gen_survey, "Fits the context")
    chat_server.script("Too long for the context", Reply(status=status, error_message="context"))

    output = generate(chat_server, gen_survey)

    assert len(chat_server.requests_for("Too long for the context")) == 1
    assert not model_posts().filter(topic=bad).exists()
    assert model_posts().filter(topic=good).exists()
    assert f"failed http_{status} (HTTP {status}: context)" in output


@pytest.mark.parametrize("status", [401, 403, 404])
def test_generate_stops_on_401_403_404(chat_server, gen_survey, caplog, status):
    for index in range(3):
        make_human_topic(gen_survey, f"Topic {index}")
    chat_server.default = Reply(status=status, error_message="model 'fake-model' does not exist")

    with caplog.at_level(logging.ERROR, logger="survey.generation"):
        with pytest.raises(CommandError, match=f"HTTP {status}.*--model"):
            generate(chat_server, gen_survey, "--concurrency", "1")

    assert len(chat_server.requests) == 1
    assert not model_posts().exists()
    assert f"generation stopped survey={gen_survey.slug} model={MODEL_NAME}" in caplog.text


def test_generate_times_out_hanging_request(chat_server, gen_survey):
    hanging = make_human_topic(gen_survey, "Hanging topic")
    fine = make_human_topic(gen_survey, "Answered topic")
    chat_server.script("Hanging topic", Reply(latency=30))

    output = generate(chat_server, gen_survey, "--timeout", "0.5")

    assert len(chat_server.requests_for("Hanging topic")) == 1
    assert not model_posts().filter(topic=hanging).exists()
    assert model_posts().filter(topic=fine).exists()
    assert f"topic {hanging.pk} 'Hanging topic': failed timeout" in output


def test_generate_times_out_stream_slower_than_deadline(chat_server, gen_survey):
    # Each chunk comes well within the read timeout, but the whole response does not.
    topic = make_human_topic(gen_survey, "Trickling topic")
    chat_server.script("Trickling topic", Reply(text=words(HUMAN_WORDS), chunk_delay=0.05))

    output = generate(chat_server, gen_survey, "--timeout", "1")

    assert not model_posts().filter(topic=topic).exists()
    assert "failed timeout (the response was still streaming after 1 s)" in output


def test_generate_sends_requests_in_parallel(chat_server, gen_survey):
    for index in range(6):
        make_human_topic(gen_survey, f"Parallel topic {index}")
    chat_server.default = Reply(text=words(HUMAN_WORDS), hold_until_in_flight=3)

    generate(chat_server, gen_survey, "--concurrency", "3")

    assert chat_server.max_in_flight == 3
    assert model_posts().count() == 6


def test_generate_rerun_requests_only_missing_posts(chat_server, gen_survey):
    topics = [make_human_topic(gen_survey, f"Rerun topic {index}") for index in range(4)]
    chat_server.script("Rerun topic 2", Reply(text=words(10)), Reply(text=words(HUMAN_WORDS)))

    generate(chat_server, gen_survey)
    first_run = len(chat_server.requests)
    generate(chat_server, gen_survey)
    second_run = chat_server.requests[first_run:]
    output = generate(chat_server, gen_survey)

    assert first_run == 4
    assert [request.prompt for request in second_run] == [
        chat_server.requests_for("Rerun topic 2")[0].prompt
    ]
    assert len(chat_server.requests) == 5
    assert model_posts().count() == 4
    assert set(model_posts().values_list("topic_id", flat=True)) == {t.pk for t in topics}
    assert "nothing to request" in output


def test_generate_skips_topics_without_human_post(chat_server, gen_survey):
    Topic.objects.create(survey=gen_survey, title="No human post yet", language="en")
    other_survey = make_survey(slug="other-survey")
    make_human_topic(other_survey, "Other survey topic")
    mine = make_human_topic(gen_survey, "Survey topic")

    generate(chat_server, gen_survey)

    assert [request.prompt for request in chat_server.requests] == [
        model_posts().get(topic=mine).prompt
    ]


def test_generate_asks_for_topic_language_and_length(chat_server, gen_survey):
    korean = words(40, "단어")
    chat_server.default = Reply(text=korean)
    topic = make_human_topic(
        gen_survey,
        "첫 직장에서 배운 것",
        body=korean,
        language="ko",
        brief="신입 개발자의 첫해",
    )

    generate(chat_server, gen_survey)

    prompt = chat_server.requests[0].prompt
    assert "첫 직장에서 배운 것" in prompt
    assert "신입 개발자의 첫해" in prompt
    assert "in Korean" in prompt
    assert "about 40 words" in prompt
    assert model_posts().get(topic=topic).prompt == prompt


def test_generate_uses_api_key_option_and_environment(chat_server, gen_survey, monkeypatch):
    make_human_topic(gen_survey, "Key topic")
    monkeypatch.setenv("OPENAI_API_KEY", "from-environment")

    generate(chat_server, gen_survey)
    generate(chat_server, gen_survey, "--api-key", "from-option", model="second-model")

    assert chat_server.requests[0].headers["authorization"] == "Bearer from-environment"
    assert chat_server.requests[1].headers["authorization"] == "Bearer from-option"


def test_generate_defaults_to_default_survey(chat_server, transactional_db):
    default = make_survey(slug="the-default", is_default=True)
    make_survey(slug="not-default")
    topic = make_human_topic(default, "Default survey topic")

    call_command(
        "generate_posts",
        "--base-url",
        chat_server.base_url,
        "--model",
        MODEL_NAME,
        "--no-progress",
        stdout=StringIO(),
        stderr=StringIO(),
    )

    assert model_posts().filter(topic=topic).exists()


def test_generate_without_default_survey_fails(chat_server, transactional_db):
    make_survey(slug="not-default")

    with pytest.raises(CommandError, match="No default survey"):
        call_command("generate_posts", "--base-url", chat_server.base_url, "--model", "m")

    assert chat_server.requests == []


def test_generate_unknown_survey_fails(chat_server, gen_survey):
    with pytest.raises(CommandError, match="Survey 'missing' not found"):
        call_command(
            "generate_posts",
            "--base-url",
            chat_server.base_url,
            "--model",
            "m",
            "--survey",
            "missing",
        )


def test_generate_invalid_option_fails_before_any_request(chat_server, gen_survey):
    make_human_topic(gen_survey, "Any topic")

    with pytest.raises(CommandError, match="concurrency must be at least 1"):
        generate(chat_server, gen_survey, "--concurrency", "0")

    assert chat_server.requests == []


def test_generate_sends_extra_body(chat_server, gen_survey):
    topic = make_human_topic(gen_survey, "Extra body topic")
    extra = {"chat_template_kwargs": {"enable_thinking": False}, "top_p": 0.9}

    generate(chat_server, gen_survey, "--extra-body", json.dumps(extra))

    body = chat_server.requests[0].body
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["top_p"] == 0.9
    assert body["max_tokens"] == 2048
    assert model_posts().get(topic=topic).parameters["extra_body"] == extra


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"max_tokens": 10}', "extra body must not set max_tokens"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "invalid JSON"),
    ],
)
def test_generate_rejects_bad_extra_body(chat_server, gen_survey, value, message):
    make_human_topic(gen_survey, "Any topic")

    with pytest.raises(CommandError, match=message):
        generate(chat_server, gen_survey, "--extra-body", value)

    assert chat_server.requests == []


def test_generate_dry_run_sends_nothing(chat_server, gen_survey):
    topic = make_human_topic(gen_survey, "Dry run topic")

    output = generate(chat_server, gen_survey, "--dry-run")

    assert chat_server.requests == []
    assert f"topic {topic.pk} [en] 'Dry run topic': {HUMAN_WORDS} words" in output
    assert "Write a blog post on this topic: Dry run topic" in output


def test_generate_limit(chat_server, gen_survey):
    for index in range(3):
        make_human_topic(gen_survey, f"Limited topic {index}")

    generate(chat_server, gen_survey, "--limit", "2")

    assert len(chat_server.requests) == 2
    assert model_posts().count() == 2


def test_generate_json_summary(chat_server, gen_survey, tmp_path):
    for index in range(3):
        make_human_topic(gen_survey, f"Summary topic {index}")
    chat_server.script("Summary topic 1", Reply(status=503), Reply(text=words(HUMAN_WORDS)))
    summary_path = tmp_path / "summary.json"

    generate(chat_server, gen_survey, json_path=summary_path)

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    assert summary["survey"] == gen_survey.slug
    assert summary["model"] == MODEL_NAME
    assert summary["topics"] == 3
    assert summary["requests"] == 4
    assert summary["retries"] == 1
    assert summary["stored"] == 3
    assert summary["rejected"] == {}
    assert summary["failed"] == {}
    assert summary["completion_tokens"] == 3 * HUMAN_WORDS
    assert summary["usage_source"] == {"server": 3}
    for key in ("ttft_ms", "duration_ms", "tokens_per_second"):
        assert summary[key]["count"] == 3
        assert set(summary[key]) == {"count", "mean", "median", "p95", "std", "cv"}
    assert summary["output_tokens_per_second"] > 0


def test_generate_logs_start_and_stop(chat_server, gen_survey, caplog):
    make_human_topic(gen_survey, "Logged topic")

    with caplog.at_level(logging.INFO, logger="survey.generation"):
        generate(chat_server, gen_survey)

    messages = [record.message for record in caplog.records if record.name == "survey.generation"]
    assert messages[0].startswith(f"generation started survey={gen_survey.slug} model={MODEL_NAME}")
    assert messages[-1].startswith(f"generation finished survey={gen_survey.slug}")
    assert any(message.startswith("post stored topic=") for message in messages)
    assert "EMPTY" not in caplog.text


def test_generated_topics_are_served_to_attendees(chat_server, transactional_db, client):
    chat_server.default = Reply(text=words(HUMAN_WORDS, "machine"))
    lines = [
        json.dumps({"topic": title, "body": words(HUMAN_WORDS, "person"), "author": "human"})
        for title in ("Served topic one", "Served topic two")
    ]
    import_lines(lines)
    survey = Topic.objects.get(title="Served topic one").survey
    assert not Topic.objects.servable().exists()

    generate(chat_server, survey, model="model-a")
    generate(chat_server, survey, model="model-b")

    assert Topic.objects.servable().filter(survey=survey).count() == 2
    participant = Participant.objects.create(
        survey=survey, channel="web", language="en", consented_at=timezone.now()
    )
    served = [serve_next(participant) for _round in range(2)]
    assert all(response is not None for response in served)
    for response in served:
        shown = {post.author_label for post in response.displayed_posts}
        assert shown == {"human", "model-a", "model-b"}
        response.answered_at = timezone.now()
        response.guessed_human = response.post_a
        response.preferred = response.post_b
        response.save()

    client.post(reverse("survey:welcome", args=[survey.slug]), {"consent": "on"})
    page = client.get(reverse("survey:round", args=[survey.slug]))
    assert page.status_code == 200
    assert "person person" in page.content.decode()
    assert "machine machine" in page.content.decode()
    attendee = Participant.objects.exclude(pk=participant.pk).get()
    shown = {post.author_label for post in attendee.responses.get().displayed_posts}
    assert shown == {"human", "model-a", "model-b"}


def _database_url() -> str:
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(database['NAME']).resolve()}"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    return (
        f"postgres://{database['USER']}{password}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}"
    )


def _wait_for(condition, *, seconds=20.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_keeps_stored_posts_only(chat_server, gen_survey):
    finished = make_human_topic(gen_survey, "Quick topic")
    hanging = make_human_topic(gen_survey, "Endless topic")
    chat_server.script("Endless topic", Reply(latency=60))
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "generate_posts",
            "--base-url",
            chat_server.base_url,
            "--model",
            MODEL_NAME,
            "--survey",
            gen_survey.slug,
            "--concurrency",
            "2",
            "--timeout",
            "600",
            "--no-progress",
        ],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stored = _wait_for(lambda: model_posts().filter(topic=finished).exists())
        streaming = _wait_for(lambda: len(chat_server.requests_for("Endless topic")) == 1)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert stored
    assert streaming
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr
    assert "generation interrupted" in stdout + stderr
    assert "Interrupted; posts stored so far are kept." in stderr
    assert model_posts().filter(topic=finished).count() == 1
    assert not model_posts().filter(topic=hanging).exists()


def test_admin_filters_posts_by_confound_flag(chat_server, gen_survey, client, django_user_model):
    flagged = make_human_topic(gen_survey, "Flagged in admin")
    plain = make_human_topic(gen_survey, "Plain in admin")
    chat_server.script("Flagged in admin", Reply(text="As an AI, I wrote this. " + words(95)))
    generate(chat_server, gen_survey)
    organizer = django_user_model.objects.create_superuser("organizer", password="secret-pass-1")
    client.force_login(organizer)
    changelist = reverse("admin:survey_post_changelist")

    by_flag = client.get(changelist, {"confound": checks.SELF_REFERENCE, "author__exact": MODEL})
    without = client.get(changelist, {"confound": "none", "author__exact": MODEL})

    assert list(by_flag.context["cl"].result_list) == [model_posts().get(topic=flagged)]
    assert list(without.context["cl"].result_list) == [model_posts().get(topic=plain)]
    assert "refers to itself as an AI" in by_flag.content.decode()
