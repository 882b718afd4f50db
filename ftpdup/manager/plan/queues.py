"""Queues and lane folders: directories wanted, queues left behind, files to fix, expire or
purge.

What is left behind is found on disk, never from what the last pass wrote:
a queue folder (pending, later, spool) or a lane folder (incoming, staging)
that no worker wants any more has its files buried with a reason, on every
pass until it is empty, whatever stopped an earlier pass half-way.
"""

from __future__ import annotations

import os

from ftpdup.consul_source import Snapshot
from ftpdup.desired import Desired
from ftpdup.layout import Layout
from ftpdup.manager.plan.model import Directory, Plan, Unfit
from ftpdup.settings import Settings

# The group that may read the status folder (sysusers.d makes it).
MONITORING_GROUP = "ftpdupmon"
# The data root's folders the workers write in (tmpfiles.d makes them for the default root).
WORKER_FOLDERS = ("staging", "pending", "later", "spool", "dead", "state")


def plan_directories(plan: Plan, desired: Desired, host: Settings) -> None:
    """Plan the data root's folders, those of applied lanes (their FTP home and staging)
    and those of carriers."""
    layout = Layout(host.data_root)
    plan.directories.append(Directory(layout.incoming("").rstrip("/"), "root", "root", 0o755))
    for kind in WORKER_FOLDERS:
        folder = os.path.join(host.data_root, kind)
        plan.directories.append(Directory(folder, host.service_user, host.service_group))
    plan.directories.append(Directory(os.path.join(host.data_root, "manager"), "root", "root",
                                      0o700))  # fmt: skip
    plan.directories.append(Directory(os.path.join(host.data_root, "status"), host.service_user,
                                      MONITORING_GROUP, 0o2750))  # fmt: skip
    for lane in desired.lanes.values():
        plan.directories.append(
            Directory(layout.incoming(lane.name), lane.user, host.service_group)
        )
        plan.directories.append(
            Directory(layout.staging(lane.name), host.service_user, host.service_group)
        )
    for instance in desired.carriers:
        for path in (layout.pending(instance), layout.spool(instance), layout.state(instance)):
            plan.directories.append(Directory(path, host.service_user, host.service_group))


def wanted_queues(desired: Desired) -> set[str]:
    """Return the queue folders some worker wants: every output and drain of every
    sprinkler (parked queues included), every carrier's."""
    wanted = set(desired.carriers)
    for spec in desired.sprinklers.values():
        wanted |= {output.instance for output in spec.outputs}
        wanted |= {drain.instance for drain in getattr(spec, "drains", ())}
    return wanted


def plan_left_behind(
    plan: Plan, desired: Desired, kept: set[str], snapshot: Snapshot, actual, host: Settings
) -> None:
    """Plan the burial of every queue and lane folder on disk that nothing wants."""
    for instance in sorted(actual.queues - wanted_queues(desired)):
        plan.bury_queues[instance] = gone_reason(instance, desired, kept, snapshot, actual, host)
    for lane in sorted(actual.lane_folders - set(desired.lanes) - kept):
        plan.bury_lanes[lane] = _lane_gone(lane, snapshot)


def _lane_gone(lane: str, snapshot: Snapshot) -> str:
    """Return why lane is not this host's any more: gone from Consul, or taken by others."""
    if any(found.name == lane for found in snapshot.config.lanes):
        return f"lane {lane} is accepted by other hosts"
    return f"lane {lane} removed from Consul"


def gone_reason(instance: str, desired: Desired, kept, snapshot: Snapshot, actual,
                host: Settings) -> str:  # fmt: skip
    """Return why the queue instance is not wanted any more."""
    parts = instance.split(":")
    if parts[0] not in desired.lanes and parts[0] not in kept:
        return _lane_gone(parts[0], snapshot)
    lane = next((lane for lane in snapshot.config.lanes if lane.name == parts[0]), None)
    subscriber = None
    if lane is not None:
        subscriber = next((sub for sub in lane.subscribers if sub.name == parts[1]), None)
    if subscriber is None:
        return f"subscriber {parts[1]} removed from lane {parts[0]}"
    if len(parts) < 3:
        return f"subscriber {parts[1]} of lane {parts[0]} changed its kind"
    if not subscriber.service:
        return f"subscriber {parts[1]} of lane {parts[0]} is no longer a Consul service"
    what = f"instance {parts[2]} of subscriber {parts[1]}'s service"
    if instance in actual.absent:
        return f"{what} not passing for longer than instance_grace={host.grace()} s"
    return f"{what} is gone or not passing"


def plan_unfit(plan: Plan, desired: Desired, actual, host: Settings) -> None:
    """Plan giving the files of applied lanes that the sprinkler may not link (moved in by
    hand, another owner or mode) to the lane's account, group read-write."""
    for lane in desired.lanes.values():
        paths = actual.unfit.get(lane.name)
        if paths:
            plan.fix_owners[lane.name] = Unfit(lane.uid, host.service_group, tuple(paths))


def plan_expiry(plan: Plan, desired: Desired, actual, now: float) -> None:
    """Plan the expiry of lane files older than the lane's lifetime.

    A file's age counts from when it came into the lane (its status change
    time, which a rename, a write or a new time sets), never from a time a
    client or a copy set.
    """
    for lane in desired.lanes.values():
        if lane.lifetime is None:
            continue
        limit = now - lane.lifetime * 60
        expired = sorted(
            name for name, came in actual.lane_files.get(lane.name, ()) if came < limit
        )
        if expired:
            plan.expire[lane.name] = (lane.lifetime, expired)


def plan_retention(plan: Plan, actual, host: Settings, now: float) -> None:
    """Plan the deletion of dead letters set aside more than the retention ago (a retention
    of 0 keeps them until they are purged by hand)."""
    if not host.dead_letter_retention_days:
        return
    limit = now - host.dead_letter_retention_days * 86400
    for folder, letters in actual.dead_letters.items():
        old = [letter.path for letter in letters if letter.buried_at < limit]
        if old:
            plan.purge[folder] = old
