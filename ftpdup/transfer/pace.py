"""Moving bytes without going silent: sliced socket waits, stall detection, progress calls.

A worker feeds systemd's watchdog from its main loop, and a transfer runs
inside that loop: a multi-GB upload over a slow link must not look like a
hung worker, and a link that stops moving must fail instead of hanging.
Every wait here lasts at most SLICE seconds; after each one the progress
callback runs (it pings the watchdog, and may raise Interrupted), and a wait
in which no byte moved for ``stall_timeout`` seconds raises ``socket.timeout``.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Callable

SLICE = 1.0


class Pace:
    """Sliced sends and waits on one transfer's sockets, reporting bytes sent to progress."""

    def __init__(self, stall_timeout: float, progress: Callable[[int], None] | None) -> None:
        self.stall_timeout = stall_timeout
        self.progress = progress
        self.sent = 0
        self._moved = time.monotonic()

    def start(self, offset: int = 0) -> None:
        """Begin counting at offset bytes (already at the destination)."""
        self.sent = offset
        self._moved = time.monotonic()

    def _waited(self) -> None:
        """Call progress after a slice without movement; raise socket.timeout on a stall."""
        if self.progress is not None:
            self.progress(self.sent)
        if time.monotonic() - self._moved > self.stall_timeout:
            raise socket.timeout(f"no byte moved for {self.stall_timeout:.0f} s")

    def send_all(self, sock: socket.socket, data: bytes) -> None:
        """Send all of data on sock (plain or TLS), in slices, then report progress."""
        view = memoryview(data)
        previous = sock.gettimeout()
        if previous != SLICE:
            sock.settimeout(SLICE)
        try:
            while view:
                try:
                    count = sock.send(view)
                except socket.timeout:
                    self._waited()
                    continue
                view = view[count:]
                self.sent += count
                self._moved = time.monotonic()
        finally:
            if previous != SLICE:
                sock.settimeout(previous)
        if self.progress is not None:
            self.progress(self.sent)

    def send_now(self, sock: socket.socket, data: bytes) -> memoryview:
        """Send what a non-blocking sock takes of data at once; return the rest."""
        view = memoryview(data)
        while view:
            try:
                count = sock.send(view)
            except BlockingIOError:
                break
            view = view[count:]
            self.sent += count
            self._moved = time.monotonic()
        return view

    def wait_readable(self, sock: socket.socket) -> None:
        """Return once sock has something to read (an answer), waiting in slices."""
        self._moved = time.monotonic()
        while True:
            pending = getattr(sock, "pending", None)
            if pending is not None and pending():
                return
            readable, _, _ = select.select([sock], [], [], SLICE)
            if readable:
                return
            self._waited()
