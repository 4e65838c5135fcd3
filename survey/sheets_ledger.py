"""The database side of the Sheets mirror: which response goes to which sheet row, and when.

Exactly-once rests on three rules:

1. A response gets its sheet row number in the database, in a committed
   transaction, before anything is written. The number never changes until a
   rebuild, so every retry of a write, by any worker, targets the same cells.
2. A claim is a lease: while it is fresh, no other worker claims the response.
   A worker that dies leaves the lease to expire, and the next claim rewrites
   the same row with the same values.
3. A rebuild increments the generation. A worker holding rows of an older
   generation checks it before every write attempt and drops its batch.

On PostgreSQL the claim locks the rows it takes with FOR UPDATE SKIP LOCKED and
allocates row numbers under a lock on the status row. On SQLite the claim runs
in an IMMEDIATE transaction (see DATABASES in settings), which serializes it
with every other writer.
"""

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from survey.models import MirrorStatus, Response

# A claim older than this is taken to belong to a dead worker. It must exceed
# the longest a batch can take: the retry budget plus one request timeout.
CLAIM_LEASE = timedelta(minutes=10)
# Lag samples kept for the p95: the most recent rows, about a busy hour.
LAG_SAMPLES = 2000
HEADER_ROW = 1
FIRST_RUN = "first run"


class StaleClaim(Exception):
    """A rebuild started after these rows were claimed, so their row numbers are void."""


@dataclass(frozen=True)
class Claim:
    token: uuid.UUID
    generation: int
    # Response id to sheet row number.
    rows: dict[int, int]
    answered_at: dict[int, datetime] = field(default_factory=dict)
    for_rebuild: bool = False


@dataclass(frozen=True)
class ClaimOutcome:
    claim: Claim | None = None
    # Another worker is rebuilding the sheet, so no rows may be written now.
    waiting_for_rebuild: bool = False
    # The rebuild stopped sending heartbeats, so its worker is gone.
    rebuild_abandoned: bool = False


@dataclass(frozen=True)
class RebuildStart:
    token: uuid.UUID
    generation: int
    reason: str
    # Rows other workers had claimed and may still be writing.
    live_claims: int
    # The rebuild writes the responses answered up to this time. Later answers
    # wait for it to finish and then go through ordinary claims, so that a
    # steady stream of answers cannot keep a rebuild from ending.
    started_at: datetime

    @property
    def rewrites_mirrored_rows(self) -> bool:
        """False on a first run, whose rows reach the sheet for the first time."""
        return self.reason != FIRST_RUN


def status_for_update() -> MirrorStatus:
    """Return the status row, locked until the transaction ends (call inside atomic)."""
    MirrorStatus.objects.get_or_create(pk=MirrorStatus.SINGLETON_PK)
    return MirrorStatus.objects.select_for_update().get(pk=MirrorStatus.SINGLETON_PK)


def current_status() -> MirrorStatus | None:
    return MirrorStatus.objects.filter(pk=MirrorStatus.SINGLETON_PK).first()


def begin_rebuild_if_needed(
    *, spreadsheet_id: str, worksheet_title: str, columns: Sequence[str], force: bool
) -> RebuildStart | None:
    """Start a rebuild when asked, when the target sheet or the columns changed, or when
    an earlier rebuild was abandoned.

    Starting one clears every row number and mirrored time, so that the
    rebuild writes all answered responses from row 2 down. Other workers write
    nothing until ``finish_rebuild`` runs.
    """
    now = timezone.now()
    target = (spreadsheet_id, worksheet_title, list(columns))
    status = current_status()
    if (
        not force
        and status is not None
        and _target(status) == target
        and status.rebuild_claim is None
    ):
        # The common case takes no lock: nothing to rebuild.
        return None
    with transaction.atomic():
        status = status_for_update()
        abandoned = status.rebuild_claim is not None and _heartbeat_expired(status, now)
        if force:
            reason = "requested"
        elif not status.spreadsheet_id:
            reason = FIRST_RUN
        elif _target(status)[:2] != target[:2]:
            reason = "new target"
        elif status.columns != target[2]:
            reason = "new columns"
        elif abandoned:
            reason = "abandoned rebuild"
        else:
            return None

        live_claims = Response.objects.filter(
            mirror_claim__isnull=False, mirror_claimed_at__gte=now - CLAIM_LEASE
        ).count()
        Response.objects.filter(
            Q(mirror_row__isnull=False)
            | Q(mirror_claim__isnull=False)
            | Q(mirrored_at__isnull=False)
        ).update(mirror_row=None, mirror_claim=None, mirror_claimed_at=None, mirrored_at=None)
        status.spreadsheet_id = spreadsheet_id
        status.worksheet_title = worksheet_title
        status.columns = list(columns)
        status.generation += 1
        status.next_row = HEADER_ROW + 1
        status.rebuild_claim = uuid.uuid4()
        status.rebuild_heartbeat_at = now
        status.save()
    return RebuildStart(
        token=status.rebuild_claim,
        generation=status.generation,
        reason=reason,
        live_claims=live_claims,
        started_at=now,
    )


def finish_rebuild(token: uuid.UUID) -> int:
    """End the rebuild that ``token`` names and return the first row after its rows."""
    with transaction.atomic():
        status = status_for_update()
        if status.rebuild_claim != token:
            raise StaleClaim("another worker took over this rebuild")
        status.rebuild_claim = None
        status.rebuild_heartbeat_at = None
        status.save(update_fields=["rebuild_claim", "rebuild_heartbeat_at"])
        return status.next_row


def next_row() -> int:
    status = current_status()
    return status.next_row if status else HEADER_ROW + 1


def claim_batch(
    *,
    limit: int,
    rebuild_token: uuid.UUID | None = None,
    answered_until: datetime | None = None,
) -> ClaimOutcome:
    """Claim up to ``limit`` answered, unmirrored responses, oldest answer first.

    Responses keep a row number claimed earlier, and the others get the next
    free rows. A rebuild passes its token and ``answered_until``, its start time.
    The claim is committed before this returns.
    """
    now = timezone.now()
    with transaction.atomic():
        status = status_for_update()
        if status.rebuild_claim is not None and status.rebuild_claim != rebuild_token:
            return ClaimOutcome(
                waiting_for_rebuild=True, rebuild_abandoned=_heartbeat_expired(status, now)
            )
        if rebuild_token is not None and status.rebuild_claim != rebuild_token:
            raise StaleClaim("another worker took over this rebuild")

        pending = Response.objects.pending_mirror().filter(
            Q(mirror_claim__isnull=True) | Q(mirror_claimed_at__lt=now - CLAIM_LEASE)
        )
        if answered_until is not None:
            pending = pending.filter(answered_at__lte=answered_until)
        candidates = list(
            pending.order_by("answered_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", "mirror_row", "answered_at")[:limit]
        )
        if not candidates:
            return ClaimOutcome()

        token = uuid.uuid4()
        rows: dict[int, int] = {}
        new_rows: list[Response] = []
        for pk, row, _answered_at in candidates:
            if row is None:
                row = status.next_row
                status.next_row += 1
                new_rows.append(Response(pk=pk, mirror_row=row))
            rows[pk] = row
        if new_rows:
            Response.objects.bulk_update(new_rows, ["mirror_row"], batch_size=500)
        Response.objects.filter(pk__in=rows).update(mirror_claim=token, mirror_claimed_at=now)
        if rebuild_token is not None:
            status.rebuild_heartbeat_at = now
        status.save(update_fields=["next_row", "rebuild_heartbeat_at"])

    return ClaimOutcome(
        claim=Claim(
            token=token,
            generation=status.generation,
            rows=rows,
            answered_at={pk: answered_at for pk, _row, answered_at in candidates},
            for_rebuild=rebuild_token is not None,
        )
    )


def check_current(claim: Claim) -> None:
    """Raise StaleClaim when a rebuild has started since ``claim`` was taken."""
    check_generation(claim.generation)


def check_generation(generation: int) -> None:
    """Raise StaleClaim when row numbers of ``generation`` are void because a rebuild started."""
    current = (
        MirrorStatus.objects.filter(pk=MirrorStatus.SINGLETON_PK)
        .values_list("generation", flat=True)
        .first()
    )
    if current != generation:
        raise StaleClaim(
            f"row numbers of generation {generation} are void, the mirror is at {current}"
        )


def mark_mirrored(claim: Claim, *, written_at: datetime, record_lag: bool = True) -> int:
    """Record that the claim's rows are in the sheet and return how many responses it marked.

    Pass ``record_lag=False`` for rows that were in the sheet before, as a
    rebuild rewrites them, because their age is not mirror lag.
    """
    with transaction.atomic():
        # Every transaction here locks the status row before response rows, so
        # that a rebuild, which updates many responses under that lock, cannot
        # deadlock with a worker marking its batch.
        status = status_for_update()
        marked = Response.objects.filter(pk__in=claim.rows, mirror_claim=claim.token).update(
            mirrored_at=written_at, mirror_claim=None, mirror_claimed_at=None
        )
        status.last_success_at = written_at
        fields = ["last_success_at"]
        if record_lag and claim.answered_at:
            lags = [
                round((written_at - answered_at).total_seconds(), 3)
                for answered_at in claim.answered_at.values()
            ]
            status.lag_seconds_last = max(lags)
            status.lag_samples = (list(status.lag_samples) + lags)[-LAG_SAMPLES:]
            fields += ["lag_seconds_last", "lag_samples"]
        status.save(update_fields=fields)
    return marked


def release(claim: Claim) -> int:
    """Give the claim's responses back to the queue. Their row numbers stay theirs."""
    return Response.objects.filter(mirror_claim=claim.token).update(
        mirror_claim=None, mirror_claimed_at=None
    )


def abandon_rebuild(token: uuid.UUID) -> None:
    """Let any worker take over this rebuild at once, after it failed or was stopped."""
    MirrorStatus.objects.filter(pk=MirrorStatus.SINGLETON_PK, rebuild_claim=token).update(
        rebuild_heartbeat_at=None
    )


def record_error(message: str) -> None:
    with transaction.atomic():
        status = status_for_update()
        status.last_error = message[:2000]
        status.last_error_at = timezone.now()
        status.save(update_fields=["last_error", "last_error_at"])


def percentile(values: list[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of ``values`` (``fraction`` 0.95 for the p95)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * fraction))
    return ordered[rank - 1]


def _target(status: MirrorStatus) -> tuple[str, str, list]:
    return (status.spreadsheet_id, status.worksheet_title, list(status.columns))


def _heartbeat_expired(status: MirrorStatus, now: datetime) -> bool:
    heartbeat = status.rebuild_heartbeat_at
    return heartbeat is None or heartbeat < now - CLAIM_LEASE
