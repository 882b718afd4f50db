"""A kill storm under the real systemd: workers SIGKILLed at random while files flow.

One lane delivers to an FTP subscriber (pyftpdlib), an HTTP subscriber
(nginx, WebDAV) and a Consul service of two instances (nginx); files of mixed
sizes are uploaded all along while ``systemctl kill -s KILL`` hits the
sprinkler and the carriers at random moments. Shared by the system test
(a few dozen kills) and bench/faults.py (hundreds).
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import time

from tests.harness.delivery import holds
from tests.harness.procs import wait_for
from tests.harness.servers import NginxDav
from tests.harness.system_world import SystemWorld
from tests.harness.uploads import Uploads

SIZES = (0, 1, 700, 4096, 65536, 300_000, 1_500_000, 4_000_000)


def storm_uploads(world: SystemWorld, lane: str, seed: int | None) -> Uploads:
    """Return the storm's uploader: mixed sizes, up to 0.1 s between files."""
    return Uploads(world, lane, prefix="storm", sizes=SIZES, pause=(0, 0.1), seed=seed)


def count_deliveries(server: NginxDav) -> collections.Counter:
    """Return how many times each path was PUT (or MOVEd into place) on server."""
    paths = server.requests("PUT", succeeded=True)
    return collections.Counter(path.rsplit("/", 1)[-1] for path in paths)


def kill_storm(world: SystemWorld, kills: int, seed: int | None = None) -> dict:
    """Run the storm with kills SIGKILLs; return what was seen (files, kills, deliveries...)."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    chance = random.Random(seed)
    box = world.box
    lane = world.add_lane("storm")
    ftp_server = world.add_ftp_subscriber(lane, "ftpsub")
    web_root = os.path.join(world.root, "web")
    web = NginxDav(web_root, world.root).start()
    world.servers["web"] = web
    web_value = {"mode": "http", "host": "127.0.0.1", "port": web.port, "connections": 3}
    world.put_subscriber(lane, "web", web_value)
    service = f"storm-{world.tag}"
    instances = []
    for number in range(2):
        server = NginxDav(os.path.join(world.root, f"svc-{number}"), world.root).start()
        world.servers[f"{service}-{number}"] = server
        world.agent.register(service, f"{service}-{number}", server.port)
        instances.append(server)
    world.put_subscriber(lane, "cluster", {"mode": "http", "consul_service": service})
    units = [world.unit("sprinkler", lane)]
    units += [world.unit("carrier", f"{lane}:{sub}") for sub in ("ftpsub", "web")]
    units += [world.unit("carrier", f"{lane}:cluster:{service}-{n}") for n in range(2)]
    for unit in units:
        world.wait_active(unit)

    uploads = storm_uploads(world, lane, seed)
    uploads.start()
    started = time.monotonic()
    restarts_before = restart_count(box, units)
    for _ in range(kills):
        time.sleep(chance.uniform(0.05, 1.2))
        box.run("systemctl", "kill", "-s", "KILL", chance.choice(units), check=False)
    uploads.stopping.set()
    uploads.join(60)
    storm_seconds = time.monotonic() - started
    files = uploads.acknowledged
    folders = [ftp_server.root, web_root] + [server.root for server in instances]
    world.wait_at(folders, files, timeout=300)
    for unit in units:
        wait_for(lambda unit=unit: box.is_active(unit) == "active", 60, f"{unit} active")
    # What landed: each SIGKILL of a running worker is one restart by systemd (a kill
    # that hits a unit between two runs hits nothing); what arrived: counted at each
    # destination, file by file, byte for byte.
    landed = restart_count(box, units) - restarts_before
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    delivered = sum(
        holds(folder, {name: sha}) for folder in folders for name, sha in expected.items()
    )
    leftovers = [name for name in os.listdir(ftp_server.root) if name.endswith(".t")]
    deliveries = [count_deliveries(server) for server in [web, *instances]]
    dead = 0
    carriers = [f"{lane}:ftpsub", f"{lane}:web"]
    carriers += [f"{lane}:cluster:{service}-{n}" for n in range(2)]
    for instance in carriers:
        folder = box.path(os.path.join(world.layout.dead(instance), "files"))
        dead += len(os.listdir(folder)) if os.path.isdir(folder) else 0
    return {
        "seed": seed,
        "files": len(files),
        "bytes": sum(len(data) for data in files.values()),
        "kills": kills,
        "kills_landed": landed,
        "storm_seconds": round(storm_seconds, 1),
        "subscribers": len(folders),
        "delivered": delivered,
        "duplicates_http": sum(
            count - 1 for counter in deliveries for count in counter.values() if count > 1
        ),
        "dead_letters": dead,
        "temporary_names_left": leftovers,
        "failed_units": [unit for unit in units if box.is_active(unit) == "failed"],
    }


def restart_count(box, units: list[str]) -> int:
    """Return how many times systemd has restarted units, in all."""
    counts = box.run("systemctl", "show", "-p", "NRestarts", "--value", *units).stdout.split()
    return sum(int(count) for count in counts)
