"""Adapter: tell systemd (sd_notify) that a worker is ready, alive, busy or stopping."""

from __future__ import annotations

import os
import time

import sdnotify


class Notifier:
    """Send READY, WATCHDOG, STATUS and STOPPING to systemd; no-op outside systemd."""

    def __init__(self) -> None:
        self._notifier = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        usec = os.environ.get("WATCHDOG_USEC", "")
        watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else 0.0
        self.watchdog_interval = watchdog / 3 if watchdog else 0.0
        self._last_ping = 0.0
        self._last_status = ""

    def _send(self, text: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(text)

    def ready(self, status: str) -> None:
        self._last_status = status
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        """Update STATUS= if it changed."""
        if status != self._last_status:
            self._last_status = status
            self._send(f"STATUS={status}")

    def ping(self) -> None:
        """Send WATCHDOG=1 at most every third of the watchdog period. Call from the main loop."""
        now = time.monotonic()
        if self.watchdog_interval and now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    def loop_timeout(self, wanted: float) -> float:
        """Return how long the main loop may block: wanted, shortened to keep pinging."""
        return min(wanted, self.watchdog_interval) if self.watchdog_interval else wanted
