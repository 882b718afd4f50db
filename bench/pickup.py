"""How fast a Consul change reaches systemd, with ftpdup-watch (and the timer as safety net).

Boots the system tests' container, then measures, over several rounds:
- new lane: Consul put of a lane with one subscriber -> its carrier unit active;
- changed subscriber: Consul put -> the carrier's MainPID has changed.
Run as root: ``.venv/bin/python bench/pickup.py``.
"""

from __future__ import annotations

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

ROUNDS = 5


def elapsed_until(condition, timeout: float = 120) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError
        time.sleep(0.05)
    return time.monotonic() - started


def main() -> None:
    base = tempfile.mkdtemp(prefix="ftpdup-bench-")
    os.chmod(base, 0o755)
    agent = ConsulAgent(base, name="pickup").start()
    box = Container(base, name="ftpdup-bench").boot()
    try:
        install(box, agent, "ftpdup-bench", restart_period=3600)
        new_lane, changed = [], []
        for _ in range(ROUNDS):
            world = SystemWorld(box, agent, base)
            lane = world.add_lane("p")
            server = world.add_http_subscriber(lane, "web")
            unit = world.unit("carrier", f"{lane}:web")
            # add_http_subscriber wrote the subscriber last: time from that write.
            new_lane.append(elapsed_until(lambda unit=unit: box.is_active(unit) == "active"))
            pid = box.main_pid(unit)
            started = time.monotonic()
            world.put_subscriber(
                lane,
                "web",
                {"mode": "http", "host": "127.0.0.1", "port": server.port, "directory": "x"},
            )
            elapsed_until(lambda unit=unit, pid=pid: box.main_pid(unit) not in (0, pid))
            changed.append(time.monotonic() - started)
            world.close()
        for name, values in (
            ("new lane -> carrier active", new_lane),
            ("changed subscriber -> carrier restarted", changed),
        ):
            print(
                f"{name:42} min {min(values):.2f} s  median {statistics.median(values):.2f} s"
                f"  max {max(values):.2f} s  ({len(values)} rounds)"
            )
    finally:
        box.stop()
        agent.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
