"""Deleting delivered files off the carrier's main loop.

On a busy filesystem an unlink can wait hundreds of milliseconds for the
journal (another lane writing gigabytes); the next file must not wait behind
it. Once started, a Remover unlinks in its own thread, in batches gathered
over 10 ms, and wakes the main loop through a pipe when a batch is gone.
Until then (and in tests that step a carrier by hand) it unlinks at once.

A name stays in ``removing`` until its unlink is done: the carrier must not
queue the delivered file again (a rescan), and a new file that arrives under
the same name meanwhile is looked at only once the old one is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time

from ftpdup.config.values import printable

log = logging.getLogger(__name__)

BATCH_SECONDS = 0.01


class Remover(threading.Thread):
    """Unlink files of one folder, in the background once started."""

    def __init__(self, folder: str) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.wake_read, self.wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.removing: set[str] = set()  # main thread's: handed over, not reported gone yet
        self.arrived_meanwhile: set[str] = set()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._gone: queue.SimpleQueue = queue.SimpleQueue()

    def remove(self, name: str) -> None:
        """Delete name from the folder (now, or soon in the thread if it runs)."""
        if not self.is_alive():
            self._unlink(name)
            return
        self.removing.add(name)
        self._inbox.put(name)

    def seen(self, name: str) -> bool:
        """Return True if name is still being removed (its new arrival waits: see finished)."""
        if name in self.removing:
            self.arrived_meanwhile.add(name)
            return True
        return False

    def finished(self) -> list[str]:
        """Account for the names removed since the last call; return those that arrived anew
        while they were being removed (to be looked at now)."""
        again = []
        while True:
            try:
                name = self._gone.get_nowait()
            except queue.Empty:
                return again
            self.removing.discard(name)
            if name in self.arrived_meanwhile:
                self.arrived_meanwhile.discard(name)
                again.append(name)

    def run(self) -> None:
        closing = False
        while not closing:
            names = [self._inbox.get()]
            # Let a batch gather: the thread then takes the interpreter once per batch,
            # not once per file, away from the main loop.
            time.sleep(BATCH_SECONDS)
            with contextlib.suppress(queue.Empty):
                while True:
                    names.append(self._inbox.get_nowait())
            closing = None in names
            for name in names:
                if name is not None:
                    self._unlink(name)
                    self._gone.put(name)
            with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop anyway
                os.write(self.wake_write, b"!")

    def _unlink(self, name: str) -> None:
        try:
            os.unlink(os.path.join(self.folder, name))
        except FileNotFoundError:
            pass
        except OSError as error:  # it stays, and is sent again after a restart
            log.error("cannot delete the delivered %s: %s", printable(name), error.strerror)

    def close(self, timeout: float) -> None:
        """Finish the unlinks handed over (within timeout), end the thread, release the pipe."""
        if self.is_alive():
            self._inbox.put(None)
            self.join(timeout)
            if self.is_alive():
                log.warning("%d delivered files not deleted yet at exit", self._inbox.qsize())
                return  # the thread may still write to its pipe
        for descriptor in (self.wake_read, self.wake_write):
            with contextlib.suppress(OSError):
                os.close(descriptor)
