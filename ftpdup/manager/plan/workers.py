"""Workers: specs, template drop-ins and unit actions; kept, held and removed workers."""

from __future__ import annotations

import json
import os

from ftpdup import pauses, specs
from ftpdup.consul_source import Snapshot
from ftpdup.desired import Desired, carriers_by_lane, refused_subscribers, sprinkler_spec
from ftpdup.host.units import (
    DEFAULT_DATA_ROOT,
    template_drop_in,
    template_path,
    unit_name,
    watch_drop_in,
    watch_drop_in_path,
)
from ftpdup.manager.plan.model import RUNNING, Plan, write_if_changed
from ftpdup.settings import Settings


def keep_lanes(desired: Desired, kept: set[str], actual) -> None:
    """For lanes that cannot be applied, keep their current workers exactly as they are."""
    for lane in kept:
        desired.lanes.pop(lane, None)
        desired.sprinklers.pop(lane, None)
        for instance in [i for i in desired.carriers if i.split(":", 1)[0] == lane]:
            del desired.carriers[instance]
        sprinkler = load(actual.specs["sprinkler"].get(lane))
        if sprinkler is not None:
            desired.sprinklers[lane] = sprinkler
        for instance, text in actual.specs["carrier"].items():
            carrier = load(text) if instance.split(":", 1)[0] == lane else None
            if carrier is not None:
                desired.carriers[instance] = carrier


def load(text: str | None):
    """Return the spec stored in text, or None if there is none or it is unreadable."""
    try:
        return specs.from_json(text) if text is not None else None
    except ValueError:
        return None


def keep_broken_subscribers(desired: Desired, snapshot: Snapshot, actual) -> None:
    """A subscriber whose Consul value is bad keeps its current carriers and spools."""
    for lane, subscriber in snapshot.config.broken_subscribers:
        if lane not in desired.lanes:
            continue
        for instance, text in actual.specs["carrier"].items():
            if instance.split(":")[:2] == [lane, subscriber] and (spec := load(text)):
                desired.carriers[instance] = spec


def hold_absent_instances(
    plan: Plan, desired: Desired, snapshot: Snapshot, actual, host: Settings, now: float
) -> dict[str, float]:
    """Keep the carriers of service instances that stopped passing, for instance_grace seconds.

    A rolling restart or a short health-check failure must not lose files:
    such an instance keeps its spec, spool and place in the sprinkler's
    outputs, its unit is stopped (files wait for it), and it starts again
    when the instance passes again. Past the grace it is removed like any
    gone carrier, its queue buried. Return the held instance names.
    """
    services = {
        (lane.name, sub.name)
        for lane in snapshot.config.lanes
        for sub in lane.subscribers
        if sub.service and lane.name in desired.lanes
    }
    absent: dict[str, float] = {}
    for instance, text in sorted(actual.specs["carrier"].items()):
        parts = instance.split(":")
        if instance in desired.carriers or len(parts) != 3 or tuple(parts[:2]) not in services:
            continue
        since = actual.absent.get(instance, now)
        spec = load(text)
        if spec is None or now - since >= host.grace():
            continue
        desired.carriers[instance] = spec
        absent[instance] = since
    text = json.dumps(absent, sort_keys=True, indent=1) + "\n"
    write_if_changed(plan, actual, absent_path(host), text, 0o600)
    return absent


def absent_path(host: Settings) -> str:
    """Return where the manager keeps when each held service instance stopped passing."""
    return os.path.join(host.data_root, "manager", "absent.json")


def complete_sprinklers(desired: Desired, snapshot: Snapshot, host: Settings) -> None:
    """Give each applied lane's sprinkler the queues of the carriers finally wanted (kept
    and held ones included), and parked queues for subscribers with none."""
    by_lane = carriers_by_lane(desired.carriers)
    for name, lane in desired.lanes.items():
        refused = refused_subscribers(snapshot, name)
        desired.sprinklers[name] = sprinkler_spec(lane, refused, by_lane.get(name, []), host)


def plan_workers(plan: Plan, desired: Desired, held, host: Settings, actual) -> None:
    """Plan spec files, template drop-ins and unit actions for every worker, wanted or gone."""
    for kind, wanted in (("sprinkler", desired.sprinklers), ("carrier", desired.carriers)):
        template = template_drop_in(
            kind,
            host.restart_period,
            host.restart_variance,
            host.stop_timeout,
            host.data_root,
            host.etc_dir,
            host.service_user,
            host.service_group,
        )
        write_if_changed(plan, actual, template_path(host.unit_dir, kind), template, 0o644)
        if kind == "sprinkler" and host.data_root != DEFAULT_DATA_ROOT:
            path = watch_drop_in_path(host.unit_dir)
            text = watch_drop_in(host.data_root)
            plan.restart_watch = write_if_changed(plan, actual, path, text, 0o644)
        for name, spec in wanted.items():
            unit = unit_name(kind, name)
            text = specs.to_json(spec)
            changed = actual.specs[kind].get(name) != text
            if changed:
                plan.writes[host.spec_path(kind, name)] = (text, 0o600)
            running = actual.active.get(unit) in RUNNING
            if kind == "carrier" and name in held:
                if running:
                    plan.hold.add(unit)
            elif kind == "carrier" and pauses.paused(name, actual.paused):
                if running or name not in actual.specs[kind]:
                    plan.pause.add(unit)
            elif name not in actual.specs[kind]:
                plan.enable.add(unit)
                plan.start.add(unit)
            elif changed:
                plan.restart.add(unit)
            elif not running:
                plan.enable.add(unit)  # a pause disabled it; else this changes nothing
                plan.start.add(unit)
        for name in set(actual.specs[kind]) - set(wanted):
            plan.stop.add(unit_name(kind, name))
            plan.removes.append(host.spec_path(kind, name))
    # A worker whose spec a crashed pass already removed may still run: stop it too.
    for unit, state in actual.active.items():
        if state in RUNNING and unit not in _units(desired):
            plan.stop.add(unit)
    # New and removed units change what ftpdup.target wants: systemd must reload.
    plan.daemon_reload |= bool(plan.enable or plan.stop)
    plan.daemon_reload |= any(path.startswith(host.unit_dir) for path in plan.writes)


def _units(desired: Desired) -> set[str]:
    units = {unit_name("sprinkler", name) for name in desired.sprinklers}
    return units | {unit_name("carrier", name) for name in desired.carriers}
