"""The sprinkler: take each complete file out of a lane and link it into every carrier's spool.

For each file, crash-safe and without copying (all directories are on one
filesystem):

1. take: rename ``incoming/LANE/NAME`` to ``staging/LANE/NAME``; the uploader
   can no longer change or delete it;
2. link it as ``pending/INSTANCE/NAME`` for every carrier (an existing link to
   the same inode is fine), then unlink the staging name;
3. publish: rename each ``pending/INSTANCE/NAME`` to ``spool/INSTANCE/NAME``,
   where its carrier sees it.

A restart repeats what an interrupted run left undone: a staging name means
step 2 is incomplete; a pending name means step 3 is. No carrier ever sees a
file twice, and no file is lost.

A file still open for writing (an upload in progress, found by the startup
scan) is left alone and looked at again until it is closed: after 2 ms, then
twice as long each time, up to every 0.25 s.

Same name: a file is never overwritten. While an older file of the same name
is still queued (in staging, pending or the spool), the newer one waits one
step behind it and moves on once the older is delivered, so subscribers get
both, in order of arrival.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
import time

from ftpdup.config.values import printable
from ftpdup.lease import ignore_lease_breaks, no_writer
from ftpdup.logs import trail
from ftpdup.specs import Output, SprinklerSpec
from ftpdup.status import Counters
from ftpdup.status import read as read_status
from ftpdup.workers.loop import Worker, clock

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# The kernel reports IN_CLOSE_WRITE a moment before it drops the writer's
# count, so a file just closed can still refuse the lease: look again soon,
# then less and less often (an upload in progress).
FIRST_BUSY_RETRY_SECONDS = 0.002
BUSY_RETRY_SECONDS = 0.25


class Sprinkler(Worker):
    """Fan out the files of one lane to its carriers' spools."""

    def __init__(self, spec: SprinklerSpec) -> None:
        super().__init__(spec.status)
        self.spec = spec
        self.directory = spec.incoming
        self.waiting: list[str] = []
        self.blocked_lane: set[str] = set()
        self.busy: set[str] = set()
        self.next_busy_retry = 0.0
        self.busy_delay = FIRST_BUSY_RETRY_SECONDS
        self.blocked_staging: set[str] = set()
        self.blocked_pending: set[tuple[Output, str]] = set()
        self.counters = Counters(read_status(spec.status) if spec.status else None)
        self.last_forward = 0.0
        self.last_retry = 0.0
        self.trouble = ""

    def prepare(self) -> None:
        ignore_lease_breaks()
        for directory in [self.spec.incoming, self.spec.staging] + [
            path for output in self.spec.outputs for path in (output.pending, output.spool)
        ]:
            os.makedirs(directory, exist_ok=True)

    def rescan(self) -> None:
        for output in self.spec.outputs:
            for name in _oldest_first(output.pending):
                self._publish(output, name)
        for name in _oldest_first(self.spec.staging):
            self._fan_out(name)
        self.waiting.extend(_oldest_first(self.spec.incoming))

    def on_names(self, names: list[str]) -> None:
        self.waiting.extend(names)

    def step(self) -> float | None:
        now = time.monotonic()
        if self._blocked() and now - self.last_retry >= RETRY_SECONDS:
            self._retry_blocked()
        if self.busy and now >= self.next_busy_retry:
            self.waiting.extend(sorted(self.busy))
            self.busy.clear()
        was_busy = bool(self.busy)
        waiting, self.waiting = self.waiting, []
        for name in waiting:
            if self.stopping:
                self.waiting.extend(waiting[waiting.index(name) :])
                break
            self._take(name)
        if self.busy:
            return self._busy_wait(now, was_busy)
        self.busy_delay = FIRST_BUSY_RETRY_SECONDS
        return RETRY_SECONDS if self._blocked() else None

    def _busy_wait(self, now: float, was_busy: bool) -> float:
        """Schedule the next look at files still open for writing; return the wait."""
        if not was_busy and now >= self.next_busy_retry:
            self.next_busy_retry = now + self.busy_delay
            self.busy_delay = min(BUSY_RETRY_SECONDS, self.busy_delay * 2)
        return max(0.0, self.next_busy_retry - now)

    def status(self) -> str:
        blocked = self._blocked()
        waiting = f", {blocked} waiting to go on" if blocked else ""
        trouble = f"; {self.trouble}" if self.trouble else ""
        forwarded = self.counters.totals["delivered_files"]
        return f"{forwarded} forwarded{waiting}, last {clock(self.last_forward)}{trouble}"

    def signature(self) -> object:
        waiting = len(self.waiting) + len(self.busy) + self._blocked()
        return waiting, self.counters.totals["delivered_files"], self.trouble

    def snapshot(self) -> dict:
        waiting = len(self.waiting) + len(self.busy) + self._blocked()
        return {
            "kind": "sprinkler",
            "name": self.spec.lane,
            "lane": self.spec.lane,
            "pid": os.getpid(),
            "backlog_files": waiting,
            "last_success": self.last_forward or None,
            "last_error": self.trouble,
            **self.counters.fields(),
        }

    def _take(self, name: str) -> None:
        try:
            self.take(name)
        except OSError as error:
            self.blocked_lane.add(name)
            self._troubled(f"cannot take {printable(name)}", error)

    def _fan_out(self, name: str) -> None:
        try:
            self.fan_out(name)
        except OSError as error:
            self.blocked_staging.add(name)
            self._troubled(f"cannot fan out {printable(name)}", error)

    def _publish(self, output: Output, name: str) -> None:
        try:
            self.publish(output, name)
        except OSError as error:
            self.blocked_pending.add((output, name))
            self._troubled(f"cannot publish {printable(name)} to {output.instance}", error)

    def _troubled(self, what: str, error: OSError) -> None:
        """Log a filesystem failure (once while it lasts); the file is tried again later."""
        trouble = f"{what}: {error.strerror or error}"
        if not self.trouble:
            log.error("%s; trying again every %.0f s", trouble, RETRY_SECONDS)
        self.trouble = trouble

    def excluded(self, name: str) -> bool:
        """Return True if name matches one of the lane's exclude patterns."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.spec.exclude)

    def take(self, name: str) -> None:
        """Move a complete lane file into staging and fan it out; skip excluded or odd entries."""
        if self.excluded(name):
            log.info(
                "%s excluded: it stays in the lane",
                printable(name),
                extra=trail("excluded", lane=self.spec.lane, file=name),
            )
            return
        source = os.path.join(self.spec.incoming, name)
        staged = os.path.join(self.spec.staging, name)
        try:
            if not stat.S_ISREG(os.lstat(source).st_mode):
                return
            if os.path.lexists(staged):
                self.blocked_lane.add(name)
                return
            with no_writer(source) as complete:
                if not complete:
                    log.debug("%s is still being written, looking again", printable(name))
                    self.busy.add(name)
                    return
                os.rename(source, staged)
        except FileNotFoundError:
            return
        size = os.lstat(staged).st_size
        log.info(
            "arrived %s (%d bytes)",
            printable(name),
            size,
            extra=trail("arrival", lane=self.spec.lane, file=name, size=size),
        )
        self.busy.discard(name)
        self.blocked_lane.discard(name)
        self._fan_out(name)

    def fan_out(self, name: str) -> None:
        """Link a staged file into every carrier's pending directory, then publish it."""
        staged = os.path.join(self.spec.staging, name)
        try:
            size = os.lstat(staged).st_size
        except FileNotFoundError:
            self.blocked_staging.discard(name)
            return
        for output in self.spec.outputs:
            if not self._link(staged, output.pending, name):
                self.blocked_staging.add(name)
                return
        os.unlink(staged)
        self.blocked_staging.discard(name)
        if not self.spec.outputs:
            log.info(
                "deleted %s (%d bytes): the lane has no subscriber",
                printable(name),
                size,
                extra=trail("deleted", lane=self.spec.lane, file=name, size=size),
            )
            return
        for output in self.spec.outputs:
            self._publish(output, name)
        self.last_forward = time.time()
        self.counters.delivered(size, 0.0, self.last_forward)
        if self.trouble:
            log.info("writing works again")
            self.trouble = ""
        count = len(self.spec.outputs)
        log.info(
            "forwarded %s (%d bytes) to %d carriers",
            printable(name),
            size,
            count,
            extra=trail("fanout", lane=self.spec.lane, file=name, size=size),
        )

    def _link(self, staged: str, directory: str, name: str) -> bool:
        """Hard-link staged into directory; return False if another file holds that name."""
        link = os.path.join(directory, name)
        try:
            os.link(staged, link)
        except FileExistsError:
            return os.path.samestat(os.lstat(staged), os.lstat(link))
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            os.link(staged, link)
        return True

    def publish(self, output: Output, name: str) -> None:
        """Move a pending link into the spool, unless an older file of that name is queued."""
        pending = os.path.join(output.pending, name)
        spooled = os.path.join(output.spool, name)
        try:
            link = os.lstat(pending)
        except FileNotFoundError:
            self.blocked_pending.discard((output, name))
            return
        if self._uncommitted(name, link):
            return
        if os.path.lexists(spooled):
            self.blocked_pending.add((output, name))
            return
        os.rename(pending, spooled)
        self.blocked_pending.discard((output, name))

    def _uncommitted(self, name: str, link: os.stat_result) -> bool:
        """Return True if a pending link belongs to a staged file whose step 2 is unfinished."""
        try:
            return os.path.samestat(os.lstat(os.path.join(self.spec.staging, name)), link)
        except FileNotFoundError:
            return False

    def _blocked(self) -> int:
        return len(self.blocked_lane) + len(self.blocked_staging) + len(self.blocked_pending)

    def _retry_blocked(self) -> None:
        """Try again, oldest step first, what waited behind a same-named file."""
        self.last_retry = time.monotonic()
        for output, name in sorted(self.blocked_pending, key=lambda item: item[1]):
            self._publish(output, name)
        for name in sorted(self.blocked_staging):
            self._fan_out(name)
        self.waiting.extend(sorted(self.blocked_lane))
        self.blocked_lane.clear()


def _oldest_first(directory: str) -> list[str]:
    """Return the names of the regular files in directory, oldest modification first."""
    entries = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                try:
                    if entry.is_file(follow_symlinks=False):
                        entries.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return []
    return [name for _, name in sorted(entries)]
