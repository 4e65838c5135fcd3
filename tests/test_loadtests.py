"""The Locust scenarios, the load shapes and the benchmark's arithmetic.

Locust monkey-patches the standard library with gevent when it is imported,
which would turn the threads of other tests into greenlets, so this module
switches the patching off first. FastHttpUser talks through gevent's own
sockets, so a simulated user still runs here, in the main greenlet, against
pytest-django's live server in its own thread.
"""

import os

os.environ.setdefault("LOCUST_SKIP_MONKEY_PATCH", "1")

import argparse  # noqa: E402

import numpy  # noqa: E402
import pytest  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.event import Events  # noqa: E402
from locust.util.load_locustfile import is_shape_class  # noqa: E402

from loadtests import locustfile, pages, reconcile, shapes  # noqa: E402
from loadtests.bench_config import BenchError, config_from_env  # noqa: E402
from loadtests.ledger import LEDGER, AnswerLedger  # noqa: E402
from survey.models import Participant, Response  # noqa: E402
from tests.factories import make_survey, make_topic  # noqa: E402


def ticks(shape: shapes.StagedShape, times: list[float]) -> list:
    results = []
    for seconds in times:
        shape.get_run_time = lambda seconds=seconds: seconds
        results.append(shape.tick())
    return results


def test_spike_shape_ramps_holds_and_drops(monkeypatch):
    monkeypatch.setenv("BENCH_USERS", "1000")
    monkeypatch.setenv("BENCH_SPAWN_SECONDS", "60")
    monkeypatch.setenv("BENCH_DURATION", "180")
    monkeypatch.setenv("BENCH_DRAIN_SECONDS", "150")
    shape = shapes.selected_shape("spike")()

    result = ticks(shape, [0, 59.9, 60, 179.9, 180, 329.9, 330])

    ramp = 1000 / 60
    assert result == [
        (1000, ramp),
        (1000, ramp),
        (1000, ramp),
        (1000, ramp),
        (0, 1000.0),
        (0, 1000.0),
        None,
    ]
    assert shape.journeys_per_user == 1


class FakeRunner:
    def __init__(self, user_count: int):
        self.user_count = user_count


def test_spike_shape_ends_when_users_left(monkeypatch):
    monkeypatch.setenv("BENCH_USERS", "10")
    monkeypatch.setenv("BENCH_SPAWN_SECONDS", "10")
    monkeypatch.setenv("BENCH_DURATION", "20")
    shape = shapes.selected_shape("spike")()

    shape.runner = FakeRunner(user_count=4)
    still_leaving = ticks(shape, [5, 25])
    shape.runner = FakeRunner(user_count=0)
    all_gone = ticks(shape, [5, 25])

    assert still_leaving == [(10, 1.0), (0, 10.0)]
    assert all_gone == [(10, 1.0), None]


def test_spike_shape_duration_shorter_than_ramp(monkeypatch):
    monkeypatch.setenv("BENCH_USERS", "300")
    monkeypatch.setenv("BENCH_SPAWN_SECONDS", "60")
    monkeypatch.setenv("BENCH_DURATION", "30")
    monkeypatch.setenv("BENCH_DRAIN_SECONDS", "100")
    shape = shapes.selected_shape("spike")()

    assert ticks(shape, [0, 59, 60, 159, 160]) == [
        (300, 5.0),
        (300, 5.0),
        (0, 300.0),
        (0, 300.0),
        None,
    ]


def test_step_shape_adds_users_up_to_maximum():
    stages = shapes.step_stages(start_users=100, step_users=100, step_seconds=60, max_users=350)

    assert [(stage.end_seconds, stage.users) for stage in stages] == [
        (60, 100),
        (120, 200),
        (180, 300),
        (240, 350),
    ]
    assert {stage.spawn_rate for stage in stages} == {100.0}
    assert shapes.stage_at(stages, 119.9).users == 200
    assert shapes.stage_at(stages, 240) is None


def test_steady_shape_holds_for_the_day(monkeypatch):
    monkeypatch.setenv("STEADY_USERS", "40")
    monkeypatch.setenv("STEADY_RAMP_SECONDS", "400")
    monkeypatch.setenv("STEADY_SECONDS", "3600")
    shape = shapes.selected_shape("steady")()

    assert ticks(shape, [0, 399, 400, 3599, 3600]) == [
        (40, 0.1),
        (40, 0.1),
        (40, 0.1),
        (40, 0.1),
        None,
    ]
    assert shape.journeys_per_user == 0


def test_shapes_stay_abstract_until_selected():
    for shape in shapes.SHAPES.values():
        assert not is_shape_class(shape)

    assert is_shape_class(shapes.selected_shape("step"))


def test_shape_rejects_bad_settings(monkeypatch):
    with pytest.raises(ValueError, match="unknown load shape 'burst'"):
        shapes.selected_shape("burst")
    with pytest.raises(ValueError, match="users must be greater than 0"):
        shapes.spike_stages(users=0, spawn_seconds=60, duration_seconds=180)
    monkeypatch.setenv("BENCH_USERS", "many")
    with pytest.raises(ValueError, match="BENCH_USERS='many' is not a number"):
        shapes.selected_shape("spike")()


def test_reconcile_clean_run():
    outcome = reconcile.reconcile(seen_ok={1, 2, 3}, database={1, 2, 3}, sheet=[1, 2, 3])

    assert outcome.lost == 0
    assert outcome.duplicated == 0
    assert outcome.unconfirmed == 0
    assert outcome.clean


def test_reconcile_counts_lost_and_duplicated():
    outcome = reconcile.reconcile(
        seen_ok={1, 2, 3, 4}, database={1, 2, 3, 5}, sheet=[1, 1, 2, 5, 9]
    )

    assert outcome.answers_ok == 4
    assert outcome.answers_db == 4
    assert outcome.sheet_rows == 5
    # Answer 4 never reached the database; answer 3 never reached the sheet.
    assert outcome.lost_in_database == 1
    assert outcome.missing_from_sheet == 1
    assert outcome.lost == 2
    assert outcome.duplicated == 1
    # Answer 5 was stored although no user saw it succeed.
    assert outcome.unconfirmed == 1
    assert outcome.unknown_rows == 1
    assert not outcome.clean


def test_percentile_matches_numpy():
    values = [12.0, 3.5, 40.0, 7.25, 7.25, 100.0, 0.5]

    for fraction in (0, 0.5, 0.95, 0.99, 1):
        assert reconcile.percentile(values, fraction) == pytest.approx(
            numpy.percentile(values, fraction * 100)
        )
    assert reconcile.percentile([], 0.95) is None
    with pytest.raises(ValueError):
        reconcile.percentile(values, 95)


def test_cost_ratio_and_result_line():
    ratio = reconcile.cost_ratio(bare_per_second=900.0, answers_per_second=300.0)
    values = {
        "users": 1000,
        "answers_ok": 4990,
        "answers_db": 4990,
        "sheet_rows": 4990,
        "lost": 0,
        "duplicated": 0,
        "errors": 0,
        "p50_ms": 21.0,
        "p95_ms": 64.0,
        "p99_ms": 120.0,
        "cost_ratio": ratio,
        "mirror_lag_p95_s": None,
    }

    line = reconcile.result_line(values)

    assert ratio == 3.0
    assert reconcile.cost_ratio(bare_per_second=900.0, answers_per_second=0) is None
    assert line == (
        "RESULT users=1000 answers_ok=4990 answers_db=4990 sheet_rows=4990 lost=0 "
        "duplicated=0 errors=0 p50_ms=21.00 p95_ms=64.00 p99_ms=120.00 cost_ratio=3.00 "
        "mirror_lag_p95_s=n/a"
    )
    del values["errors"]
    with pytest.raises(KeyError, match="errors"):
        reconcile.result_line(values)


def test_bench_config_defaults_and_checks():
    config = config_from_env({})

    assert (config.users, config.spawn_seconds, config.duration_seconds) == (1000, 60, 180)
    assert config.database_label == "SQLite"
    assert config_from_env(
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/bench"}
    ).database_url
    with pytest.raises(BenchError, match="not this machine"):
        config_from_env({"DATABASE_URL": "postgres://postgres@db.example.org:5432/bench"})
    with pytest.raises(BenchError, match="BENCH_USERS='lots' is not a number"):
        config_from_env({"BENCH_USERS": "lots"})
    with pytest.raises(BenchError, match="BENCH_SPAWN_SECONDS=0 is too small"):
        config_from_env({"BENCH_SPAWN_SECONDS": "0"})


def test_ledger_counts_each_response_once_and_merges_reports():
    worker = AnswerLedger()
    master = AnswerLedger()

    assert worker.record(7)
    assert not worker.record(7)
    worker.record(8)
    worker.count_journey("finished")
    master.merge_report(worker.take_report())
    master.merge_report(worker.take_report())

    assert master.response_ids == {7, 8}
    assert master.journeys == {"finished": 1}


@pytest.mark.parametrize(
    "user_class",
    [locustfile.PhoneAttendee, locustfile.DoubleTapper, locustfile.KioskAttendee],
)
def test_attendee_has_one_task(user_class):
    # Locust picks among all tasks of a class and its bases at random, so an
    # overridden task method would run the base class's journey now and then.
    assert user_class.tasks == [locustfile.Attendee.take_survey]


class QuickPhone(locustfile.PhoneAttendee):
    consent_seconds = (0, 0)
    reading_seconds = (0, 0)


class QuickDoubleTapper(locustfile.DoubleTapper):
    consent_seconds = (0, 0)
    reading_seconds = (0, 0)


class QuickKiosk(locustfile.KioskAttendee):
    consent_seconds = (0, 0)
    reading_seconds = (0, 0)


def run_journeys(user_class, live_server, slug: str, journeys: int = 1) -> list:
    """Run ``journeys`` journeys of one user and return (name, error) of every failed request."""
    events = Events()
    failures = []
    events.request.add_listener(
        lambda name, exception=None, **kwargs: exception and failures.append((name, exception))
    )
    environment = Environment(
        user_classes=[user_class],
        host=live_server.url,
        events=events,
        parsed_options=argparse.Namespace(survey=slug),
    )
    LEDGER.reset()
    user_class = type(user_class.__name__, (user_class,), {"host": live_server.url})
    user = user_class(environment)
    user.on_start()
    try:
        for _journey in range(journeys):
            user.take_survey()
    finally:
        # Idle keep-alive connections would keep live-server threads, and their
        # database connections, open past the test.
        user.client.client.close()
    return failures


@pytest.fixture
def crowd_survey(transactional_db):
    survey = make_survey(slug="keynote", rounds_per_participant=3)
    for index in range(4):
        make_topic(survey, title=f"Topic {index}")
    return survey


def test_phone_attendee_full_journey(live_server, crowd_survey):
    failures = run_journeys(QuickPhone, live_server, crowd_survey.slug)

    answered = set(Response.objects.answered().values_list("pk", flat=True))
    assert failures == []
    assert LEDGER.journeys == {"finished": 1}
    assert LEDGER.response_ids == answered
    assert len(answered) == 3
    assert Participant.objects.get().channel == "phone"
    assert Participant.objects.get().finished_at is not None


def test_double_tapper_counts_each_answer_once(live_server, crowd_survey):
    failures = run_journeys(QuickDoubleTapper, live_server, crowd_survey.slug)

    assert failures == []
    assert LEDGER.journeys == {"finished": 1}
    assert len(LEDGER.response_ids) == 3
    assert Response.objects.count() == 3
    assert Response.objects.answered().count() == 3


def test_kiosk_serves_two_people_in_a_row(live_server, crowd_survey):
    failures = run_journeys(QuickKiosk, live_server, crowd_survey.slug, journeys=2)

    assert failures == []
    assert LEDGER.journeys == {"finished": 2}
    assert len(LEDGER.response_ids) == 6
    assert list(Participant.objects.values_list("channel", flat=True)) == ["kiosk", "kiosk"]


def test_attendee_reports_closed_survey(live_server, crowd_survey):
    crowd_survey.is_open = False
    crowd_survey.save()

    failures = run_journeys(QuickPhone, live_server, crowd_survey.slug)

    assert [name for name, _error in failures] == ["welcome"]
    assert "HTTP 404" in str(failures[0][1])
    assert LEDGER.journeys == {"abandoned": 1}
    assert LEDGER.response_ids == set()


def test_ballot_parser_rejects_incomplete_round():
    page = (
        '<section id="round"><p>Round 2 of 5</p><form method="post">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="token">'
        '<input type="hidden" name="response" value="41">'
        '<input type="radio" name="guessed_human" value="1">'
        '<input type="radio" name="guessed_human" value="2">'
        '<input type="radio" name="preferred" value="1">'
        '<input type="radio" name="preferred" value="2">'
        "</form></section>"
    )
    complete = page.replace(
        "</form>",
        '<input type="radio" name="guessed_human" value="3">'
        '<input type="radio" name="preferred" value="3"></form>',
    )

    assert pages.ballot(page) is None
    assert pages.ballot(complete) == pages.Ballot(
        response_id=41, post_ids=(1, 2, 3), round_number=2, total_rounds=5, csrf_token="token"
    )
    assert pages.score("<h1>You spotted the human in\n  2 of 5</h1>") == (2, 5)
