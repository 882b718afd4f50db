"""What ftpdup is doing on this host, for a person (``ftpdup status``) and for monitoring.

One row per lane (its sprinkler) and per subscriber or service instance (its
carrier), from what systemd says of the units, what each worker wrote in its
status file, what the manager last read from Consul, and the dead letters.
Each row gets a level (ok, warning, critical) by the thresholds in the host
settings; the worst level is the exit status (0, 1, 2), as monitoring checks
expect. Nothing here reads a secret: a member of the monitoring group may
run it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field

from ftpdup import status
from ftpdup.host.units import Systemctl, parse_unit_name, unit_name
from ftpdup.layout import Layout
from ftpdup.settings import Settings

OK, WARNING, CRITICAL = "ok", "warning", "critical"
LEVELS = (OK, WARNING, CRITICAL)
SUMMARY = "summary.json"
MANAGER = "manager.json"
PASS = "manager-pass.json"
WATCH = "watch.json"
# The timer runs the manager every minute: five without a pass need a person.
STALE_MANAGER_SECONDS = 300


@dataclass
class Row:
    """One worker's line: the stable fields of ``ftpdup status --json``."""

    lane: str
    subscriber: str | None
    instance: str | None
    kind: str
    unit: str
    state: str
    backlog_files: int = 0
    backlog_bytes: int = 0
    oldest_age_s: float | None = None
    delivered_last_hour_files: int = 0
    delivered_last_hour_bytes: int = 0
    last_success: float | None = None
    last_error: str = ""
    retrying: bool = False
    next_retry_in_s: float | None = None
    dead_letters: int = 0
    delivered_files_total: int = 0
    delivered_bytes_total: int = 0
    failures_total: int = 0
    level: str = OK
    notes: list[str] = field(default_factory=list)
    # Not in the JSON: the worker's own file, for the metrics.
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Report:
    """Every row, the data root's free space, what the manager last saw, the worst level,
    and the host's own state: the manager's last pass, the watch's view of Consul."""

    rows: list[Row]
    free_percent: float
    consul_error: str
    level: str
    generated: float
    manager: dict = field(default_factory=dict)
    watch: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cluster: dict | None = None

    def json(self) -> str:
        rows = [{k: v for k, v in asdict(row).items() if k != "raw"} for row in self.rows]
        return json.dumps(
            {
                "level": self.level,
                "generated": self.generated,
                "data_root_free_percent": round(self.free_percent, 2),
                "consul_error": self.consul_error,
                "manager": self.manager,
                "watch": self.watch,
                "cluster": self.cluster,
                "notes": self.notes,
                "rows": rows,
            },
            indent=1,
        )


def collect(host: Settings, systemctl: Systemctl, selection: str = "") -> Report:
    """Return the report of this host (only the rows of LANE or LANE:SUB when selected)."""
    now = time.time()
    manager = status.read(os.path.join(host.data_root, "status", MANAGER)) or {}
    wanted = {("sprinkler", lane) for lane in manager.get("lanes", [])}
    wanted |= {("carrier", instance) for instance in manager.get("carriers", [])}
    held = set(manager.get("held", {}))
    parked = dict(manager.get("parked", {}))
    paused = dict(manager.get("paused", {}))
    wanted |= {("carrier", queue) for queue in parked}
    units = systemctl.worker_states()
    found = {parse_unit_name(unit) for unit in units} - {None}
    summary = status.read(os.path.join(host.data_root, "status", SUMMARY)) or {}
    queues = _queues_before_spools(host, {name for kind, name in wanted if kind == "sprinkler"})
    rows = []
    for kind, name in sorted(wanted | found, key=_lane_first):  # type: ignore[arg-type]
        if selection and not selected(name, selection):
            continue
        state = units.get(unit_name(kind, name), "none" if name in parked else "inactive")
        if name in paused and state != "active":
            state = "paused"
        row = _row(host, kind, name, state, now, summary)
        if kind == "carrier" and state != "active":
            _count_spool(row, host, name, summary)  # its own status file is not current
        if kind == "carrier":
            _add_queue(row, queues.get(name, {}), now)
        _judge(row, host, now, wanted=(kind, name) in wanted, held=name in held,
               parked=parked.get(name, ""), paused=paused.get(name))  # fmt: skip
        rows.append(row)
    rows += _refused_rows(manager.get("refused", {}), selection)
    free = _free_percent(host.data_root)
    consul_error = manager.get("consul_error", "")
    notes: list[str] = []
    levels = [row.level for row in rows] + [_space_level(host, free)]
    levels.append(WARNING if consul_error else OK)
    last_pass = status.read(os.path.join(host.data_root, "status", PASS)) or {}
    watch = status.read(os.path.join(host.data_root, "status", WATCH)) or {}
    levels += _judge_host(last_pass, watch, units, now, notes)
    cluster = manager.get("cluster")
    if isinstance(cluster, dict) and cluster.get("drain"):
        since = _clock(cluster.get("drain_since"))
        leaving = len(cluster.get("leaving", []))
        held = "it holds nothing" if cluster["drain"] == "drained" else (
            f"{leaving} lanes still deliver what they hold")  # fmt: skip
        notes.append(f"{cluster['drain']} since {since}: {held}")
        levels.append(WARNING)
    return Report(rows, free, consul_error, _worst(levels), round(now, 3), last_pass, watch, notes,
                  cluster if isinstance(cluster, dict) else None)  # fmt: skip


def _refused_rows(refused: dict, selection: str) -> list[Row]:
    """Return a row for each lane and subscriber Consul holds that this host refuses."""
    rows = []
    for name, why in sorted(refused.items()):
        if selection and not selected(name, selection):
            continue
        parts = name.split(":")
        subscriber = parts[1] if len(parts) > 1 else None
        row = Row(parts[0], subscriber, None, "config", "", "refused", last_error=why)
        # A lane refused receives nothing new; a refused subscriber's files wait.
        row.level = WARNING if subscriber else CRITICAL
        row.notes.append("refused: fix its value in Consul (ftpdup check)")
        rows.append(row)
    return rows


def _judge_host(last_pass: dict, watch: dict, units: dict, now: float,
                notes: list[str]) -> list[str]:  # fmt: skip
    """Return the levels of the host's own state, adding a note for each that needs a
    person: a manager that has not finished a pass lately or failed, a watch that lost
    Consul."""
    levels = []
    finished = last_pass.get("time")
    if finished is None:
        notes.append("the manager has not recorded a pass yet")
        levels.append(WARNING)
    elif now - finished > STALE_MANAGER_SECONDS:
        notes.append(f"the manager's last pass ended {age_text(now - finished)} ago")
        levels.append(CRITICAL)
    elif last_pass.get("result") == "failed":
        notes.append(f"the manager's last pass failed {last_pass.get('failed_steps')} steps")
        levels.append(WARNING)
    if watch.get("consul") == "unreachable":
        notes.append(f"the watch cannot reach Consul since {_clock(watch.get('since'))}: "
                     f"{watch.get('error', '')}")  # fmt: skip
        levels.append(WARNING)
    return levels


def _lane_first(worker: tuple[str, str]) -> tuple[str, bool, str]:
    """Sort key: by lane, its sprinkler first, then its carriers."""
    kind, name = worker
    return name.split(":")[0], kind != "sprinkler", name


def selected(name: str, selection: str) -> bool:
    return (
        name == selection
        or name.startswith(selection + ":")
        or (":" not in selection and name.split(":")[0] == selection)
    )


def _row(host: Settings, kind: str, name: str, state: str, now: float, summary: dict) -> Row:
    """Return the row of one worker, from its status file and its dead letters."""
    parts = name.split(":")
    data = status.read(status.status_path(host.data_root, kind, name)) or {}
    minutes = {int(m): counts for m, counts in data.get("minutes", {}).items()}
    recent = [counts for minute, counts in minutes.items() if minute > now // 60 - 60]
    oldest = data.get("oldest_mtime")
    next_retry = data.get("next_retry")
    return Row(
        lane=parts[0],
        subscriber=parts[1] if len(parts) > 1 else None,
        instance=parts[2] if len(parts) > 2 else None,
        kind=kind,
        unit=unit_name(kind, name),
        state=state,
        backlog_files=int(data.get("backlog_files", 0)),
        backlog_bytes=int(data.get("backlog_bytes", 0)),
        oldest_age_s=round(now - oldest, 1) if oldest else None,
        delivered_last_hour_files=sum(counts[0] for counts in recent),
        delivered_last_hour_bytes=sum(counts[1] for counts in recent),
        last_success=data.get("last_success"),
        last_error=data.get("last_error", ""),
        retrying=bool(data.get("failing_since")),
        next_retry_in_s=round(max(0.0, next_retry - now), 1) if next_retry else None,
        dead_letters=dead_letters(host, kind, name, summary),
        delivered_files_total=int(data.get("delivered_files", 0)),
        delivered_bytes_total=int(data.get("delivered_bytes", 0)),
        failures_total=int(data.get("failures", 0)),
        raw=data,
    )


def _queues_before_spools(host: Settings, lanes: set[str]) -> dict[str, dict]:
    """Return what each lane's sprinkler says of its outputs: versions queued before a
    carrier's spool, and what a parked queue holds."""
    found: dict[str, dict] = {}
    for lane in lanes:
        data = status.read(status.status_path(host.data_root, "sprinkler", lane)) or {}
        outputs = data.get("outputs")
        if isinstance(outputs, dict):
            found.update(
                {name: entry for name, entry in outputs.items() if isinstance(entry, dict)}
            )
    return found


def _add_queue(row: Row, queue: dict, now: float) -> None:
    """Count in a carrier's row the files its sprinkler holds for it before its spool (or,
    for a parked queue, every file it holds)."""
    if "files" in queue:
        row.backlog_files = int(queue.get("files") or 0)
        oldest = queue.get("oldest_mtime")
        row.oldest_age_s = round(now - oldest, 1) if oldest else None
    else:
        row.backlog_files += int(queue.get("queued_before_spool") or 0)


def _count_spool(row: Row, host: Settings, name: str, summary: dict) -> None:
    """Count the files in the spool of a carrier that is not running (paused, held, down):
    directly when this user may list it, else as the metrics timer last counted them."""
    try:
        with os.scandir(Layout(host.data_root).spool(name)) as scan:
            row.backlog_files = sum(1 for entry in scan if entry.is_file(follow_symlinks=False))
    except FileNotFoundError:
        row.backlog_files = 0
    except PermissionError:
        row.backlog_files = int(summary.get("backlog", {}).get(name, row.backlog_files))


def dead_letters(host: Settings, kind: str, name: str, summary: dict | None = None) -> int:
    """Return how many files are in the dead letters of a carrier (or of a lane).

    Counted when this user may list them; else the count the metrics timer
    last wrote in the summary.
    """
    folder = os.path.join(Layout(host.data_root).dead(name), "files")
    try:
        return len(os.listdir(folder))
    except FileNotFoundError:
        return 0
    except PermissionError:
        return int((summary or {}).get("dead_letters", {}).get(name, 0))


def _judge(row: Row, host: Settings, now: float, wanted: bool, held: bool,
           parked: str = "", paused: dict | None = None) -> None:  # fmt: skip
    """Set the row's level and notes by the thresholds of the host settings."""
    levels = [OK]
    if paused is not None:
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(paused.get("since", now)))
        reason = f" ({paused['reason']})" if paused.get("reason") else ""
        row.notes.append(f"paused since {since}{reason}: its files queue")
        row.level = WARNING  # a person chose it: never critical, however old the queue
        return
    if held:
        row.notes.append("instance not passing in Consul: its files wait")
        levels.append(WARNING)
    elif parked:
        row.notes.append(f"no worker ({parked}): its files wait")
        levels.append(WARNING)
    elif wanted and row.state != "active":
        row.notes.append("in Consul, not running on this host")
        levels.append(CRITICAL)
    if not wanted and row.state in ("active", "activating"):
        row.notes.append("running, not in Consul")
        levels.append(WARNING)
    if row.oldest_age_s is not None:
        if row.oldest_age_s >= host.status_critical_age:
            levels.append(CRITICAL)
        elif row.oldest_age_s >= host.status_warning_age:
            levels.append(WARNING)
    if row.retrying or row.last_error:
        levels.append(WARNING)
    odd = row.raw.get("odd_entries") or []
    if odd:
        first = odd[0]
        total = row.raw.get("odd_entries_total", len(odd))
        row.notes.append(
            f"{total} entries in the lane are not regular files (e.g. {first.get('name')!r}, "
            f"{first.get('kind')}): nothing forwards them; remove them, or move a folder's "
            "files into the lane"
        )
        levels.append(WARNING)
    if row.dead_letters:
        levels.append(WARNING)
    row.level = _worst(levels)


def _worst(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index)


def _free_percent(path: str) -> float:
    try:
        info = os.statvfs(path)
    except OSError:
        return 100.0
    return 100.0 * info.f_bavail / info.f_blocks if info.f_blocks else 100.0


def _space_level(host: Settings, free: float) -> str:
    if free < host.low_space_critical_percent:
        return CRITICAL
    return WARNING if free < host.low_space_warning_percent else OK


def table(report: Report) -> str:
    """Return the report as a table for a terminal."""
    lines = [
        f"{'WORKER':34} {'STATE':10} {'BACKLOG':>16} {'OLDEST':>8} {'LAST HOUR':>10}"
        f" {'LAST SUCCESS':>12} {'DEAD':>5}  LEVEL     NOTES"
    ]
    for row in report.rows:
        name = ":".join(part for part in (row.lane, row.subscriber, row.instance) if part)
        name += (
            " (lane)"
            if row.kind == "sprinkler" or (row.kind == "config" and not row.subscriber)
            else ""
        )
        backlog = str(row.backlog_files)
        if row.kind == "carrier":
            backlog += f" ({_size(row.backlog_bytes)})"
        notes = "; ".join(row.notes + ([row.last_error] if row.last_error else []))
        lines.append(
            f"{name[:34]:34} {row.state:10} {backlog:>16} {age_text(row.oldest_age_s):>8}"
            f" {row.delivered_last_hour_files:>10} {_clock(row.last_success):>12}"
            f" {row.dead_letters:>5}  {row.level:9} {notes}"
        )
    lines += [f"host: {note}" for note in report.notes]
    lines.append(
        f"data root {report.free_percent:.1f} % free; Consul: "
        f"{report.consul_error or 'read by the manager'}; overall: {report.level}"
    )
    return "\n".join(lines)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _clock(timestamp: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) if timestamp else "never"
