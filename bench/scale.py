"""Many units on one host: 100 lanes x 4 subscribers (500 worker units) under the real systemd.

Boots the system tests' container with ftpdup installed, then measures:
- bring-up: one Consul transaction -> every worker unit active (and the
  highest 1-minute load average seen meanwhile);
- no-change reconcile: one manager pass when nothing changed;
- one changed subscriber -> its carrier restarted and active (no other unit
  restarted);
- mean PSS and USS per worker (/proc/PID/smaps_rollup);
- idle CPU of all workers over a minute.
Run as root: ``.venv/bin/python bench/scale.py [LANES [SUBSCRIBERS [IDLE_SECONDS]]]``.
Prints a table and writes bench/results/scale.json.
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

from tests.harness.consul_agent import ConsulAgent
from tests.harness.container import Container
from tests.harness.installed import install
from tests.harness.system_world import SystemWorld

# Run inside the container: per-process memory and CPU ticks of the given PIDs.
PROBE = """
import json, os, sys
found = {}
for pid in sys.argv[1:]:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            lines = [line.split(":", 1) for line in handle if line.rstrip().endswith("kB")]
            fields = dict(lines)
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read().rsplit(")", 1)[1].split()
        kib = lambda key: int(fields[key].split()[0])
        found[pid] = {
            "pss": kib("Pss"), "rss": kib("Rss"),
            "uss": kib("Private_Clean") + kib("Private_Dirty"),
            "ticks": int(stat[11]) + int(stat[12]),
        }
    except (OSError, KeyError, ValueError):
        pass
print(json.dumps({"hz": os.sysconf("SC_CLK_TCK"), "pids": found}))
"""


def waited(condition, timeout: float, interval: float = 0.5) -> float:
    """Return the seconds until condition() is true; raise TimeoutError after timeout."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError
        time.sleep(interval)
    return time.monotonic() - started


def probe(box: Container, pids: list[int]) -> dict:
    out = box.run("python3", "-c", PROBE, *map(str, pids)).stdout
    return json.loads(out)


def main_pids(box: Container, units: list[str]) -> dict[str, int]:
    out = box.run("systemctl", "show", "-p", "MainPID", "--value", *units).stdout.split()
    return dict(zip(units, map(int, out)))


def main(lanes: int = 100, subscribers: int = 4, idle_seconds: int = 60) -> dict:
    base = tempfile.mkdtemp(prefix="ftpdup-bench-")
    os.chmod(base, 0o755)
    agent = ConsulAgent(base, name="scale").start()
    box = Container(base, name="ftpdup-scale").boot()
    results: dict = {"lanes": lanes, "subscribers_per_lane": subscribers}
    try:
        install(box, agent, "ftpdup-scale", restart_period=36000)
        world = SystemWorld(box, agent, base)
        web = world.http_server("all")
        values = {}
        units = []
        for number in range(lanes):
            lane = world.lane(f"b{number}")
            world.lanes[lane] = {
                "user": f"b{world.tag}{number}",
                "password": "pw",
                "uid": 50000 + number,
            }
            values[world.key(lane, "settings")] = world.lanes[lane]
            units.append(world.unit("sprinkler", lane))
            for sub in range(subscribers):
                value = {
                    "mode": "http",
                    "host": "127.0.0.1",
                    "port": web.port,
                    "directory": f"{number}-{sub}",
                }
                values[world.key(lane, f"subscribers/s{sub}")] = value
                units.append(world.unit("carrier", f"{lane}:s{sub}"))
        loads = []

        def all_active() -> bool:
            with open("/proc/loadavg") as handle:
                loads.append(float(handle.read().split()[0]))
            states = box.units("ftpdup-*@*")
            return sum(states.get(unit) == "active" for unit in units) == len(units)

        started = time.monotonic()
        agent.put_many(values)
        waited(all_active, 900, interval=1)
        results["bring_up_s"] = round(time.monotonic() - started, 1)
        results["bring_up_max_load"] = max(loads)
        waited(lambda: box.is_active("ftpdup-manager.service") == "inactive", 300)

        passes = []
        for _ in range(3):
            begun = time.monotonic()
            box.run("systemctl", "start", "ftpdup-manager.service")
            passes.append(time.monotonic() - begun)
        results["no_change_reconcile_s"] = round(statistics.median(passes), 2)

        before = main_pids(box, units)
        middle = world.lane(f"b{lanes // 2}")
        changed = world.unit("carrier", f"{middle}:s{subscribers - 1}")
        begun = time.monotonic()
        moved = {"mode": "http", "host": "127.0.0.1", "port": web.port, "directory": "moved"}
        world.put_subscriber(middle, f"s{subscribers - 1}", moved)
        waited(
            lambda: (
                box.main_pid(changed) not in (0, before[changed])
                and box.is_active(changed) == "active"
            ),
            120,
            interval=0.05,
        )
        results["one_change_applied_s"] = round(time.monotonic() - begun, 2)
        after = main_pids(box, units)
        results["units_restarted_by_one_change"] = sum(after[u] != before[u] for u in units)

        pids = list(after.values())
        first = probe(box, pids)
        time.sleep(idle_seconds)
        second = probe(box, pids)
        ticks = sum(
            second["pids"][p]["ticks"] - first["pids"][p]["ticks"]
            for p in second["pids"]
            if p in first["pids"]
        )
        measured = list(second["pids"].values())
        results["workers_measured"] = len(measured)
        results["mean_pss_mib"] = round(statistics.mean(m["pss"] for m in measured) / 1024, 2)
        results["mean_uss_mib"] = round(statistics.mean(m["uss"] for m in measured) / 1024, 2)
        results["mean_rss_mib"] = round(statistics.mean(m["rss"] for m in measured) / 1024, 2)
        results["idle_seconds"] = idle_seconds
        results["idle_cpu_percent_of_one_core"] = round(
            100 * ticks / second["hz"] / idle_seconds, 3
        )
        restarts = box.run("systemctl", "show", "-p", "NRestarts", "--value", *units).stdout.split()
        results["worker_restarts"] = sum(int(n) for n in restarts)
        world.close()
    finally:
        box.stop()
        agent.stop()
        shutil.rmtree(base, ignore_errors=True)
    return results


def report(results: dict) -> None:
    units = results["lanes"] * (results["subscribers_per_lane"] + 1)
    rows = [
        (
            f"bring-up of {units} units (one Consul transaction -> all active)",
            f"{results['bring_up_s']} s",
        ),
        ("  highest load average meanwhile", f"{results['bring_up_max_load']}"),
        ("no-change reconcile (one manager pass)", f"{results['no_change_reconcile_s']} s"),
        ("one changed subscriber -> its carrier restarted", f"{results['one_change_applied_s']} s"),
        ("  units restarted by that change", f"{results['units_restarted_by_one_change']}"),
        (
            "mean PSS / USS / RSS per worker (MiB)",
            "{mean_pss_mib} / {mean_uss_mib} / {mean_rss_mib}",
        ),
        (
            f"idle CPU of all workers over {results['idle_seconds']} s",
            f"{results['idle_cpu_percent_of_one_core']} % of one core",
        ),
        ("worker restarts meanwhile", f"{results['worker_restarts']}"),
    ]
    for what, value in rows:
        print(f"{what:62} {value.format(**results)}")


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:]]
    outcome = main(*arguments)
    report(outcome)
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "scale.json"), "w") as handle:
        json.dump(outcome, handle, indent=1)
