"""Pure reconcile: desired state (from Consul) + actual state (of this host) -> a Plan.

Nothing here does I/O. Entries Consul holds but that cannot be used (a broken
lane or subscriber, an account ftpdup may not touch) keep what the host
already has for them: only entries that are really gone from Consul are
removed, and their queued files are buried, never deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field, replace

from ftpdup import specs
from ftpdup.config.model import Lane
from ftpdup.consul_source import Snapshot
from ftpdup.desired import Desired, desired_state
from ftpdup.host import collectd, vsftpd
from ftpdup.host.units import drop_in_path, instance_drop_in, template_drop_in, unit_name
from ftpdup.layout import Layout
from ftpdup.settings import Settings

RUNNING = ("active", "activating", "reloading")


@dataclass(frozen=True)
class LaneAccount:
    """The FTP account a lane needs."""

    lane: str
    user: str
    uid: int
    home: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Directory:
    path: str
    owner: str
    group: str
    mode: int = 0o2770


@dataclass
class Plan:
    """Everything one manager pass changes, in the order apply() does it."""

    errors: list[str] = field(default_factory=list)
    create_accounts: list[LaneAccount] = field(default_factory=list)
    set_passwords: list[LaneAccount] = field(default_factory=list)
    directories: list[Directory] = field(default_factory=list)
    writes: dict[str, tuple[str, int]] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    daemon_reload: bool = False
    vsftpd: str = ""
    enable: set[str] = field(default_factory=set)
    restart: set[str] = field(default_factory=set)
    start: set[str] = field(default_factory=set)
    stop: set[str] = field(default_factory=set)
    bury_carriers: dict[str, str] = field(default_factory=dict)
    remove_lanes: dict[str, str] = field(default_factory=dict)
    remove_accounts: list[str] = field(default_factory=list)
    expire: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    reload_collectd: bool = False

    def lines(self) -> list[str]:
        """Return one human line per change (never a secret)."""
        out = [f"error: {error}" for error in self.errors]
        out += [
            f"create account {a.user} (uid {a.uid}) for lane {a.lane}" for a in self.create_accounts
        ]
        out += [f"set the password of {a.user} (lane {a.lane})" for a in self.set_passwords]
        out += [f"write {path}" for path in sorted(self.writes)]
        out += [f"remove {path}" for path in sorted(self.removes)]
        out += ["systemctl daemon-reload"] if self.daemon_reload else []
        out += [f"{self.vsftpd} vsftpd"] if self.vsftpd else []
        out += [f"enable {unit}" for unit in sorted(self.enable)]
        out += [f"restart {unit}" for unit in sorted(self.restart)]
        out += [f"start {unit}" for unit in sorted(self.start)]
        out += [f"stop and disable {unit}" for unit in sorted(self.stop)]
        out += [
            f"bury the queue of {name}: {why}" for name, why in sorted(self.bury_carriers.items())
        ]
        out += [f"remove lane {lane}: {why}" for lane, why in sorted(self.remove_lanes.items())]
        out += [f"remove account {user}" for user in self.remove_accounts]
        out += [
            f"expire {len(names)} files older than {minutes} min in lane {lane}"
            for lane, (minutes, names) in sorted(self.expire.items())
        ]
        out += ["reload collectd"] if self.reload_collectd else []
        return out

    def changes(self) -> bool:
        """Return True if the plan changes anything on the host."""
        return any(not line.startswith("error: ") for line in self.lines())


@dataclass(frozen=True)
class LaneRecord:
    """What the manager applied for a lane, kept root-only in ETC_DIR/lanes/LANE.json."""

    lane: str
    user: str
    uid: int
    salt: str
    password_digest: str

    @staticmethod
    def for_lane(lane: Lane, salt: str | None = None) -> LaneRecord:
        salt = salt or secrets.token_hex(8)
        return LaneRecord(lane.name, lane.user, lane.uid, salt, _digest(salt, lane.password))

    def same_password(self, password: str) -> bool:
        return secrets.compare_digest(self.password_digest, _digest(self.salt, password))

    def to_json(self) -> str:
        return json.dumps(vars(self), sort_keys=True, indent=1) + "\n"

    @staticmethod
    def from_json(text: str) -> LaneRecord | None:
        try:
            return LaneRecord(**json.loads(text))
        except (ValueError, TypeError):
            return None


def _digest(salt: str, password: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000).hex()


def make_plan(snapshot: Snapshot, host: Settings, actual, now: float) -> Plan:
    """Given what Consul asks for and what the host has, return the changes to make."""
    plan = Plan(errors=[str(problem) for problem in snapshot.config.errors()])
    layout = Layout(host.data_root)
    desired = desired_state(snapshot, host)
    records = {lane: LaneRecord.from_json(text) for lane, text in actual.lanes.items()}
    kept_lanes = set(snapshot.config.broken_lanes) & set(actual.lanes)
    claimed: dict[object, str] = {}
    for lane in sorted(desired.lanes.values(), key=lambda lane: lane.name):
        if not _claim(plan, lane, claimed) or not _plan_account(
            plan, lane, records.get(lane.name), actual, layout
        ):
            kept_lanes.add(lane.name)
    _keep_lanes(desired, kept_lanes, actual)
    _keep_broken_subscribers(desired, snapshot, actual, layout)
    _plan_lane_files(plan, desired, records, host, layout, kept_lanes)
    _plan_workers(plan, desired, host, actual, layout)
    _plan_removed_lanes(plan, desired, records, actual, kept_lanes)
    _plan_vsftpd(plan, desired, records, kept_lanes, host, actual)
    _plan_expiry(plan, desired, actual, now)
    _plan_collectd(plan, desired, snapshot, host, actual, layout)
    return plan


def _claim(plan: Plan, lane: Lane, claimed: dict[object, str]) -> bool:
    """Return False (with an error) if another lane already uses lane's user or uid."""
    for what, value in (("user", lane.user), ("uid", lane.uid)):
        other = claimed.setdefault((what, value), lane.name)
        if other != lane.name:
            plan.errors.append(
                f"incoming_directories/{lane.name}/settings: {what} {value!r} is "
                f"already lane {other}'s; lane not applied"
            )
            return False
    return True


def _plan_account(plan: Plan, lane: Lane, record, actual, layout: Layout) -> bool:
    """Plan the lane's account; return False (with an error) if the lane must not be applied."""
    where = f"incoming_directories/{lane.name}/settings"
    account = actual.accounts.get(lane.user)
    by_uid = {entry.uid: entry for entry in actual.accounts.values()}
    wanted = LaneAccount(lane.name, lane.user, lane.uid, layout.incoming(lane.name), lane.password)
    if account is None:
        other = by_uid.get(lane.uid)
        if other is not None:
            plan.errors.append(
                f"{where}: uid {lane.uid} belongs to account {other.name!r}; lane not applied"
            )
            return False
        plan.create_accounts.append(wanted)
        return True
    if not account.is_lane_account(lane.name):
        plan.errors.append(
            f"{where}: account {lane.user!r} exists and is not ftpdup's account "
            f"of this lane ({account.comment!r}); lane not applied"
        )
        return False
    if account.uid != lane.uid:
        plan.errors.append(
            f"{where}: uid changed from {account.uid} to {lane.uid}; "
            "remove the lane and add it again; lane left as it is"
        )
        return False
    if record is None or record.user != lane.user or not record.same_password(lane.password):
        plan.set_passwords.append(wanted)
    return True


def _keep_lanes(desired: Desired, kept: set[str], actual) -> None:
    """For lanes that cannot be applied, keep their current workers exactly as they are."""
    for lane in kept:
        desired.lanes.pop(lane, None)
        desired.sprinklers.pop(lane, None)
        for instance in [i for i in desired.carriers if i.split(":", 1)[0] == lane]:
            del desired.carriers[instance]
        sprinkler = _load(actual.specs["sprinkler"].get(lane))
        if sprinkler is not None:
            desired.sprinklers[lane] = sprinkler
        for instance, text in actual.specs["carrier"].items():
            carrier = _load(text) if instance.split(":", 1)[0] == lane else None
            if carrier is not None:
                desired.carriers[instance] = carrier


def _load(text: str | None):
    """Return the spec stored in text, or None if there is none or it is unreadable."""
    try:
        return specs.from_json(text) if text is not None else None
    except ValueError:
        return None


def _keep_broken_subscribers(desired: Desired, snapshot: Snapshot, actual, layout: Layout):
    """A subscriber whose Consul value is bad keeps its current carriers and spools."""
    for lane, subscriber in snapshot.config.broken_subscribers:
        if lane not in desired.lanes:
            continue
        kept = {
            instance: spec
            for instance, text in actual.specs["carrier"].items()
            if instance.split(":")[:2] == [lane, subscriber] and (spec := _load(text))
        }
        if not kept:
            continue
        desired.carriers.update(kept)
        sprinkler = desired.sprinklers[lane]
        outputs = list(sprinkler.outputs) + [
            specs.Output(i, layout.pending(i), layout.spool(i)) for i in kept
        ]
        desired.sprinklers[lane] = replace(
            sprinkler, outputs=tuple(sorted(outputs, key=lambda o: o.instance))
        )


def _plan_lane_files(plan, desired: Desired, records, host: Settings, layout, kept) -> None:
    """Plan lane records and the directories of lanes and carriers."""
    for lane in desired.lanes.values():
        record = records.get(lane.name)
        same = record is not None and record.user == lane.user and record.uid == lane.uid
        if not (same and record.same_password(lane.password)):
            salt = record.salt if record is not None else None
            text = LaneRecord.for_lane(lane, salt).to_json()
            plan.writes[_record_path(host, lane.name)] = (text, 0o600)
        plan.directories.append(
            Directory(layout.incoming(lane.name), lane.user, host.service_group)
        )
        plan.directories.append(
            Directory(layout.staging(lane.name), host.service_user, host.service_group)
        )
    for instance in desired.carriers:
        for path in (layout.pending(instance), layout.spool(instance)):
            plan.directories.append(Directory(path, host.service_user, host.service_group))


def _record_path(host: Settings, lane: str) -> str:
    return os.path.join(host.etc_dir, "lanes", f"{lane}.json")


def _plan_workers(plan: Plan, desired: Desired, host: Settings, actual, layout: Layout) -> None:
    """Plan spec files, drop-ins and unit actions for every worker, wanted or gone."""
    template = template_drop_in(
        host.restart_period, host.restart_variance, host.stop_timeout, host.data_root
    )
    for kind, wanted in (("sprinkler", desired.sprinklers), ("carrier", desired.carriers)):
        _write_if_changed(
            plan, actual, drop_in_path(host.unit_dir, f"ftpdup-{kind}@.service"), template, 0o644
        )
        for name, spec in wanted.items():
            unit = unit_name(kind, name)
            spec_path = host.spec_path(kind, name)
            text = specs.to_json(spec)
            changed = actual.specs[kind].get(name) != text
            if changed:
                plan.writes[spec_path] = (text, 0o600)
            drop_in = instance_drop_in(spec_path, specs.digest(spec))
            changed |= _write_if_changed(
                plan, actual, drop_in_path(host.unit_dir, unit), drop_in, 0o644
            )
            if name not in actual.specs[kind]:
                plan.enable.add(unit)
                plan.start.add(unit)
            elif changed:
                plan.restart.add(unit)
            elif actual.active.get(unit) not in RUNNING:
                plan.start.add(unit)
        for name in set(actual.specs[kind]) - set(wanted):
            unit = unit_name(kind, name)
            plan.stop.add(unit)
            plan.removes += [host.spec_path(kind, name), drop_in_path(host.unit_dir, unit)]
            plan.daemon_reload = True
            if kind == "carrier":
                plan.bury_carriers[name] = _gone_reason(name, desired)
    plan.daemon_reload |= any(path.startswith(host.unit_dir) for path in plan.writes)


def _gone_reason(instance: str, desired: Desired) -> str:
    parts = instance.split(":")
    if parts[0] not in desired.lanes:
        return f"lane {parts[0]} removed from Consul"
    if len(parts) > 2:
        return f"instance {parts[2]} of subscriber {parts[1]}'s service is gone or not passing"
    return f"subscriber {parts[1]} removed from lane {parts[0]}"


def _write_if_changed(plan: Plan, actual, path: str, text: str, mode: int) -> bool:
    if actual.files.get(path) != text:
        plan.writes[path] = (text, mode)
        return True
    return False


def _plan_removed_lanes(plan: Plan, desired: Desired, records, actual, kept: set[str]) -> None:
    for lane, record in records.items():
        if lane in desired.lanes or lane in kept:
            continue
        plan.remove_lanes[lane] = f"lane {lane} removed from Consul"
        if record is None:
            continue
        account = actual.accounts.get(record.user)
        if account is not None and account.is_lane_account(lane):
            plan.remove_accounts.append(record.user)


def _plan_vsftpd(plan: Plan, desired: Desired, records, kept, host: Settings, actual) -> None:
    users = [lane.user for lane in desired.lanes.values()]
    users += [records[lane].user for lane in kept if records.get(lane)]
    options = vsftpd.VsftpdOptions(
        listen_port=host.vsftpd_listen_port,
        listen_address=host.vsftpd_listen_address,
        pasv_address=host.vsftpd_pasv_address,
        pasv_min_port=host.vsftpd_pasv_min_port,
        pasv_max_port=host.vsftpd_pasv_max_port,
        userlist_file=os.path.join(host.etc_dir, "vsftpd.users"),
    )
    debian = actual.files.get("/etc/pam.d/common-auth") is not None
    config_changed = _write_if_changed(
        plan,
        actual,
        os.path.join(host.etc_dir, "vsftpd.conf"),
        vsftpd.render_config(options),
        0o644,
    )
    config_changed |= _write_if_changed(
        plan, actual, f"/etc/pam.d/{vsftpd.PAM_SERVICE}", vsftpd.render_pam(debian), 0o644
    )
    users_changed = _write_if_changed(
        plan, actual, options.userlist_file, vsftpd.render_userlist(users), 0o644
    )
    plan.vsftpd = "restart" if config_changed else "reload" if users_changed else ""


def _plan_expiry(plan: Plan, desired: Desired, actual, now: float) -> None:
    for lane in desired.lanes.values():
        if not lane.lifetime:
            continue
        limit = now - lane.lifetime * 60
        expired = sorted(
            name for name, mtime in actual.lane_files.get(lane.name, ()) if mtime < limit
        )
        if expired:
            plan.expire[lane.name] = (lane.lifetime, expired)


def _plan_collectd(plan, desired: Desired, snapshot: Snapshot, host: Settings, actual, layout):
    if not host.collectd_service:
        return
    instances = snapshot.instances.get(host.collectd_service, ())
    if not instances:
        plan.errors.append(
            f"collectd service {host.collectd_service!r} has no passing "
            "instance: collectd configuration left as it is"
        )
        return
    directories = [(f"incoming-{lane}", layout.incoming(lane)) for lane in desired.lanes]
    directories += [(f"spool-{i}", layout.spool(i)) for i in desired.carriers]
    server = (instances[0].address, instances[0].port)
    text = collectd.render(directories, server, host.collectd_hostname)
    plan.reload_collectd = _write_if_changed(plan, actual, host.collectd_config, text, 0o644)
