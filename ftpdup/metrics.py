"""Prometheus metrics in the text format, for node_exporter's textfile collector.

``ftpdup metrics`` (run by ftpdup-metrics.timer) writes them atomically into
``metrics_file``; no port is opened. It also writes the status summary the
monitoring group reads (dead-letter counts, which only the workers' group
may count).
"""

from __future__ import annotations

import json
import os
import tempfile

from ftpdup.report import LEVELS, SUMMARY, Report
from ftpdup.settings import Settings
from ftpdup.status import DURATION_BUCKETS

# name, type, help
METRICS = (
    ("ftpdup_up", "gauge", "1 if the worker's unit is active."),
    ("ftpdup_backlog_files", "gauge", "Files waiting to be forwarded or delivered."),
    ("ftpdup_backlog_bytes", "gauge", "Bytes waiting to be delivered."),
    ("ftpdup_oldest_file_age_seconds", "gauge", "Age of the oldest file waiting."),
    ("ftpdup_delivered_files_total", "counter", "Files delivered (carriers) or forwarded (lanes)."),
    ("ftpdup_delivered_bytes_total", "counter", "Bytes delivered (carriers) or forwarded (lanes)."),
    ("ftpdup_failures_total", "counter", "Failed delivery attempts."),
    ("ftpdup_retrying", "gauge", "1 while the subscriber is failing and retried."),
    ("ftpdup_dead_letters", "gauge", "Files set aside in the dead letters."),
    ("ftpdup_level", "gauge", "0 ok, 1 warning, 2 critical, as ftpdup status says."),
    ("ftpdup_paused", "gauge", "1 while an operator has paused the subscriber."),
)
# Host metrics: name, type, help.
HOST_METRICS = (
    ("ftpdup_config_refused", "gauge",
     "1 for each lane or subscriber Consul holds that this host refuses (ftpdup check)."),
    ("ftpdup_manager_last_pass_timestamp_seconds", "gauge",
     "When the manager last finished a pass (Unix time)."),
    ("ftpdup_manager_last_pass_failed_steps", "gauge",
     "Steps that failed in the manager's last pass (-1: Consul could not be read)."),
    ("ftpdup_consul_reachable", "gauge", "1 while the watch reaches Consul."),
    ("ftpdup_host_level", "gauge", "0 ok, 1 warning, 2 critical: ftpdup status's exit status."),
)  # fmt: skip


def _labels(row) -> str:
    """Return a row's labels. A Consul service's instance is ``service_instance``:
    ``instance`` is Prometheus' own label for the scraped host."""
    pairs = {
        "lane": row.lane,
        "subscriber": row.subscriber or "",
        "service_instance": row.instance or "",
    }
    return ",".join(f'{key}="{_escape(value)}"' for key, value in pairs.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(report: Report) -> str:
    """Return every metric of report in Prometheus' text format."""
    lines = []
    values = {
        "ftpdup_up": lambda row: 1 if row.state == "active" else 0,
        "ftpdup_backlog_files": lambda row: row.backlog_files,
        "ftpdup_backlog_bytes": lambda row: row.backlog_bytes,
        "ftpdup_oldest_file_age_seconds": lambda row: row.oldest_age_s or 0,
        "ftpdup_delivered_files_total": lambda row: row.delivered_files_total,
        "ftpdup_delivered_bytes_total": lambda row: row.delivered_bytes_total,
        "ftpdup_failures_total": lambda row: row.failures_total,
        "ftpdup_retrying": lambda row: 1 if row.retrying else 0,
        "ftpdup_dead_letters": lambda row: row.dead_letters,
        "ftpdup_level": lambda row: LEVELS.index(row.level),
        "ftpdup_paused": lambda row: 1 if row.state == "paused" else 0,
    }
    workers = [row for row in report.rows if row.kind != "config"]
    for name, kind, text in METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{{{_labels(row)}}} {values[name](row)}" for row in workers]
    lines += _durations(report)
    lines += _host_metrics(report)
    lines += [
        "# HELP ftpdup_data_root_free_ratio Free space of the data root (0 to 1).",
        "# TYPE ftpdup_data_root_free_ratio gauge",
        f"ftpdup_data_root_free_ratio {report.free_percent / 100:.4f}",
    ]
    return "\n".join(lines) + "\n"


def _host_metrics(report: Report) -> list[str]:
    """Return the metrics of the host itself: refusals, the manager's passes, Consul."""
    last = report.manager
    failed = -1 if last.get("result") == "consul error" else last.get("failed_steps", 0)
    values = {
        "ftpdup_config_refused": [
            f"ftpdup_config_refused{{{_labels(row)}}} 1"
            for row in report.rows
            if row.kind == "config"
        ],
        "ftpdup_manager_last_pass_timestamp_seconds": [
            f"ftpdup_manager_last_pass_timestamp_seconds {last.get('time', 0)}"
        ],
        "ftpdup_manager_last_pass_failed_steps": [
            f"ftpdup_manager_last_pass_failed_steps {failed}"
        ],
        "ftpdup_consul_reachable": [
            f"ftpdup_consul_reachable {0 if report.watch.get('consul') == 'unreachable' else 1}"
        ],
        "ftpdup_host_level": [f"ftpdup_host_level {LEVELS.index(report.level)}"],
    }
    lines = []
    for name, kind, text in HOST_METRICS:
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *values[name]]
    return lines


def _durations(report: Report) -> list[str]:
    """Return the transfer duration histogram of every carrier."""
    name = "ftpdup_transfer_duration_seconds"
    lines = [f"# HELP {name} Time to deliver one file.", f"# TYPE {name} histogram"]
    for row in report.rows:
        if row.kind != "carrier":
            continue
        counts = row.raw.get("duration_buckets") or [0] * (len(DURATION_BUCKETS) + 1)
        total = 0
        for bound, count in zip((*DURATION_BUCKETS, "+Inf"), counts):
            total += count
            lines.append(f'{name}_bucket{{{_labels(row)},le="{bound}"}} {total}')
        lines.append(f"{name}_sum{{{_labels(row)}}} {row.raw.get('duration_sum', 0)}")
        lines.append(f"{name}_count{{{_labels(row)}}} {total}")
    return lines


def write(path: str, text: str) -> None:
    """Write text to path atomically (a reader sees the old file or the new one)."""
    descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".ftpdup-")
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def write_summary(host: Settings, report: Report) -> None:
    """Write what non-root readers of ``ftpdup status`` cannot count themselves."""
    folder = os.path.join(host.data_root, "status")
    if not os.path.isdir(folder):
        return
    named = [(":".join(p for p in (row.lane, row.subscriber, row.instance) if p), row)
             for row in report.rows]  # fmt: skip
    counts = {name: row.dead_letters for name, row in named}
    backlog = {name: row.backlog_files for name, row in named if row.kind == "carrier"}
    path = os.path.join(folder, SUMMARY)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".summary-")
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"dead_letters": counts, "backlog": backlog}, handle, sort_keys=True)
    os.chmod(temporary, 0o640)
    os.replace(temporary, path)
