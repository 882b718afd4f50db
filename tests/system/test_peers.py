"""The peers bench (bench/peers.py) in its tiny size: every tool does every row it can.

Figures are not judged here (timing goals live in bench/). A rate or a
latency is only produced once every file of its measure arrived, byte-sized,
at the subscriber; what is asserted is that each tool ran each row it can,
that the rows it cannot are the ones the table says, and that ftpdup lost
nothing while its subscriber was down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.system

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Rows a tool cannot do: sr3 has no HTTP PUT; rclone's WebDAV needs PROPFIND (nginx's
# module has none), it has no watch and runs nothing resident.
CANNOT = {("small_http", "sr3"), ("small_http", "rclone"), ("latency", "rclone"),
          ("change", "rclone"), ("footprint", "rclone")}  # fmt: skip


def test_the_tiny_peers_bench_runs_every_tool_on_every_row(tmp_path):
    output = tmp_path / "peers.json"
    run = subprocess.run(
        [sys.executable, os.path.join(TOP, "bench", "peers.py"), "--tiny", "--output",
         str(output)],
        capture_output=True, text=True, timeout=1500, cwd=TOP,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "| measure | ftpdup | sr3 | rclone | ftpdup / best other | better |"
    results = json.loads(output.read_text())
    rows = ("small_1", "small_1_x4", "small_3", "small_http", "latency", "big", "outage",
            "change", "footprint")  # fmt: skip
    for row in rows:
        for tool in ("ftpdup", "sr3", "rclone"):
            value = results[row][tool]
            assert (value is None) == ((row, tool) in CANNOT), (row, tool, value)
    for row in ("small_1", "small_1_x4", "small_3", "small_http", "big"):
        assert all(v["short"] == 0 for v in results[row].values() if v), row
    outage = results["outage"]["ftpdup"]
    assert outage["lost"] == 0 and outage["short"] == 0 and outage["files"] > 0
    footprint = results["footprint"]["ftpdup"]
    assert footprint["processes"] == 4  # a sprinkler and three carriers
    assert results["footprint"]["sr3"]["processes"] == 4  # a watch and three senders
    assert results["footprint"]["sr3"]["broker_rss_mib"] > 0
    # Nothing of the bench runs on: no broker, no sr3 instance, no rclone (a dead process
    # its parent has not reaped yet is not running).
    table = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True)
    ours = ("beam.smp", "sarracenia/instance", "rclone copy")
    left = [
        line
        for line in table.stdout.splitlines()
        if not line.lstrip().startswith("Z") and any(word in line for word in ours)
    ]
    assert left == []
