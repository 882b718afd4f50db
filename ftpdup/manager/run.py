"""The manager's commands: ``plan`` (print), ``apply`` (do), ``watch`` (trigger on change)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time

from ftpdup import consul_source
from ftpdup.host import files
from ftpdup.host.units import Systemctl
from ftpdup.manager.actual import read_actual
from ftpdup.manager.apply import Applier
from ftpdup.manager.plan import Plan, make_plan, manager_status, manager_status_path
from ftpdup.membership import Membership
from ftpdup.notify import Notifier
from ftpdup.settings import Settings, SettingsError

log = logging.getLogger(__name__)

MANAGER_UNIT = "ftpdup-manager.service"


def _client(host: Settings):
    return consul_source.connect(**host.consul_access())


def compute_plan(host: Settings, systemctl: Systemctl, client=None) -> Plan:
    """Read Consul (with client, or a new one) and the host; return the plan. Raise
    ConsulError or SettingsError."""
    snapshot = consul_source.load(
        client or _client(host), host.key_prefix, (host.collectd_service,),
        cluster_service=host.cluster_service,
    )  # fmt: skip
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
    """Apply Consul's configuration to this host; return 2 on a Consul error, 1 on failures.

    Every pass, whatever its end, is recorded for ``ftpdup status`` (when it
    finished, how): a manager that stops passing, or fails, is seen.
    """
    systemctl = Systemctl()
    try:
        client = _client(host)
        plan = compute_plan(host, systemctl, client)
    except (consul_source.ConsulError, SettingsError) as error:
        log.error("%s: nothing changed", error)
        record_consul_error(host, str(error))
        record_state(host, PASS_FILE, {"result": "consul error", "error": str(error)[:300]})
        return 2
    for error in plan.errors:
        log.error("%s", error)
    if not plan.changes():
        log.info("nothing to change")
        record_state(host, PASS_FILE, {"result": "ok", "failed_steps": 0})
        return 0
    failures = Applier(plan, host, systemctl).run()
    record_state(host, PASS_FILE, {"result": "failed" if failures else "ok",
                                   "failed_steps": failures})  # fmt: skip
    if host.cluster_service:
        _announce(host, client)
    if failures:
        log.error("%d steps failed; the next run tries again", failures)
        return 1
    log.info("applied")
    return 0


def _announce(host: Settings, client) -> None:
    """Tell Consul at once which lanes this host accepts now (the watch keeps it so)."""
    try:
        Membership(host, client).register()
    except consul_source.ConsulError as error:
        log.warning("%s: the watch tells Consul later", error)


PASS_FILE = "manager-pass.json"
WATCH_FILE = "watch.json"


def record_state(host: Settings, name: str, fields: dict) -> None:
    """Write what a manager pass or the watch says of itself into the status folder, with
    the time (read by ``ftpdup status`` and the metrics; never a secret)."""
    path = os.path.join(host.data_root, "status", name)
    text = json.dumps({**fields, "time": round(time.time(), 3)}, sort_keys=True) + "\n"
    try:
        files.write_atomic(path, text, 0o640)
    except OSError as failure:
        log.warning("cannot write %s: %s", path, failure)


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
        last.get("refused", {}), last.get("cluster"),
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
        self.consul_error = ""
        self.consul_since = 0.0
        self.recorded = False

    def _stop(self, _signum, _frame) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        client = _client(self.host)
        membership = Membership(self.host, client) if self.host.cluster_service else None
        self.notifier.ready("watching Consul")
        index, applied = 0, None
        while not self.stopping:
            self.notifier.ping()
            if membership is not None and membership.tick(client):
                self._run_manager("a drain or a lane leaving goes on")
            try:
                snapshot = consul_source.load(
                    client,
                    self.host.key_prefix,
                    (self.host.collectd_service,),
                    index,
                    consul_source.BLOCKING_WAIT,
                    self.host.cluster_service,
                )
            except consul_source.ConsulError as error:
                self.notifier.status(f"Consul unreachable: {error}"[:200])
                log.warning("%s; retrying in 5 s", error)
                self._consul_state(str(error))
                self._sleep(5)
                try:  # a rotated token (token file, environment) is read again
                    client = _client(self.host)
                except SettingsError as problem:
                    log.warning("%s", problem)
                continue
            self._consul_state("")
            index = snapshot.index if snapshot.index >= index else 0
            seen = (snapshot.index, sorted(snapshot.instances.items()), snapshot.members)
            if seen != applied:
                applied = seen
                self._run_manager()
        return 0

    def _consul_state(self, error: str) -> None:
        """Record whether Consul answers, when that changes (since when it does not)."""
        if error == self.consul_error and self.recorded:
            return
        if bool(error) != bool(self.consul_error) or not self.recorded:
            self.consul_since = time.time()
        self.consul_error, self.recorded = error, True
        fields = {"consul": "unreachable" if error else "ok", "error": error[:300],
                  "since": round(self.consul_since, 3)}  # fmt: skip
        record_state(self.host, WATCH_FILE, fields)

    def _run_manager(self, why: str = "Consul changed") -> None:
        log.info("%s: starting %s", why, MANAGER_UNIT)
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
