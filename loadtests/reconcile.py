"""The benchmark's arithmetic: reconciling answers, percentiles, the cost ratio, the RESULT line.

Pure functions, so that tests check them without servers.
"""

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

RESULT_KEYS = (
    "users",
    "answers_ok",
    "answers_db",
    "sheet_rows",
    "lost",
    "duplicated",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "cost_ratio",
    "mirror_lag_p95_s",
)


@dataclass(frozen=True)
class Reconciliation:
    """Answers counted three ways: seen by Locust, stored in the database, rows in the sheet.

    ``lost`` counts answers that Locust saw succeed but the database lacks,
    plus stored answers that have no row in the sheet. ``duplicated`` counts
    sheet rows beyond the first for the same response. ``unconfirmed`` counts
    stored answers that no simulated user saw succeed, such as a request that
    timed out on the client after the server committed it, and ``unknown_rows``
    counts sheet rows for responses that the database has no answer for.
    """

    answers_ok: int
    answers_db: int
    sheet_rows: int
    lost_in_database: int
    missing_from_sheet: int
    duplicated: int
    unconfirmed: int
    unknown_rows: int

    @property
    def lost(self) -> int:
        return self.lost_in_database + self.missing_from_sheet

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.unknown_rows == 0


def reconcile(
    *, seen_ok: Collection[int], database: Collection[int], sheet: Sequence[int]
) -> Reconciliation:
    """Compare the response ids Locust saw succeed, the answered ids stored, and the sheet rows."""
    seen_ok = set(seen_ok)
    database = set(database)
    rows = Counter(sheet)
    return Reconciliation(
        answers_ok=len(seen_ok),
        answers_db=len(database),
        sheet_rows=len(sheet),
        lost_in_database=len(seen_ok - database),
        missing_from_sheet=len(database - set(rows)),
        duplicated=sum(count - 1 for count in rows.values()),
        unconfirmed=len(database - seen_ok),
        unknown_rows=sum(
            count for response_id, count in rows.items() if response_id not in database
        ),
    )


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the ``fraction`` quantile (0 to 1) with linear interpolation; None when empty.

    This is the same estimate as numpy's default ``percentile`` method.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    weight = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * weight


def cost_ratio(*, bare_per_second: float, answers_per_second: float) -> float | None:
    """Return how many bare requests one answer round trip costs; None without answers."""
    if answers_per_second <= 0:
        return None
    return bare_per_second / answers_per_second


def format_value(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def result_line(values: dict) -> str:
    """Return the ``RESULT key=value ...`` line with the keys in their fixed order.

    Raises KeyError naming a key that ``values`` lacks.
    """
    missing = [key for key in RESULT_KEYS if key not in values]
    if missing:
        raise KeyError(f"result values lack {', '.join(missing)}")
    return "RESULT " + " ".join(f"{key}={format_value(values[key])}" for key in RESULT_KEYS)
