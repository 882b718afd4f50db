"""Subscribers paused by an operator: their carriers stay stopped, their files queue.

A pause names ``LANE:SUB`` (every carrier of that subscriber, each instance
of its Consul service included) or ``LANE:SUB:INSTANCE`` (one carrier). The
pauses are kept on this host, root-only, in ``DATA_ROOT/manager/paused.json``:
they survive manager passes, restarts and reboots, and a pause or a resume
works while Consul is down. They are not kept in Consul: ftpdup's Consul
token reads and never writes, and a pause is one host's maintenance action
(with several hosts, pause on each; the rolling playbook does it in turn).
The manager keeps a paused carrier stopped and disabled (so nothing starts it
at boot), the lane's sprinkler keeps queuing for it, and the manager's status
file tells ``ftpdup status`` (a warning, not critical).
"""

from __future__ import annotations

import json
import os
import time


def path(data_root: str) -> str:
    """Return where the pauses are kept."""
    return os.path.join(data_root, "manager", "paused.json")


def parse(text: str | None) -> dict[str, dict]:
    """Return the pauses stored in text: name -> {"since": time, "reason": text}; none if
    text is missing or unreadable."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(name): entry for name, entry in found.items() if isinstance(entry, dict)}


def render(pauses: dict[str, dict]) -> str:
    return json.dumps(pauses, sort_keys=True, indent=1) + "\n"


def paused(instance: str, pauses: dict[str, dict]) -> dict | None:
    """Return the pause that holds carrier instance (its own, or its subscriber's), or None."""
    parts = instance.split(":")
    return pauses.get(instance) or pauses.get(":".join(parts[:2]))


def add(pauses: dict[str, dict], name: str, reason: str, now: float | None = None) -> None:
    """Record a pause of name (LANE:SUB or LANE:SUB:INSTANCE)."""
    pauses[name] = {"since": round(now if now is not None else time.time(), 3), "reason": reason}
