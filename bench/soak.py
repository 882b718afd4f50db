"""Soak: a steady load for 10 minutes while subscribers go down and up; do workers grow?

Under the real systemd (the system tests' container), one lane delivers to an
FTP and an HTTP subscriber while small files arrive without pause; every
minute one subscriber is stopped for 20 s. Every 10 s the RSS and the open
file descriptors of each worker are sampled; the report gives their slope
(least squares, per minute) and checks that every acknowledged file arrived.
Run as root: ``.venv/bin/python bench/soak.py [SECONDS]``; writes bench/results/soak.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ftpdup.host.units import parse_unit_name
from tests.harness.consul_agent import ConsulAgent
from tests.harness.container import Container
from tests.harness.faults import storm_uploads
from tests.harness.installed import install
from tests.harness.system_world import SystemWorld

PROBE = """
import json, os, sys
found = {}
for pid in sys.argv[1:]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            rss = next(int(l.split()[1]) for l in handle if l.startswith("VmRSS:"))
        found[pid] = {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}
    except (OSError, StopIteration):
        pass
print(json.dumps(found))
"""


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Return the least-squares slope of (seconds, value) samples, per minute."""
    times = [t for t, _ in samples]
    values = [v for _, v in samples]
    mean_t, mean_v = statistics.mean(times), statistics.mean(values)
    spread = sum((t - mean_t) ** 2 for t in times)
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread if spread else 0.0


def main(seconds: int = 600) -> dict:
    base = tempfile.mkdtemp(prefix="ftpdup-bench-")
    os.chmod(base, 0o755)
    agent = ConsulAgent(base, name="soak").start()
    box = Container(base, name="ftpdup-soak").boot()
    try:
        install(box, agent, "ftpdup-soak", restart_period=36000)
        world = SystemWorld(box, agent, base)
        lane = world.add_lane("soak")
        ftp = world.add_ftp_subscriber(lane, "ftpsub")
        web = world.add_http_subscriber(lane, "websub")
        units = [world.unit("sprinkler", lane)]
        units += [world.unit("carrier", f"{lane}:{sub}") for sub in ("ftpsub", "websub")]
        for unit in units:
            world.wait_active(unit)
        uploads = storm_uploads(world, lane, seed=7)
        uploads.start()
        samples: dict[str, list[tuple[float, dict]]] = {unit: [] for unit in units}
        started = time.monotonic()
        outages = 0
        while (elapsed := time.monotonic() - started) < seconds:
            pids = {unit: box.main_pid(unit) for unit in units}
            found = json.loads(box.run("python3", "-c", PROBE, *map(str, pids.values())).stdout)
            for unit, pid in pids.items():
                if str(pid) in found:
                    samples[unit].append((elapsed, found[str(pid)]))
            minute = int(elapsed) % 60
            server = (ftp, web)[int(elapsed // 60) % 2]
            if 0 <= minute < 10 and server.process is not None:
                server.stop()
                outages += 1
            elif minute >= 30 and server.process is None:
                server.start()
            time.sleep(10)
        for server in (ftp, web):
            if server.process is None:
                server.start()
        uploads.stopping.set()
        uploads.join(60)
        world.wait_at(world.destinations[f"{lane}:ftpsub"] + world.destinations[f"{lane}:websub"],
                      uploads.acknowledged, timeout=300)  # fmt: skip
        report = {"seconds": seconds, "files": len(uploads.acknowledged), "outages": outages}
        for unit, series in samples.items():
            kind, name = parse_unit_name(unit)
            name = f"{kind} {name}"
            rss = [(t, s["rss_kib"]) for t, s in series]
            fds = [(t, s["fds"]) for t, s in series]
            report[name] = {
                "samples": len(series),
                "rss_kib_first_last": [rss[0][1], rss[-1][1]],
                "rss_kib_per_minute": round(slope_per_minute(rss), 2),
                "fds_first_last": [fds[0][1], fds[-1][1]],
                "fds_per_minute": round(slope_per_minute(fds), 3),
            }
        world.close()
        return report
    finally:
        box.stop()
        agent.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    result = main(*[int(value) for value in sys.argv[1:]])
    print(json.dumps(result, indent=1))
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "soak.json"), "w") as handle:
        json.dump(result, handle, indent=1)
