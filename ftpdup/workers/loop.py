"""The main loop shared by the workers: watch a directory, do work, keep systemd informed.

Idle means idle: the loop sleeps in poll() until an inotify event, a signal,
the next piece of timed work (a retry), a pending STATUS= update, or the
next watchdog ping (every half watchdog period) is due.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time

from ftpdup.notify import Notifier
from ftpdup.status import StatusFile
from ftpdup.watcher import DirectoryWatcher

log = logging.getLogger(__name__)


class Worker:
    """Base of the sprinkler and the carrier. Subclasses fill in the hooks below."""

    directory: str

    def __init__(self, status_path: str = "") -> None:
        self.stopping = False
        self.stop_requested = 0.0
        self.notifier = Notifier()
        self.report = StatusFile(status_path)
        # More descriptors whose data wakes the loop up (threads that finished work).
        self.wake_fds: list[int] = []
        # Descriptors that wake the loop up and that the worker reads itself in step().
        self.watch_fds: list[int] = []

    def prepare(self) -> None:
        """Create what the worker needs before it starts watching."""

    def rescan(self) -> None:
        """Queue every file present (at start, and after lost inotify events)."""

    def on_names(self, names: list[str]) -> None:
        """Queue the files inotify reported complete."""

    def step(self) -> float | None:
        """Do the work that is due; return seconds until more is due (0: now), None: no timer."""
        return None

    def status(self) -> str:
        """Return a short human summary for systemd's STATUS= (no clock in it: it is resent
        each time it changes)."""
        return ""

    def snapshot(self) -> dict:
        """Return what the status file says of this worker (absolute times only)."""
        return {}

    def signature(self) -> object:
        """Return something cheap that changes whenever the status or the snapshot would."""
        return None

    def finish(self) -> None:
        """Release connections at exit."""

    def _on_signal(self, signum: int, _frame) -> None:
        if not self.stopping:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop_requested = time.monotonic()
        self.stopping = True

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the process exit code."""
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        notifier = self.notifier
        self.prepare()
        watcher = DirectoryWatcher(self.directory, [wake_read, *self.wake_fds], self.watch_fds)
        try:
            self.rescan()
            notifier.ready(self.status())
            shown = self.signature()
            self.report.changed(shown)
            while not self.stopping:
                due = self.step()
                notifier.ping()
                signature = self.signature()
                if signature != shown:
                    shown = signature
                    notifier.status(self.status)
                    self.report.changed(signature)
                report_due = _earliest(notifier.flush(), self.report.flush(self.snapshot))
                if self.stopping:
                    break
                names, overflow = watcher.wait(notifier.loop_timeout(_earliest(due, report_due)))
                if overflow:
                    log.warning("inotify queue overflowed: rescanning %s", self.directory)
                    self.rescan()
                if names:
                    self.on_names(names)
            notifier.stopping()
        finally:
            watcher.close()
            self.finish()
            self.report.changed(self.signature())
            self.report.flush(self.snapshot, force=True)
            signal.set_wakeup_fd(-1)
            for descriptor in (wake_read, wake_write):
                with contextlib.suppress(OSError):
                    os.close(descriptor)
        return 0


def _earliest(*delays: float | None) -> float | None:
    """Return the smallest of the delays that are not None, or None."""
    present = [delay for delay in delays if delay is not None]
    return max(0.0, min(present)) if present else None


def clock(timestamp: float) -> str:
    """Return 'HH:MM:SS' (local time) of a time.time() timestamp, or 'never' for 0."""
    if not timestamp:
        return "never"
    return time.strftime("%H:%M:%S", time.localtime(timestamp))
