"""The main loop shared by the workers: watch a directory, do work, keep systemd informed."""

from __future__ import annotations

import logging
import signal
import time

from ftpdup.notify import Notifier
from ftpdup.watcher import DirectoryWatcher

log = logging.getLogger(__name__)

MAX_WAIT = 1.0


class Worker:
    """Base of the sprinkler and the carrier. Subclasses fill in the hooks below."""

    directory: str

    def __init__(self) -> None:
        self.stopping = False

    def prepare(self) -> None:
        """Create what the worker needs before it starts watching."""

    def rescan(self) -> None:
        """Queue every file present (at start, and after lost inotify events)."""

    def on_names(self, names: list[str]) -> None:
        """Queue the files inotify reported complete."""

    def step(self) -> float:
        """Do the work that is due; return how long the loop may wait for events (s)."""
        return MAX_WAIT

    def status(self) -> str:
        """Return a short human summary for systemd's STATUS=."""
        return ""

    def finish(self) -> None:
        """Release connections at exit."""

    def _on_signal(self, signum: int, _frame) -> None:
        log.info("received %s, stopping after the file in flight", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the process exit code."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        notifier = Notifier()
        self.prepare()
        watcher = DirectoryWatcher(self.directory)
        try:
            self.rescan()
            notifier.ready(self.status())
            while not self.stopping:
                wait = min(self.step(), MAX_WAIT)
                notifier.ping()
                if self.stopping:
                    break
                names, overflow = watcher.wait(notifier.loop_timeout(max(wait, 0.0)))
                if overflow:
                    log.warning("inotify queue overflowed: rescanning %s", self.directory)
                    self.rescan()
                if names:
                    self.on_names(names)
                notifier.ping()
                notifier.status(self.status())
            notifier.stopping()
        finally:
            watcher.close()
            self.finish()
        return 0


def ago(timestamp: float) -> str:
    """Return 'N s ago' for a time.monotonic() timestamp, or 'never' for 0."""
    if not timestamp:
        return "never"
    return f"{time.monotonic() - timestamp:.0f} s ago"
