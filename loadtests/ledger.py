"""The answers that simulated attendees saw succeed, counted once per response.

Each Locust process keeps one ledger. In a distributed run every worker sends
the ids it added since its last report to the master with Locust's regular
reports, and the master merges them, so the master's ledger holds the whole
run. A double tap sends one answer twice and counts once, because the ledger
is a set of response ids.
"""

import json
import os
import threading
from collections import Counter
from pathlib import Path


class AnswerLedger:
    def __init__(self):
        self._lock = threading.Lock()
        self._ids: set[int] = set()
        self._unreported: list[int] = []
        self._journeys: Counter[str] = Counter()
        self._unreported_journeys: Counter[str] = Counter()

    def record(self, response_id: int) -> bool:
        """Count the answer to ``response_id``; return False when it was counted before."""
        with self._lock:
            if response_id in self._ids:
                return False
            self._ids.add(response_id)
            self._unreported.append(response_id)
            return True

    def count_journey(self, outcome: str) -> None:
        """Count one attendee journey by its outcome, such as ``finished`` or ``abandoned``."""
        with self._lock:
            self._journeys[outcome] += 1
            self._unreported_journeys[outcome] += 1

    def take_report(self) -> dict:
        """Return what was added since the last report, and forget it; for workers."""
        with self._lock:
            report = {
                "response_ids": self._unreported,
                "journeys": dict(self._unreported_journeys),
            }
            self._unreported = []
            self._unreported_journeys = Counter()
            return report

    def merge_report(self, report: dict) -> None:
        """Add a worker's report, as ``take_report`` made it; for the master."""
        with self._lock:
            for response_id in report.get("response_ids", []):
                self._ids.add(int(response_id))
            self._journeys.update(report.get("journeys", {}))

    @property
    def response_ids(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._ids)

    @property
    def journeys(self) -> dict[str, int]:
        with self._lock:
            return dict(self._journeys)

    def reset(self) -> None:
        with self._lock:
            self._ids.clear()
            self._unreported.clear()
            self._journeys.clear()
            self._unreported_journeys.clear()

    def write(self, path: str | os.PathLike, *, extra: dict | None = None) -> None:
        """Write the ids, journey counts and ``extra`` as JSON, replacing ``path`` atomically."""
        target = Path(path)
        payload = {
            **(extra or {}),
            "response_ids": sorted(self.response_ids),
            "journeys": self.journeys,
        }
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(json.dumps(payload))
        temporary.replace(target)


def read_answers_file(path: str | os.PathLike) -> dict:
    """Return what ``AnswerLedger.write`` stored, with the response ids as a set of ints."""
    payload = json.loads(Path(path).read_text())
    payload["response_ids"] = {int(value) for value in payload["response_ids"]}
    return payload


LEDGER = AnswerLedger()
