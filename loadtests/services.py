"""The processes the benchmark starts, each logging to its own file, all stopped on exit."""

import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Seconds a process gets to stop after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 25


class ServiceFailed(Exception):
    """A process exited early or a setup command failed; the message has its log tail."""


def free_port() -> int:
    """Return a TCP port on the loopback address that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Services:
    """Runs commands and long-lived processes with one environment and one log folder.

    Each process starts in its own session, so a Ctrl-C in the terminal reaches
    only the benchmark, which then stops the processes in reverse order of
    start: SIGTERM to the process group, then SIGKILL after a grace period.
    """

    def __init__(self, *, log_dir: Path, env: dict[str, str], cwd: Path):
        self.log_dir = log_dir
        self.env = env
        self.cwd = cwd
        self.processes: dict[str, subprocess.Popen] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def run(self, name: str, args: Sequence[str], *, timeout: float = 600) -> None:
        """Run a setup command to completion; raise ServiceFailed when it fails."""
        log = self.log_path(name)
        with log.open("ab") as output:
            process = subprocess.Popen(
                list(args),
                cwd=self.cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.processes[name] = process
            try:
                code = process.wait(timeout=timeout)
            finally:
                self.stop(name)
        if code != 0:
            raise ServiceFailed(f"{name} exited with status {code}:\n{log_tail(log)}")

    def start(self, name: str, args: Sequence[str], env: dict[str, str] | None = None):
        """Start a long-lived process that logs to ``<log_dir>/<name>.log``."""
        output = self.log_path(name).open("ab")
        process = subprocess.Popen(
            list(args),
            cwd=self.cwd,
            env=env or self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        self.processes[name] = process
        logger.info("started name=%s pid=%s", name, process.pid)
        return process

    def check_running(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            raise ServiceFailed(
                f"{name} exited with status {process.returncode}:\n{log_tail(self.log_path(name))}"
            )

    def wait_for_http(self, name: str, url: str, *, timeout: float = 60) -> None:
        """Wait until ``url`` returns 200 while the process ``name`` keeps running."""
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            self.check_running(name)
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
                    last_error = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as error:
                last_error = str(error)
            time.sleep(0.25)
        raise ServiceFailed(f"{name} did not answer {url} within {timeout} s: {last_error}")

    def stop(self, name: str) -> int | None:
        """Stop the process ``name`` and its children; return its exit status."""
        process = self.processes.pop(name, None)
        if process is None:
            return None
        if process.poll() is None:
            self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "killing name=%s pid=%s after %s s", name, process.pid, STOP_GRACE_SECONDS
                )
                self._signal_group(process, signal.SIGKILL)
                process.wait()
        # The group may keep children whose parent has exited, such as gunicorn workers.
        self._signal_group(process, signal.SIGKILL)
        logger.info("stopped name=%s pid=%s status=%s", name, process.pid, process.returncode)
        return process.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    @staticmethod
    def _signal_group(process: subprocess.Popen, signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass
