"""Pure reconcile: desired state (from Consul) + actual state (of this host) -> a Plan.

Nothing here does I/O. One module per concern, each "given the desired and
the actual state, add its part to the plan", composed in ``make_plan``:
accounts and lane records (``accounts``), workers (``workers``), the lanes
this host accepts among several hosts (``placement``), queues and lane
folders (``queues``), vsftpd, collectd, and the manager's status file
(``status``). Entries Consul holds but that cannot be used (a broken lane or
subscriber, an account ftpdup may not touch) keep what the host already has
for them: only what is really gone from Consul is removed, and its queued
files are buried, never deleted.
"""

from __future__ import annotations

from ftpdup.consul_source import Snapshot
from ftpdup.desired import desired_state
from ftpdup.layout import Layout
from ftpdup.manager.plan.accounts import (
    LaneRecord,
    lane_refusals,
    plan_account,
    plan_lane_records,
    plan_removed_lanes,
)
from ftpdup.manager.plan.collectd import collectd_refusal, plan_collectd
from ftpdup.manager.plan.model import Directory, LaneAccount, Plan, Unfit
from ftpdup.manager.plan.placement import plan_placement
from ftpdup.manager.plan.queues import (
    plan_directories,
    plan_expiry,
    plan_left_behind,
    plan_retention,
    plan_unfit,
)
from ftpdup.manager.plan.status import (
    manager_status,
    manager_status_path,
    plan_status,
    refusals,
)
from ftpdup.manager.plan.vsftpd import plan_vsftpd
from ftpdup.manager.plan.workers import (
    absent_path,
    complete_sprinklers,
    hold_absent_instances,
    keep_broken_subscribers,
    keep_lanes,
    plan_workers,
)
from ftpdup.settings import Settings

__all__ = [
    "Directory",
    "LaneAccount",
    "LaneRecord",
    "Plan",
    "Unfit",
    "absent_path",
    "collectd_refusal",
    "lane_refusals",
    "make_plan",
    "manager_status",
    "manager_status_path",
]


def make_plan(snapshot: Snapshot, host: Settings, actual, now: float) -> Plan:
    """Given what Consul asks for and what the host has, return the changes to make."""
    problems = [*snapshot.config.errors(), *snapshot.instance_problems]
    plan = Plan(errors=[str(problem) for problem in problems])
    layout = Layout(host.data_root)
    desired = desired_state(snapshot, host)
    records = {lane: LaneRecord.from_json(text) for lane, text in actual.lanes.items()}
    kept = set(snapshot.config.broken_lanes) & set(actual.lanes)
    refused = lane_refusals(snapshot.config.lanes, actual.accounts)
    plan.errors += list(refused.values())
    for lane in sorted(desired.lanes.values(), key=lambda lane: lane.name):
        if lane.name in refused:
            kept.add(lane.name)
        else:
            plan_account(plan, lane, records.get(lane.name), actual, layout)
    keep_lanes(desired, kept, actual)
    keep_broken_subscribers(desired, snapshot, actual)
    held = hold_absent_instances(plan, desired, snapshot, actual, host, now)
    complete_sprinklers(desired, snapshot, host)
    cluster = plan_placement(desired, snapshot, actual, host, now)
    refusing = set(cluster["refusing"]) if cluster else set()
    plan_lane_records(plan, desired.lanes.values(), records, host)
    plan_directories(plan, desired, host)
    plan_workers(plan, desired, held, host, actual)
    plan_left_behind(plan, desired, kept, snapshot, actual, host)
    configured = {lane.name for lane in snapshot.config.lanes}
    plan_removed_lanes(plan, set(desired.lanes) | kept, records, actual, configured)
    plan_vsftpd(plan, desired, records, kept, host, actual, refusing)
    plan_unfit(plan, desired, actual, host)
    plan_expiry(plan, desired, actual, now)
    plan_retention(plan, actual, host, now)
    plan_collectd(plan, desired, snapshot, host, actual)
    plan_status(plan, desired, held, actual, host, refusals(snapshot, refused), cluster)
    return plan
