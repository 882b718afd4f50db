"""What each worker tells about itself in a file, for ``ftpdup status`` and the metrics.

A worker keeps a small JSON file in ``DATA_ROOT/status/KIND/NAME.json``: its
queue, its counters (kept across restarts), its last error, deliveries per
minute for the last hour and a histogram of transfer durations. The file is
rewritten (atomically) when what it says changes, at most every few seconds:
an idle worker never writes. The status folder belongs to the ftpdup user
and to the monitoring group, which may read it (never a secret in it).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import time
from typing import Callable

WRITE_INTERVAL = 5.0
# Upper bounds (seconds) of the transfer duration histogram; the last is +Inf.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)
COUNTERS = ("delivered_files", "delivered_bytes", "failures", "dead_letters_total")


def status_path(data_root: str, kind: str, name: str) -> str:
    """Return where the worker kind ("sprinkler"/"carrier") named name keeps its status."""
    return os.path.join(data_root, "status", kind, f"{name}.json")


def read(path: str) -> dict | None:
    """Return the status stored at path, or None if there is none or it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            found = json.load(handle)
        return found if isinstance(found, dict) else None
    except (OSError, ValueError):
        return None


class Counters:
    """Totals that survive restarts, deliveries per minute, and transfer durations."""

    def __init__(self, previous: dict | None) -> None:
        previous = previous or {}
        self.totals = {key: int(previous.get(key, 0)) for key in COUNTERS}
        self.minutes: dict[int, list[int]] = {
            int(minute): list(counts) for minute, counts in previous.get("minutes", {}).items()
        }
        self.buckets = list(previous.get("duration_buckets", [0] * (len(DURATION_BUCKETS) + 1)))
        self.duration_sum = float(previous.get("duration_sum", 0.0))

    def delivered(self, size: int, seconds: float, now: float) -> None:
        """Count one file of size bytes delivered in seconds."""
        self.totals["delivered_files"] += 1
        self.totals["delivered_bytes"] += size
        minute = int(now // 60)
        counts = self.minutes.get(minute)
        if counts is None:  # a new minute: forget those older than an hour
            for old in [m for m in self.minutes if m <= minute - 60]:
                del self.minutes[old]
            counts = self.minutes[minute] = [0, 0]
        counts[0] += 1
        counts[1] += size
        self.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def fields(self) -> dict:
        return {
            **self.totals,
            "minutes": {str(minute): counts for minute, counts in sorted(self.minutes.items())},
            "duration_buckets": self.buckets,
            "duration_sum": round(self.duration_sum, 3),
        }


class StatusFile:
    """Write a worker's status when it changes, at most every WRITE_INTERVAL seconds.

    The worker gives a cheap signature of its state at every turn of its
    loop; the full status is only built when it is written.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._signature: object = None
        self._dirty = False
        self._last_write = -WRITE_INTERVAL

    def changed(self, signature: object) -> None:
        """Note the worker's state; a different signature than last time means a new status."""
        if signature != self._signature:
            self._signature = signature
            self._dirty = True

    def flush(self, snapshot: Callable[[], dict], force: bool = False) -> float | None:
        """Write snapshot() if the state changed and a write is due (or force).

        Return the seconds until a pending write is due, or None.
        """
        if not self.path or not self._dirty:
            return None
        wait = self._last_write + WRITE_INTERVAL - time.monotonic()
        if wait > 0 and not force:
            return wait
        self._last_write = time.monotonic()
        self._dirty = False
        with contextlib.suppress(OSError):  # a status is a courtesy: never stop for it
            _write(self.path, {**snapshot(), "updated": round(time.time(), 3)})
        return None


def _write(path: str, fields: dict) -> None:
    """Write fields as JSON to path atomically, readable by the folder's group."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        # The folder takes its parent's group and setgid bit; asking for the
        # bit itself is refused to the workers (RestrictSUIDSGID=yes).
        os.makedirs(folder, mode=0o750, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.new"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640), "w") as handle:
        json.dump(fields, handle, sort_keys=True)
    os.replace(temporary, path)
