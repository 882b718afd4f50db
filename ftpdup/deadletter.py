"""Dead letters: files that will not be delivered, kept with their reason; replayed or purged.

``DEAD/files/STORED`` holds the file (``NAME.1``, ``NAME.2``... when the name
is taken) and ``DEAD/reasons.log`` one tab-separated line per file: UTC
time, stored name, reason, and the original name percent-encoded from its
bytes (so that a replay restores it exactly). DEAD is ``dead/INSTANCE`` for
a carrier and ``dead/LANE`` for what the manager set aside from a lane.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from dataclasses import dataclass

from ftpdup import moves
from ftpdup.config.values import printable
from ftpdup.logs import trail

log = logging.getLogger(__name__)
REASONS = "reasons.log"


def bury(path: str, dead_dir: str, reason: str, event: str = "dead_letter", **who) -> str:
    """Move the file at path into dead_dir with reason; return where it now is.

    The reason is written first, then the file moves by rename (same
    filesystem), so it is never copied or truncated, and a full disk leaves
    it where it was; it never replaces another dead letter. who (lane,
    subscriber, instance) goes into the file's trail. Raise OSError if it
    cannot be moved.
    """
    files = os.path.join(dead_dir, "files")
    os.makedirs(files, exist_ok=True)
    name = os.path.basename(path)
    size = os.lstat(path).st_size  # FileNotFoundError before anything is written
    clean_reason = printable(" ".join(reason.split()))
    original = urllib.parse.quote(os.fsencode(name), safe="")
    counter = 0
    while True:
        destination = os.path.join(files, f"{name}.{counter}" if counter else name)
        counter += 1
        if os.path.lexists(destination):
            continue
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        stored = printable(os.path.basename(destination))
        with open(os.path.join(dead_dir, REASONS), "a", encoding="utf-8") as reasons:
            reasons.write(f"{stamp}\t{stored}\t{clean_reason}\t{original}\n")
        try:
            moves.move(path, destination)  # never over another dead letter
            break
        except FileExistsError:
            continue
    log.warning(
        "dead letter %s -> %s: %s",
        printable(name),
        printable(destination),
        clean_reason,
        extra=trail(event, file=name, size=size, **who),
    )
    return destination


@dataclass(frozen=True)
class DeadLetter:
    """One file in the dead letters: where it is, its original name, its size, when it
    arrived (mtime) and was set aside (ctime: the rename), and why."""

    path: str
    name: str
    size: int
    mtime: float
    buried_at: float
    reason: str

    @property
    def id(self) -> str:
        """The name it is stored under: unique in its folder (NAME, NAME.1...)."""
        return os.path.basename(self.path)


def entries(dead_dir: str) -> list[DeadLetter]:
    """Return the files now in dead_dir, oldest first, with what reasons.log says of them."""
    files = os.path.join(dead_dir, "files")
    reasons: dict[str, tuple[str, str]] = {}
    try:
        with open(os.path.join(dead_dir, REASONS), encoding="utf-8", errors="replace") as log_file:
            for line in log_file:
                fields = line.rstrip("\n").split("\t")
                if len(fields) >= 3:
                    original = urllib.parse.unquote_to_bytes(fields[3]) if len(fields) > 3 else b""
                    reasons[fields[1]] = (fields[2], os.fsdecode(original))
    except FileNotFoundError:
        pass
    except OSError as error:  # the files are still listed, without their reasons
        log.warning("cannot read the reasons of %s: %s", dead_dir, error)
    found = []
    try:
        with os.scandir(files) as scan:
            for entry in scan:
                if not entry.is_file(follow_symlinks=False):
                    continue
                info = entry.stat(follow_symlinks=False)
                reason, original = reasons.get(printable(entry.name), ("", ""))
                name = original or entry.name
                letter = DeadLetter(
                    entry.path, name, info.st_size, info.st_mtime, info.st_ctime, reason
                )
                found.append(letter)
    except FileNotFoundError:
        return []
    return sorted(found, key=lambda letter: (letter.buried_at, letter.name))


def folders(data_root: str) -> list[str]:
    """Return the names of the dead-letter folders (carriers' and lanes') under data_root."""
    try:
        return sorted(os.listdir(os.path.join(data_root, "dead")))
    except FileNotFoundError:
        return []


def replay(letter: DeadLetter, queue: tuple[str, str, str], **who) -> bool:
    """Put a dead letter back in its carrier's queue under its original name.

    queue is the carrier's (pending, later, spool) folders. The file's age
    starts again now (its modification time), then it moves into the spool
    by a rename that never replaces a file: it is a dead letter or queued,
    never lost nor doubled. Return False (nothing moved) while a version of
    that name is queued (in the spool, or waiting before it).
    """
    pending, later, spool = queue
    if os.path.lexists(os.path.join(pending, letter.name)) or any(
        os.path.lexists(os.path.join(later, folder, letter.name)) for folder in _names(later)
    ):
        return False
    os.utime(letter.path)
    try:
        moves.move(letter.path, os.path.join(spool, letter.name))
    except FileExistsError:
        return False
    log.info(
        "replayed %s into %s",
        printable(letter.name),
        spool,
        extra=trail("replayed", file=letter.name, size=letter.size, **who),
    )
    return True


def replay_into_lane(letter: DeadLetter, incoming: str, **who) -> bool:
    """Put a dead letter back into a lane (a file expired there, or left by a lane that
    was removed and is back): its sprinkler takes it as an upload. Return False (nothing
    moved) while a file of that name is in the lane."""
    os.utime(letter.path)
    try:
        moves.move(letter.path, os.path.join(incoming, letter.name))
    except FileExistsError:
        return False
    log.info(
        "replayed %s into the lane %s",
        printable(letter.name),
        incoming,
        extra=trail("replayed", file=letter.name, size=letter.size, **who),
    )
    return True


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def purge(letter: DeadLetter, why: str, **who) -> None:
    """Delete a dead letter for good, logging why."""
    os.unlink(letter.path)
    log.info(
        "purged dead letter %s (%s)",
        printable(letter.name),
        why,
        extra=trail("purged", file=letter.name, size=letter.size, **who),
    )
