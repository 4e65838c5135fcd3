"""Recording a participant's answer to a served comparison."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils import timezone

from survey.models import Participant, Response

logger = logging.getLogger(__name__)

COMMENT_MAX_LENGTH = 500
CONFIDENCE_RANGE = range(1, 6)
REASON_CODES = frozenset(code for code, _label in Response.REASON_CHOICES)


class BallotRejected(Exception):
    """A ballot that no honest form submission produces: tampered or malformed."""


@dataclass(frozen=True)
class RecordResult:
    response: Response
    # False when the response had been answered already, for example by a
    # double tap or a retry after a timeout; the stored answer is unchanged.
    recorded: bool


def record_answer(
    *,
    participant: Participant,
    response_id: int,
    guessed_human_id: int,
    preferred_id: int,
    confidence: int | None = None,
    reasons: Iterable[str] = (),
    comment: str = "",
    served: Response | None = None,
) -> RecordResult:
    """Store the participant's answer to one served comparison, exactly once.

    Raises BallotRejected, storing nothing, when the response is not this
    participant's, a chosen post is not one of the three shown, or a value is out
    of range. A second ballot for an answered response changes nothing.
    ``served`` is the response as the caller already loaded it, which saves a
    query; it is used only when its id and participant match.
    """
    reasons = list(dict.fromkeys(reasons))
    _validate_values(confidence=confidence, reasons=reasons, comment=comment)

    response = None
    if served is not None and served.pk == response_id:
        if served.participant_id == participant.pk:
            response = served
    else:
        response = (
            Response.objects.select_related("post_a", "post_b", "post_c", "guessed_human")
            .filter(pk=response_id, participant=participant)
            .first()
        )
    if response is None:
        raise BallotRejected(f"response {response_id} was not served to this participant")
    shown = {response.post_a_id, response.post_b_id, response.post_c_id}
    for field, post_id in (("guessed_human", guessed_human_id), ("preferred", preferred_id)):
        if post_id not in shown:
            raise BallotRejected(f"{field} post {post_id} is not part of response {response_id}")

    if response.is_answered:
        return RecordResult(response=response, recorded=False)

    # The answered_at condition makes the write happen once even when two
    # requests for the same ballot pass the check above at the same time.
    answer = {
        "answered_at": timezone.now(),
        "guessed_human_id": guessed_human_id,
        "preferred_id": preferred_id,
        "confidence": confidence,
        "reasons": reasons,
        "comment": comment,
    }
    updated = Response.objects.filter(pk=response.pk, answered_at__isnull=True).update(**answer)
    if updated:
        for field, value in answer.items():
            setattr(response, field, value)
    else:
        # A concurrent request for the same ballot stored its answer first; return that.
        response.refresh_from_db()
    if updated:
        logger.info(
            "answer recorded participant=%s response=%s round=%s",
            participant.public_id,
            response.pk,
            response.round_number,
        )
    return RecordResult(response=response, recorded=bool(updated))


def _validate_values(*, confidence: int | None, reasons: list[str], comment: str) -> None:
    if confidence is not None and confidence not in CONFIDENCE_RANGE:
        raise BallotRejected(f"confidence {confidence} is outside 1-5")
    unknown = [reason for reason in reasons if reason not in REASON_CODES]
    if unknown:
        raise BallotRejected(f"unknown reasons {unknown}")
    if len(comment) > COMMENT_MAX_LENGTH:
        raise BallotRejected(f"comment of {len(comment)} characters exceeds {COMMENT_MAX_LENGTH}")
    if "\x00" in comment:
        raise BallotRejected("comment contains a NUL character")
