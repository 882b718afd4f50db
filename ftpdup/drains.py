"""A host's drain (several hosts): it leaves the cluster for a while, holding nothing.

``ftpdup drain`` records when it began, root-only, in
``DATA_ROOT/manager/drain.json``; ``ftpdup undrain`` removes it. While it is
there the watch keeps the host's Consul service in maintenance (out of DNS
and of the health API's passing hosts), and the manager stops taking new
logins once ``cluster_drain_grace`` has passed and lets the lanes' workers
deliver what the host holds (see manager.plan.placement).
"""

from __future__ import annotations

import json
import os
import time

from ftpdup.host import files


def path(data_root: str) -> str:
    """Return where the drain is recorded."""
    return os.path.join(data_root, "manager", "drain.json")


def read(data_root: str) -> dict | None:
    """Return the drain ({"since": time}) or None when the host is not draining."""
    try:
        with open(path(data_root), encoding="utf-8") as handle:
            found = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"since": 0.0}  # unreadable: drained, to be safe; undrain removes it
    return found if isinstance(found, dict) else {"since": 0.0}


def start(data_root: str) -> dict:
    """Record a drain beginning now (kept if one is under way); return it. Raise OSError."""
    current = read(data_root)
    if current is not None:
        return current
    drain = {"since": round(time.time(), 3)}
    files.write_atomic(path(data_root), json.dumps(drain) + "\n", 0o600)
    return drain


def stop(data_root: str) -> bool:
    """End a drain; return False if there was none."""
    return files.remove(path(data_root))
