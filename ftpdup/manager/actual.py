"""Adapter: read what ftpdup has on this host now (files, accounts, units, lane files)."""

from __future__ import annotations

import grp
import json
import os
from dataclasses import dataclass, field

from ftpdup import deadletter, drains, pauses
from ftpdup.deadletter import DeadLetter
from ftpdup.host.accounts import Account, read_accounts
from ftpdup.host.files import read_text
from ftpdup.host.units import (
    KINDS,
    Systemctl,
    spec_name,
    template_path,
    unit_name,
    watch_drop_in_path,
)
from ftpdup.host.vsftpd import PAM_SERVICE
from ftpdup.layout import QUEUE_KINDS, Layout
from ftpdup.manager.plan import absent_path, manager_status_path
from ftpdup.manager.plan.vsftpd import vsftpd_drop_in_path
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
    # Files in each lane's incoming directory: lane -> [(name, when it came in)].
    lane_files: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # Files in a lane (incoming, staging) its sprinkler may not link: lane -> paths.
    unfit: dict[str, list[str]] = field(default_factory=dict)
    # Queue folders on disk (pending, later, spool): their names.
    queues: set[str] = field(default_factory=set)
    # Lane folders on disk (incoming, staging): their lanes.
    lane_folders: set[str] = field(default_factory=set)
    # Held service instances: carrier instance -> when it stopped passing (time.time()).
    absent: dict[str, float] = field(default_factory=dict)
    # Dead letters: folder (carrier instance or lane) -> its files.
    dead_letters: dict[str, list[DeadLetter]] = field(default_factory=dict)
    # Subscribers and carriers paused by an operator (see pauses).
    paused: dict[str, dict] = field(default_factory=dict)
    # Several hosts: the lanes this host accepted at the last pass (None: never said),
    # those leaving (lane -> since when) and those of them refusing logins, its drain
    # ({"since": time} or None), and the lanes it holds files of.
    accepting: set[str] | None = None
    leaving: dict[str, float] = field(default_factory=dict)
    refusing: set[str] = field(default_factory=set)
    drain: dict | None = None
    busy_lanes: set[str] = field(default_factory=set)


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


def _files(directory: str) -> list[tuple[str, os.stat_result]]:
    """Return (name, stat) of the regular files in directory."""
    entries = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                try:
                    if entry.is_file(follow_symlinks=False):
                        entries.append((entry.name, entry.stat(follow_symlinks=False)))
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        pass
    return entries


def _came_in(info: os.stat_result) -> float:
    """Return when a lane file came into the lane: the later of its modification and its
    status change (a rename into the lane, a write, a new time all set the latter)."""
    return max(info.st_mtime, info.st_ctime)


def _unfit(folder: str, gid: int | None) -> list[str]:
    """Return the paths of folder's files that the group gid may not both read and write."""
    return [
        os.path.join(folder, name)
        for name, info in _files(folder)
        if gid is not None and (info.st_gid != gid or info.st_mode & 0o060 != 0o060)
    ]


def _folders(directory: str) -> set[str]:
    try:
        with os.scandir(directory) as scan:
            return {entry.name for entry in scan if entry.is_dir(follow_symlinks=False)}
    except FileNotFoundError:
        return set()


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
    paths += [vsftpd_drop_in_path(host), watch_drop_in_path(host.unit_dir)]
    paths += [absent_path(host), manager_status_path(host), pauses.path(host.data_root)]
    return paths


def read_actual(host: Settings, systemctl: Systemctl) -> Actual:
    """Return the host's current state."""
    actual = Actual(accounts=read_accounts())
    managed_files = managed_paths(host)
    for kind in KINDS:
        actual.specs[kind] = _json_files(os.path.join(host.etc_dir, "workers", kind))
    actual.lanes = _json_files(os.path.join(host.etc_dir, "lanes"), _lane_record_name)
    actual.files = {path: read_text(path) for path in managed_files}
    layout = Layout(host.data_root)
    root = host.data_root
    actual.queues = set().union(*(_folders(os.path.join(root, kind)) for kind in QUEUE_KINDS))
    actual.lane_folders = _folders(layout.incoming("")) | _folders(layout.staging(""))
    units = [unit_name(kind, name) for kind in KINDS for name in actual.specs[kind]]
    units += [unit_name("carrier", name) for name in actual.queues - set(actual.specs["carrier"])]
    actual.active = systemctl.active_states(units)
    actual.lane_files = {
        lane: [(name, _came_in(info)) for name, info in _files(layout.incoming(lane))]
        for lane in actual.lanes
    }
    gid = _gid(host.service_group)
    actual.unfit = {
        lane: found
        for lane in actual.lanes
        if (found := _unfit(layout.incoming(lane), gid) + _unfit(layout.staging(lane), gid))
    }
    actual.absent = _absent(actual.files[absent_path(host)])
    actual.paused = pauses.parse(actual.files[pauses.path(host.data_root)])
    if host.cluster_service:
        placed = _placed(actual.files[manager_status_path(host)])
        actual.accepting, actual.leaving, actual.refusing = placed
        actual.drain = drains.read(host.data_root)
        actual.busy_lanes = _busy_lanes(layout, actual.lane_folders, actual.queues)
    actual.dead_letters = {
        folder: deadletter.entries(layout.dead(folder))
        for folder in deadletter.folders(host.data_root)
    }
    return actual


def _placed(text: str | None) -> tuple[set[str] | None, dict[str, float], set[str]]:
    """Return what the manager's last status says of this host: the lanes it accepted (None:
    it never said), those it let leave (lane -> since when) and those refusing logins."""
    try:
        cluster = json.loads(text).get("cluster") if text else None
        if not cluster:
            return None, {}, set()
        since = cluster.get("leaving_since") or {}
        leaving = {lane: float(since.get(lane, 0)) for lane in cluster.get("leaving", [])}
        return set(cluster["accepting"]), leaving, set(cluster.get("refusing", []))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, {}, set()


def _busy_lanes(layout: Layout, lanes: set[str], queues: set[str]) -> set[str]:
    """Return the lanes that hold a file here: in the lane, staging or a queue of theirs."""
    busy = set()
    for lane in lanes:
        if _files(layout.incoming(lane)) or _files(layout.staging(lane)):
            busy.add(lane)
    for queue in queues:
        lane = queue.split(":", 1)[0]
        if lane in busy:
            continue
        folders = [layout.pending(queue), layout.spool(queue)]
        folders += [
            os.path.join(layout.later(queue), name) for name in _folders(layout.later(queue))
        ]
        if any(_files(folder) for folder in folders):
            busy.add(lane)
    return busy


def _gid(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def _absent(text: str | None) -> dict[str, float]:
    """Return the held instances recorded in text (unreadable: none, they start afresh)."""
    try:
        found = json.loads(text) if text else {}
        return {str(name): float(since) for name, since in found.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
