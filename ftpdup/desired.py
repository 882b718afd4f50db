"""Pure logic: the workers a configuration asks for (one sprinkler per lane, carriers)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ftpdup.config.model import Lane, Subscriber
from ftpdup.config.names import safe_component
from ftpdup.consul_source import Instance, Snapshot
from ftpdup.layout import Layout, carrier_instance
from ftpdup.settings import Settings
from ftpdup.specs import CarrierSpec, Drain, Output, SprinklerSpec, Target
from ftpdup.status import status_path


@dataclass(frozen=True)
class Desired:
    """Lanes and worker specs wanted on this host, keyed by name / instance name."""

    lanes: dict[str, Lane] = field(default_factory=dict)
    sprinklers: dict[str, SprinklerSpec] = field(default_factory=dict)
    carriers: dict[str, CarrierSpec] = field(default_factory=dict)


def desired_state(snapshot: Snapshot, host: Settings) -> Desired:
    """Given a Consul snapshot and the host settings, return the lanes and workers wanted."""
    layout = Layout(host.data_root)
    desired = Desired()
    for lane in snapshot.config.lanes:
        desired.lanes[lane.name] = lane
        for subscriber in lane.subscribers:
            for instance, target in _targets(lane, subscriber, snapshot.instances):
                desired.carriers[instance] = CarrierSpec(
                    instance=instance,
                    spool=layout.spool(instance),
                    dead=layout.dead(instance),
                    target=target,
                    state=layout.state(instance),
                    status=status_path(host.data_root, "carrier", instance),
                    max_age=host.carrier_max_age,
                    retry_max_delay=host.retry_max_delay,
                    timeout=host.transfer_timeout,
                    stop_grace=stop_grace(host.stop_timeout),
                )
    by_lane = carriers_by_lane(desired.carriers)
    for lane in snapshot.config.lanes:
        refused = refused_subscribers(snapshot, lane.name)
        desired.sprinklers[lane.name] = sprinkler_spec(
            lane, refused, by_lane.get(lane.name, []), host
        )
    return desired


def carriers_by_lane(carriers) -> dict[str, list[str]]:
    """Given carrier instance names, return them by lane."""
    found: dict[str, list[str]] = {}
    for instance in carriers:
        found.setdefault(instance.split(":", 1)[0], []).append(instance)
    return found


def refused_subscribers(snapshot: Snapshot, lane: str) -> list[str]:
    """Return the names of lane's subscribers whose Consul value is refused."""
    return sorted(sub for name, sub in snapshot.config.broken_subscribers if name == lane)


def sprinkler_spec(lane: Lane, refused: list[str], carriers: list[str],
                   host: Settings) -> SprinklerSpec:  # fmt: skip
    """Return the sprinkler spec of lane, given the names of its subscribers whose Consul
    value is refused and the lane's carrier instance names wanted on this host.

    Each subscriber gets its carrier's queue, or its service instances'
    queues (and its parked queue as a drain into them), or, with no worker
    now, a parked queue where its files wait.
    """
    layout = Layout(host.data_root)
    why = {sub.name: f"Consul service {sub.service!r} has no passing instance"
           for sub in lane.subscribers if sub.service}  # fmt: skip
    why.update({name: "its value in Consul is refused (see ftpdup check)" for name in refused})
    names = sorted({sub.name for sub in lane.subscribers} | set(refused))
    outputs, drains = [], []
    for name in names:
        own = carrier_instance(lane.name, name)
        instances = sorted(i for i in carriers if i.startswith(own + ":"))
        if own in carriers:
            outputs.append(output(layout, own))
        elif instances:
            outputs += [output(layout, instance) for instance in instances]
            queue = (layout.pending(own), layout.spool(own), layout.later(own))
            drains.append(Drain(own, *queue, into=tuple(instances)))
        else:
            outputs.append(output(layout, own, f"subscriber {name}: {why.get(name, 'no worker')}"))
    return SprinklerSpec(
        lane=lane.name,
        incoming=layout.incoming(lane.name),
        staging=layout.staging(lane.name),
        outputs=tuple(outputs),
        exclude=lane.exclude,
        status=status_path(host.data_root, "sprinkler", lane.name),
        drains=tuple(drains),
        max_age=host.carrier_max_age,
    )


def output(layout: Layout, instance: str, parked: str = "") -> Output:
    """Return the sprinkler output of queue instance (parked: why no carrier reads it)."""
    return Output(
        instance,
        layout.pending(instance),
        layout.spool(instance),
        layout.later(instance),
        layout.dead(instance),
        parked,
    )


def stop_grace(stop_timeout: int) -> float:
    """Return how long a stopping carrier may finish its file: two thirds of the stop timeout."""
    return max(1.0, round(stop_timeout * 2 / 3, 1))


def _targets(lane: Lane, subscriber: Subscriber, instances: dict[str, tuple[Instance, ...]]):
    """Yield (carrier instance name, Target) for a subscriber: one, or one per service instance."""
    if subscriber.service is None:
        yield (
            carrier_instance(lane.name, subscriber.name),
            _target(subscriber, subscriber.host, subscriber.port),
        )
        return
    for instance in instances.get(subscriber.service, ()):
        name = carrier_instance(lane.name, subscriber.name, safe_component(instance.id))
        port = subscriber.port if subscriber.port is not None else instance.port
        yield name, _target(subscriber, instance.address, port)


def _target(subscriber: Subscriber, host, port) -> Target:
    """Return the delivery target of subscriber at host:port."""
    options = {
        field.name: getattr(subscriber, field.name)
        for field in dataclasses.fields(Target)
        if field.name not in ("host", "port")
    }
    return Target(host=host, port=port, **options)
