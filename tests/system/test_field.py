"""Field conditions under the real systemd: slow links, flapping instances, odd names, many units.

Subscribers that stand for remote hosts run in network namespaces of the
test's own, behind a veth shaped with tc to about 1 MB/s.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.harness.netns import Namespace
from tests.harness.procs import wait_for

pytestmark = pytest.mark.system

LINK_BYTES_PER_SECOND = 1_000_000


@pytest.fixture
def slow_host():
    namespace = Namespace().create()
    namespace.shape(LINK_BYTES_PER_SECOND)
    yield namespace
    namespace.delete()


def test_a_long_transfer_over_a_slow_link_survives_a_restart(world, container, slow_host):
    lane = world.add_lane("wan")
    server = world.add_ftp_subscriber(lane, "remote", namespace=slow_host)
    unit = world.unit("carrier", f"{lane}:remote")
    world.wait_active(unit)
    # A short watchdog: the transfer lasts many watchdog periods.
    world.drop_in(unit, "90-test-watchdog", "WatchdogSec=3s")
    container.run("systemctl", "restart", unit)
    world.wait_active(unit)
    data = os.urandom(30 * 1000 * 1000)  # about 30 s over the link, 10 watchdog periods
    world.upload(lane, {"model-run.grib2": data})
    temporary = os.path.join(server.root, "model-run.grib2.t")
    wait_for(lambda: os.path.exists(temporary), 30, "the upload to start", interval=0.2)
    time.sleep(5)
    first = container.main_pid(unit)
    container.run("systemctl", "restart", unit)  # cut in the middle (after its stop grace)
    assert container.main_pid(unit) != first
    assert 0 < os.path.getsize(temporary) < len(data)
    world.wait_at([server.root], {"model-run.grib2": data}, timeout=120)
    journal = container.journal(unit)
    assert "Watchdog timeout" not in journal and "watchdog" not in journal.lower()
    resumed = re.search(r"resuming model-run\.grib2\.t at byte (\d+) of (\d+)", journal)
    assert resumed and 0 < int(resumed[1]) < len(data), journal[-3000:]
    assert not os.path.exists(temporary)


def test_the_runtime_limit_waits_for_the_file_in_flight(world, container, slow_host):
    lane = world.add_lane("rt")
    server = world.add_ftp_subscriber(lane, "remote", namespace=slow_host)
    unit = world.unit("carrier", f"{lane}:remote")
    world.wait_active(unit)
    world.drop_in(
        unit, "90-test-runtime", "WatchdogSec=3s\nRuntimeMaxSec=8s\nRuntimeRandomizedExtraSec=0"
    )
    container.run("systemctl", "restart", unit)
    world.wait_active(unit)
    pid = container.main_pid(unit)
    data = os.urandom(16 * 1000 * 1000)  # about 16 s: twice the runtime limit
    world.upload(lane, {"radar.h5": data})
    world.wait_at([server.root], {"radar.h5": data}, timeout=90)
    # Once the file is through, the runtime limit restarts the carrier as usual.
    wait_for(lambda: container.main_pid(unit) not in (0, pid), 90, "the runtime restart")
    run = container.run("journalctl", "--no-pager", "-o", "cat", f"_PID={pid}", check=False).stdout
    assert "resuming" not in run and "Watchdog timeout" not in run
    delivered = re.search(r"delivered radar\.h5 \(\d+ bytes\) in ([\d.]+) s", run)
    assert delivered and float(delivered[1]) > 8, run
    # The file was carried whole by one run: the stop came after it.
    assert run.index("delivered radar.h5") < run.index("received SIGTERM"), run


def test_a_flapping_service_instance_loses_nothing(world, container):
    lane = world.add_lane("flap")
    service = f"flap-{world.tag}"
    stable = world.add_service_instance(service, 0, "in", ttl="3600s")
    flapping = world.add_service_instance(service, 1, "in", ttl="3600s")
    world.put_subscriber(
        lane, "cluster", {"mode": "http", "consul_service": service, "directory": "in"}
    )
    units = [world.unit("carrier", f"{lane}:cluster:{service}-{n}") for n in (0, 1)]
    for unit in units:
        world.wait_active(unit)
    spool = container.path(world.layout.spool(f"{lane}:cluster:{service}-1"))

    world.agent.set_health(f"{service}-1", passing=False)  # a deploy: checks fail
    world.wait_gone(units[1])
    first = {f"during-critical-{n}.dat": os.urandom(2000 + n) for n in range(10)}
    world.upload(lane, first)
    world.wait_at([stable], first)
    wait_for(lambda: len(os.listdir(spool)) == 10, 30, "the files to wait in the spool")

    world.agent.deregister(f"{service}-1")  # then the instance is gone for a while
    second = {f"while-gone-{n}.dat": os.urandom(3000 + n) for n in range(5)}
    world.upload(lane, second)
    container.run("systemctl", "start", "ftpdup-manager.service")  # a whole manager pass
    wait_for(lambda: len(os.listdir(spool)) == 15, 30, "all files to wait in the spool")
    assert container.is_active(units[1]) == "inactive"
    assert not os.path.exists(container.path(world.layout.dead(f"{lane}:cluster:{service}-1")))

    port = world.servers[f"{service}-1"].port
    world.agent.register(service, f"{service}-1", port, ttl="3600s")  # back after the deploy
    world.wait_at([flapping], {**first, **second}, timeout=90)
    world.wait_at([stable], second)


def test_past_the_grace_an_absent_instance_has_its_files_set_aside(world, container):
    lane = world.add_lane("gone")
    service = f"gone-{world.tag}"
    world.add_service_instance(service, 0, "in", ttl="3600s")
    world.put_subscriber(
        lane, "cluster", {"mode": "http", "consul_service": service, "directory": "in"}
    )
    instance = f"{lane}:cluster:{service}-0"
    unit = world.unit("carrier", instance)
    world.wait_active(unit)
    settings = container.path("/etc/ftpdup/ftpdup.conf")
    with open(settings) as handle:
        original = handle.read()
    try:
        with open(settings, "w") as handle:
            handle.write(original.replace("[ftpdup]\n", "[ftpdup]\ninstance_grace = 5\n"))
        world.agent.set_health(f"{service}-0", passing=False)
        world.wait_gone(unit)
        files = {f"late-{n}.dat": os.urandom(1000 + n) for n in range(4)}
        world.upload(lane, files)
        spool = container.path(world.layout.spool(instance))
        wait_for(lambda: len(os.listdir(spool)) == 4, 30, "the files to wait")
        time.sleep(6)
        container.run("systemctl", "start", "ftpdup-manager.service")
        dead = container.path(world.layout.dead(instance))
        wait_for(
            lambda: sorted(os.listdir(os.path.join(dead, "files"))) == sorted(files),
            30,
            f"the files in the dead letters\n{world.journal()}",
        )
        with open(os.path.join(dead, "reasons.log")) as reasons:
            assert reasons.read().count("not passing for longer than instance_grace=5 s") == 4
        assert container.is_active(unit) in ("inactive", "unknown")
    finally:
        with open(settings, "w") as handle:
            handle.write(original)


def test_names_that_are_not_utf8_travel_as_bytes_and_stop_nothing(world, container):
    lane = world.add_lane("bytes")
    ftp = world.add_ftp_subscriber(lane, "ftpsub")
    web = world.add_http_subscriber(lane, "websub")  # WsgiDAV cannot take such a name
    units = [world.unit("sprinkler", lane)]
    units += [world.unit("carrier", f"{lane}:{sub}") for sub in ("ftpsub", "websub")]
    for unit in units:
        world.wait_active(unit)
    latin1 = {os.fsdecode(b"caf\xe9-cr\xe8me.txt"): b"latin-1", os.fsdecode(b"\xff.bin"): b"ff"}
    after = {f"after-{n}.txt": os.urandom(500) for n in range(5)}
    world.upload(lane, latin1)
    world.upload(lane, after)
    world.wait_at([ftp.root], {**latin1, **after})
    assert {b"caf\xe9-cr\xe8me.txt", b"\xff.bin"} <= set(os.listdir(os.fsencode(ftp.root)))
    world.wait_at([web.root], after)  # the files behind the odd names went on
    spool = container.path(world.layout.spool(f"{lane}:websub"))
    # Each delivered file leaves the spool just after the server has it; the two odd
    # names stay there, waiting on their own retry.
    wait_for(
        lambda: sorted(os.listdir(spool)) == sorted(latin1),
        30,
        "the spool to hold only the odd names",
    )
    for unit in units:
        assert container.is_active(unit) == "active"
        assert container.show(unit, "NRestarts") == "0"
    assert "Traceback" not in container.journal(units[2])


def main_pids(container, units: list[str]) -> dict[str, int]:
    out = container.run("systemctl", "show", "-p", "MainPID", "--value", *units).stdout
    return dict(zip(units, map(int, out.split())))


def test_two_hundred_units_come_up_and_one_change_restarts_one_carrier(world, container):
    lanes, subscribers = 50, 3
    web = world.http_server("bulk")  # one server for all the subscribers
    values = {}
    for number in range(lanes):
        lane = world.lane(f"m{number}")
        account = {
            "user": f"m{world.tag}{number}",
            "password": f"pw{number}",
            "uid": 61000 + number,
        }
        world.lanes[lane] = account
        values[world.key(lane, "settings")] = world.lanes[lane]
        for sub in range(subscribers):
            os.makedirs(os.path.join(web.root, f"l{number}s{sub}"), exist_ok=True)
            directory = f"l{number}s{sub}"
            value = {"mode": "http", "host": "127.0.0.1", "port": web.port, "directory": directory}
            values[world.key(lane, f"subscribers/s{sub}")] = value
    units = [world.unit("sprinkler", world.lane(f"m{n}")) for n in range(lanes)]
    units += [
        world.unit("carrier", f"{world.lane(f'm{n}')}:s{s}")
        for n in range(lanes)
        for s in range(subscribers)
    ]
    started = time.monotonic()
    world.agent.put_many(values)

    def all_active() -> bool:
        states = container.units("ftpdup-*@m*")
        return sum(states.get(unit) == "active" for unit in units) == len(units)

    wait_for(all_active, 600, f"{len(units)} units to be active\n{world.journal()}", interval=1)
    print(f"\n{len(units)} worker units active {time.monotonic() - started:.1f} s after one write")
    time.sleep(10)  # they stay up
    assert all_active()
    restarts = container.run("systemctl", "show", "-p", "NRestarts", "--value", *units).stdout
    assert set(restarts.split()) == {"0"}

    pids = main_pids(container, units)
    changed = world.unit("carrier", f"{world.lane('m7')}:s1")
    os.makedirs(os.path.join(web.root, "moved"), exist_ok=True)
    moved = {"mode": "http", "host": "127.0.0.1", "port": web.port, "directory": "moved"}
    world.put_subscriber(world.lane("m7"), "s1", moved)
    wait_for(lambda: container.main_pid(changed) not in (0, pids[changed]), 60, "the restart")
    now = main_pids(container, units)
    assert [unit for unit in units if now[unit] != pids[unit]] == [changed]
    files = {"through-a-busy-host.bin": os.urandom(4000)}
    world.upload(world.lane("m7"), files)
    world.wait_at([os.path.join(web.root, "moved"), os.path.join(web.root, "l7s0")], files)
