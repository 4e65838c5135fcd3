import csv
import io
import json
import re
from datetime import datetime, timedelta
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.utils import timezone

from survey import charts, stats_cache
from survey.assignment import serve_next
from survey.export import COLUMNS, FORMULA_PREFIXES
from survey.models import Response
from survey.responses import record_answer
from survey.results_views import _mirror_failing
from survey.stats import compute_statistics
from tests.factories import make_survey, make_topic
from tests.test_stats import new_participant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_stats_cache():
    stats_cache.clear()
    yield
    stats_cache.clear()


MODELS = ("model-x", "model-y", "model-z")
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
INTEGER_COLUMNS = {
    "response_id",
    "round",
    "topic_id",
    "post_a_id",
    "post_b_id",
    "post_c_id",
    "human_post_id",
    "guessed_human_post_id",
    "preferred_post_id",
    "confidence",
}
BOOLEAN_COLUMNS = {"guessed_correctly", "too_fast"}


def parse_csv_row(record: dict) -> dict:
    """Read one CSV record back into row values, as a researcher would with the data dictionary."""
    row = {}
    for column in COLUMNS:
        text = record[column]
        if column in INTEGER_COLUMNS:
            row[column] = int(text) if text else None
        elif column in BOOLEAN_COLUMNS:
            row[column] = {"true": True, "false": False, "": None}[text]
        elif column == "answer_seconds":
            row[column] = float(text) if text else None
        elif column == "reasons":
            row[column] = text.split(";") if text else []
        elif column in {"comment", "topic"}:
            is_neutralized = text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES)
            row[column] = text[1:] if is_neutralized else text
        else:
            row[column] = text or None
    return row


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("organizer", password="pw-organizer", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def busy_survey():
    """Nine participants with varied answers over three models, one too-fast and one unanswered."""
    survey = make_survey(title="Booth results", rounds_per_participant=3, is_default=True)
    for title in ("Bees", "Autumn", "Trains", "Bread"):
        make_topic(survey, title=title, models=MODELS)
    authors = ("human", *MODELS)
    for index in range(9):
        participant = new_participant(survey, channel=("kiosk", "phone", "web")[index % 3])
        for round_index in range(3):
            response = serve_next(participant)
            shown = [post.author_label for post in response.displayed_posts]
            guess = authors[(index + round_index) % 4]
            prefer = authors[(index * 2 + round_index) % 4]
            guess = guess if guess in shown else "human"
            prefer = prefer if prefer in shown else shown[index % 3]
            if index == 8 and round_index == 2:
                break  # leaves the last comparison unanswered
            seconds = 4 if (index, round_index) == (5, 1) else 20 + index
            by_author = {post.author_label: post for post in response.displayed_posts}
            Response.objects.filter(pk=response.pk).update(
                served_at=timezone.now() - timedelta(seconds=seconds)
            )
            record_answer(
                participant=participant,
                response_id=response.pk,
                guessed_human_id=by_author[guess].pk,
                preferred_id=by_author[prefer].pk,
            )
        serve_next(participant)
    return survey


def test_results_sends_anonymous_to_admin_login(client, busy_survey):
    page = client.get("/results/")

    assert page.status_code == 302
    assert page["Location"] == "/admin/login/?next=/results/"


def test_results_sends_non_staff_to_admin_login(client, busy_survey):
    user = get_user_model().objects.create_user("visitor", password="pw-visitor")
    client.force_login(user)

    page = client.get("/results/?survey=" + busy_survey.slug)
    download = client.get("/results/export/")

    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/?next=/results/")
    assert download.status_code == 302
    assert download["Location"].startswith("/admin/login/")


def test_results_htmx_poll_redirects_to_login(client, busy_survey):
    page = client.get(
        "/results/",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/results/?too_fast=1"},
    )

    assert page.status_code == 200
    assert page["HX-Redirect"] == "/admin/login/?next=%2Fresults%2F%3Ftoo_fast%3D1"
    assert b"live" not in page.content


def test_results_page_for_staff(staff_client, busy_survey):
    page = staff_client.get("/results/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "HX-Request" in page["Vary"]
    assert "no-cache" in page["Cache-Control"]
    assert page.context["survey"] == busy_survey
    assert 'id="live"' in html
    assert 'hx-trigger="results-refresh"' in html
    assert html.count("<svg") >= 8
    assert "Booth results" in html
    assert "Download CSV" in html


def test_results_page_has_no_inline_script_or_style(staff_client, busy_survey):
    html = staff_client.get("/results/").content.decode()

    assert " style=" not in html
    assert "<style" not in html
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag


def test_results_htmx_request_renders_fragment(staff_client, busy_survey):
    page = staff_client.get(f"/results/?survey={busy_survey.slug}", headers={"HX-Request": "true"})

    html = page.content.decode()
    assert page.status_code == 200
    assert html.lstrip().startswith('<div id="live"')
    assert "<html" not in html
    assert "Download CSV" not in html
    assert "<svg" in html


def test_results_survey_picker(staff_client, busy_survey):
    other = make_survey(title="Second event")
    make_topic(other)

    page = staff_client.get(f"/results/?survey={other.slug}")

    html = page.content.decode()
    assert page.context["survey"] == other
    assert f'<option value="{other.slug}" selected>' in html
    assert page.context["stats"].totals.answered == 0


def test_results_unknown_survey_is_404(staff_client, busy_survey):
    assert staff_client.get("/results/?survey=no-such-survey").status_code == 404


def test_results_without_surveys(staff_client):
    page = staff_client.get("/results/")

    assert page.status_code == 200
    assert "No survey yet" in page.content.decode()


def test_results_too_fast_toggle(staff_client, busy_survey):
    default = staff_client.get("/results/").context["stats"]
    included = staff_client.get("/results/?too_fast=1").context["stats"]

    assert default.quality.too_fast == 1
    assert default.totals.counted == 25
    assert included.totals.counted == 26
    assert included.include_too_fast


def test_results_warns_about_unbalanced_positions(staff_client):
    survey = make_survey(rounds_per_participant=1, is_default=True)
    make_topic(survey)
    for _index in range(18):
        participant = new_participant(survey)
        response = serve_next(participant)
        Response.objects.filter(pk=response.pk).update(
            served_at=timezone.now() - timedelta(seconds=30)
        )
        record_answer(
            participant=participant,
            response_id=response.pk,
            guessed_human_id=response.post_a_id,
            preferred_id=response.post_b_id,
        )

    page = staff_client.get("/results/")

    checks = page.context["stats"].positions
    assert [check.unbalanced for check in checks] == [True, True]
    assert "Off balance" in page.content.decode()


def test_page_command_and_csv_agree(staff_client, busy_survey):
    page_stats = staff_client.get("/results/").context["stats"]
    output = io.StringIO()
    call_command("survey_stats", f"--survey={busy_survey.slug}", "--json", stdout=output)
    download = staff_client.get(
        "/results/export/",
        {"survey": busy_survey.slug, "include_unanswered": "on", "include_too_fast": "on"},
    )
    csv_rows = [
        parse_csv_row(record)
        for record in csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode()))
    ]

    from_csv = compute_statistics(
        csv_rows, survey=busy_survey.slug, min_answer_seconds=busy_survey.min_answer_seconds
    )
    from_command = json.loads(output.getvalue())
    from_page = json.loads(json.dumps(page_stats.as_dict()))

    assert len(csv_rows) == 27
    assert from_command == from_page
    assert json.loads(json.dumps(from_csv.as_dict())) == from_page
    assert from_page["totals"]["participants_started"] == 9
    assert from_page["totals"]["participants_finished"] == 8


def test_default_csv_reproduces_statistics(staff_client, busy_survey):
    page_stats = staff_client.get("/results/").context["stats"]
    download = staff_client.get("/results/export/", {"survey": busy_survey.slug})
    rows = [
        parse_csv_row(record)
        for record in csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode()))
    ]

    from_csv = compute_statistics(rows)

    assert len(rows) == page_stats.totals.counted
    assert from_csv.detection == page_stats.detection
    assert from_csv.preference == page_stats.preference
    assert from_csv.positions == page_stats.positions
    assert from_csv.taken_for_human == page_stats.taken_for_human


def test_page_shows_computed_numbers(staff_client, busy_survey):
    page = staff_client.get("/results/")

    stats = page.context["stats"]
    html = page.content.decode()
    share = stats.detection.overall.share
    assert f"{share * 100:.1f}%" in html
    for author in stats.preference.authors:
        assert f"{author.strength:.3f}" in html


def test_export_csv_download_streams(staff_client, busy_survey):
    Response.objects.filter(topic__survey=busy_survey).answered().update(comment="=2+2")

    download = staff_client.get("/results/export/", {"survey": busy_survey.slug, "format": "csv"})

    assert isinstance(download, StreamingHttpResponse)
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        rf'attachment; filename="responses-{busy_survey.slug}-\d{{8}}-\d{{6}}\.csv"',
        download["Content-Disposition"],
    )
    records = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(records) == 25
    assert {record["comment"] for record in records} == {"'=2+2"}


def test_export_jsonl_download(staff_client, busy_survey):
    download = staff_client.get("/results/export/", {"format": "jsonl", "include_unanswered": "on"})

    rows = [json.loads(line) for line in b"".join(download.streaming_content).splitlines()]
    assert download["Content-Type"] == "application/jsonl; charset=utf-8"
    assert len(rows) == 26
    assert sum(1 for row in rows if row["answered_at"] is None) == 1


def test_export_date_filter(staff_client, busy_survey):
    today = timezone.now().date()

    kept = staff_client.get(
        "/results/export/", {"since": today.isoformat(), "until": today.isoformat()}
    )
    dropped = staff_client.get(
        "/results/export/", {"until": (today - timedelta(days=1)).isoformat()}
    )

    assert len(b"".join(kept.streaming_content).splitlines()) == 26
    assert len(b"".join(dropped.streaming_content).splitlines()) == 1


def test_export_rejects_bad_input(staff_client, busy_survey):
    bad_date = staff_client.get("/results/export/", {"since": "tomorrow"})
    bad_format = staff_client.get("/results/export/", {"format": "xlsx"})
    bad_survey = staff_client.get("/results/export/", {"survey": "nope"})

    assert bad_date.status_code == 400
    assert "Enter a valid date/time" in bad_date.content.decode()
    assert bad_format.status_code == 400
    assert "Invalid export format xlsx: use csv or jsonl." in bad_format.content.decode()
    assert bad_survey.status_code == 400
    assert "No survey has the slug nope" in bad_survey.content.decode()


def test_mirror_panel_shows_status(staff_client, busy_survey):
    page = staff_client.get("/results/")

    mirror = page.context["mirror"]
    assert mirror is not None
    assert {"configured", "pending", "last_success_at", "last_error", "lag_seconds_p95"} <= set(
        mirror
    )
    assert "Google Sheets mirror" in page.content.decode()


def test_mirror_failing_compares_times():
    earlier = datetime(2025, 6, 1, 9, 0)
    later = earlier + timedelta(minutes=1)

    assert not _mirror_failing(None)
    assert not _mirror_failing({"last_error_at": None, "last_success_at": later})
    assert _mirror_failing({"last_error_at": earlier, "last_success_at": None})
    assert _mirror_failing({"last_error_at": later, "last_success_at": earlier})
    assert not _mirror_failing({"last_error_at": earlier, "last_success_at": later})


def test_survey_stats_command_prints_text(busy_survey):
    output = io.StringIO()

    call_command("survey_stats", stdout=output)

    text = output.getvalue()
    assert f"Survey {busy_survey.slug}: Booth results" in text
    assert "Participants: 9 started, 8 finished" in text
    assert "Responses: 27 served, 26 answered, 25 counted" in text
    assert "Picked the human post (chance 33.3%)" in text
    assert "Display position picked" in text


def test_survey_stats_command_rejects_bad_options(busy_survey):
    with pytest.raises(CommandError, match="Survey 'nope' not found"):
        call_command("survey_stats", "--survey=nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--bootstrap must be between 0 and 2000"):
        call_command("survey_stats", "--bootstrap=5000", stdout=io.StringIO())


# SVG charts


def parse_svg(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def find_all(root: ElementTree.Element, tag: str) -> list[ElementTree.Element]:
    return root.findall(f".//{{{SVG_NAMESPACE}}}{tag}")


def test_bar_chart_scales_bars_and_intervals():
    plot_width = charts.WIDTH - charts.LABEL_WIDTH - charts.NOTE_WIDTH

    root = parse_svg(
        charts.bar_chart(
            [charts.Bar(label="human", value=0.5, low=0.25, high=0.75, note="50%")],
            description="Shares",
        )
    )

    (bar,) = [rect for rect in find_all(root, "rect") if "chart-bar" in rect.get("class")]
    assert float(bar.get("x")) == charts.LABEL_WIDTH
    assert float(bar.get("width")) == pytest.approx(plot_width * 0.5, abs=0.1)
    (interval,) = [path for path in find_all(root, "path") if path.get("class") == "chart-interval"]
    low_x = charts.LABEL_WIDTH + plot_width * 0.25
    high_x = charts.LABEL_WIDTH + plot_width * 0.75
    assert interval.get("d").startswith(f"M{low_x:g} ")
    assert f"H{high_x:g}" in interval.get("d")
    assert root.get("aria-label") == "Shares"
    assert root.get("role") == "img"


def test_bar_chart_reference_line_and_clipping():
    plot_width = charts.WIDTH - charts.LABEL_WIDTH - charts.NOTE_WIDTH

    root = parse_svg(
        charts.bar_chart(
            [charts.Bar(label="over", value=1.5), charts.Bar(label="empty", value=None)],
            description="Clipped",
            reference=1 / 3,
            reference_label="chance",
        )
    )

    bars = [rect for rect in find_all(root, "rect") if "chart-bar" in rect.get("class")]
    assert len(bars) == 1
    assert float(bars[0].get("width")) == pytest.approx(plot_width)
    (reference,) = [
        line for line in find_all(root, "line") if line.get("class") == "chart-reference"
    ]
    assert float(reference.get("x1")) == pytest.approx(charts.LABEL_WIDTH + plot_width / 3, abs=0.1)


def test_bar_chart_escapes_labels():
    svg = charts.bar_chart(
        [charts.Bar(label='<script>"&', value=0.2, note="<b>")], description="a<b"
    )

    root = parse_svg(svg)

    assert "<script>" not in svg
    labels = [text.text for text in find_all(root, "text") if text.get("class") == "chart-label"]
    assert labels == ['<script>"&']
    assert root.get("aria-label") == "a<b"


def test_bar_chart_shortens_long_labels():
    root = parse_svg(charts.bar_chart([charts.Bar(label="x" * 40, value=0.1)], description="d"))

    (label,) = [text.text for text in find_all(root, "text") if text.get("class") == "chart-label"]
    assert label.endswith("…")
    assert len(label) * charts.CHARACTER_WIDTH <= charts.LABEL_WIDTH


def test_bar_chart_without_bars():
    root = parse_svg(charts.bar_chart([], description="Nothing yet"))

    assert [text.text for text in find_all(root, "text") if text.get("class") == "chart-empty"] == [
        "–"
    ]


def test_bar_chart_rejects_bad_scale():
    with pytest.raises(ValueError, match="max_value must be positive"):
        charts.bar_chart([], description="d", max_value=0)
    with pytest.raises(ValueError, match="width must exceed 400"):
        charts.bar_chart([], description="d", width=300)


def test_bar_chart_wider_view_box_widens_plot():
    root = parse_svg(
        charts.bar_chart([charts.Bar(label="a", value=1.0)], description="d", width=1600)
    )

    (bar,) = [rect for rect in find_all(root, "rect") if "chart-bar" in rect.get("class")]
    assert root.get("viewBox").startswith("0 0 1600 ")
    assert float(bar.get("width")) == 1600 - charts.LABEL_WIDTH - charts.NOTE_WIDTH


def test_column_chart_heights_and_labels():
    columns = [charts.Column(label=f"09:{minute:02d}", value=minute % 4) for minute in range(12)]

    root = parse_svg(charts.column_chart(columns, description="Answers per minute"))

    rects = [rect for rect in find_all(root, "rect") if rect.get("class") == "chart-column"]
    heights = [float(rect.get("height")) for rect in rects]
    plot_height = charts.COLUMN_CHART_HEIGHT - charts.AXIS_HEIGHT - 10
    # The peak of 3 answers per minute rounds up to an axis of 5.
    assert heights[3] == pytest.approx(plot_height * 3 / 5, abs=0.1)
    assert heights[0] == 0
    ticks = [text.text for text in find_all(root, "text") if text.text and ":" in text.text]
    assert ticks == ["09:00", "09:02", "09:04", "09:06", "09:08", "09:10"]


def test_nice_ceiling():
    assert charts.nice_ceiling(0) == 1
    assert charts.nice_ceiling(3) == 5
    assert charts.nice_ceiling(0.42) == 0.5
    assert charts.nice_ceiling(20) == 20
    assert charts.nice_ceiling(21) == 25
    assert charts.nice_ceiling(730) == 1000
