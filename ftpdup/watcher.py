"""Adapter: report files completed in one directory, via inotify (pyinotify).

A file counts as complete when it is closed after writing (IN_CLOSE_WRITE) or
moved into the directory (IN_MOVED_TO); never on IN_CREATE. Events may be
merged or lost (queue overflow), so callers treat names as hints and rescan
when told to.
"""

from __future__ import annotations

import pyinotify

COMPLETE = pyinotify.IN_CLOSE_WRITE | pyinotify.IN_MOVED_TO


class DirectoryWatcher:
    """Watch one directory; ``wait`` returns the names of files completed since the last call."""

    def __init__(self, path: str) -> None:
        """Put the watch in place on path. Raise OSError if the directory cannot be watched."""
        self.path = path
        self._names: list[str] = []
        self._overflow = False
        self._manager = pyinotify.WatchManager()
        self._notifier = pyinotify.Notifier(self._manager, default_proc_fun=self._on_event)
        result = self._manager.add_watch(path, COMPLETE | pyinotify.IN_Q_OVERFLOW, quiet=False)
        if result.get(path, -1) < 0:
            raise OSError(f"cannot watch {path}")

    def _on_event(self, event: pyinotify.Event) -> None:
        if event.mask & pyinotify.IN_Q_OVERFLOW:
            self._overflow = True
        elif not event.dir and event.name:
            self._names.append(event.name)

    def wait(self, timeout: float) -> tuple[list[str], bool]:
        """Wait up to timeout seconds for events; return (completed names, overflowed).

        When overflowed is True some events were lost: rescan the directory.
        """
        if self._notifier.check_events(timeout=max(0, int(timeout * 1000))):
            self._notifier.read_events()
            self._notifier.process_events()
        names, overflow = self._names, self._overflow
        self._names, self._overflow = [], False
        return names, overflow

    def close(self) -> None:
        """Release the inotify instance."""
        self._notifier.stop()
