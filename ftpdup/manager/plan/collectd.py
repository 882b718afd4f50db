"""collectd: its filecount configuration for every lane and spool, sent to a Consul service."""

from __future__ import annotations

from ftpdup.consul_source import Snapshot
from ftpdup.desired import Desired
from ftpdup.host import collectd
from ftpdup.layout import Layout
from ftpdup.manager.plan.model import Plan, write_if_changed
from ftpdup.settings import Settings


def collectd_refusal(snapshot: Snapshot, host: Settings) -> str | None:
    """Return why the collectd configuration cannot be written now, or None."""
    if host.collectd_service and not snapshot.instances.get(host.collectd_service):
        return (
            f"collectd service {host.collectd_service!r} has no passing "
            "instance: collectd configuration left as it is"
        )
    return None


def plan_collectd(plan: Plan, desired: Desired, snapshot: Snapshot, host: Settings, actual):
    """Plan collectd's configuration (when a collectd service is set) and its reload."""
    if not host.collectd_service:
        return
    refusal = collectd_refusal(snapshot, host)
    if refusal:
        plan.errors.append(refusal)
        return
    layout = Layout(host.data_root)
    instances = snapshot.instances[host.collectd_service]
    directories = [(f"incoming-{lane}", layout.incoming(lane)) for lane in desired.lanes]
    directories += [(f"spool-{i}", layout.spool(i)) for i in desired.carriers]
    server = (instances[0].address, instances[0].port)
    text = collectd.render(directories, server, host.collectd_hostname)
    plan.reload_collectd = write_if_changed(plan, actual, host.collectd_config, text, 0o644)
