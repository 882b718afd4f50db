"""System tests: the manager, timer, watch and workers under a real systemd.

ftpdup is installed from this checkout into a booted Debian 12 container;
Consul and the subscriber servers run on the host (shared network). Every
assertion is on real state: systemd's unit states and MainPIDs, the journal,
accounts, files at the destinations.
"""

from __future__ import annotations

import os
import re
import socket
import time

import pytest

from ftpdup.host.files import read_text
from tests.harness.procs import wait_for
from tests.system.conftest import COLLECTD_SERVICE

pytestmark = pytest.mark.system


def files_named(prefix: str, count: int = 3) -> dict[str, bytes]:
    return {f"{prefix}-{n}.dat": os.urandom(1000 + 977 * n) for n in range(count)}


def test_new_lane_gets_account_vsftpd_login_units_and_delivery(world, container):
    lane = world.add_lane("obs")
    world.add_ftp_subscriber(lane, "ftpsub", directory="in")
    world.add_http_subscriber(lane, "websub", directory="racine/data")
    units = [
        world.unit("sprinkler", lane),
        world.unit("carrier", f"{lane}:ftpsub"),
        world.unit("carrier", f"{lane}:websub"),
    ]
    assert "\\x2d" in units[0]  # the '-' of the lane name is escaped in the unit name
    for unit in units:
        world.wait_active(unit)
    account = container.run("getent", "passwd", world.lanes[lane]["user"]).stdout
    assert f":{world.lanes[lane]['uid']}:" in account and "/usr/sbin/nologin" in account
    files = files_named("first")
    world.upload(lane, files)  # logs in as the lane user through vsftpd
    world.wait_at(
        world.destinations[f"{lane}:ftpsub"] + world.destinations[f"{lane}:websub"], files
    )
    journal = container.journal(units[1])
    assert all(f"delivered {name}" in journal for name in files)
    # Secrets never appear in unit files, command lines or logs.
    secrets = [world.lanes[lane]["password"], world.servers["ftpsub"].password]
    visible = (
        container.run("systemctl", "cat", *units).stdout
        + container.run("ps", "-eo", "args").stdout
        + container.run("journalctl", "--no-pager", "-o", "cat").stdout
    )
    assert not [secret for secret in secrets if secret in visible]


def test_units_verify_and_workers_are_hardened(world, container):
    listing = container.run("sh", "-c", "ls /usr/lib/systemd/system/ftpdup*").stdout.split()
    assert len(listing) == 9
    container.run("systemd-analyze", "verify", *listing)
    lane = world.add_lane("sec")
    world.add_http_subscriber(lane, "websub")
    for unit in (world.unit("sprinkler", lane), world.unit("carrier", f"{lane}:websub")):
        world.wait_active(unit)
        report = container.run("systemd-analyze", "security", "--no-pager", unit).stdout
        exposure = float(re.search(r"Overall exposure level for .*: (\d+\.\d+)", report)[1])
        assert exposure <= 2.0, report
        # The host settings reach every worker through the template drop-in.
        assert container.show(unit, "RuntimeMaxUSec") == "50min"
        assert container.show(unit, "TimeoutStopUSec") == "20s"
        status = container.show(unit, "StatusText")
        assert "forwarded" in status or "queued" in status


def test_password_change_and_lifetime_expiry(world, container):
    lane = world.add_lane("life", lifetime=1)
    world.add_http_subscriber(lane, "websub")
    world.wait_active(world.unit("sprinkler", lane))
    # An excluded leftover (an abandoned upload) older than the lane's lifetime.
    world.upload(lane, {"abandoned.t": b"never renamed"})
    stale = container.path(f"{world.layout.incoming(lane)}/abandoned.t")
    old = time.time() - 120
    os.utime(stale, (old, old))
    settings = dict(world.lanes[lane], password="a-new-password")
    world.agent.put(world.key(lane, "settings"), settings)
    world.lanes[lane] = settings
    dead = container.path(f"{world.layout.dead(lane)}/files/abandoned.t")
    wait_for(
        lambda: os.path.exists(dead), 90, f"the expired file in the dead letters\n{world.journal()}"
    )
    assert not os.path.exists(stale)
    files = files_named("new-password")
    world.upload(lane, files)  # logs in with the new password
    world.wait_at(world.destinations[f"{lane}:websub"], files)


def test_changing_one_subscriber_restarts_only_its_carrier(world, container):
    lane = world.add_lane("chg")
    world.add_ftp_subscriber(lane, "ftpsub")
    world.add_http_subscriber(lane, "websub")
    units = {
        "sprinkler": world.unit("sprinkler", lane),
        "ftp": world.unit("carrier", f"{lane}:ftpsub"),
        "web": world.unit("carrier", f"{lane}:websub"),
    }
    for unit in units.values():
        world.wait_active(unit)
    before = {key: container.main_pid(unit) for key, unit in units.items()}
    server = world.servers["websub"]
    os.makedirs(os.path.join(server.root, "moved"), exist_ok=True)
    world.put_subscriber(
        lane,
        "websub",
        {"mode": "http", "host": "127.0.0.1", "port": server.port, "directory": "moved"},
    )
    wait_for(
        lambda: container.main_pid(units["web"]) not in (0, before["web"]),
        60,
        f"the changed carrier to restart\n{world.journal()}",
    )
    world.wait_active(units["web"])
    assert container.main_pid(units["ftp"]) == before["ftp"]
    assert container.main_pid(units["sprinkler"]) == before["sprinkler"]
    files = files_named("moved")
    world.upload(lane, files)
    world.wait_at([os.path.join(server.root, "moved")], files)


def test_new_service_instance_gets_a_carrier_of_its_own(world, container):
    lane = world.add_lane("svc")
    service = f"store-{world.tag}"
    first = world.add_service_instance(service, 0, "data")
    world.put_subscriber(
        lane, "cluster", {"mode": "http", "consul_service": service, "directory": "data"}
    )
    unit0 = world.unit("carrier", f"{lane}:cluster:{service}-0")
    world.wait_active(unit0)
    second = world.add_service_instance(service, 1, "data")
    unit1 = world.unit("carrier", f"{lane}:cluster:{service}-1")
    world.wait_active(unit1)
    files = files_named("both")
    world.upload(lane, files)
    world.wait_at([first, second], files)


def test_removing_a_subscriber_then_the_lane_keeps_queued_files_as_dead_letters(world, container):
    lane = world.add_lane("gone")
    world.add_ftp_subscriber(lane, "stays")
    leaving = world.add_ftp_subscriber(lane, "leaves")
    sprinkler = world.unit("sprinkler", lane)
    unit_leaves = world.unit("carrier", f"{lane}:leaves")
    for unit in (sprinkler, world.unit("carrier", f"{lane}:stays"), unit_leaves):
        world.wait_active(unit)
    leaving.stop()  # its files queue up
    files = files_named("queued", 4)
    world.upload(lane, files)
    world.wait_at(world.destinations[f"{lane}:stays"], files)
    spool = container.path(world.layout.spool(f"{lane}:leaves"))
    wait_for(lambda: sorted(os.listdir(spool)) == sorted(files), 30, "files queued")

    world.agent.delete(world.key(lane, "subscribers/leaves"))
    world.wait_gone(unit_leaves)
    dead = container.path(world.layout.dead(f"{lane}:leaves"))
    wait_for(
        lambda: (
            os.path.isdir(os.path.join(dead, "files"))
            and sorted(os.listdir(os.path.join(dead, "files"))) == sorted(files)
        ),
        30,
        "the queued files in the dead letters",
    )
    with open(os.path.join(dead, "reasons.log")) as reasons:
        assert reasons.read().count(f"subscriber leaves removed from lane {lane}") == 4
    assert not os.path.exists(spool)
    assert f"queue {lane}:leaves removed" in container.journal("ftpdup-manager.service")

    user = world.lanes[lane]["user"]
    world.agent.delete(world.key(lane, ""), recurse=True)
    world.lanes.pop(lane)
    world.wait_gone(sprinkler)
    world.wait_gone(world.unit("carrier", f"{lane}:stays"))
    wait_for(
        lambda: container.run("getent", "passwd", user, check=False).returncode != 0,
        60,
        "the lane's account to be removed",
    )
    for kind in ("incoming", "staging"):
        assert not os.path.exists(container.path(f"{world.layout.root}/{kind}/{lane}"))
    assert not os.path.exists(container.path(world.layout.spool(f"{lane}:stays")))
    units = container.run("systemctl", "list-unit-files", "ftpdup-*@*", check=False).stdout
    assert lane.split("-")[0] + "\\x2d" + world.tag not in units


def test_watchdog_kills_and_restarts_a_worker_that_stops_pinging(world, container):
    lane = world.add_lane("dog")
    world.add_http_subscriber(lane, "websub")
    unit = world.unit("carrier", f"{lane}:websub")
    world.wait_active(unit)
    # A test-only drop-in: a short watchdog so the test does not wait 30 s.
    container.write(
        f"/etc/systemd/system/{unit}.d/90-test-watchdog.conf", "[Service]\nWatchdogSec=3s\n"
    )
    container.run("systemctl", "daemon-reload")
    container.run("systemctl", "restart", unit)
    world.wait_active(unit)
    frozen = container.main_pid(unit)
    restarts = int(container.show(unit, "NRestarts"))
    container.run("kill", "-STOP", str(frozen))  # alive, but its main loop no longer runs
    wait_for(
        lambda: container.main_pid(unit) not in (0, frozen),
        60,
        f"the watchdog to replace the frozen carrier\n{world.journal()}",
    )
    world.wait_active(unit)
    assert int(container.show(unit, "NRestarts")) > restarts
    assert "Watchdog timeout" in container.journal(unit)
    files = files_named("after-watchdog")
    world.upload(lane, files)
    world.wait_at(world.destinations[f"{lane}:websub"], files)


def test_runtime_max_restart_loses_no_file(world, container):
    lane = world.add_lane("rtm")
    world.add_http_subscriber(lane, "websub")
    world.add_ftp_subscriber(lane, "ftpsub")
    units = [
        world.unit("sprinkler", lane),
        world.unit("carrier", f"{lane}:websub"),
        world.unit("carrier", f"{lane}:ftpsub"),
    ]
    for unit in units:
        world.wait_active(unit)
        container.write(
            f"/etc/systemd/system/{unit}.d/90-test-runtime.conf",
            "[Service]\nRuntimeMaxSec=4s\nRuntimeRandomizedExtraSec=0\n",
        )
    container.run("systemctl", "daemon-reload")
    container.run("systemctl", "restart", *units)
    first_pids = {unit: container.main_pid(unit) for unit in units}
    files = {}
    deadline = time.monotonic() + 120
    batch = 0

    def restarted_twice() -> bool:
        return all(int(container.show(unit, "NRestarts")) >= 2 for unit in units)

    # Upload without pause until every worker went through two runtime limits.
    while not restarted_twice():
        assert time.monotonic() < deadline, f"workers were not restarted\n{world.journal()}"
        chunk = {f"rt-{batch:03d}-{n}.bin": os.urandom(30000 + n) for n in range(5)}
        world.upload(lane, chunk)
        files.update(chunk)
        batch += 1
        time.sleep(0.2)
    for unit in units:
        assert container.main_pid(unit) != first_pids[unit]
        assert "runtime time limit" in container.journal(unit)
    world.wait_at(
        world.destinations[f"{lane}:websub"] + world.destinations[f"{lane}:ftpsub"],
        files,
        timeout=120,
    )
    for unit in units:
        os.unlink(container.path(f"/etc/systemd/system/{unit}.d/90-test-runtime.conf"))
    container.run("systemctl", "daemon-reload")


def test_collectd_counts_files_of_every_lane_and_spool(world, container):
    lane = world.add_lane("cnt")
    world.add_http_subscriber(lane, "websub")
    world.wait_active(world.unit("carrier", f"{lane}:websub"))
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(1.0)
    instance_id = f"collectd-{world.tag}"
    world.agent.register(COLLECTD_SERVICE, instance_id, receiver.getsockname()[1])
    try:
        config = container.path("/etc/collectd/collectd.conf.d/ftpdup.conf")
        wait_for(
            lambda: lane in (read_text(config) or ""),
            60,
            f"ftpdup's collectd configuration\n{world.journal()}",
        )
        text = read_text(config)
        assert f'<Directory "/var/lib/ftpdup/incoming/{lane}">' in text
        assert f'<Directory "/var/lib/ftpdup/spool/{lane}:websub">' in text
        wait_for(lambda: container.is_active("collectd.service") == "active", 60, "collectd")
        # collectd really sends the counts: its packets name the plugin and our instances.
        seen = b""
        deadline = time.monotonic() + 60
        while f"incoming-{lane}".encode() not in seen and time.monotonic() < deadline:
            try:
                seen += receiver.recv(65536)
            except socket.timeout:
                continue
        assert b"filecount" in seen and f"incoming-{lane}".encode() in seen
    finally:
        world.agent.deregister(instance_id)
        receiver.close()


def test_consul_outage_changes_nothing_and_delivery_goes_on(world, container, system_consul):
    lane = world.add_lane("out")
    world.add_http_subscriber(lane, "websub")
    units = [world.unit("sprinkler", lane), world.unit("carrier", f"{lane}:websub")]
    for unit in units:
        world.wait_active(unit)
    wait_for(lambda: container.is_active("ftpdup-manager.service") == "inactive", 60, "manager")
    pids = {unit: container.main_pid(unit) for unit in units}
    user = world.lanes[lane]["user"]
    system_consul.stop()
    try:
        outage_changes_nothing(world, container, units, pids, user, lane)
    finally:
        system_consul.start()  # a dev agent starts empty: give the prefix its folder back
        system_consul.put(f"{container.prefix}/incoming_directories/", None)


def outage_changes_nothing(world, container, units, pids, user, lane) -> None:
    """With Consul down: the manager fails and changes nothing, delivery goes on."""
    result = container.run("systemctl", "start", "ftpdup-manager.service", check=False)
    assert result.returncode != 0
    journal = container.journal("ftpdup-manager.service")
    assert "Consul unreachable" in journal and "nothing changed" in journal
    # The timer stays armed after a failed run: it will try again.
    assert container.is_active("ftpdup-manager.timer") == "active"
    assert container.show("ftpdup-manager.timer", "NextElapseUSecMonotonic") not in (
        "",
        "0",
        "infinity",
    )
    for unit in units:
        assert container.is_active(unit) == "active"
        assert container.main_pid(unit) == pids[unit]
    assert container.run("getent", "passwd", user, check=False).returncode == 0
    files = files_named("during-outage")
    world.upload(lane, files)
    world.wait_at(world.destinations[f"{lane}:websub"], files)
