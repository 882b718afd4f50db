"""Several kept-open sessions to one subscriber (a subscriber's ``connections: N``).

Each session is a thread with its own Transfer. The carrier's main thread
keeps every decision: it hands each file to one session (never a file that
is already handed out), up to PREFETCH files ahead so that no session waits
for the main thread between two files, and settles each outcome when the
session reports it through a wake-up pipe; systemd's watchdog stays fed from
the main loop.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from typing import Callable

from ftpdup.transfer import Transfer

# attempt(transfer, name, more) -> outcome, run in a session's thread; more: the session
# holds its next file already.
Attempt = Callable[[Transfer, str, bool], object]
# Files handed to one session at a time: the one moving and the next.
PREFETCH = 2


class Session(threading.Thread):
    """One thread, one Transfer: sends the files it is handed, one at a time."""

    def __init__(self, transfer: Transfer, attempt: Attempt, finished: queue.SimpleQueue,
                 wake: int) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.transfer = transfer
        self.attempt = attempt
        self.finished = finished
        self.wake = wake
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.handed = 0  # files handed to it and not reported yet (main thread's count)

    def run(self) -> None:
        while True:
            job = self.inbox.get()
            if job is None:
                break
            mtime_ns, name = job
            outcome = self.attempt(self.transfer, name, not self.inbox.empty())
            self.finished.put((self, mtime_ns, name, outcome))
            with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
                os.write(self.wake, b"!")
        self.transfer.close()


class Sessions:
    """N sessions and the pipe that wakes the main loop when one of them is done."""

    def __init__(self, transfers: list[Transfer], attempt: Attempt) -> None:
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.finished: queue.SimpleQueue = queue.SimpleQueue()
        self.sessions = [
            Session(transfer, attempt, self.finished, self.wake_write) for transfer in transfers
        ]
        self.handed_out: set[str] = set()
        for session in self.sessions:
            session.start()

    def idle(self) -> bool:
        """Return True if a session may take one more file."""
        return any(session.handed < PREFETCH for session in self.sessions)

    def dispatch(self, mtime_ns: int, name: str) -> None:
        """Hand name to the session with the fewest files (one must have room)."""
        session = min(self.sessions, key=lambda session: session.handed)
        session.handed += 1
        self.handed_out.add(name)
        session.inbox.put((mtime_ns, name))

    def done(self) -> list[tuple[int, str, object]]:
        """Return (mtime_ns, name, outcome) of every attempt finished since the last call."""
        results = []
        while True:
            try:
                session, mtime_ns, name, outcome = self.finished.get_nowait()
            except queue.Empty:
                return results
            session.handed -= 1
            self.handed_out.discard(name)
            results.append((mtime_ns, name, outcome))

    def close(self, timeout: float) -> None:
        """Let every session finish its file (within timeout), then end the threads."""
        for session in self.sessions:
            session.inbox.put(None)
        for session in self.sessions:
            session.join(timeout)
        if any(session.is_alive() for session in self.sessions):
            return  # a session may still write to the pipe
        for descriptor in (self.wake_read, self.wake_write):
            os.close(descriptor)
