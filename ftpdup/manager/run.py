"""The manager's commands: ``plan`` (print), ``apply`` (do), ``watch`` (trigger on change)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time

from ftpdup import consul_source
from ftpdup.host import files
from ftpdup.host.units import Systemctl
from ftpdup.manager.actual import read_actual
from ftpdup.manager.apply import Applier
from ftpdup.manager.plan import Plan, make_plan, manager_status, manager_status_path
from ftpdup.notify import Notifier
from ftpdup.settings import Settings, SettingsError

log = logging.getLogger(__name__)

MANAGER_UNIT = "ftpdup-manager.service"


def _client(host: Settings):
    return consul_source.connect(**host.consul_access())


def compute_plan(host: Settings, systemctl: Systemctl) -> Plan:
    """Read Consul and the host; return the plan. Raise ConsulError or SettingsError."""
    snapshot = consul_source.load(_client(host), host.key_prefix, (host.collectd_service,))
    return make_plan(snapshot, host, read_actual(host, systemctl), time.time())


def plan_command(host: Settings) -> int:
    """Print what ``apply`` would change; return 2 if Consul cannot be read."""
    try:
        plan = compute_plan(host, Systemctl())
    except (consul_source.ConsulError, SettingsError) as error:
        log.error("%s: nothing would be changed", error)
        return 2
    lines = plan.lines()
    print("\n".join(lines) if lines else "nothing to change")
    return 0


def apply_command(host: Settings) -> int:
    """Apply Consul's configuration to this host; return 2 on a Consul error, 1 on failures."""
    systemctl = Systemctl()
    try:
        plan = compute_plan(host, systemctl)
    except (consul_source.ConsulError, SettingsError) as error:
        log.error("%s: nothing changed", error)
        record_consul_error(host, str(error))
        return 2
    for error in plan.errors:
        log.error("%s", error)
    if not plan.changes():
        log.info("nothing to change")
        return 0
    failures = Applier(plan, host, systemctl).run()
    if failures:
        log.error("%d steps failed; the next run tries again", failures)
        return 1
    log.info("applied")
    return 0


def record_consul_error(host: Settings, error: str) -> None:
    """Say in the manager's status file that Consul could not be read (the rest stays)."""
    path = manager_status_path(host)
    try:
        with open(path, encoding="utf-8") as handle:
            last = json.load(handle)
    except (OSError, ValueError):
        last = {}
    text = manager_status(
        last.get("lanes", []), last.get("carriers", []), last.get("held", {}),
        last.get("problems", []), error, last.get("parked", {}), last.get("paused", {}),
    )  # fmt: skip
    try:
        files.write_atomic(path, text, 0o640)
    except OSError as failure:
        log.warning("cannot write %s: %s", path, failure)


class Watch:
    """Wait on Consul (blocking queries) and run the manager unit whenever something changed."""

    def __init__(self, host: Settings) -> None:
        self.host = host
        self.stopping = False
        self.notifier = Notifier()

    def _stop(self, _signum, _frame) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        client = _client(self.host)
        self.notifier.ready("watching Consul")
        index, applied = 0, None
        while not self.stopping:
            self.notifier.ping()
            try:
                snapshot = consul_source.load(
                    client,
                    self.host.key_prefix,
                    (self.host.collectd_service,),
                    index,
                    consul_source.BLOCKING_WAIT,
                )
            except consul_source.ConsulError as error:
                self.notifier.status(f"Consul unreachable: {error}"[:200])
                log.warning("%s; retrying in 5 s", error)
                self._sleep(5)
                continue
            index = snapshot.index if snapshot.index >= index else 0
            seen = (snapshot.index, sorted(snapshot.instances.items()))
            if seen != applied:
                applied = seen
                self._run_manager()
        return 0

    def _run_manager(self) -> None:
        log.info("Consul changed: starting %s", MANAGER_UNIT)
        result = subprocess.run(
            ["systemctl", "start", MANAGER_UNIT],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            log.warning("%s failed: %s", MANAGER_UNIT, result.stderr.strip())
        self.notifier.status(f"last change applied {time.strftime('%H:%M:%S')}")

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            self.notifier.ping()
            time.sleep(0.5)
