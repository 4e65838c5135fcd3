"""Settings of the booth spike benchmark, read from the environment, and its fresh database."""

import logging
import os
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

logger = logging.getLogger("bench")

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


class BenchError(Exception):
    """A setting is invalid or a step failed. The message names it and what to do next."""


@dataclass(frozen=True)
class BenchConfig:
    users: int
    spawn_seconds: float
    duration_seconds: float
    database_url: str
    redis_url: str
    capacity_users: int
    capacity_seconds: float
    # False runs the capacity phase alone, for quick comparisons of server settings.
    spike: bool = True

    @property
    def database_label(self) -> str:
        return "PostgreSQL" if self.database_url else "SQLite"


def _number(environ: dict, name: str, default: float, *, minimum: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise BenchError(f"{name}={text!r} is not a number.") from None
    if value < minimum:
        raise BenchError(f"{name}={text} is too small: use {minimum:g} or more.")
    return value


def config_from_env(environ: dict) -> BenchConfig:
    """Read and check the benchmark settings; raise BenchError naming a bad one."""
    database_url = environ.get("DATABASE_URL", "").strip()
    if database_url:
        parts = urlsplit(database_url)
        if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
            raise BenchError(
                f"DATABASE_URL scheme {parts.scheme!r} is not supported by the benchmark: "
                "use postgres://... or leave it empty for SQLite."
            )
        if (parts.hostname or "") not in LOOPBACK_HOSTS:
            raise BenchError(
                f"DATABASE_URL host {parts.hostname!r} is not this machine: the benchmark "
                "creates and drops a database, so it only uses 127.0.0.1."
            )
    redis_url = environ.get("REDIS_URL", "").strip()
    if redis_url and (urlsplit(redis_url).hostname or "") not in LOOPBACK_HOSTS:
        raise BenchError(f"REDIS_URL host {urlsplit(redis_url).hostname!r} is not 127.0.0.1.")
    return BenchConfig(
        users=int(_number(environ, "BENCH_USERS", 1000, minimum=1)),
        spawn_seconds=_number(environ, "BENCH_SPAWN_SECONDS", 60, minimum=1),
        duration_seconds=_number(environ, "BENCH_DURATION", 180, minimum=1),
        database_url=database_url,
        redis_url=redis_url,
        capacity_users=int(_number(environ, "BENCH_CAPACITY_USERS", 24, minimum=1)),
        capacity_seconds=_number(environ, "BENCH_CAPACITY_SECONDS", 15, minimum=1),
        spike=_flag(environ, "BENCH_SPIKE", default=True),
    )


def _flag(environ: dict, name: str, *, default: bool) -> bool:
    text = environ.get(name, "").strip().lower()
    if not text:
        return default
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise BenchError(f"{name}={text!r} is not a boolean: use 1 or 0.")


class FreshPostgres:
    """A new database beside the one DATABASE_URL names, dropped again on ``drop()``."""

    def __init__(self, url: str):
        import psycopg

        self._psycopg = psycopg
        parts = urlsplit(url)
        base_name = parts.path.lstrip("/") or "postgres"
        self.name = f"{base_name}_bench_{os.getpid()}"
        self._admin_url = url
        self.url = urlunsplit(parts._replace(path="/" + quote(self.name)))
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.name}"')
        logger.info("created database name=%s", self.name)

    def drop(self) -> None:
        with self._psycopg.connect(self._admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        logger.info("dropped database name=%s", self.name)
