"""Adapter (several hosts): this host in the cluster's Consul, kept by the watch.

With ``cluster_service`` set, the watch registers the host with its local
Consul agent as that service (ID ``SERVICE-HOSTID``, the host ID in its
meta, the ingest's address and port), with two checks: a TCP check on the
FTP port, made by the agent, and a TTL check that only ftpdup passes, every
10 s, while the host is healthy:

- ``ftpdup-vsftpd.service`` is active;
- the manager finished a pass less than 3 minutes ago, without a failed
  step, and read Consul (a pass that could not read Consul keeps what it
  had: the host still serves);
- the data root's status folder is writable (a probe file is created and
  removed there: the watch may write nowhere else).

Its tags are ``lane-NAME`` for each lane it accepts now (the manager's
status file says which), so that ``lane-X.SERVICE.service.consul`` or the
health API with ``?tag=lane-X&passing`` finds the hosts that take lane X. A
drain puts the service in maintenance (out of DNS at once). Every 30 s, and
when it changes, it publishes its status report (no secret in it) under
``CLUSTER_KV_PREFIX/hosts/HOSTID`` for ``ftpdup status --all-hosts``. Consul
failing changes nothing on the host: the next tick tries again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time

from ftpdup import drains, fleet, report, status
from ftpdup.cluster import tag
from ftpdup.consul_source import ConsulError, call
from ftpdup.host.units import Systemctl
from ftpdup.settings import Settings

log = logging.getLogger(__name__)

TICK_SECONDS = 10.0
PUBLISH_SECONDS = 30.0
TTL = "30s"
PASS_MAX_AGE = 180.0


def service_id(host: Settings) -> str:
    return f"{host.cluster_service}-{host.host_id()}"


def summary_key(host: Settings, host_id: str | None = None) -> str:
    return f"{host.cluster_kv_prefix.strip('/')}/hosts/{host_id or host.host_id()}"


class Membership:
    """This host's registration, health and published status, refreshed by tick()."""

    def __init__(self, host: Settings, client) -> None:
        self.host = host
        self.client = client
        self.registered: tuple | None = None
        self.maintenance: bool | None = None
        self.next_tick = 0.0
        self.next_publish = 0.0
        self.published = ""
        self.trouble = ""

    def tick(self, client) -> bool:
        """Bring Consul in line with this host, when due (every TICK_SECONDS); return True
        if a manager pass is wanted now: the host drains or lets lanes leave, and each step
        of that (refusing logins, delivering, letting go) comes with a pass."""
        now = time.monotonic()
        if now < self.next_tick:
            return False
        self.next_tick = now + TICK_SECONDS
        self.client = client
        try:
            self.register()
            self._maintenance()
            healthy, why = self.health()
            check = f"service:{service_id(self.host)}:healthy"
            ttl = self.client.agent.check.ttl_pass if healthy else self.client.agent.check.ttl_fail
            call("renewing the health check", ttl, check, why[:200])
            self._publish(now)
            if self.trouble:
                log.info("Consul takes this host's registration again")
            self.trouble = ""
        except ConsulError as error:
            if str(error) != self.trouble:
                log.warning("%s: the host serves on as it is", error)
            self.trouble = str(error)
            self.registered = None  # register again once Consul answers
        placement = _manager_status(self.host)
        return placement.get("drain") == "draining" or bool(placement.get("leaving"))

    def register(self) -> None:
        """Register the service, again whenever its tags or address change. Raise
        ConsulError."""
        host = self.host
        accepting = _manager_status(host).get("accepting", [])
        tags = sorted(tag(lane) for lane in accepting)
        address = host.cluster_address or host.vsftpd_listen_address
        wanted = (tuple(tags), address, host.vsftpd_listen_port)
        if wanted == self.registered:
            return
        ident = service_id(host)
        target = f"{address or '127.0.0.1'}:{host.vsftpd_listen_port}"
        port_check = {"Name": "FTP port", "TCP": target, "Interval": "5s", "Timeout": "2s"}
        healthy = {"CheckID": f"service:{ident}:healthy", "Name": "ftpdup healthy", "TTL": TTL}
        call(
            f"registering {ident}",
            self.client.agent.service.register,
            host.cluster_service,
            service_id=ident,
            address=address or None,
            port=host.vsftpd_listen_port,
            tags=tags,
            meta={"host_id": host.host_id()},
            check=port_check,
            extra_checks=[healthy],
        )
        self.registered = wanted
        self.maintenance = None
        log.info("registered %s in Consul, accepting %d lanes", ident, len(tags))

    def _maintenance(self) -> None:
        """Keep the service in maintenance while the host drains (out of DNS)."""
        draining = drains.read(self.host.data_root) is not None
        if draining != self.maintenance:
            call(
                "setting maintenance",
                self.client.agent.service.maintenance,
                service_id(self.host),
                draining,
                "ftpdup drain" if draining else None,
            )
            self.maintenance = draining

    def health(self) -> tuple[bool, str]:
        """Return (healthy, why) by this host's own definition (see the module)."""
        active = subprocess.run(
            ["systemctl", "is-active", "--quiet", self.host.vsftpd_unit], stdin=subprocess.DEVNULL
        ).returncode == 0  # fmt: skip
        if not active:
            return False, f"{self.host.vsftpd_unit} is not active"
        last = report_status(self.host, report.PASS)
        age = time.time() - float(last.get("time", 0))
        if age > PASS_MAX_AGE:
            return False, f"no manager pass for {age:.0f} s"
        if last.get("result") == "failed":
            return False, f"the manager's last pass failed {last.get('failed_steps')} steps"
        probe = os.path.join(self.host.data_root, "status", f".probe-{os.getpid()}")
        try:
            with open(probe, "w") as handle:
                handle.write("ok")
            os.unlink(probe)
        except OSError as error:
            return False, f"the data root is not writable: {error.strerror}"
        return True, "vsftpd up, manager passing, data root writable"

    def _publish(self, now: float) -> None:
        """Publish this host's summary when it changed, and every PUBLISH_SECONDS."""
        found = json.loads(report.collect(self.host, Systemctl()).json())
        body = fleet.summary(self.host.host_id(), found)
        text = json.dumps(body, sort_keys=True)
        if text == self.published and now < self.next_publish:
            return
        value = json.dumps({**body, "time": round(time.time(), 3)}, separators=(",", ":"))
        call("publishing this host's status", self.client.kv.put, summary_key(self.host), value)
        self.published = text
        self.next_publish = now + PUBLISH_SECONDS


def _manager_status(host: Settings) -> dict:
    found = report_status(host, report.MANAGER).get("cluster")
    return found if isinstance(found, dict) else {}


def report_status(host: Settings, name: str) -> dict:
    """Return what the status file name of this host says (nothing if it cannot be read)."""
    return status.read(os.path.join(host.data_root, "status", name)) or {}
