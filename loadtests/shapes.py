"""Load shapes for the booth survey: a keynote spike, a steady day, and a step test.

Each shape is a list of stages. A stage holds until ``end_seconds`` of run time
and asks Locust for ``users`` simulated users, started or stopped at
``spawn_rate`` users per second. After the last stage the test stops.

Locust runs the first shape class it finds in a locustfile, so the shape
classes here are abstract and the locustfile exposes the one that the
``LOCUST_SHAPE`` environment variable names (``spike``, ``steady`` or ``step``).
Their sizes come from environment variables, read when the shape is created:

======================  =========  ==============================================
variable                default    meaning
======================  =========  ==============================================
BENCH_USERS             1000       spike: peak number of users
BENCH_SPAWN_SECONDS     60         spike: seconds to start them all
BENCH_DURATION          180        spike: seconds from the start to the drop
BENCH_DRAIN_SECONDS     150        spike: at most this long after the drop, the
                                   users still in a survey finish it
STEADY_USERS            40         steady: users at the booth at any time
STEADY_RAMP_SECONDS     300        steady: seconds to reach them
STEADY_SECONDS          28800      steady: seconds the day lasts (8 hours)
STEP_START_USERS        100        step: users in the first step
STEP_USERS              100        step: users added by every further step
STEP_SECONDS            60         step: seconds each step holds
STEP_MAX_USERS          2000       step: users in the last step
======================  =========  ==============================================
"""

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from locust import LoadTestShape


@dataclass(frozen=True)
class Stage:
    """One stage of a load shape.

    ``end_seconds`` is the run time in seconds at which the stage ends,
    ``users`` the number of simulated users it asks for, and ``spawn_rate`` the
    users per second that Locust starts or stops to get there.
    """

    end_seconds: float
    users: int
    spawn_rate: float


def stage_at(stages: Sequence[Stage], run_time: float) -> Stage | None:
    """Return the stage in force ``run_time`` seconds after the start, or None after the last."""
    for stage in stages:
        if run_time < stage.end_seconds:
            return stage
    return None


def spike_stages(
    *, users: int, spawn_seconds: float, duration_seconds: float, drain_seconds: float = 150
) -> list[Stage]:
    """Return the stages of a keynote spike: ramp, hold, drop.

    ``users`` arrive evenly over ``spawn_seconds`` and stay until
    ``duration_seconds`` after the start. Then Locust is asked for 0 users for
    up to ``drain_seconds``, in which the users still in a survey finish it,
    provided Locust runs with a ``--stop-timeout`` at least as long.
    """
    _require_positive(users=users, spawn_seconds=spawn_seconds, drain_seconds=drain_seconds)
    duration_seconds = max(duration_seconds, spawn_seconds)
    rate = users / spawn_seconds
    stages = [Stage(end_seconds=spawn_seconds, users=users, spawn_rate=rate)]
    if duration_seconds > spawn_seconds:
        stages.append(Stage(end_seconds=duration_seconds, users=users, spawn_rate=rate))
    stages.append(
        Stage(end_seconds=duration_seconds + drain_seconds, users=0, spawn_rate=float(users))
    )
    return stages


def steady_stages(*, users: int, ramp_seconds: float, duration_seconds: float) -> list[Stage]:
    """Return the stages of a steady day: reach ``users`` over ``ramp_seconds``, hold, stop."""
    _require_positive(users=users, ramp_seconds=ramp_seconds)
    duration_seconds = max(duration_seconds, ramp_seconds)
    rate = users / ramp_seconds
    return [
        Stage(end_seconds=ramp_seconds, users=users, spawn_rate=rate),
        Stage(end_seconds=duration_seconds, users=users, spawn_rate=rate),
    ]


def step_stages(
    *, start_users: int, step_users: int, step_seconds: float, max_users: int
) -> list[Stage]:
    """Return the stages of a step test that adds ``step_users`` every ``step_seconds``.

    Each step starts its new users within one second and then holds, so the
    latency of every step can be read off the Locust charts or the CSV
    history. The knee is the first step whose p95 rises while the requests
    per second stop rising.
    """
    _require_positive(
        start_users=start_users,
        step_users=step_users,
        step_seconds=step_seconds,
        max_users=max_users,
    )
    steps = 1 + max(0, math.ceil((max_users - start_users) / step_users))
    stages = []
    for index in range(steps):
        users = min(start_users + index * step_users, max_users)
        stages.append(
            Stage(
                end_seconds=(index + 1) * step_seconds,
                users=users,
                spawn_rate=float(max(step_users, start_users)),
            )
        )
    return stages


def _require_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be greater than 0, got {value}")


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None


class StagedShape(LoadTestShape):
    """A shape that follows ``self.stages``; subclasses build them in ``__init__``."""

    abstract = True
    stages: list[Stage] = []
    # Journeys each phone attendee takes before leaving; 0 means that the
    # simulated phone is handed to the next attendee after every journey.
    journeys_per_user = 0

    def tick(self) -> tuple[int, float] | None:
        stage = stage_at(self.stages, self.get_run_time())
        if stage is None:
            return None
        # A drop stage ends as soon as the last user has stopped, not before:
        # in a distributed run (Locust 2.47) the users still in a journey were
        # killed when the shape ended, whatever the --stop-timeout.
        draining = stage.users == 0 and stage is not self.stages[0]
        if draining and self.runner is not None and self.get_current_user_count() == 0:
            return None
        return stage.users, stage.spawn_rate


class BoothSpike(StagedShape):
    """A keynote ends: ``BENCH_USERS`` attendees arrive within ``BENCH_SPAWN_SECONDS``.

    Every phone user is one attendee who takes the survey once and then puts
    the phone away, so the run counts exactly one journey per attendee.
    """

    abstract = True
    journeys_per_user = 1

    def __init__(self):
        super().__init__()
        self.stages = spike_stages(
            users=int(_env_number("BENCH_USERS", 1000)),
            spawn_seconds=_env_number("BENCH_SPAWN_SECONDS", 60),
            duration_seconds=_env_number("BENCH_DURATION", 180),
            drain_seconds=_env_number("BENCH_DRAIN_SECONDS", 150),
        )


class SteadyDay(StagedShape):
    """An ordinary conference day: about ``STEADY_USERS`` people at the booth at any time.

    A user hands the phone to the next attendee after each journey.
    """

    abstract = True
    journeys_per_user = 0

    def __init__(self):
        super().__init__()
        self.stages = steady_stages(
            users=int(_env_number("STEADY_USERS", 40)),
            ramp_seconds=_env_number("STEADY_RAMP_SECONDS", 300),
            duration_seconds=_env_number("STEADY_SECONDS", 8 * 60 * 60),
        )


class StepLoad(StagedShape):
    """More users every ``STEP_SECONDS``, up to ``STEP_MAX_USERS``, to find the knee."""

    abstract = True
    journeys_per_user = 0

    def __init__(self):
        super().__init__()
        self.stages = step_stages(
            start_users=int(_env_number("STEP_START_USERS", 100)),
            step_users=int(_env_number("STEP_USERS", 100)),
            step_seconds=_env_number("STEP_SECONDS", 60),
            max_users=int(_env_number("STEP_MAX_USERS", 2000)),
        )


SHAPES = {"spike": BoothSpike, "steady": SteadyDay, "step": StepLoad}


def selected_shape(name: str) -> type[StagedShape]:
    """Return a runnable copy of the shape that ``name`` (spike, steady or step) names."""
    try:
        shape = SHAPES[name]
    except KeyError:
        raise ValueError(
            f"unknown load shape {name!r}: use one of {', '.join(sorted(SHAPES))}"
        ) from None
    return type(shape.__name__, (shape,), {"abstract": False, "__doc__": shape.__doc__})
