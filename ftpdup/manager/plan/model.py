"""What one manager pass changes (the Plan), and the small records it is made of."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Unfit:
    """Files of a lane its sprinkler may not link (another owner or group, no group write):
    the manager gives them to the lane's account and the service group, group read-write."""

    uid: int
    group: str
    paths: tuple[str, ...]


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
    # The watch's drop-in changed: it is restarted (without waiting) to take it.
    restart_watch: bool = False
    enable: set[str] = field(default_factory=set)
    restart: set[str] = field(default_factory=set)
    start: set[str] = field(default_factory=set)
    stop: set[str] = field(default_factory=set)
    # Units of service instances that are not passing: stopped, kept, their files wait.
    hold: set[str] = field(default_factory=set)
    # Units of carriers an operator paused: stopped and disabled, their files queue.
    pause: set[str] = field(default_factory=set)
    # Queues on disk that no worker wants any more: queue -> why (its files become dead letters).
    bury_queues: dict[str, str] = field(default_factory=dict)
    # Lane folders on disk of lanes that are gone: lane -> why.
    bury_lanes: dict[str, str] = field(default_factory=dict)
    # Lane records of lanes removed from Consul: lane -> why.
    remove_lanes: dict[str, str] = field(default_factory=dict)
    # (user, lane) of lane accounts to remove.
    remove_accounts: list[tuple[str, str]] = field(default_factory=list)
    fix_owners: dict[str, Unfit] = field(default_factory=dict)
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
        out += ["restart the watch"] if self.restart_watch else []
        out += [f"enable {unit}" for unit in sorted(self.enable)]
        out += [f"restart {unit}" for unit in sorted(self.restart)]
        out += [f"start {unit}" for unit in sorted(self.start)]
        out += [f"stop and disable {unit}" for unit in sorted(self.stop)]
        out += [
            f"stop {unit} (its instance is not passing; files wait)" for unit in sorted(self.hold)
        ]
        out += [f"stop and disable {unit} (paused; files queue)" for unit in sorted(self.pause)]
        buried = sorted(self.bury_queues.items())
        out += [f"bury the queue of {name}: {why}" for name, why in buried]
        out += [f"bury the files of lane {k}: {why}" for k, why in sorted(self.bury_lanes.items())]
        out += [f"remove lane {lane}: {why}" for lane, why in sorted(self.remove_lanes.items())]
        out += [f"remove account {user} (lane {lane})" for user, lane in self.remove_accounts]
        out += [
            f"give {len(unfit.paths)} files of lane {lane} to its account (owner or mode)"
            for lane, unfit in sorted(self.fix_owners.items())
        ]
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


def write_if_changed(plan: Plan, actual, path: str, text: str, mode: int) -> bool:
    """Plan writing text to path unless the host holds that text there; return True if so."""
    if actual.files.get(path) != text:
        plan.writes[path] = (text, mode)
        return True
    return False
