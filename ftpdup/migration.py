"""Coming from ftp-duplicator: what its container's variables and its Consul tree become.

``ftpdup check --from-ftp-duplicator`` prints the settings file that the old
container's ``DUPLICATORFTP_*`` variables make, then the tree lane by lane:
what is taken, what is refused (and why, with what to write instead), and
every difference in meaning. Pure logic, but for reading the environment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ftpdup.config.model import Config

# Old variable -> (ftpdup setting, how the value is read).
VARIABLES = {
    "DUPLICATORFTP_CONSUL": ("consul_url", str),
    "DUPLICATORFTP_CIRCUS_MAX_AGE": ("restart_period", int),
    "DUPLICATORFTP_CIRCUS_MAX_AGE_VARIANCE": ("restart_variance", int),
    "DUPLICATORFTP_CIRCUS_GRACEFUL_TIMEOUT": ("stop_timeout", int),
    "DUPLICATORFTP_CARRIER_MAX_AGE": ("carrier_max_age", int),
    "DUPLICATORFTP_LOG_LEVEL": ("log_level", str),
    "DUPLICATORFTP_CONSUL_COLLECTD_SERVICE": ("collectd_service", str),
    "DUPLICATORFTP_HOSTNAME": ("collectd_hostname", str),
    "AUTOCLEANFTP_PASV_ADDRESS": ("vsftpd_pasv_address", str),
}
LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
              "error": "error", "critical": "error", "fatal": "error"}  # fmt: skip
WATCHER_MAX_AGE = "DUPLICATORFTP_WATCHER_MAX_AGE"


@dataclass
class Translation:
    """The settings the old variables make, and what to say about them."""

    settings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    lifetime_minutes: int | None = None


def read_environment(lines: list[str]) -> dict[str, str]:
    """Given NAME=value lines (an env file, ``docker inspect``'s Env), return the variables."""
    found = {}
    for line in lines:
        line = line.strip().strip('",')
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip().strip("'\"")
    return found


def translate(environ: dict[str, str]) -> Translation:
    """Given the old container's variables, return the ftpdup settings they make."""
    result = Translation()
    for name, value in sorted(environ.items()):
        if name in VARIABLES:
            key, kind = VARIABLES[name]
            if kind is int:
                try:
                    value = str(int(float(value)))
                except ValueError:
                    result.notes.append(f"{name}={value!r}: not a number, left out")
                    continue
            if key == "log_level":
                value = LOG_LEVELS.get(value.lower(), "info")
            result.settings[key] = value
        elif name == WATCHER_MAX_AGE:
            try:
                seconds = float(value)
            except ValueError:
                result.notes.append(f"{name}={value!r}: not a number, left out")
                continue
            result.lifetime_minutes = max(0, math.ceil(seconds / 60))
            result.notes.append(
                f"{name}={value} (seconds: the old sprinkler deleted older files found at its "
                f"start) has no host setting: each lane's 'lifetime' in Consul, in minutes, "
                f"does it ({result.lifetime_minutes} min); files are set aside, not deleted"
            )
        elif name.startswith(("DUPLICATORFTP_", "AUTOCLEANFTP_")):
            result.notes.append(f"{name}: not used by ftpdup")
    return result


def settings_text(translation: Translation) -> str:
    """Return the settings file (INI) the translation makes."""
    main = {k: v for k, v in translation.settings.items() if not k.startswith("vsftpd_")}
    vsftpd = {k[len("vsftpd_") :]: v for k, v in translation.settings.items()
              if k.startswith("vsftpd_")}  # fmt: skip
    lines = ["[ftpdup]"] + [f"{key} = {value}" for key, value in main.items()]
    lines += ["", "[vsftpd]"] + [f"{key} = {value}" for key, value in vsftpd.items()]
    return "\n".join(lines) + "\n"


def lane_report(config: Config, refused: dict[str, str], lifetime: int | None) -> list[str]:
    """Return the lines that say, lane by lane, what ftpdup does with the tree."""
    problems: dict[str, list[str]] = {}
    for problem in config.problems:
        lane = problem.path.split("/")[1] if problem.path.count("/") >= 1 else ""
        level = "warning" if problem.warning else "error"
        problems.setdefault(lane, []).append(f"  {level}: {problem}")
    lines = []
    names = sorted({lane.name for lane in config.lanes} | set(config.broken_lanes))
    for name in names:
        lane = next((lane for lane in config.lanes if lane.name == name), None)
        if lane is None:
            state = "refused: its settings cannot be used (see the errors)"
        elif name in refused:
            state = f"refused: {refused[name].split(': ', 1)[-1]}"
        else:
            subs = [sub.name for sub in lane.subscribers]
            state = f"taken, {len(subs)} subscribers ({', '.join(subs) or 'none'})"
            bad = sorted(sub for lane_name, sub in config.broken_subscribers if lane_name == name)
            if bad:
                state += f"; refused: {', '.join(bad)} (their files wait in parked queues)"
        lines.append(f"lane {name}: {state}")
        if lane is not None and lifetime is not None and lane.lifetime != lifetime:
            lines.append(
                f"  note: 'lifetime' is {lane.lifetime} min here, the old "
                f"{WATCHER_MAX_AGE} made {lifetime} min"
            )
        lines += problems.get(name, [])
    return lines
