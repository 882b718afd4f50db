"""Logging to stderr: syslog-level prefixes under systemd's journal, timestamps otherwise."""

from __future__ import annotations

import logging
import os
import sys

_PRIORITIES = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    """Prefix each line with ``<N>`` so the journal records its level."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITIES.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def setup(level: str = "INFO", name: str = "ftpdup") -> None:
    """Send log records at level and above to stderr, in the journal's format when under it."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        handler.setFormatter(_JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {name} %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # One line per HTTP request of a library is noise, even when debugging ftpdup.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
