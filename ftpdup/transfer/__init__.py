"""One transfer interface, with FTP and HTTP implementations behind it.

A Transfer delivers files to one target. It keeps its connection open across
files and reconnects by itself; ``send`` either delivers the whole file under
its final name or raises TransferError (and then no file is left at the
destination under the final name).

File names are bytes on the wire: a name is the ``str`` that ``os.listdir``
returns (undecodable bytes kept as surrogates), and ``wire_name`` gives back
the exact bytes the uploader sent.
"""

from __future__ import annotations

import abc
import os
from typing import BinaryIO, Callable

from ftpdup.specs import Target

# Called with the number of bytes sent so far, after every block. It may raise
# Interrupted to stop the transfer (the worker is stopping).
Progress = Callable[[int], None]

SUBSCRIBER = "subscriber"
FILE = "file"


class TransferError(Exception):
    """A file was not delivered.

    ``scope`` says what failed: ``"subscriber"`` (no connection, login refused,
    directory missing: every file would fail, so the carrier pauses) or
    ``"file"`` (the server answered about this file and the session is fine:
    only this file waits). ``permanent`` means retrying can never succeed.
    """

    def __init__(self, message: str, scope: str = SUBSCRIBER, permanent: bool = False) -> None:
        super().__init__(message)
        self.scope = scope
        self.permanent = permanent


class Interrupted(Exception):
    """The transfer was stopped by its progress callback; what the server holds is kept."""


class Transfer(abc.ABC):
    """Deliver files to one target over one reused connection."""

    @abc.abstractmethod
    def send(
        self, source: BinaryIO, name: str, progress: Progress | None = None, more: bool = False
    ) -> int:
        """Deliver the open file source under name; return its size in bytes.

        progress is called after every block sent. more says another file
        follows at once: the transfer may get ready for it while it finishes
        this one. Raise TransferError if the file was not delivered,
        Interrupted if progress asked to stop.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection, if any. The transfer reconnects if used again."""

    def temporary_of(self, name: str) -> str | None:
        """Return the name of the file whose temporary name at the target is name, or None.

        An upload under a temporary name (``NAME + tmp_suff``) collides with a
        file really named so: the carrier never sends the two at once.
        """
        return None

    def holds_partial(self, name: str) -> bool:
        """Return True if an upload of name was cut and is to be resumed at the target."""
        return False


def wire_name(name: str) -> bytes:
    """Return the bytes of a file name as the uploader sent them."""
    return os.fsencode(name)


def open_transfer(target: Target, timeout: float = 60.0, state_dir: str = "") -> Transfer:
    """Return the Transfer for target's mode ("ftp" or "http"). Raise ValueError otherwise.

    state_dir is where an FTP transfer keeps what it needs to resume an
    interrupted upload (empty: never resume).
    """
    if target.mode == "ftp":
        from ftpdup.transfer.ftp import FtpTransfer

        return FtpTransfer(target, timeout, state_dir)
    if target.mode == "http":
        from ftpdup.transfer.http import HttpTransfer

        return HttpTransfer(target, timeout)
    raise ValueError(f"unknown transfer mode {target.mode!r}")
