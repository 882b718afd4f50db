"""Kill storm at scale: 500 SIGKILLs (or KILLS) under the real systemd while files flow.

Same scenario as tests/system/test_faults.py (FTP, HTTP and Consul service
subscribers, mixed sizes): every acknowledged file must be byte-identical at
every subscriber, no temporary name left, no unit failed. Run as root:
``.venv/bin/python bench/faults.py [KILLS]``; writes bench/results/faults.json.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.harness.consul_agent import ConsulAgent
from tests.harness.container import Container
from tests.harness.faults import kill_storm
from tests.harness.installed import install
from tests.harness.system_world import SystemWorld


def main(kills: int = 500) -> dict:
    base = tempfile.mkdtemp(prefix="ftpdup-bench-")
    os.chmod(base, 0o755)
    agent = ConsulAgent(base, name="faults").start()
    box = Container(base, name="ftpdup-faults").boot()
    try:
        install(box, agent, "ftpdup-faults")
        world = SystemWorld(box, agent, base)
        try:
            return kill_storm(world, kills)
        finally:
            world.close()
    finally:
        box.stop()
        agent.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    seen = main(*[int(value) for value in sys.argv[1:]])
    for key, value in seen.items():
        print(f"{key:22} {value}")
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "faults.json"), "w") as handle:
        json.dump(seen, handle, indent=1)
    ok = (
        seen["temporary_names_left"] == []
        and seen["failed_units"] == []
        and not seen["dead_letters"]
    )
    sys.exit(0 if ok else 1)
