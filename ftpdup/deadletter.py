"""Dead letters: files that will not be delivered, kept with their reason.

``DEAD/files/NAME`` holds the file (``NAME.1``, ``NAME.2``... when the name is
taken) and ``DEAD/reasons.log`` one tab-separated line per file: UTC time,
stored name, reason.
"""

from __future__ import annotations

import logging
import os
import time

from ftpdup.config.values import printable

log = logging.getLogger(__name__)


def bury(path: str, dead_dir: str, reason: str) -> str:
    """Move the file at path into dead_dir with reason; return where it now is.

    The reason is written first, then the file moves by rename (same
    filesystem), so it is never copied or truncated, and a full disk leaves
    it where it was. One dead-letter directory has one writer at a time (its
    carrier, or the manager once that carrier is stopped). Raise OSError if
    it cannot be moved.
    """
    files = os.path.join(dead_dir, "files")
    os.makedirs(files, exist_ok=True)
    name = os.path.basename(path)
    os.lstat(path)  # FileNotFoundError before anything is written
    destination = os.path.join(files, name)
    counter = 0
    while os.path.lexists(destination):
        counter += 1
        destination = os.path.join(files, f"{name}.{counter}")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    clean_reason = printable(" ".join(reason.split()))
    stored = printable(os.path.basename(destination))
    with open(os.path.join(dead_dir, "reasons.log"), "a", encoding="utf-8") as reasons:
        reasons.write(f"{stamp}\t{stored}\t{clean_reason}\n")
    os.rename(path, destination)
    log.warning("dead letter %s -> %s: %s", printable(name), printable(destination), clean_reason)
    return destination
