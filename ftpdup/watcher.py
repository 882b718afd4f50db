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
IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
COMPLETE = IN_CLOSE_WRITE | IN_MOVED_TO
_EVENT = struct.Struct("iIII")
_READ_SIZE = 64 * 1024

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


class DirectoryWatcher:
    """Watch one directory; ``wait`` returns the names of files completed since the last call."""

    def __init__(self, path: str, wake_fds: list[int] | None = None) -> None:
        """Put the watch in place on path. Raise OSError if the directory cannot be watched.

        wake_fds are non-blocking pipes whose data also ends a wait (a signal
        handler's or a thread's wake-up); they are drained, never closed, here.
        """
        self.path = path
        self._wake_fds = list(wake_fds or ())
        self._fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            number = ctypes.get_errno()
            raise OSError(number, f"inotify_init1: {os.strerror(number)}")
        if _libc.inotify_add_watch(self._fd, os.fsencode(path), COMPLETE) < 0:
            number = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(number, f"cannot watch {path}: {os.strerror(number)}")
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        for descriptor in self._wake_fds:
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


def _drain(descriptor: int) -> None:
    """Read a non-blocking pipe empty."""
    with contextlib.suppress(BlockingIOError):
        while os.read(descriptor, 4096):
            pass


def _events(data: bytes):
    """Yield (mask, name) for each inotify event in data."""
    offset = 0
    while offset + _EVENT.size <= len(data):
        _, mask, _, length = _EVENT.unpack_from(data, offset)
        raw = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
        offset += _EVENT.size + length
        yield mask, os.fsdecode(raw)
