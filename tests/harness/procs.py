"""Process and port helpers shared by the harness pieces."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from typing import Callable


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_port_run(count: int) -> int:
    """Return the first of count consecutive free TCP and UDP ports on 127.0.0.1.

    They are taken below the kernel's ephemeral range (32768 and up), where
    closed connections waiting out TIME_WAIT would leave holes.
    """
    for _ in range(200):
        first = random.randrange(10000, 32000 - count)
        if all(_port_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no run of {count} free ports")


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll condition until it returns a true value (returned); raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Return True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, argv: list[str], log_path: str, env: dict | None = None) -> None:
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the process group, wait for it, kill it if it lingers; return the exit code."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
            except ProcessLookupError:
                pass
        self._log.close()
        return self.popen.returncode

    def kill(self) -> int | None:
        """Kill the process group at once (a crash)."""
        return self.stop(signal.SIGKILL)

    def output(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
