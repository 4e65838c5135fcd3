"""Checks on a generated post: reasons to reject it, and confound flags.

A rejected post is never stored. A flagged post is stored with its flags, so an
organizer can review it in the admin and still use it.
"""

import math
import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

# Rejection reasons, in the order they are checked: the first that applies is
# the one reported, so a post cut off inside a reasoning block reports the
# reasoning and not the finish reason.
EMPTY = "empty"
REASONING_ONLY = "reasoning_only"
REASONING_BLOCK = "reasoning_block"
REPLACEMENT_CHARACTER = "replacement_character"
FINISH_REASON_PREFIX = "finish_reason_"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"

# Confound flags: differences from the human post that could tell a reader who
# wrote it.
LONGER_THAN_HUMAN = "longer_than_human"
SHORTER_THAN_HUMAN = "shorter_than_human"
MARKDOWN_HEADINGS = "markdown_headings"
MARKDOWN_LISTS = "markdown_lists"
SELF_REFERENCE = "self_reference"

CONFOUND_FLAG_LABELS = {
    LONGER_THAN_HUMAN: _("longer than the human post"),
    SHORTER_THAN_HUMAN: _("shorter than the human post"),
    MARKDOWN_HEADINGS: _("Markdown headings the human post lacks"),
    MARKDOWN_LISTS: _("Markdown lists the human post lacks"),
    SELF_REFERENCE: _("refers to itself as an AI"),
}

# Matches <think>, </think>, <thinking> and </thinking>, the tags that reasoning
# models such as DeepSeek-R1 and Qwen3 put around their reasoning.
REASONING_TAG = re.compile(r"</?think(?:ing)?>", re.IGNORECASE)
REASONING_BLOCK_PATTERN = re.compile(
    r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.IGNORECASE | re.DOTALL
)

# ATX headings ("## Title") and lines that are bold text alone ("**Title**"),
# which models use as headings.
HEADING_LINE = re.compile(r"^ {0,3}(?:#{1,6}\s+\S|\*\*[^*\n]+\*\*:?\s*$)", re.MULTILINE)
# Bulleted ("- item", "* item", "+ item") and numbered ("1. item", "1) item") lines.
LIST_LINE = re.compile(r"^ {0,3}(?:[-*+]|\d{1,3}[.)])\s+\S", re.MULTILINE)
# One list-like line can be prose ("- and then it broke"), so a list needs two.
MIN_LIST_LINES = 2

SELF_REFERENCE_PATTERNS = (
    re.compile(
        r"\bas an? (?:ai|artificial intelligence|(?:large )?language model|llm)\b", re.IGNORECASE
    ),
    re.compile(
        r"\bI(?: am|'m| am just) an? (?:ai|artificial intelligence|(?:large )?language model)\b",
        re.IGNORECASE,
    ),
    # "AI로서", "인공지능으로서", "언어 모델로서", "대형 언어 모델로서"
    # ("as an AI", "as a language model").
    re.compile(
        r"(?:AI|인공지능|(?:대형\s*|대규모\s*)?언어\s*모델)\s*(?:으로서|로서)", re.IGNORECASE
    ),
    # "저는 AI", "나는 인공지능" ("I am an AI").
    re.compile(r"(?:저는|나는)\s*(?:AI|인공지능|(?:대형\s*|대규모\s*)?언어\s*모델)", re.IGNORECASE),
)


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str


def count_words(text: str) -> int:
    """Count whitespace-separated words, as Post.word_count does."""
    return len(text.split())


def length_ratio(*, words: int, target_words: int) -> float:
    return round(words / target_words, 3)


def allowed_word_range(*, target_words: int, max_length_ratio: float) -> tuple[int, int]:
    """Return the smallest and largest accepted word counts, both inclusive."""
    return math.ceil(target_words / max_length_ratio), math.floor(target_words * max_length_ratio)


def find_rejection(
    *,
    text: str,
    reasoning: str,
    finish_reason: str,
    target_words: int,
    max_length_ratio: float,
) -> Rejection | None:
    """Return why a generated post must not be stored, or None when it may be.

    ``text`` is the response's content and ``reasoning`` the reasoning text that
    some servers return in a separate field. ``max_length_ratio`` bounds the word
    count to [target / ratio, target * ratio].
    """
    stripped = text.strip()
    if not stripped:
        if reasoning.strip():
            return Rejection(REASONING_ONLY, "the response has reasoning but no post text")
        return Rejection(EMPTY, "the response has no text")
    if REASONING_TAG.search(stripped):
        outside_reasoning = REASONING_TAG.sub("", REASONING_BLOCK_PATTERN.sub("", stripped))
        if not outside_reasoning.strip():
            return Rejection(REASONING_ONLY, "the response is a reasoning block with no post text")
        return Rejection(REASONING_BLOCK, "the response contains a <think> reasoning block")
    replacements = stripped.count("\ufffd")
    if replacements:
        return Rejection(
            REPLACEMENT_CHARACTER,
            f"the response contains {replacements} U+FFFD replacement character(s)",
        )
    if finish_reason != "stop":
        shown = finish_reason or "missing"
        return Rejection(
            f"{FINISH_REASON_PREFIX}{shown}", f"finish reason is {shown!r}, expected 'stop'"
        )
    words = count_words(stripped)
    low, high = allowed_word_range(target_words=target_words, max_length_ratio=max_length_ratio)
    if words < low:
        return Rejection(
            TOO_SHORT, f"{words} words, target {target_words}, allowed {low} to {high}"
        )
    if words > high:
        return Rejection(TOO_LONG, f"{words} words, target {target_words}, allowed {low} to {high}")
    return None


def has_markdown_headings(text: str) -> bool:
    return HEADING_LINE.search(text) is not None


def has_markdown_lists(text: str) -> bool:
    return len(LIST_LINE.findall(text)) >= MIN_LIST_LINES


def has_self_reference(text: str) -> bool:
    return any(pattern.search(text) for pattern in SELF_REFERENCE_PATTERNS)


def uses_markdown_structure(text: str) -> bool:
    return has_markdown_headings(text) or has_markdown_lists(text)


def confound_flags(
    *, text: str, human_text: str, ratio: float, flag_length_ratio: float
) -> list[str]:
    """Return the confound flags of a generated post compared with the human post.

    A length flag is raised when ``ratio`` (generated words over human words) is
    outside [1 / flag_length_ratio, flag_length_ratio].
    """
    flags = []
    if ratio > flag_length_ratio:
        flags.append(LONGER_THAN_HUMAN)
    elif ratio < 1 / flag_length_ratio:
        flags.append(SHORTER_THAN_HUMAN)
    if has_markdown_headings(text) and not has_markdown_headings(human_text):
        flags.append(MARKDOWN_HEADINGS)
    if has_markdown_lists(text) and not has_markdown_lists(human_text):
        flags.append(MARKDOWN_LISTS)
    if has_self_reference(text):
        flags.append(SELF_REFERENCE)
    return flags
