import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from survey.assignment import serve_next
from survey.export import (
    COLUMNS,
    ExportFilter,
    ExportFilterForm,
    export_queryset,
    export_rows,
    iter_csv,
    iter_rows,
    neutralize_formula,
    response_row,
    write_csv,
    write_jsonl,
)
from survey.models import Response
from survey.responses import record_answer
from tests.factories import make_survey, make_topic
from tests.test_stats import answer_round, new_participant

pytestmark = pytest.mark.django_db

FORMULA_TEXTS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR"]


def set_times(response: Response, *, served: datetime, seconds: float | None) -> None:
    answered = served + timedelta(seconds=seconds) if seconds is not None else None
    Response.objects.filter(pk=response.pk).update(served_at=served, answered_at=answered)


@pytest.fixture
def mixed_survey():
    """Two participants: answers with every optional field, a too-fast one and an unanswered one."""
    survey = make_survey(rounds_per_participant=3)
    for title in ("Bees", '=HYPERLINK("x")', "Autumn"):
        make_topic(survey, title=title)
    first = new_participant(survey, channel="kiosk")
    response = serve_next(first)
    Response.objects.filter(pk=response.pk).update(served_at=timezone.now() - timedelta(seconds=60))
    record_answer(
        participant=first,
        response_id=response.pk,
        guessed_human_id=response.post_b_id,
        preferred_id=response.post_c_id,
        confidence=4,
        reasons=["style", "tone"],
        comment="=cmd|' /C calc'!A0",
    )
    answer_round(first, guess="human", prefer="human", seconds=3)
    serve_next(first)
    second = new_participant(survey, channel="phone")
    answer_round(second, guess="model-x", prefer="model-y", seconds=45)
    return survey


def test_lean_rows_match_response_row(mixed_survey):
    responses = export_queryset(survey=mixed_survey, include_unanswered=True)

    lean = list(iter_rows(responses))
    full = [response_row(response) for response in responses]

    assert len(lean) == 4
    assert lean == full


def test_lean_rows_match_at_whole_seconds(mixed_survey):
    # SQLite stores a timestamp without a fraction when its microseconds are 0.
    response = Response.objects.filter(topic__survey=mixed_survey).answered().first()
    set_times(response, served=datetime(2025, 6, 1, 9, 0, tzinfo=UTC), seconds=12)
    responses = export_queryset(survey=mixed_survey).filter(pk=response.pk)

    (lean,) = iter_rows(responses)

    assert lean == response_row(responses.get())
    assert lean["served_at"] == "2025-06-01T09:00:00.000+00:00"
    assert lean["answer_seconds"] == 12.0


def test_rows_have_every_column(mixed_survey):
    rows = list(iter_rows(export_queryset(survey=mixed_survey, include_unanswered=True)))

    for row in rows:
        assert tuple(row) == COLUMNS


def test_too_fast_column(mixed_survey):
    rows = list(iter_rows(export_queryset(survey=mixed_survey, include_unanswered=True)))

    flags = sorted((row["answer_seconds"] is None, row["too_fast"]) for row in rows)

    assert flags == [(False, False), (False, False), (False, True), (True, None)]
    for row in rows:
        if row["answer_seconds"] is not None:
            assert row["too_fast"] == (row["answer_seconds"] < mixed_survey.min_answer_seconds)


def test_row_describes_what_was_shown(mixed_survey):
    response = Response.objects.with_posts().filter(topic__survey=mixed_survey, confidence=4).get()

    row = next(iter_rows(Response.objects.filter(pk=response.pk)))

    assert row["post_a_id"] == response.post_a_id
    assert row["guessed_human_post_id"] == response.post_b_id
    assert row["guessed_human_position"] == "B"
    assert row["preferred_position"] == "C"
    assert row["preferred_author"] == response.post_c.author_label
    assert row["guessed_correctly"] == (response.post_b.author == "human")
    assert row["reasons"] == ["style", "tone"]
    assert row["confidence"] == 4


def test_neutralize_formula_prefixes():
    for text in FORMULA_TEXTS:
        assert neutralize_formula(text) == "'" + text
    assert neutralize_formula("plain text") == "plain text"
    assert neutralize_formula("") == ""
    assert neutralize_formula("a=b") == "a=b"


def test_csv_neutralizes_formula_cells(mixed_survey):
    base = next(iter_rows(export_queryset(survey=mixed_survey)))
    rows = [dict(base, comment=text) for text in FORMULA_TEXTS]
    rows += list(iter_rows(export_queryset(survey=mixed_survey, include_unanswered=True)))
    stream = io.StringIO()

    count = write_csv(rows, stream)

    records = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert count == len(rows) == len(records)
    comments = [record["comment"] for record in records[: len(FORMULA_TEXTS)]]
    assert comments == ["'" + text for text in FORMULA_TEXTS]
    topics = {record["topic"] for record in records}
    assert '\'=HYPERLINK("x")' in topics
    assert "'=cmd|' /C calc'!A0" in {record["comment"] for record in records}


def test_csv_keeps_numbers_and_flags(mixed_survey):
    rows = list(iter_rows(export_queryset(survey=mixed_survey)))

    records = list(csv.DictReader(io.StringIO("".join(iter_csv(rows)))))

    assert list(records[0]) == list(COLUMNS)
    assert {record["too_fast"] for record in records} == {"true", "false"}
    assert any(record["reasons"] == "style;tone" for record in records)
    assert all(float(record["answer_seconds"]) > 0 for record in records)


def test_jsonl_keeps_text_verbatim(mixed_survey):
    rows = list(iter_rows(export_queryset(survey=mixed_survey, include_unanswered=True)))
    stream = io.StringIO()

    count = write_jsonl(rows, stream)

    parsed = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert count == 4
    assert parsed == rows
    assert "=cmd|' /C calc'!A0" in {row["comment"] for row in parsed}
    assert '=HYPERLINK("x")' in {row["topic"] for row in parsed}


def test_export_rows_filters_too_fast_and_unanswered(mixed_survey):
    def count(**options) -> int:
        return len(list(export_rows(ExportFilter(survey=mixed_survey, **options))))

    assert count() == 2
    assert count(include_too_fast=True) == 3
    assert count(include_unanswered=True) == 3
    assert count(include_too_fast=True, include_unanswered=True) == 4


def test_export_rows_filters_survey(mixed_survey):
    other = make_survey()
    make_topic(other)
    answer_round(new_participant(other), guess="human", prefer="human")

    rows = list(export_rows(ExportFilter(survey=other)))
    everything = list(export_rows(ExportFilter()))

    assert {row["survey"] for row in rows} == {other.slug}
    assert len(rows) == 1
    assert len(everything) == 3


def test_export_rows_filters_served_time():
    survey = make_survey()
    for title in ("One", "Two", "Three"):
        make_topic(survey, title=title)
    participant = new_participant(survey)
    days = [datetime(2025, 6, day, 23, 30, tzinfo=UTC) for day in (1, 2, 3)]
    for served in days:
        response = answer_round(participant, guess="human", prefer="human")
        set_times(response, served=served, seconds=20)

    def served_days(data: dict) -> list[int]:
        form = ExportFilterForm(data={"survey": survey.slug, **data})
        assert form.is_valid(), form.errors
        return [
            datetime.fromisoformat(row["served_at"]).day
            for row in export_rows(form.export_filter())
        ]

    assert served_days({"since": "2025-06-02"}) == [2, 3]
    assert served_days({"until": "2025-06-02"}) == [1, 2]
    assert served_days({"since": "2025-06-02", "until": "2025-06-02"}) == [2]
    assert served_days({"until": "2025-06-02T23:30"}) == [1]
    assert served_days({"since": "2025-06-02T23:30:00", "until": "2025-06-03T23:30:01"}) == [2, 3]


def test_filter_form_rejects_bad_values(mixed_survey):
    cases = [
        ({"since": "yesterday"}, "since"),
        ({"survey": "no-such-survey"}, "survey"),
        ({"since": "2025-06-03", "until": "2025-06-02"}, "__all__"),
    ]
    for data, field in cases:
        form = ExportFilterForm(data=data)

        assert not form.is_valid()
        assert field in form.errors


def test_filter_form_names_unknown_survey():
    form = ExportFilterForm(data={"survey": "no-such-survey"})

    assert not form.is_valid()
    assert form.errors["survey"] == ["No survey has the slug no-such-survey."]


def test_export_command_writes_filtered_jsonl(mixed_survey, tmp_path):
    output = tmp_path / "rows.jsonl"
    stderr = io.StringIO()

    call_command(
        "export_responses",
        "--format=jsonl",
        f"--output={output}",
        f"--survey={mixed_survey.slug}",
        "--include-too-fast",
        "--include-unanswered",
        stderr=stderr,
    )

    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    assert "Wrote 4 response row(s)." in stderr.getvalue()


def test_export_command_leaves_out_too_fast_by_default(mixed_survey, tmp_path):
    output = tmp_path / "rows.csv"

    call_command("export_responses", f"--output={output}", stderr=io.StringIO())

    records = list(csv.DictReader(output.open(encoding="utf-8", newline="")))
    assert len(records) == 2
    assert {record["too_fast"] for record in records} == {"false"}


def test_export_command_rejects_bad_filters(mixed_survey):
    with pytest.raises(CommandError, match="--survey: No survey has the slug nope"):
        call_command("export_responses", "--survey=nope", stderr=io.StringIO())
    with pytest.raises(CommandError, match="--since: Enter a valid date/time"):
        call_command("export_responses", "--since=soon", stderr=io.StringIO())
    with pytest.raises(CommandError, match="must come before its end"):
        call_command(
            "export_responses", "--since=2025-06-03", "--until=2025-06-01", stderr=io.StringIO()
        )
