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
from ftpdup.host.units import template_drop_in, template_path, unit_name
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
    # Units of service instances that are not passing: stopped, kept, their files wait.
    hold: set[str] = field(default_factory=set)
    bury_carriers: dict[str, str] = field(default_factory=dict)
    remove_lanes: dict[str, str] = field(default_factory=dict)
    # (user, lane) of lane accounts to remove.
    remove_accounts: list[tuple[str, str]] = field(default_factory=list)
    expire: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    # Dead letters kept longer than dead_letter_retention_days: folder -> their paths.
    purge: dict[str, list[str]] = field(default_factory=dict)
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
            f"stop {unit} (its instance is not passing; files wait)" for unit in sorted(self.hold)
        ]
        out += [
            f"bury the queue of {name}: {why}" for name, why in sorted(self.bury_carriers.items())
        ]
        out += [f"remove lane {lane}: {why}" for lane, why in sorted(self.remove_lanes.items())]
        out += [f"remove account {user} (lane {lane})" for user, lane in self.remove_accounts]
        out += [
            f"expire {len(names)} files older than {minutes} min in lane {lane}"
            for lane, (minutes, names) in sorted(self.expire.items())
        ]
        out += [
            f"delete {len(paths)} dead letters of {folder} kept past the retention"
            for folder, paths in sorted(self.purge.items())
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
    problems = [*snapshot.config.errors(), *snapshot.instance_problems]
    plan = Plan(errors=[str(problem) for problem in problems])
    layout = Layout(host.data_root)
    desired = desired_state(snapshot, host)
    records = {lane: LaneRecord.from_json(text) for lane, text in actual.lanes.items()}
    kept_lanes = set(snapshot.config.broken_lanes) & set(actual.lanes)
    refused = lane_refusals(snapshot.config.lanes, actual.accounts)
    plan.errors += list(refused.values())
    for lane in sorted(desired.lanes.values(), key=lambda lane: lane.name):
        if lane.name in refused:
            kept_lanes.add(lane.name)
        else:
            _plan_account(plan, lane, records.get(lane.name), actual, layout)
    _keep_lanes(desired, kept_lanes, actual)
    _keep_broken_subscribers(desired, snapshot, actual, layout)
    held = _hold_absent_instances(plan, desired, snapshot, actual, host, now)
    _plan_lane_files(plan, desired, records, host, layout, kept_lanes)
    _plan_workers(plan, desired, held, host, actual)
    _plan_removed_lanes(plan, desired, records, actual, kept_lanes)
    _plan_vsftpd(plan, desired, records, kept_lanes, host, actual)
    _plan_expiry(plan, desired, actual, now)
    _plan_retention(plan, actual, host, now)
    _plan_collectd(plan, desired, snapshot, host, actual, layout)
    _plan_status(plan, desired, held, actual, host)
    return plan


def lane_refusals(lanes, accounts: dict) -> dict[str, str]:
    """Given valid lanes and the host's accounts, return {lane: why apply leaves it alone}.

    A lane is refused when another lane claims the same user or uid first
    (by name order), when its user is an account ftpdup did not create for
    it, when its uid belongs to another account, or when its uid changed.
    ``ftpdup check`` reports the same refusals as ``apply``.
    """
    refused: dict[str, str] = {}
    claimed: dict[tuple[str, object], str] = {}
    by_uid = {entry.uid: entry for entry in accounts.values()}
    for lane in sorted(lanes, key=lambda lane: lane.name):
        problem = _claim_problem(lane, claimed) or _account_problem(lane, accounts, by_uid)
        if problem:
            refused[lane.name] = f"incoming_directories/{lane.name}/settings: {problem}"
    return refused


def _claim_problem(lane: Lane, claimed: dict[tuple[str, object], str]) -> str | None:
    """Return why lane may not have its user or uid (another lane has it), or None."""
    for what, value in (("user", lane.user), ("uid", lane.uid)):
        other = claimed.setdefault((what, value), lane.name)
        if other != lane.name:
            return f"{what} {value!r} is already lane {other}'s; lane not applied"
    return None


def _account_problem(lane: Lane, accounts: dict, by_uid: dict) -> str | None:
    """Return why the host's accounts forbid lane, or None."""
    account = accounts.get(lane.user)
    if account is None:
        other = by_uid.get(lane.uid)
        if other is not None:
            return f"uid {lane.uid} belongs to account {other.name!r}; lane not applied"
        return None
    if not account.is_lane_account(lane.name):
        return (
            f"account {lane.user!r} exists and is not ftpdup's account "
            f"of this lane ({account.comment!r}); lane not applied"
        )
    if account.uid != lane.uid:
        return (
            f"uid changed from {account.uid} to {lane.uid}; "
            "remove the lane and add it again; lane left as it is"
        )
    return None


def _plan_account(plan: Plan, lane: Lane, record, actual, layout: Layout) -> None:
    """Plan the creation of the lane's account, or a new password for it."""
    wanted = LaneAccount(lane.name, lane.user, lane.uid, layout.incoming(lane.name), lane.password)
    if lane.user not in actual.accounts:
        plan.create_accounts.append(wanted)
    elif record is None or record.user != lane.user or not record.same_password(lane.password):
        plan.set_passwords.append(wanted)


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
        if kept:
            _add_carriers(desired, lane, kept, layout)


def _add_carriers(desired: Desired, lane: str, carriers: dict, layout: Layout) -> None:
    """Add carriers (instance -> spec) to desired, and their outputs to lane's sprinkler."""
    desired.carriers.update(carriers)
    sprinkler = desired.sprinklers[lane]
    outputs = [o for o in sprinkler.outputs if o.instance not in carriers]
    outputs += [specs.Output(i, layout.pending(i), layout.spool(i)) for i in carriers]
    desired.sprinklers[lane] = replace(
        sprinkler, outputs=tuple(sorted(outputs, key=lambda o: o.instance))
    )


def _hold_absent_instances(
    plan: Plan, desired: Desired, snapshot: Snapshot, actual, host: Settings, now: float
) -> dict[str, float]:
    """Keep the carriers of service instances that stopped passing, for instance_grace seconds.

    A rolling restart or a short health-check failure must not lose files:
    such an instance keeps its spec, spool and place in the sprinkler's
    outputs, its unit is stopped (files wait for it), and it starts again
    when the instance passes again. Past the grace it is removed like any
    gone carrier, its queue buried. Return the held instance names.
    """
    layout = Layout(host.data_root)
    services = {
        (lane.name, sub.name): sub.service
        for lane in snapshot.config.lanes
        for sub in lane.subscribers
        if sub.service and lane.name in desired.lanes
    }
    absent: dict[str, float] = {}
    for instance, text in sorted(actual.specs["carrier"].items()):
        parts = instance.split(":")
        if instance in desired.carriers or len(parts) != 3 or tuple(parts[:2]) not in services:
            continue
        since = actual.absent.get(instance, now)
        spec = _load(text)
        if spec is None or now - since >= host.grace():
            continue
        _add_carriers(desired, parts[0], {instance: spec}, layout)
        absent[instance] = since
    text = json.dumps(absent, sort_keys=True, indent=1) + "\n"
    _write_if_changed(plan, actual, absent_path(host), text, 0o600)
    return absent


def absent_path(host: Settings) -> str:
    """Return where the manager keeps when each held service instance stopped passing."""
    return os.path.join(host.data_root, "manager", "absent.json")


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
        for path in (layout.pending(instance), layout.spool(instance), layout.state(instance)):
            plan.directories.append(Directory(path, host.service_user, host.service_group))


def _record_path(host: Settings, lane: str) -> str:
    return os.path.join(host.etc_dir, "lanes", f"{lane}.json")


def _plan_workers(plan: Plan, desired: Desired, held, host: Settings, actual) -> None:
    """Plan spec files, template drop-ins and unit actions for every worker, wanted or gone."""
    for kind, wanted in (("sprinkler", desired.sprinklers), ("carrier", desired.carriers)):
        template = template_drop_in(
            kind,
            host.restart_period,
            host.restart_variance,
            host.stop_timeout,
            host.data_root,
            host.etc_dir,
        )
        _write_if_changed(plan, actual, template_path(host.unit_dir, kind), template, 0o644)
        for name, spec in wanted.items():
            unit = unit_name(kind, name)
            text = specs.to_json(spec)
            changed = actual.specs[kind].get(name) != text
            if changed:
                plan.writes[host.spec_path(kind, name)] = (text, 0o600)
            if kind == "carrier" and name in held:
                if actual.active.get(unit) in RUNNING:
                    plan.hold.add(unit)
            elif name not in actual.specs[kind]:
                plan.enable.add(unit)
                plan.start.add(unit)
            elif changed:
                plan.restart.add(unit)
            elif actual.active.get(unit) not in RUNNING:
                plan.start.add(unit)
        for name in set(actual.specs[kind]) - set(wanted):
            unit = unit_name(kind, name)
            plan.stop.add(unit)
            plan.removes.append(host.spec_path(kind, name))
            if kind == "carrier":
                plan.bury_carriers[name] = _gone_reason(name, desired, actual, host)
    # New and removed units change what ftpdup.target wants: systemd must reload.
    plan.daemon_reload |= bool(plan.enable or plan.stop)
    plan.daemon_reload |= any(path.startswith(host.unit_dir) for path in plan.writes)


def _gone_reason(instance: str, desired: Desired, actual, host: Settings) -> str:
    parts = instance.split(":")
    if parts[0] not in desired.lanes:
        return f"lane {parts[0]} removed from Consul"
    if len(parts) > 2:
        what = f"instance {parts[2]} of subscriber {parts[1]}'s service"
        if instance in actual.absent:
            return f"{what} not passing for longer than instance_grace={host.grace()} s"
        return f"{what} is gone or not passing"
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
            plan.remove_accounts.append((record.user, lane))


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
        ssl_cert_file=host.vsftpd_ssl_cert_file,
        ssl_key_file=host.vsftpd_ssl_key_file,
        ssl_required=host.vsftpd_ssl_required,
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


def _plan_retention(plan: Plan, actual, host: Settings, now: float) -> None:
    """Plan the deletion of dead letters set aside more than the retention ago."""
    limit = now - host.dead_letter_retention_days * 86400
    for folder, letters in actual.dead_letters.items():
        old = [letter.path for letter in letters if letter.buried_at < limit]
        if old:
            plan.purge[folder] = old


def manager_status_path(host: Settings) -> str:
    """Return where the manager tells ``ftpdup status`` what Consul asks of this host."""
    return os.path.join(host.data_root, "status", "manager.json")


def manager_status(lanes, carriers, held: dict, problems: list[str], consul_error: str) -> str:
    """Return the text of the manager's status file (no clock: it changes with its content)."""
    return (
        json.dumps(
            {
                "lanes": sorted(lanes),
                "carriers": sorted(carriers),
                "held": held,
                "problems": problems,
                "consul_error": consul_error,
            },
            sort_keys=True,
            indent=1,
        )
        + "\n"
    )


def _plan_status(plan: Plan, desired: Desired, held: dict, actual, host: Settings) -> None:
    """Plan the manager's status file: the workers Consul asks for, held instances, problems."""
    text = manager_status(desired.sprinklers, desired.carriers, held, plan.errors, "")
    _write_if_changed(plan, actual, manager_status_path(host), text, 0o640)


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


def collectd_refusal(snapshot: Snapshot, host: Settings) -> str | None:
    """Return why the collectd configuration cannot be written now, or None."""
    if host.collectd_service and not snapshot.instances.get(host.collectd_service):
        return (
            f"collectd service {host.collectd_service!r} has no passing "
            "instance: collectd configuration left as it is"
        )
    return None


def _plan_collectd(plan, desired: Desired, snapshot: Snapshot, host: Settings, actual, layout):
    if not host.collectd_service:
        return
    refusal = collectd_refusal(snapshot, host)
    if refusal:
        plan.errors.append(refusal)
        return
    instances = snapshot.instances[host.collectd_service]
    directories = [(f"incoming-{lane}", layout.incoming(lane)) for lane in desired.lanes]
    directories += [(f"spool-{i}", layout.spool(i)) for i in desired.carriers]
    server = (instances[0].address, instances[0].port)
    text = collectd.render(directories, server, host.collectd_hostname)
    plan.reload_collectd = _write_if_changed(plan, actual, host.collectd_config, text, 0o644)
