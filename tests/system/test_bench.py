"""The benchmark of bench/run.py, in its tiny size: it runs end to end and prints its table.

The figures are not judged here (timing goals live in bench/); a rate is
only produced once every file of its measure arrived at the subscriber.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.system

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_tiny_bench_produces_its_table_and_results(tmp_path):
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, os.path.join(TOP, "bench", "run.py"), "--tiny", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=TOP,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0] == "| measure | ftpdup | ceiling | ratio | goal |"
    for measure in ("P1", "P2", "P3", "P4", "P5"):
        assert any(line.startswith(f"| {measure} ") for line in lines), measure
    results = json.loads(output.read_text())
    p1 = results["p1"]
    for name in ("ftp_carrier", "ftp_ceiling", "ftp_carrier_4", "http_carrier",
                 "http_ceiling", "http_carrier_4", "ftp_login_per_file"):  # fmt: skip
        assert p1[name] > 0, name
    assert min(p1["wan"][k] for k in ("ftp_carrier", "ftp_ceiling", "ftp_carrier_4")) > 0
    assert results["p2_bulk"]["files"] == results["p2"]["files"] > 0
    assert results["p3"]["ftp"]["peak_rss_mib"] > 0
    assert results["p4"]["bring_up_s"] > 0
    assert results["p5"]["sprinkler"] > 0
