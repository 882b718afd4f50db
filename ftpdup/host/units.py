"""systemd units of the workers: names, drop-in texts (pure) and a systemctl adapter."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterable

from ftpdup.config.names import systemd_escape, systemd_unescape

log = logging.getLogger(__name__)

# Distinct names: an instance's drop-in would hide a template drop-in of the same name.
SETTINGS_DROP_IN = "40-ftpdup-settings.conf"
SPEC_DROP_IN = "50-ftpdup-spec.conf"
HEADER = "# Managed by ftpdup: do not edit, it is rewritten by the manager.\n"
KINDS = ("sprinkler", "carrier")


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


def drop_in_path(unit_dir: str, unit: str) -> str:
    """Return the path of ftpdup's drop-in for unit: settings for a template, spec otherwise."""
    name = SETTINGS_DROP_IN if unit.endswith("@.service") else SPEC_DROP_IN
    return os.path.join(unit_dir, f"{unit}.d", name)


def instance_drop_in(spec_path: str, digest: str) -> str:
    """Return the drop-in that hands a worker its spec (as a credential) and its digest."""
    return (
        f"{HEADER}[Service]\n"
        f"LoadCredential=spec:{spec_path}\n"
        f"Environment=FTPDUP_SPEC_DIGEST={digest}\n"
    )


def template_drop_in(
    restart_period: int, restart_variance: int, stop_timeout: int, data_root: str
) -> str:
    """Return the drop-in applied to every worker: restart period, stop grace, data root."""
    lines = [
        f"{HEADER}[Service]",
        f"RuntimeMaxSec={restart_period}" if restart_period else "RuntimeMaxSec=infinity",
        f"RuntimeRandomizedExtraSec={restart_variance}",
        f"TimeoutStopSec={stop_timeout}",
    ]
    if data_root != "/var/lib/ftpdup":
        lines.append(f"ReadWritePaths={data_root}")
    return "\n".join(lines) + "\n"


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

    def unit_exists(self, unit: str) -> bool:
        result = self._run("show", "--property=LoadState", "--value", "--", unit, check=False)
        return result.stdout.strip() == "loaded"

    def act(self, verb: str, units: Iterable[str], *options: str) -> None:
        """Run ``systemctl VERB [OPTIONS] UNITS...`` for all units at once (if any)."""
        units = sorted(units)
        if units:
            log.info("systemctl %s %s", verb, " ".join(units))
            self._run(verb, *options, "--", *units)


class SystemctlError(Exception):
    """A systemctl call failed."""
