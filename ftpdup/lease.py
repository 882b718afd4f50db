"""Tell whether anybody still has a file open for writing, with a read lease (fcntl).

The kernel grants a read lease only while no process has the file open for
writing, so this catches an upload still in progress however the file was
found (inotify event or startup scan). Taking a lease on another user's file
needs CAP_LEASE.

Without leases (CAP_LEASE missing, a filesystem such as NFS that has none)
an upload in progress cannot be told from a complete file: the sprinkler
refuses to start (``check_leases``), and a file whose lease fails for
another reason is not taken (``no_writer`` raises).
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

CAP_LEASE = 28
PROBE = ".ftpdup-lease-probe"


class LeaseError(OSError):
    """Leases cannot tell here whether a file is still being written."""


def check_leases(folder: str) -> None:
    """Raise LeaseError unless this process can take leases on other users' files in folder.

    Two things are needed: CAP_LEASE (or root), and a filesystem with leases,
    which a probe file in folder (the sprinkler's staging folder, on the
    lane's filesystem) tells.
    """
    if os.geteuid() != 0 and not _has_capability(CAP_LEASE):
        raise LeaseError(
            errno.EPERM,
            "this process lacks CAP_LEASE (AmbientCapabilities=CAP_LEASE in the unit): "
            "it could not tell an upload in progress from a complete file",
        )
    probe = os.path.join(folder, f"{PROBE}-{os.getpid()}")
    descriptor = os.open(probe, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError as error:
        raise LeaseError(
            error.errno,
            f"the filesystem of {folder} has no file leases ({error.strerror}): ftpdup "
            "could not tell an upload in progress from a complete file; put the data "
            "root on a local filesystem (ext4, XFS)",
        ) from None
    finally:
        os.close(descriptor)
        os.unlink(probe)


def _has_capability(number: int) -> bool:
    """Return True if capability number is in this process's effective set."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> number & 1)
    except (OSError, ValueError):
        pass
    return False


def ignore_lease_breaks() -> None:
    """Ignore SIGIO, which the kernel sends to a lease holder (its default action kills)."""
    signal.signal(signal.SIGIO, signal.SIG_IGN)


def lease(descriptor: int) -> bool:
    """Take a read lease on the open file; return False if somebody has it open for writing.

    Raise LeaseError if no lease can be taken on it.
    """
    try:
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        return True
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EBUSY):
            return False
        raise LeaseError(error.errno, f"no lease on it: {error.strerror}") from None


def still_leased(descriptor: int) -> bool:
    """Return False if a writer is waiting to open the leased file (its lease is breaking)."""
    return fcntl.fcntl(descriptor, fcntl.F_GETLEASE) == fcntl.F_RDLCK


def release(descriptor: int) -> None:
    """Give up the lease on the open file (a writer waiting for it goes on)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(descriptor, fcntl.F_SETLEASE, fcntl.F_UNLCK)


def open_quietly(path: str) -> int:
    """Open path read-only without following a link or blocking on a FIFO; return the
    descriptor. Raise OSError (FileNotFoundError if it is gone)."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)


@contextlib.contextmanager
def no_writer(path: str) -> Iterator[int | None]:
    """Yield a read-only descriptor of path while nobody has it open for writing (a read
    lease is held on it), or None if somebody does.

    Raise FileNotFoundError if path is gone, LeaseError if no lease can be
    taken on it.
    """
    descriptor = open_quietly(path)
    leased = False
    try:
        leased = lease(descriptor)
        yield descriptor if leased else None
    finally:
        if leased:
            release(descriptor)
        os.close(descriptor)
