"""The summary of a generation run, printed as a serving benchmark prints it."""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Distribution:
    """Summary statistics of one per-request measurement.

    ``p95`` uses linear interpolation between samples (numpy's default), ``std``
    is the sample standard deviation (n - 1), and ``cv`` is std / mean. Both are
    None with fewer than two samples, and ``cv`` is None when the mean is 0.
    """

    count: int
    mean: float | None
    median: float | None
    p95: float | None
    std: float | None
    cv: float | None

    @classmethod
    def of(cls, values: list[float]) -> "Distribution":
        if not values:
            return cls(count=0, mean=None, median=None, p95=None, std=None, cv=None)
        samples = np.asarray(values, dtype=float)
        mean = float(samples.mean())
        std = float(samples.std(ddof=1)) if len(samples) > 1 else None
        cv = std / mean if std is not None and mean != 0 else None
        return cls(
            count=len(samples),
            mean=mean,
            median=float(np.median(samples)),
            p95=float(np.percentile(samples, 95)),
            std=std,
            cv=cv,
        )

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "mean": self.mean,
            "median": self.median,
            "p95": self.p95,
            "std": self.std,
            "cv": self.cv,
        }


@dataclass(frozen=True)
class Problem:
    """A topic that got no post: rejected output or a failed request."""

    topic_id: int
    topic: str
    outcome: str  # "rejected" or "failed"
    reason: str
    detail: str


@dataclass
class GenerationSummary:
    survey: str
    model: str
    endpoint: str
    stream: bool
    concurrency: int
    topics: int = 0
    requests: int = 0
    retries: int = 0
    stored: int = 0
    rejected: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    usage_sources: Counter = field(default_factory=Counter)
    # Per-request measurements of every response received, stored or rejected,
    # because they describe the endpoint and not the post.
    ttft_ms: list[float] = field(default_factory=list)
    duration_ms: list[float] = field(default_factory=list)
    tokens_per_second: list[float] = field(default_factory=list)
    completion_tokens: int = 0
    wall_seconds: float = 0.0
    interrupted: bool = False

    @property
    def output_tokens_per_second(self) -> float | None:
        """Output throughput of the whole run: completion tokens over wall time."""
        if self.wall_seconds <= 0:
            return None
        return self.completion_tokens / self.wall_seconds

    def add_problem(self, *, topic_id: int, topic: str, outcome: str, reason: str, detail: str):
        counter = self.rejected if outcome == "rejected" else self.failed
        counter[reason] += 1
        self.problems.append(
            Problem(topic_id=topic_id, topic=topic, outcome=outcome, reason=reason, detail=detail)
        )

    def as_dict(self) -> dict:
        return {
            "survey": self.survey,
            "model": self.model,
            "endpoint": self.endpoint,
            "stream": self.stream,
            "concurrency": self.concurrency,
            "interrupted": self.interrupted,
            "topics": self.topics,
            "requests": self.requests,
            "retries": self.retries,
            "stored": self.stored,
            "rejected": dict(sorted(self.rejected.items())),
            "failed": dict(sorted(self.failed.items())),
            "wall_seconds": round(self.wall_seconds, 3),
            "completion_tokens": self.completion_tokens,
            "usage_source": dict(sorted(self.usage_sources.items())),
            "output_tokens_per_second": self.output_tokens_per_second,
            "ttft_ms": Distribution.of(self.ttft_ms).as_dict(),
            "duration_ms": Distribution.of(self.duration_ms).as_dict(),
            "tokens_per_second": Distribution.of(self.tokens_per_second).as_dict(),
            "problems": [
                {
                    "topic_id": problem.topic_id,
                    "topic": problem.topic,
                    "outcome": problem.outcome,
                    "reason": problem.reason,
                    "detail": problem.detail,
                }
                for problem in self.problems
            ],
        }

    def format_report(self) -> str:
        """Return the summary as aligned text lines for a terminal."""
        label_width = 34
        lines = [_rule(" Generation summary ")]

        def row(label: str, value) -> None:
            lines.append(f"{label + ':':<{label_width}}{value}")

        row("Survey", self.survey)
        row("Model", self.model)
        row("Endpoint", self.endpoint)
        row(
            "Mode",
            f"{'streaming' if self.stream else 'non-streaming'}, concurrency {self.concurrency}",
        )
        if self.interrupted:
            row("Stopped early", "interrupted")
        row("Topics", self.topics)
        retries = f"{self.retries} retry" if self.retries == 1 else f"{self.retries} retries"
        row("Requests sent", f"{self.requests} (including {retries})")
        row("Posts stored", self.stored)
        row("Rejected", sum(self.rejected.values()))
        for reason, count in sorted(self.rejected.items()):
            row(f"  {reason}", count)
        row("Failed", sum(self.failed.values()))
        for reason, count in sorted(self.failed.items()):
            row(f"  {reason}", count)
        row("Wall time (s)", f"{self.wall_seconds:.2f}")
        sources = ", ".join(
            f"{source} {count}" for source, count in sorted(self.usage_sources.items())
        )
        row("Completion tokens", f"{self.completion_tokens}" + (f" ({sources})" if sources else ""))
        throughput = self.output_tokens_per_second
        row("Output throughput (tok/s)", "-" if throughput is None else f"{throughput:.1f}")

        lines.append(_rule(" Per request "))
        lines.append(f"{'':<24}{'n':>5}{'mean':>10}{'median':>10}{'p95':>10}{'std':>10}{'cv':>8}")
        for label, values in (
            ("Time to first token (ms)", self.ttft_ms),
            ("Duration (ms)", self.duration_ms),
            ("Output tokens/s", self.tokens_per_second),
        ):
            stats = Distribution.of(values)
            lines.append(
                f"{label:<24}{stats.count:>5}{_number(stats.mean):>10}{_number(stats.median):>10}"
                f"{_number(stats.p95):>10}{_number(stats.std):>10}{_number(stats.cv, 3):>8}"
            )
        lines.append(_rule(""))
        if self.problems:
            lines.append("Not stored (a rerun requests these topics again):")
            for problem in self.problems:
                lines.append(
                    f"  topic {problem.topic_id} {problem.topic!r}: {problem.outcome} "
                    f"{problem.reason} ({problem.detail})"
                )
        return "\n".join(lines)


def _rule(title: str) -> str:
    return f"{title:=^72}"


def _number(value: float | None, decimals: int = 1) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"
