"""One transfer interface, with FTP and HTTP implementations behind it.

A Transfer delivers files to one target. It keeps its connection open across
files and reconnects by itself; ``send`` either delivers the whole file under
its final name or raises TransferError (and then no file is left at the
destination under the final name).
"""

from __future__ import annotations

import abc
from typing import BinaryIO

from ftpdup.specs import Target


class TransferError(Exception):
    """A file was not delivered. ``permanent`` means retrying it can never succeed."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transfer(abc.ABC):
    """Deliver files to one target over one reused connection."""

    @abc.abstractmethod
    def send(self, source: BinaryIO, name: str) -> int:
        """Deliver the open file source under name; return its size in bytes.

        Raise TransferError if it was not delivered.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Close the connection, if any. The transfer reconnects if used again."""


def open_transfer(target: Target, timeout: float = 60.0) -> Transfer:
    """Return the Transfer for target's mode ("ftp" or "http"). Raise ValueError otherwise."""
    if target.mode == "ftp":
        from ftpdup.transfer.ftp import FtpTransfer

        return FtpTransfer(target, timeout)
    if target.mode == "http":
        from ftpdup.transfer.http import HttpTransfer

        return HttpTransfer(target, timeout)
    raise ValueError(f"unknown transfer mode {target.mode!r}")
