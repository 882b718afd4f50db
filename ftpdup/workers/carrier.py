"""The carrier: deliver each file of its spool to one target, oldest first, then delete it.

A failed delivery leaves the file in the spool and is retried with a growing
delay (capped), while new files keep being queued. A file that cannot be
delivered at all, or not within ``max_age`` seconds of its arrival, is moved
to the dead-letter directory with its reason.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import stat
import time

from ftpdup.deadletter import bury
from ftpdup.specs import CarrierSpec
from ftpdup.transfer import Transfer, TransferError, open_transfer
from ftpdup.workers.loop import MAX_WAIT, Worker, ago

log = logging.getLogger(__name__)

FIRST_RETRY_DELAY = 1.0


class Carrier(Worker):
    """Deliver the files of one spool through one Transfer."""

    def __init__(self, spec: CarrierSpec, transfer: Transfer | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.directory = spec.spool
        self.transfer = transfer or open_transfer(spec.target, spec.timeout)
        self.queue: list[tuple[int, str]] = []
        self.queued: set[str] = set()
        self.failures = 0
        self.next_try = 0.0
        self.last_error = ""
        self.delivered = 0
        self.last_delivery = 0.0

    def prepare(self) -> None:
        os.makedirs(self.spec.spool, exist_ok=True)

    def rescan(self) -> None:
        with os.scandir(self.spec.spool) as scan:
            self.on_names([entry.name for entry in scan])

    def on_names(self, names: list[str]) -> None:
        for name in names:
            if name in self.queued:
                continue
            try:
                info = os.lstat(os.path.join(self.spec.spool, name))
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                heapq.heappush(self.queue, (info.st_mtime_ns, name))
                self.queued.add(name)

    def step(self) -> float:
        """Deliver the oldest queued file if no retry delay is running; return the wait."""
        if not self.queue:
            return MAX_WAIT
        delay = self.next_try - time.monotonic()
        if delay > 0:
            return delay
        self.deliver_oldest()
        return 0.0

    def deliver_oldest(self) -> None:
        """Deliver (or dead-letter) the file at the head of the queue."""
        mtime_ns, name = self.queue[0]
        path = os.path.join(self.spec.spool, name)
        age = time.time() - mtime_ns / 1e9
        if age > self.spec.max_age:
            self._drop_head()
            reason = f"not delivered within max_age={self.spec.max_age} s"
            self._bury(path, f"{reason}; last error: {self.last_error or 'none'}")
            return
        started = time.monotonic()
        try:
            with open(path, "rb") as source:
                size = self.transfer.send(source, name)
        except FileNotFoundError:
            self._drop_head()
            return
        except TransferError as error:
            if error.permanent:
                self._drop_head()
                self._bury(path, str(error))
            else:
                self._failed(str(error))
            return
        os.unlink(path)
        self._drop_head()
        self.failures = 0
        self.delivered += 1
        self.last_delivery = time.monotonic()
        log.info("delivered %s (%d bytes) in %.3f s", name, size, self.last_delivery - started)

    def _drop_head(self) -> None:
        _, name = heapq.heappop(self.queue)
        self.queued.discard(name)

    def _failed(self, error: str) -> None:
        """Schedule a retry of the head of the queue after a growing, capped delay."""
        self.failures += 1
        self.last_error = error
        delay = min(self.spec.retry_max_delay, FIRST_RETRY_DELAY * 2 ** (self.failures - 1))
        self.next_try = time.monotonic() + delay
        log.warning(
            "delivery failed (%d in a row), retrying in %.0f s: %s", self.failures, delay, error
        )

    def _bury(self, path: str, reason: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            bury(path, self.spec.dead, reason)

    def status(self) -> str:
        queued = (
            f"{len(self.queue)} queued, {self.delivered} delivered, last {ago(self.last_delivery)}"
        )
        if self.failures:
            wait = max(0.0, self.next_try - time.monotonic())
            return f"{queued}; retry in {wait:.0f} s: {self.last_error}"[:200]
        return queued

    def finish(self) -> None:
        self.transfer.close()
