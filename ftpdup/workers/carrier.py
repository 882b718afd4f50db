"""The carrier: deliver each file of its spool to one target, oldest first, then delete it.

Two kinds of failure are kept apart. When the server answers about one file
(a name it refuses, a quota too small for it), only that file waits, with
its own delay doubling from 1 s up to ``retry_max_delay``, while the files
behind it go on. When the subscriber fails (no connection, login refused, a
connection dropped), the whole carrier pauses for such a delay; the file
that was being sent waits with its own delay too, and the next try is made
with another file: a server that drops the connection on one name only
cannot hold back the others. A file
that cannot be delivered at all, or not within ``max_age`` seconds of its
arrival, is moved to the dead-letter directory with its reason. An
unexpected error in one delivery counts as that file's failure: it never
stops the worker.

While a file is moving, the progress of the transfer keeps systemd's
watchdog fed, and a long transfer pushes the unit's runtime limit back
(EXTEND_TIMEOUT_USEC), so a periodic restart waits for it. A stop lets the
file go on for ``stop_grace`` seconds, then cuts it (an FTP upload resumes
where it was cut on the next run).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
import os
import stat
import time
from dataclasses import dataclass

from ftpdup.config.values import printable
from ftpdup.deadletter import bury
from ftpdup.logs import trail
from ftpdup.specs import CarrierSpec
from ftpdup.status import Counters
from ftpdup.status import read as read_status
from ftpdup.transfer import FILE, Interrupted, Transfer, TransferError, open_transfer
from ftpdup.workers.loop import Worker, clock
from ftpdup.workers.remover import Remover
from ftpdup.workers.sessions import Sessions

log = logging.getLogger(__name__)

FIRST_RETRY_DELAY = 1.0
# This many different files refused in a row (none delivered) pause the whole carrier:
# the subscriber is failing, not the files (a full disk, a lost permission).
REFUSED_STREAK_PAUSE = 3
# A file that has been moving for EXTEND_AFTER seconds pushes the unit's
# runtime limit EXTEND_WINDOW seconds ahead, every EXTEND_EVERY seconds: a
# periodic restart waits for a long file, and still lands between small ones.
EXTEND_AFTER = 3.0
EXTEND_EVERY = 3.0
EXTEND_WINDOW = 15.0


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt at a file: delivered (size, seconds), failed, cut, or gone."""

    size: int = 0
    seconds: float = 0.0
    error: TransferError | None = None
    interrupted: bool = False
    gone: bool = False


def attempt(transfer: Transfer, spool: str, name: str, progress, more: bool = False) -> Outcome:
    """Send the spool's file name through transfer once; return the outcome, never raise.

    more says another file follows at once (the transfer may get ready for it).
    """
    try:
        # Unbuffered: the transfer reads big blocks itself, and a file costs fewer calls.
        source = open(os.path.join(spool, name), "rb", buffering=0)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return Outcome(gone=True)
    started = time.monotonic()
    try:
        with source:
            size = transfer.send(source, name, progress, more)
    except Interrupted:
        return Outcome(seconds=time.monotonic() - started, interrupted=True)
    except TransferError as error:
        return Outcome(error=error)
    except Exception as error:  # one file must never stop the worker
        log.debug("delivering %s failed", printable(name), exc_info=True)
        return Outcome(error=TransferError(f"unexpected {type(error).__name__}: {error}", FILE))
    return Outcome(size=size, seconds=time.monotonic() - started)


def _attempt_in_session(transfer: Transfer, name: str, more: bool, spool: str,
                        carrier) -> Outcome:  # fmt: skip
    """A session thread's attempt at name (the carrier's stop is obeyed, nothing else shared)."""
    return attempt(transfer, spool, name, carrier._progress, more)


@dataclass
class Retry:
    """Failures in a row of one thing (the subscriber, or one file) and when to try again."""

    failures: int = 0
    next_try: float = 0.0
    error: str = ""
    since: float = 0.0

    def failed(self, error: str, max_delay: float) -> tuple[float, int]:
        """Record a failure; return the delay before the next try and the level to log it at.

        A failure is logged as a warning when it starts, at info when its error
        changes, and at debug when it only repeats (not once per attempt).
        """
        if not self.failures:
            self.since = time.time()
        self.failures += 1
        delay = min(max_delay, FIRST_RETRY_DELAY * 2 ** min(self.failures - 1, 30))
        self.next_try = time.monotonic() + delay
        if self.failures == 1:
            level = logging.WARNING
        else:
            level = logging.INFO if error != self.error else logging.DEBUG
        self.error = error
        return delay, level


class Carrier(Worker):
    """Deliver the files of one spool through one Transfer."""

    def __init__(self, spec: CarrierSpec, transfer: Transfer | None = None) -> None:
        super().__init__(spec.status)
        self.spec = spec
        self.directory = spec.spool
        parts = spec.instance.split(":")
        # Who this carrier is, in the trail of every file it handles.
        self.who = {"lane": parts[0], "subscriber": parts[1] if len(parts) > 1 else None,
                    "instance": parts[2] if len(parts) > 2 else None}  # fmt: skip
        self.transfer = transfer or open_transfer(spec.target, spec.timeout, spec.state)
        self.remover = Remover(spec.spool)
        self.wake_fds.append(self.remover.wake_read)
        self.sessions: Sessions | None = None
        if spec.target.connections > 1:
            transfers = [self.transfer] + [
                open_transfer(spec.target, spec.timeout, spec.state)
                for _ in range(spec.target.connections - 1)
            ]
            attempt_here = functools.partial(_attempt_in_session, spool=spec.spool, carrier=self)
            self.sessions = Sessions(transfers, attempt_here)
            self.wake_fds.append(self.sessions.wake_read)
        self.ready: list[tuple[int, str]] = []  # (mtime_ns, name), oldest first
        self.waiting: list[tuple[float, int, str]] = []  # (next try, mtime_ns, name)
        self.sizes: dict[str, int] = {}  # every queued file (ready or waiting)
        self.queued_bytes = 0
        self.file_retries: dict[str, Retry] = {}
        self.subscriber = Retry()
        # Files that were moving when the subscriber failed, since the last success:
        # the next try is made with another file, if there is one.
        self.suspects: set[str] = set()
        self.refused_in_a_row: set[str] = set()  # distinct files, since the last delivery
        self.counters = Counters(read_status(spec.status) if spec.status else None)
        self.last_delivery = 0.0
        self._transfer_started = 0.0
        self._last_extend = 0.0

    def prepare(self) -> None:
        os.makedirs(self.spec.spool, exist_ok=True)
        if self.spec.state:
            os.makedirs(self.spec.state, exist_ok=True)
            self._drop_stale_records()

    def _drop_stale_records(self) -> None:
        """Delete resume records older than max_age: their files are delivered or buried."""
        oldest = time.time() - self.spec.max_age
        with os.scandir(self.spec.state) as entries:
            for entry in entries:
                if entry.name.startswith("ftp-resume-") and entry.stat().st_mtime < oldest:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    def rescan(self) -> None:
        with os.scandir(self.spec.spool) as scan:
            self.on_names([entry.name for entry in scan])

    def on_names(self, names: list[str]) -> None:
        for name in names:
            if name in self.sizes or self.remover.seen(name):
                continue
            try:
                info = os.lstat(os.path.join(self.spec.spool, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                heapq.heappush(self.ready, (info.st_mtime_ns, name))
                self.sizes[name] = info.st_size
                self.queued_bytes += info.st_size

    def run(self) -> int:
        self.remover.start()
        return super().run()

    def step(self) -> float | None:
        """Deliver the oldest file that is due, unless the subscriber is paused; return the wait."""
        self.on_names(self.remover.finished())
        if self.sessions is None:
            return self._step_ready()
        for mtime_ns, name, outcome in self.sessions.done():
            self.settle(mtime_ns, name, outcome)
        wait = None
        while self.sessions.idle():
            wait = self._step_ready()
            if wait != 0.0:
                break
        if self.sessions.handed_out:
            return self._while_moving() if wait is None else min(wait, self._while_moving())
        return wait

    def _step_ready(self) -> float | None:
        now = time.monotonic()
        while self.waiting and self.waiting[0][0] <= now:
            _, mtime_ns, name = heapq.heappop(self.waiting)
            heapq.heappush(self.ready, (mtime_ns, name))
        if not self.ready:
            return self.waiting[0][0] - now if self.waiting else None
        if self.subscriber.next_try > now:
            return self.subscriber.next_try - now
        self.deliver_next()
        return 0.0

    def _while_moving(self) -> float:
        """With files moving on sessions: push the runtime limit back for long files, and
        return how soon to look again."""
        if time.monotonic() - self._transfer_started >= EXTEND_AFTER and self.notifier.enabled:
            self.notifier.extend(EXTEND_WINDOW)
        return EXTEND_EVERY

    def _next_ready(self) -> tuple[int, str]:
        """Take the oldest ready file that is not a suspect (or the oldest, if all are)."""
        skipped = []
        while self.ready:
            item = heapq.heappop(self.ready)
            if item[1] not in self.suspects:
                break
            skipped.append(item)
        else:
            item = skipped.pop(0)
        for other in skipped:
            heapq.heappush(self.ready, other)
        return item

    def deliver_next(self) -> None:
        """Deliver (or set aside) the oldest ready file, here or on an idle session."""
        mtime_ns, name = self._next_ready()
        if time.time() - mtime_ns / 1e9 > self.spec.max_age:
            retry = self.file_retries.get(name) or self.subscriber
            reason = f"not delivered within max_age={self.spec.max_age} s"
            self._set_aside(mtime_ns, name, f"{reason}; last error: {retry.error or 'none'}")
            return
        clash = self._clash(name)
        if clash:
            self._set_aside(mtime_ns, name, clash)
            return
        twin = name + self.spec.target.tmp_suff
        moving = self.sessions is not None and twin in self.sessions.handed_out
        if moving and self.transfer.temporary_of(twin) == name:
            # The file named as this one's temporary name is moving: wait for it.
            heapq.heappush(self.waiting, (time.monotonic() + FIRST_RETRY_DELAY, mtime_ns, name))
            return
        self._transfer_started = time.monotonic()
        if self.sessions is not None:
            self.sessions.dispatch(mtime_ns, name)
            return
        outcome = attempt(self.transfer, self.spec.spool, name, self._progress, bool(self.ready))
        self.settle(mtime_ns, name, outcome)

    def _clash(self, name: str) -> str:
        """Return why name may not be sent now (it is the temporary name of a file queued
        here, or of an upload to resume), or ""."""
        other = self.transfer.temporary_of(name)
        if other is None or not (other in self.sizes or self.transfer.holds_partial(other)):
            return ""
        suffix = self.spec.target.tmp_suff
        return (
            f"its name is the temporary name of {printable(other)!r}, which is being delivered "
            f"to this subscriber: sending it would corrupt that upload or be overwritten by "
            f"it; exclude '*{printable(suffix)}' in the lane or give the subscriber another "
            "tmp_suff"
        )

    def settle(self, mtime_ns: int, name: str, outcome: Outcome) -> None:
        """Account for what became of one attempt at a file (in the main thread)."""
        if outcome.error is not None:
            self._failed(mtime_ns, name, outcome.error)
        elif outcome.interrupted:
            heapq.heappush(self.ready, (mtime_ns, name))
            log.info("stopping: %s cut after %.0f s", printable(name), outcome.seconds)
        elif outcome.gone:
            self._forget(name)
        else:
            self._delivered(name, outcome.size, outcome.seconds)

    def _delivered(self, name: str, size: int, seconds: float) -> None:
        self.remover.remove(name)
        self._forget(name)
        if self.subscriber.failures:
            log.info(
                "subscriber reachable again after %d failed attempts", self.subscriber.failures
            )
            self.subscriber = Retry()
        self.suspects.clear()
        self.refused_in_a_row.clear()
        self.last_delivery = time.time()
        self.counters.delivered(size, seconds, self.last_delivery)
        if log.isEnabledFor(logging.INFO):  # the line costs more than the rest of this
            log.info(
                "delivered %s (%d bytes) in %.3f s",
                printable(name),
                size,
                seconds,
                extra=trail(
                    "delivered", file=name, size=size, duration_ms=int(seconds * 1000), **self.who
                ),
            )

    def _failed(self, mtime_ns: int, name: str, error: TransferError) -> None:
        """Set aside, delay this file, or pause the carrier, as the failure says."""
        shown = printable(name)
        self.counters.totals["failures"] += 1
        if error.permanent:
            self._set_aside(mtime_ns, name, str(error))
            return
        if error.scope == FILE:
            retry = self.file_retries.setdefault(name, Retry())
            delay, level = retry.failed(str(error), self.spec.retry_max_delay)
            heapq.heappush(self.waiting, (retry.next_try, mtime_ns, name))
            self.refused_in_a_row.add(name)
            if self.subscriber.failures:
                level = logging.DEBUG
            log.log(
                level,
                "%s not taken, it waits %.0f s, others go on: %s",
                shown,
                delay,
                error,
                extra=trail("retry", file=name, **self.who),
            )
            if len(self.refused_in_a_row) < REFUSED_STREAK_PAUSE:
                return
            error = TransferError(f"files refused one after another, the last: {error}")
            about_the_file = {}  # its line is logged above
        else:
            retry = self.file_retries.setdefault(name, Retry())
            retry.failed(str(error), self.spec.retry_max_delay)
            heapq.heappush(self.waiting, (retry.next_try, mtime_ns, name))
            self.suspects.add(name)
            about_the_file = trail("retry", file=name, **self.who)
        delay, level = self.subscriber.failed(str(error), self.spec.retry_max_delay)
        log.log(
            level, "subscriber failing, next try in %.0f s: %s", delay, error, extra=about_the_file
        )

    def _set_aside(self, mtime_ns: int, name: str, reason: str) -> None:
        """Move a file to the dead letters; if that fails (a full disk), it stays queued."""
        try:
            bury(os.path.join(self.spec.spool, name), self.spec.dead, reason, **self.who)
            self.counters.totals["dead_letters_total"] += 1
        except FileNotFoundError:
            pass
        except OSError as error:
            retry = self.file_retries.setdefault(name, Retry())
            _, level = retry.failed(f"cannot set it aside: {error}", self.spec.retry_max_delay)
            heapq.heappush(self.waiting, (retry.next_try, mtime_ns, name))
            level = logging.ERROR if level == logging.WARNING else level
            log.log(level, "cannot set %s aside (%s): it stays queued", printable(name), error)
            return
        self._forget(name)

    def _forget(self, name: str) -> None:
        self.queued_bytes -= self.sizes.pop(name, 0)
        self.file_retries.pop(name, None)
        self.suspects.discard(name)

    def _progress(self, sent: int) -> None:
        """Called while a file moves: feed the watchdog, defer the runtime limit, obey a stop.

        In a session's thread (connections > 1) only the stop is obeyed: the
        main loop feeds the watchdog.
        """
        now = time.monotonic()
        if self.sessions is not None:
            if self.stopping and now - self.stop_requested >= self.spec.stop_grace:
                raise Interrupted(f"stopping after {sent} bytes")
            return
        self.notifier.ping()
        if self.stopping:
            if now - self.stop_requested >= self.spec.stop_grace:
                raise Interrupted(f"stopping after {sent} bytes")
        elif (
            now - self._transfer_started >= EXTEND_AFTER
            and now - self._last_extend >= EXTEND_EVERY
            and self.notifier.enabled
        ):
            self._last_extend = now
            self.notifier.extend(EXTEND_WINDOW)

    def status(self) -> str:
        queued = len(self.ready) + len(self.waiting)
        delivered = self.counters.totals["delivered_files"]
        text = f"{queued} queued, {delivered} delivered, last {clock(self.last_delivery)}"
        if self.waiting:
            text += f"; {len(self.waiting)} waiting on their own retry"
        if self.subscriber.failures:
            text += f"; failing since {clock(self.subscriber.since)}: {self.subscriber.error}"
        return text[:300]

    def signature(self) -> object:
        totals = self.counters.totals
        counts = (totals["delivered_files"], totals["failures"], totals["dead_letters_total"])
        return len(self.sizes), len(self.waiting), counts, self.subscriber.error

    def snapshot(self) -> dict:
        oldest = [item[0] for item in self.ready[:1]] + [item[1] for item in self.waiting]
        next_try = self.subscriber.next_try if self.subscriber.failures else 0.0
        return {
            "kind": "carrier",
            **self.who,
            "name": self.spec.instance,
            "pid": os.getpid(),
            "backlog_files": len(self.sizes),
            "backlog_bytes": self.queued_bytes,
            "oldest_mtime": min(oldest) / 1e9 if oldest else None,
            "last_success": self.last_delivery or None,
            "last_error": self.subscriber.error if self.subscriber.failures else "",
            "failing_since": self.subscriber.since if self.subscriber.failures else None,
            "next_retry": round(next_try - time.monotonic() + time.time(), 1) if next_try else None,
            "waiting_own_retry": len(self.waiting),
            "file_errors": sorted({retry.error for retry in self.file_retries.values()})[:3],
            **self.counters.fields(),
        }

    def finish(self) -> None:
        if self.sessions is None:
            self.transfer.close()
        else:
            self.sessions.close(self.spec.stop_grace + 5)
            for mtime_ns, name, outcome in self.sessions.done():
                self.settle(mtime_ns, name, outcome)
        self.remover.close(self.spec.stop_grace + 5)
