"""Every host at once (several hosts): the status each one publishes in Consul.

Each host's watch publishes its report under ``CLUSTER_KV_PREFIX/hosts/HOSTID``
every 30 s and when it changes (see membership). ``ftpdup status
--all-hosts`` reads them all: the same rows with a host column, and the
same exit status; a host whose summary is older than 90 s is critical.
"""

from __future__ import annotations

import json
import logging
import time

from ftpdup import consul_source, report
from ftpdup.settings import Settings

log = logging.getLogger(__name__)

# A host's summary older than this is stale (it is refreshed every 30 s).
STALE_SECONDS = 90.0
# What a summary keeps of each row, and its largest size: Consul refuses a value over
# 512 KiB (kv_max_value_size); past the limit only the rows that are not ok are kept.
SUMMARY_FIELDS = ("lane", "subscriber", "instance", "kind", "state", "backlog_files",
                  "oldest_age_s", "last_error", "dead_letters", "level", "notes")  # fmt: skip
SUMMARY_LIMIT = 400_000


def summary(host_id: str, found: dict) -> dict:
    """Given this host's status report (``ftpdup status --json``, as a dict), return the
    summary it publishes: its level, notes, placement and rows, each row cut to
    SUMMARY_FIELDS; if that is over SUMMARY_LIMIT bytes, only the rows not ok (and how many
    were left out)."""
    rows = [{key: row.get(key) for key in SUMMARY_FIELDS} for row in found.get("rows", [])]
    for row in rows:
        row["last_error"] = (row["last_error"] or "")[:200]
    kept = {"host_id": host_id, "level": found.get("level", report.OK),
            "notes": found.get("notes", []), "cluster": found.get("cluster"),
            "consul_error": found.get("consul_error", ""), "rows": rows}  # fmt: skip
    if len(json.dumps(kept)) > SUMMARY_LIMIT:
        kept["rows"] = [row for row in rows if row["level"] != report.OK]
        left_out = len(rows) - len(kept["rows"])
        kept["notes"] = [*kept["notes"], f"{left_out} rows at level ok left out (size limit)"]
    return kept


def read_hosts(host: Settings, now: float) -> list[dict]:
    """Return each host's summary: host_id, time, stale, level, notes, rows. Raise
    ConsulError."""
    folder = f"{host.cluster_kv_prefix.strip('/')}/hosts/"
    client = consul_source.connect(**host.consul_access())
    _, items = consul_source.call(f"reading {folder}", client.kv.get, folder, recurse=True)
    hosts = []
    for item in items or ():
        try:
            summary = json.loads(item["Value"])
        except (TypeError, ValueError, KeyError):
            continue
        stale = now - float(summary.get("time", 0)) > STALE_SECONDS
        hosts.append({
            "host_id": summary.get("host_id", item["Key"].rsplit("/", 1)[-1]),
            "time": summary.get("time"),
            "stale": stale,
            "level": report.CRITICAL if stale else summary.get("level", report.OK),
            "notes": summary.get("notes", []),
            "cluster": summary.get("cluster"),
            "rows": summary.get("rows", []),
        })  # fmt: skip
    return sorted(hosts, key=lambda entry: entry["host_id"])


def status_command(host: Settings, selection: str, as_json: bool) -> str:
    """Print every host's rows (those of selection); return the worst level."""
    if not host.cluster_service:
        log.error("--all-hosts needs several hosts: set cluster_service")
        return report.CRITICAL
    now = time.time()
    try:
        hosts = read_hosts(host, now)
    except consul_source.ConsulError as error:
        log.error("%s", error)
        return report.CRITICAL
    for entry in hosts:
        entry["rows"] = [row for row in entry["rows"]
                         if not selection or report.selected(name(row), selection)]  # fmt: skip
    worst = max([entry["level"] for entry in hosts] or [report.OK], key=report.LEVELS.index)
    print(json.dumps({"level": worst, "hosts": hosts}, indent=1) if as_json
          else table(hosts, worst, now))  # fmt: skip
    return worst


def name(row: dict) -> str:
    """Return a row's worker name as ``ftpdup status`` writes it."""
    found = ":".join(str(row[key]) for key in ("lane", "subscriber", "instance") if row.get(key))
    return found + (" (lane)" if row.get("kind") == "sprinkler" else "")


def table(hosts: list[dict], worst: str, now: float) -> str:
    """Return every host's rows as a table, a host column first."""
    lines = [f"{'HOST':20} {'WORKER':34} {'STATE':10} {'BACKLOG':>8} {'OLDEST':>8} {'DEAD':>5}"
             "  LEVEL     NOTES"]  # fmt: skip
    for entry in hosts:
        who = entry["host_id"][:20]
        if entry["stale"]:
            age = f"{now - float(entry['time']):.0f} s" if entry["time"] else "ever"
            lines.append(f"{who:20} {'(host)':34} {'stale':10} {'':>8} {'':>8} {'':>5}"
                         f"  critical  no summary for {age}")  # fmt: skip
        for note in entry["notes"]:
            lines.append(f"{who:20} {'(host)':34} {'':10} {'':>8} {'':>8} {'':>5}  {'':9} {note}")
        for row in entry["rows"]:
            error = [row["last_error"]] if row.get("last_error") else []
            notes = "; ".join(row.get("notes", []) + error)
            oldest = report.age_text(row.get("oldest_age_s"))
            lines.append(
                f"{who:20} {name(row)[:34]:34} {row.get('state', ''):10}"
                f" {row.get('backlog_files', 0):>8} {oldest:>8} {row.get('dead_letters', 0):>5}"
                f"  {row.get('level', ''):9} {notes}"
            )
    lines.append(f"{len(hosts)} hosts; overall: {worst}")
    return "\n".join(lines)
