"""Receipt codes, and withdrawing a participant's answers with one.

Withdrawal deletes the participant and every response from the database at
once. Rows that the Sheets mirror already wrote are recorded as
WithdrawnSheetRow, and the mirror blanks them on its next pass.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from survey.models import MirrorStatus, Participant, WithdrawnSheetRow
from survey.sheets_ledger import CLAIM_LEASE

logger = logging.getLogger(__name__)

# No 0/O or 1/I, so that a code copied from a phone screen by hand still matches.
RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECEIPT_LENGTH = 8


class InvalidReceiptCode(ValueError):
    """The text cannot be a receipt code: wrong length or characters."""


@dataclass(frozen=True)
class Withdrawal:
    participant_public_id: str
    responses_deleted: int
    sheet_rows_to_blank: int


def new_receipt_code() -> str:
    code = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))
    return f"{code[:4]}-{code[4:]}"


def assign_receipt_code(participant: Participant) -> str:
    """Give the participant a unique receipt code, once, and return it."""
    if participant.receipt_code:
        return participant.receipt_code
    for _attempt in range(5):
        code = new_receipt_code()
        try:
            with transaction.atomic():
                updated = Participant.objects.filter(
                    pk=participant.pk, receipt_code__isnull=True
                ).update(receipt_code=code)
        except IntegrityError:
            # Another participant holds this code, about one chance in 10^12.
            continue
        if not updated:
            participant.refresh_from_db(fields=["receipt_code"])
            return participant.receipt_code
        participant.receipt_code = code
        return code
    raise RuntimeError(f"no unique receipt code after 5 attempts participant={participant.pk}")


def normalize_receipt_code(text: str) -> str:
    """Return the code in its stored form (``ABCD-EFGH``) or raise InvalidReceiptCode.

    Case, spaces and hyphens are ignored.
    """
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != RECEIPT_LENGTH or any(c not in RECEIPT_ALPHABET for c in compact):
        raise InvalidReceiptCode(text)
    return f"{compact[:4]}-{compact[4:]}"


def withdraw(*, receipt_code: str) -> Withdrawal | None:
    """Delete the participant with this code and all their responses.

    Returns None when no participant has the code. Raises InvalidReceiptCode
    when the text cannot be a code.
    """
    code = normalize_receipt_code(receipt_code)
    now = timezone.now()
    with transaction.atomic():
        participant = Participant.objects.select_for_update().filter(receipt_code=code).first()
        if participant is None:
            return None
        status = MirrorStatus.objects.filter(pk=MirrorStatus.SINGLETON_PK).first()
        generation = status.generation if status else 0
        tombstones = [
            WithdrawnSheetRow(
                row=row,
                generation=generation,
                not_before=_blank_after(mirrored_at, claimed_at, now),
            )
            for row, mirrored_at, claimed_at in participant.responses.filter(
                mirror_row__isnull=False
            ).values_list("mirror_row", "mirrored_at", "mirror_claimed_at")
        ]
        WithdrawnSheetRow.objects.bulk_create(tombstones)
        responses_deleted = participant.responses.count()
        public_id = str(participant.public_id)
        participant.responses.all().delete()
        participant.delete()
    logger.info(
        "participant withdrew participant=%s responses_deleted=%s sheet_rows_to_blank=%s",
        public_id,
        responses_deleted,
        len(tombstones),
    )
    return Withdrawal(
        participant_public_id=public_id,
        responses_deleted=responses_deleted,
        sheet_rows_to_blank=len(tombstones),
    )


def _blank_after(
    mirrored_at: datetime | None, claimed_at: datetime | None, now: datetime
) -> datetime:
    if mirrored_at is None and claimed_at is not None:
        return claimed_at + CLAIM_LEASE
    return now


def due_sheet_rows(*, generation: int) -> list[WithdrawnSheetRow]:
    """Return withdrawn rows of ``generation`` that may be blanked now.

    Rows of older generations are deleted instead: the rebuild that started the
    current generation already left their responses out of the sheet.
    """
    WithdrawnSheetRow.objects.filter(generation__lt=generation).delete()
    return list(
        WithdrawnSheetRow.objects.filter(generation=generation, not_before__lte=timezone.now())
    )
