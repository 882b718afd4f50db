"""Adapter: tell systemd (sd_notify) that a worker is ready, alive, busy or stopping.

The protocol is one datagram to the AF_UNIX socket named in $NOTIFY_SOCKET,
sent with the sdnotify library. Its notifier is made with ``debug=True``, so
that a failed send raises instead of being ignored: a message that matters
for the unit's state (READY=1, STOPPING=1) is sent again, on a new
connection, until systemd takes it (a lost READY=1 would leave the unit
"activating" until its start timeout). Watchdog pings and STATUS= are sent
once; the next one follows soon enough.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable

import sdnotify

log = logging.getLogger(__name__)

# Seconds to keep trying a READY=1 or STOPPING=1 that systemd does not take.
IMPORTANT_RETRY_SECONDS = 60.0
# STATUS= is sent when its text changes, but at most this often.
STATUS_INTERVAL = 1.0


class Notifier:
    """Send READY, WATCHDOG, STATUS, EXTEND_TIMEOUT and STOPPING to systemd; no-op outside it."""

    def __init__(self) -> None:
        self._address = _socket_address(os.environ.get("NOTIFY_SOCKET", ""))
        self._notifier: sdnotify.SystemdNotifier | None = None
        usec = os.environ.get("WATCHDOG_USEC", "")
        watchdog = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else 0.0
        # An idle worker wakes up every half watchdog period to ping, no more often.
        self.watchdog_interval = watchdog / 2
        self._last_ping = 0.0
        self._status_sent = ""
        self._status_wanted: str | Callable[[], str] | None = None
        self._status_time = -STATUS_INTERVAL

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        """Report the worker ready (retried until systemd takes it) with a first STATUS=."""
        self._status_sent, self._status_wanted = status, None
        self._status_time = time.monotonic()
        self._send(f"READY=1\nSTATUS={status}", important=True)

    def status(self, status: str | Callable[[], str]) -> None:
        """Ask for STATUS= to show status, sent by ``flush`` when due; a function is called
        only then (a worker's state may change many times a second)."""
        if self.enabled:
            self._status_wanted = status

    def flush(self) -> float | None:
        """Send a changed STATUS= if the last one is old enough; return seconds until due, or None.

        None means nothing is waiting to be sent.
        """
        if self._status_wanted is None:
            return None
        wait = self._status_time + STATUS_INTERVAL - time.monotonic()
        if wait > 0:
            return wait
        wanted, self._status_wanted = self._status_wanted, None
        text = wanted() if callable(wanted) else wanted
        if text != self._status_sent:
            self._status_sent = text
            self._status_time = time.monotonic()
            self._send(f"STATUS={text}")
        return None

    def ping(self) -> None:
        """Send WATCHDOG=1 at most every half watchdog period. Call from the main loop only."""
        now = time.monotonic()
        if self.watchdog_interval and now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def extend(self, seconds: float) -> None:
        """Push systemd's current timeout (runtime limit or stop timeout) to now + seconds."""
        self._send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1e6)}")

    def stopping(self) -> None:
        self._send("STOPPING=1", important=True)

    def loop_timeout(self, wanted: float | None) -> float | None:
        """Return how long the main loop may block: wanted (None: forever), within the watchdog."""
        if not self.watchdog_interval:
            return wanted
        until_ping = max(0.0, self._last_ping + self.watchdog_interval - time.monotonic())
        return until_ping if wanted is None else min(wanted, until_ping)

    def _send(self, message: str, important: bool = False) -> None:
        if self._address is None:
            return
        # sdnotify sends text as latin-1: these are the message's UTF-8 bytes.
        text = message.encode("utf-8", "backslashreplace").decode("latin-1")
        deadline = time.monotonic() + (IMPORTANT_RETRY_SECONDS if important else 0)
        delay = 0.05
        while True:
            try:
                self._connected().notify(text)
                return
            except OSError as error:
                self._close()
                if time.monotonic() >= deadline:
                    if important:
                        log.error("systemd did not take %r: %s", message.split("\n")[0], error)
                    return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _connected(self) -> sdnotify.SystemdNotifier:
        """Return the connected notifier. Raise OSError if the socket cannot be reached."""
        if self._notifier is None:
            notifier = sdnotify.SystemdNotifier(debug=True)
            # A datagram PID 1 cannot take at once must not hold the worker for long.
            notifier.socket.settimeout(5.0)
            os.set_inheritable(notifier.socket.fileno(), False)
            self._notifier = notifier
        return self._notifier

    def _close(self) -> None:
        if self._notifier is not None:
            self._notifier.socket.close()
            self._notifier = None


def _socket_address(value: str) -> str | bytes | None:
    """Return the socket address of $NOTIFY_SOCKET ('@' is the abstract namespace), or None."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value if value.startswith("/") else None
