"""Tell whether anybody still has a file open for writing, with a read lease (fcntl).

The kernel grants a read lease only while no process has the file open for
writing, so this catches an upload still in progress however the file was
found (inotify event or startup scan). Taking a lease on another user's file
needs CAP_LEASE.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
from collections.abc import Iterator

log = logging.getLogger(__name__)

_unsupported_logged = False


def ignore_lease_breaks() -> None:
    """Ignore SIGIO, which the kernel sends to a lease holder (its default action kills)."""
    signal.signal(signal.SIGIO, signal.SIG_IGN)


@contextlib.contextmanager
def no_writer(path: str) -> Iterator[bool]:
    """Yield True while nobody has path open for writing (a read lease is held), else False.

    Raise FileNotFoundError if path is gone. Where leases are not available
    (filesystem or permissions), log it once and yield True.
    """
    global _unsupported_logged
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    leased = False
    try:
        try:
            fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
            leased = True
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EBUSY):
                yield False
                return
            if not _unsupported_logged:
                _unsupported_logged = True
                log.warning(
                    "cannot take a lease on %s (%s): files are taken on "
                    "close/move events only, without checking for writers",
                    path,
                    error,
                )
        yield True
    finally:
        if leased:
            with contextlib.suppress(OSError):
                fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        os.close(descriptor)
