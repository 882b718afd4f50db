"""What monitoring sees: every problem that needs a person, in promtool-clean metrics, the
shipped alert rules and the dashboard (Prometheus' own promtool checks them)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from ftpdup import metrics, report
from ftpdup.host.units import Systemctl
from ftpdup.report import Report, Row
from ftpdup.settings import Settings
from tests.harness.consul_agent import REPOSITORY

ALERTS = os.path.join(REPOSITORY, "packaging", "prometheus", "ftpdup-alerts.yml")
DASHBOARD = os.path.join(REPOSITORY, "packaging", "grafana", "ftpdup-dashboard.json")


def write(path: str, value: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(value, handle)


def test_refusals_a_stale_manager_a_lost_consul_and_pauses_reach_the_status(tmp_path):
    host = Settings(data_root=str(tmp_path))
    folder = os.path.join(str(tmp_path), "status")
    now = time.time()
    write(os.path.join(folder, "manager.json"), {
        "lanes": ["good"], "carriers": ["good:sub"],
        "refused": {"bad": "incoming_directories/bad/settings: 'uid' is required",
                    "good:broken": "incoming_directories/good/subscribers/broken: 'host' ..."},
        "paused": {"good:sub": {"since": now - 60, "reason": "window"}},
    })  # fmt: skip
    write(os.path.join(folder, "manager-pass.json"), {"result": "ok", "time": now - 3600})
    write(os.path.join(folder, "watch.json"), {"consul": "unreachable", "error": "refused",
                                               "since": now - 120, "time": now})  # fmt: skip
    found = report.collect(host, Systemctl())  # no ftpdup unit runs on this test host
    rows = {(row.lane, row.subscriber): row for row in found.rows}
    assert rows[("bad", None)].level == "critical" and rows[("bad", None)].state == "refused"
    assert "'uid' is required" in rows[("bad", None)].last_error
    assert rows[("good", "broken")].level == "warning"
    assert rows[("good", "sub")].state == "paused" and rows[("good", "sub")].level == "warning"
    assert any("the manager's last pass ended" in note for note in found.notes)
    assert any("the watch cannot reach Consul" in note for note in found.notes)
    assert found.level == "critical"
    text = metrics.render(found)
    assert 'ftpdup_config_refused{lane="bad",subscriber="",service_instance=""} 1' in text
    assert 'ftpdup_paused{lane="good",subscriber="sub",service_instance=""} 1' in text
    assert "ftpdup_consul_reachable 0" in text and "ftpdup_host_level 2" in text
    assert not re.search(r'[{,]instance="', text)  # Prometheus' own label stays the host's


def test_promtool_passes_the_metrics_and_the_alert_rules(tmp_path):
    found = Report(
        rows=[
            Row("l", "s", None, "carrier", "u", "active", backlog_files=3,
                raw={"duration_buckets": [1] * 10, "duration_sum": 2.0}),
            Row("l", None, None, "sprinkler", "u", "active"),
            Row("l", "x", "i-1", "carrier", "u", "paused"),
            Row("bad", None, None, "config", "", "refused"),
        ],
        free_percent=50.0, consul_error="", level="warning", generated=0.0,
        manager={"result": "ok", "failed_steps": 0, "time": 1.0}, watch={"consul": "ok"},
    )  # fmt: skip
    text = metrics.render(found)
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = subprocess.run(["promtool", "check", "rules", ALERTS], capture_output=True, text=True)
    assert rules.returncode == 0 and "SUCCESS" in rules.stdout, rules.stdout + rules.stderr


def test_the_dashboard_and_the_alerts_use_only_metrics_that_exist():
    names = {name for name, _, _ in metrics.METRICS + metrics.HOST_METRICS}
    names |= {f"ftpdup_transfer_duration_seconds_{part}" for part in ("bucket", "sum", "count")}
    names.add("ftpdup_data_root_free_ratio")
    with open(DASHBOARD) as handle:
        dashboard = json.load(handle)
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    expressions += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    with open(ALERTS) as handle:
        expressions += re.findall(r"expr: (.*)", handle.read())
    used = {name for expr in expressions for name in re.findall(r"ftpdup_[a-z_]+", expr)}
    assert used and used <= names, used - names
    assert {"ftpdup_backlog_files", "ftpdup_config_refused", "ftpdup_host_level"} <= used
