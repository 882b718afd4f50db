"""Adapter: read what ftpdup has on this host now (files, accounts, units, lane files)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ftpdup import deadletter
from ftpdup.deadletter import DeadLetter
from ftpdup.host.accounts import Account, read_accounts
from ftpdup.host.files import read_text
from ftpdup.host.units import KINDS, Systemctl, spec_name, template_path, unit_name
from ftpdup.host.vsftpd import PAM_SERVICE
from ftpdup.layout import Layout
from ftpdup.manager.plan import absent_path, manager_status_path
from ftpdup.settings import Settings


@dataclass
class Actual:
    """The host as the manager finds it."""

    accounts: dict[str, Account] = field(default_factory=dict)
    # Worker specs on disk: kind -> name -> JSON text.
    specs: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    # Lane records on disk: lane -> JSON text.
    lanes: dict[str, str] = field(default_factory=dict)
    # Current text of every other managed file, by path (None: absent).
    files: dict[str, str | None] = field(default_factory=dict)
    # ActiveState of every worker unit the manager knows of.
    active: dict[str, str] = field(default_factory=dict)
    # Files in each lane's incoming directory: lane -> [(name, mtime)].
    lane_files: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # Held service instances: carrier instance -> when it stopped passing (time.time()).
    absent: dict[str, float] = field(default_factory=dict)
    # Dead letters: folder (carrier instance or lane) -> its files.
    dead_letters: dict[str, list[DeadLetter]] = field(default_factory=dict)


def _json_files(directory: str, name_of=spec_name) -> dict[str, str]:
    """Return {name: text} of the JSON files in directory, named by name_of(file name)."""
    found = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for file_name in names:
        name = name_of(file_name)
        if name is not None:
            text = read_text(os.path.join(directory, file_name))
            if text is not None:
                found[name] = text
    return found


def _lane_record_name(file_name: str) -> str | None:
    return file_name[: -len(".json")] if file_name.endswith(".json") else None


def _lane_files(directory: str) -> list[tuple[str, float]]:
    entries = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                if entry.is_file(follow_symlinks=False):
                    entries.append((entry.name, entry.stat(follow_symlinks=False).st_mtime))
    except FileNotFoundError:
        pass
    return entries


def managed_paths(host: Settings) -> list[str]:
    """Return the paths of the files the manager writes that exist now or always exist."""
    paths = [template_path(host.unit_dir, kind) for kind in KINDS]
    paths += [
        os.path.join(host.etc_dir, "vsftpd.conf"),
        os.path.join(host.etc_dir, "vsftpd.users"),
        f"/etc/pam.d/{PAM_SERVICE}",
        "/etc/pam.d/common-auth",
    ]
    if host.collectd_service:
        paths.append(host.collectd_config)
    paths += [absent_path(host), manager_status_path(host)]
    return paths


def read_actual(host: Settings, systemctl: Systemctl) -> Actual:
    """Return the host's current state."""
    actual = Actual(accounts=read_accounts())
    managed_files = managed_paths(host)
    for kind in KINDS:
        actual.specs[kind] = _json_files(os.path.join(host.etc_dir, "workers", kind))
    actual.lanes = _json_files(os.path.join(host.etc_dir, "lanes"), _lane_record_name)
    actual.files = {path: read_text(path) for path in managed_files}
    units = [unit_name(kind, name) for kind in KINDS for name in actual.specs[kind]]
    actual.active = systemctl.active_states(units)
    layout = Layout(host.data_root)
    actual.lane_files = {lane: _lane_files(layout.incoming(lane)) for lane in actual.lanes}
    actual.absent = _absent(actual.files[absent_path(host)])
    actual.dead_letters = {
        folder: deadletter.entries(layout.dead(folder))
        for folder in deadletter.folders(host.data_root)
    }
    return actual


def _absent(text: str | None) -> dict[str, float]:
    """Return the held instances recorded in text (unreadable: none, they start afresh)."""
    try:
        found = json.loads(text) if text else {}
        return {str(name): float(since) for name, since in found.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
