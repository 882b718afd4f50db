"""Adapter: report files completed in one directory, via Linux inotify.

A file counts as complete when it is closed after writing (IN_CLOSE_WRITE) or
moved into the directory (IN_MOVED_TO); never on IN_CREATE. Events may be
merged or lost (queue overflow), so callers treat names as hints and rescan
when told to.

Names are bytes in the kernel's events; they are decoded as ``os.listdir``
does (undecodable bytes kept as surrogates), so any name round-trips. The
three inotify calls are made through ctypes: this costs a worker far less
memory than pyinotify (which also refuses names that are not UTF-8).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import struct

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
COMPLETE = IN_CLOSE_WRITE | IN_MOVED_TO
# A name that leaves a folder (unlinked, or moved away).
LEFT = IN_DELETE | IN_MOVED_FROM
_EVENT = struct.Struct("iIII")
_READ_SIZE = 64 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]


def _new_instance() -> int:
    """Return a non-blocking inotify descriptor. Raise OSError."""
    descriptor = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if descriptor < 0:
        number = ctypes.get_errno()
        raise OSError(number, f"inotify_init1: {os.strerror(number)}")
    return descriptor


class DirectoryWatcher:
    """Watch one directory; ``wait`` returns the names of files completed since the last call."""

    def __init__(
        self, path: str, wake_fds: list[int] | None = None, watch_fds: list[int] | None = None
    ) -> None:
        """Put the watch in place on path. Raise OSError if the directory cannot be watched.

        wake_fds are non-blocking pipes whose data also ends a wait (a signal
        handler's or a thread's wake-up); they are drained, never closed, here.
        watch_fds also end a wait, but are left for their owner to read.
        """
        self.path = path
        self._wake_fds = list(wake_fds or ())
        self._fd = _new_instance()
        if _libc.inotify_add_watch(self._fd, os.fsencode(path), COMPLETE) < 0:
            number = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(number, f"cannot watch {path}: {os.strerror(number)}")
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        for descriptor in self._wake_fds + list(watch_fds or ()):
            self._poll.register(descriptor, select.POLLIN)

    def fileno(self) -> int:
        return self._fd

    def wait(self, timeout: float | None) -> tuple[list[str], bool]:
        """Wait up to timeout seconds (None: until an event) for events.

        Return (completed names, overflowed). When overflowed is True some
        events were lost: rescan the directory.
        """
        milliseconds = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
        ready = {descriptor for descriptor, _ in self._poll.poll(milliseconds)}
        for descriptor in ready & set(self._wake_fds):
            _drain(descriptor)
        return self.read() if self._fd in ready else ([], False)

    def read(self) -> tuple[list[str], bool]:
        """Return (names, overflowed) of the events waiting now, without blocking."""
        names: list[str] = []
        overflow = False
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                raise
            for mask, name in _events(data):
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                elif name and not mask & IN_ISDIR:
                    names.append(name)
        return names, overflow

    def close(self) -> None:
        """Release the inotify instance."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class FolderWatch:
    """Report names that leave some folders (unlinked or moved away); folders come and go.

    The sprinkler watches the spools where a file waits for its name to be
    free, and only those, so a busy spool costs it nothing otherwise.
    """

    def __init__(self) -> None:
        self._fd = _new_instance()
        self._folders: dict[int, str] = {}  # watch descriptor -> folder
        self._watches: dict[str, int] = {}

    def fileno(self) -> int:
        return self._fd

    def add(self, folder: str) -> None:
        """Watch folder (again: nothing changes). Raise OSError if it cannot be watched."""
        if folder in self._watches:
            return
        watch = _libc.inotify_add_watch(self._fd, os.fsencode(folder), LEFT)
        if watch < 0:
            number = ctypes.get_errno()
            raise OSError(number, f"cannot watch {folder}: {os.strerror(number)}")
        self._folders[watch] = folder
        self._watches[folder] = watch

    def remove(self, folder: str) -> None:
        """Stop watching folder (if watched)."""
        watch = self._watches.pop(folder, None)
        if watch is not None:
            self._folders.pop(watch, None)
            _libc.inotify_rm_watch(self._fd, watch)

    def read(self) -> tuple[list[tuple[str, str]], bool]:
        """Return ((folder, name) that left, overflowed) for the events waiting now."""
        left: list[tuple[str, str]] = []
        overflow = False
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return left, overflow
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                raise
            for watch, mask, name in _events_of(data):
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                elif mask & IN_IGNORED:
                    folder = self._folders.pop(watch, None)
                    if folder is not None and self._watches.get(folder) == watch:
                        del self._watches[folder]
                elif name and watch in self._folders:
                    left.append((self._folders[watch], name))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _drain(descriptor: int) -> None:
    """Read a non-blocking pipe empty."""
    with contextlib.suppress(BlockingIOError):
        while os.read(descriptor, 4096):
            pass


def _events(data: bytes):
    """Yield (mask, name) for each inotify event in data."""
    for _, mask, name in _events_of(data):
        yield mask, name


def _events_of(data: bytes):
    """Yield (watch descriptor, mask, name) for each inotify event in data."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        watch, mask, _, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
        offset += _EVENT.size + length
        yield watch, mask, os.fsdecode(raw)
