"""systemd units of the workers: names, drop-in texts (pure) and a systemctl adapter."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterable

from ftpdup.config.names import systemd_escape, systemd_unescape
from ftpdup.config.values import has_control

log = logging.getLogger(__name__)

SETTINGS_DROP_IN = "40-ftpdup-settings.conf"
HEADER = "# Managed by ftpdup: do not edit, it is rewritten by the manager.\n"
KINDS = ("sprinkler", "carrier")
DEFAULT_DATA_ROOT = "/var/lib/ftpdup"
DEFAULT_ETC_DIR = "/etc/ftpdup"
DEFAULT_USER = "ftpdup"
# systemctl start/restart takes this many units at a time: each batch is
# running before the next is asked for, so a few hundred units never start at once.
START_BATCH = 50


def unit_name(kind: str, name: str) -> str:
    """Return the unit of worker kind for a lane or carrier instance name."""
    return f"ftpdup-{kind}@{systemd_escape(name)}.service"


def parse_unit_name(unit: str) -> tuple[str, str] | None:
    """Return (kind, name) of a worker unit name, or None if it is not one."""
    for kind in KINDS:
        prefix = f"ftpdup-{kind}@"
        if unit.startswith(prefix) and unit.endswith(".service"):
            return kind, systemd_unescape(unit[len(prefix) : -len(".service")])
    return None


def spec_name(file_name: str) -> str | None:
    """Return the worker name a spec file name stands for, or None if it is not one."""
    if not file_name.endswith(".json") or file_name.startswith("."):
        return None
    return systemd_unescape(file_name[: -len(".json")])


def template_path(unit_dir: str, kind: str) -> str:
    """Return the path of ftpdup's settings drop-in for the template of worker kind."""
    return os.path.join(unit_dir, f"ftpdup-{kind}@.service.d", SETTINGS_DROP_IN)


def unit_value(text: str) -> str:
    """Return text for a unit file setting: '%' doubled (no specifier), no line break."""
    if has_control(text) or any(char.isspace() for char in text):
        raise ValueError(f"refused in a unit file: {text!r} (whitespace or control character)")
    return text.replace("%", "%%")


def template_drop_in(
    kind: str,
    restart_period: int,
    restart_variance: int,
    stop_timeout: int,
    data_root: str,
    etc_dir: str,
    user: str = DEFAULT_USER,
    group: str = DEFAULT_USER,
) -> str:
    """Return the drop-in applied to every worker of kind: restart period, stop grace, paths,
    and the account it runs as when it is not ftpdup.

    Each worker reads its spec from standard input: systemd opens
    ``ETC_DIR/workers/KIND/%i.json`` (root-only) as root for that one unit, so
    no worker can read another's spec and no mount is made per unit.
    """
    lines = [
        f"{HEADER}[Service]",
        f"RuntimeMaxSec={restart_period}" if restart_period else "RuntimeMaxSec=infinity",
        f"RuntimeRandomizedExtraSec={restart_variance}",
        f"TimeoutStopSec={stop_timeout}",
    ]
    if data_root != DEFAULT_DATA_ROOT:
        lines.append(f"ReadWritePaths={unit_value(data_root)}")
    if etc_dir != DEFAULT_ETC_DIR:
        spec = os.path.join(unit_value(etc_dir), "workers", kind, "%i.json")
        lines.append(f"StandardInput=file:{spec}")
    if user != DEFAULT_USER or group != DEFAULT_USER:
        lines += [f"User={unit_value(user)}", f"Group={unit_value(group)}"]
    return "\n".join(lines) + "\n"


WATCH_UNIT = "ftpdup-watch.service"


def watch_drop_in_path(unit_dir: str) -> str:
    """Return where the manager lets the watch write into a data root elsewhere."""
    return os.path.join(unit_dir, f"{WATCH_UNIT}.d", SETTINGS_DROP_IN)


def watch_drop_in(data_root: str) -> str:
    """Return the drop-in that lets the watch (its file system read-only but for
    /var/lib/ftpdup/status) write DATA_ROOT/status: its state, the health probe."""
    status = os.path.join(unit_value(data_root), "status")
    return f"{HEADER}[Service]\nReadWritePaths={status}\n"


def vsftpd_drop_in(etc_dir: str) -> str:
    """Return the drop-in that points ftpdup's vsftpd unit at ETC_DIR's configuration."""
    config = os.path.join(unit_value(etc_dir), "vsftpd.conf")
    return (
        f"{HEADER}[Unit]\nConditionPathExists=\nConditionPathExists={config}\n"
        f"[Service]\nExecStart=\nExecStart=/usr/sbin/vsftpd {config}\n"
    )


class Systemctl:
    """Run systemctl; every call is logged, failures raise SystemctlError."""

    def __init__(self, command: str = "systemctl") -> None:
        self.command = command

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [self.command, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if check and result.returncode != 0:
            raise SystemctlError(f"systemctl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def daemon_reload(self) -> None:
        log.info("systemctl daemon-reload")
        self._run("daemon-reload")

    def active_states(self, units: Iterable[str]) -> dict[str, str]:
        """Return {unit: ActiveState} for units (one call)."""
        units = list(units)
        if not units:
            return {}
        result = self._run("show", "--property=Id,ActiveState", "--", *units, check=False)
        states: dict[str, str] = {}
        for block, unit in zip(result.stdout.strip().split("\n\n"), units):
            fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            states[unit] = fields.get("ActiveState", "unknown")
        return states

    def worker_states(self) -> dict[str, str]:
        """Return {unit: ActiveState} of every loaded sprinkler and carrier unit (one call)."""
        result = self._run(
            "list-units", "--all", "--plain", "--no-legend", "--no-pager",
            "ftpdup-sprinkler@*", "ftpdup-carrier@*", check=False,
        )  # fmt: skip
        states = {}
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 3:
                states[fields[0]] = fields[2]
        return states

    def unit_exists(self, unit: str) -> bool:
        result = self._run("show", "--property=LoadState", "--value", "--", unit, check=False)
        return result.stdout.strip() == "loaded"

    def act(self, verb: str, units: Iterable[str], *options: str) -> None:
        """Run ``systemctl VERB [OPTIONS] UNITS...`` for all units at once (if any)."""
        units = sorted(units)
        if units:
            log.info("systemctl %s %s", verb, " ".join(units))
            self._run(verb, *options, "--", *units)

    def act_in_batches(self, verb: str, units: Iterable[str]) -> int:
        """Run ``systemctl VERB`` (start, restart) on units, START_BATCH at a time.

        Each call returns once its units are up (or failed), so the next batch
        starts on a calm system. Return the number of batches that failed;
        every batch is tried.
        """
        units = sorted(units)
        failed = 0
        for first in range(0, len(units), START_BATCH):
            try:
                self.act(verb, units[first : first + START_BATCH])
            except SystemctlError as error:
                failed += 1
                log.error("%s", error)
        return failed


class SystemctlError(Exception):
    """A systemctl call failed."""
