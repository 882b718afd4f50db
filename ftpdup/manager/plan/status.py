"""The manager's status file: what Consul asks of this host, for ``ftpdup status``."""

from __future__ import annotations

import json
import os

from ftpdup import pauses
from ftpdup.consul_source import Snapshot
from ftpdup.desired import Desired
from ftpdup.manager.plan.model import Plan, write_if_changed
from ftpdup.settings import Settings


def manager_status_path(host: Settings) -> str:
    """Return where the manager tells ``ftpdup status`` what Consul asks of this host."""
    return os.path.join(host.data_root, "status", "manager.json")


def manager_status(lanes, carriers, held: dict, problems: list[str], consul_error: str,
                   parked: dict | None = None, paused: dict | None = None,
                   refused: dict | None = None, cluster: dict | None = None) -> str:  # fmt: skip
    """Return the text of the manager's status file (no clock: it changes with its content)."""
    return (
        json.dumps(
            {
                "lanes": sorted(lanes),
                "carriers": sorted(carriers),
                "held": held,
                "parked": parked or {},
                "paused": paused or {},
                "refused": refused or {},
                "cluster": cluster,
                "problems": problems,
                "consul_error": consul_error,
            },
            sort_keys=True,
            indent=1,
        )
        + "\n"
    )


def parked_queues(desired: Desired) -> dict[str, str]:
    """Return the parked queues of the applied lanes: queue -> why no carrier reads it."""
    return {
        output.instance: output.parked
        for spec in desired.sprinklers.values()
        for output in spec.outputs
        if getattr(output, "parked", "")
    }


def refusals(snapshot: Snapshot, refused_lanes: dict[str, str]) -> dict[str, str]:
    """Return what Consul holds that this host does not apply: LANE or LANE:SUB -> why (the
    first error, with its key path)."""
    config = snapshot.config
    found: dict[str, str] = {}
    for problem in config.errors():
        parts = problem.path.split("/")
        if len(parts) < 2 or parts[0] != "incoming_directories":
            continue
        lane = parts[1]
        if (
            len(parts) >= 4
            and parts[2] == "subscribers"
            and (lane, parts[3]) in (config.broken_subscribers)
        ):
            found.setdefault(f"{lane}:{parts[3]}", str(problem))
        elif lane in config.broken_lanes:
            found.setdefault(lane, str(problem))
    for lane, why in refused_lanes.items():
        found.setdefault(lane, why)
    return found


def plan_status(plan: Plan, desired: Desired, held: dict, actual, host: Settings,
                refused: dict[str, str], cluster: dict | None = None) -> None:  # fmt: skip
    """Plan the manager's status file: the workers Consul asks for, held instances, parked
    queues, paused carriers, refused lanes and subscribers, problems."""
    paused = {
        name: pause
        for name in desired.carriers
        if (pause := pauses.paused(name, actual.paused)) is not None
    }
    text = manager_status(
        desired.sprinklers, desired.carriers, held, plan.errors, "", parked_queues(desired),
        paused, refused, cluster,
    )  # fmt: skip
    write_if_changed(plan, actual, manager_status_path(host), text, 0o640)
