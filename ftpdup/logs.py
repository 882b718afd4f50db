"""Logging: the journal's native protocol under systemd (with structured fields), stderr otherwise.

A log line about one file carries the fields of the per-file trail
(``FTPDUP_EVENT``, ``FTPDUP_LANE``, ``FTPDUP_SUBSCRIBER``, ``FTPDUP_INSTANCE``,
``FTPDUP_FILE``, ``FTPDUP_SIZE``, ``FTPDUP_DURATION_MS``), so that
``journalctl FTPDUP_FILE=NAME`` shows the whole life of a file across units.
Pass them with ``extra=trail(...)``; the text of the line reads well alone.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITIES = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


def trail(event: str, **fields: object) -> dict:
    """Return the ``extra`` of a log call that belongs to a file's trail.

    fields: lane, subscriber, instance, file (the name as os.listdir gives it),
    size (bytes), duration_ms; None values are left out.
    """
    values: dict[str, bytes] = {"FTPDUP_EVENT": event.encode()}
    for key, value in fields.items():
        if value is None:
            continue
        data = os.fsencode(value) if key == "file" else str(value).encode("utf-8", "replace")
        values[f"FTPDUP_{key.upper()}"] = data
    return {"trail": values}


class JournalHandler(logging.Handler):
    """Send each record as one journal entry (native protocol), with its trail fields."""

    def __init__(self, identifier: str = "ftpdup", path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.identifier = identifier.encode()
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.socket.connect(path)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {
                "MESSAGE": self.format(record).encode("utf-8", "backslashreplace"),
                "PRIORITY": str(_PRIORITIES.get(record.levelno, 6)).encode(),
                "SYSLOG_IDENTIFIER": self.identifier,
                "CODE_FILE": record.pathname.encode("utf-8", "replace"),
                "CODE_LINE": str(record.lineno).encode(),
                **getattr(record, "trail", {}),
            }
            self.socket.send(b"".join(_field(name, value) for name, value in fields.items()))
        except Exception:  # a lost log line must never stop a worker
            self.handleError(record)

    def close(self) -> None:
        self.socket.close()
        super().close()


def _field(name: str, value: bytes) -> bytes:
    """Return one field in the journal's native format (binary-safe when it holds a newline)."""
    if b"\n" in value:
        return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name.encode() + b"=" + value + b"\n"


class _PrefixedFormatter(logging.Formatter):
    """Prefix each line with ``<N>`` so a journal reading stderr records its level."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITIES.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def setup(level: str = "INFO", name: str = "ftpdup", journal_too: bool = False) -> None:
    """Send log records at level and above to the journal (under systemd) or to stderr.

    With journal_too (an operator's command that changes files, such as a
    replay), records go to stderr and to the journal, for the files' trail.
    """
    handlers: list[logging.Handler] = []
    under_systemd = os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID")
    if under_systemd or journal_too:
        try:
            journal = JournalHandler(name)
            journal.setFormatter(logging.Formatter("%(message)s"))
            handlers.append(journal)
        except OSError:
            pass
    if not under_systemd or not handlers:
        stream = logging.StreamHandler(sys.stderr)
        if under_systemd:
            stream.setFormatter(_PrefixedFormatter("%(message)s"))
        else:
            stream.setFormatter(logging.Formatter(f"%(asctime)s {name} %(levelname)s %(message)s"))
        handlers.append(stream)
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # One line per HTTP request of a library is noise, even when debugging ftpdup.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
