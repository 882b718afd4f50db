"""Loss paths on the installed product, under the real systemd: none left.

A name sent again and again while a subscriber is down; a subscriber whose
Consul service has no instance yet; a subscriber removed while the manager
is killed at each step of the removal, or fails at it; a carrier killed
between its subscriber's confirmation and the deletion of the file; files
moved into a lane by hand, of another owner and mode, with old times.
Every file ends delivered, or in the dead letters with its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

import pytest

from ftpdup import deadletter
from tests.harness.faults import count_deliveries
from tests.harness.procs import wait_for
from tests.harness.servers import NginxDav

pytestmark = pytest.mark.system

CRASHES = "/opt/ftpdup/src/tests/harness/crashes.py"
PYTHON = "/opt/ftpdup/venv/bin/python"
CRASHED = 99


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def nginx_subscriber(world, lane: str, name: str) -> NginxDav:
    """Start nginx (WebDAV, logging every PUT) for this test and subscribe it to lane."""
    web = NginxDav(os.path.join(world.root, f"dav-{name}"), world.root).start()
    world.servers[name] = web
    world.put_subscriber(lane, name, {"mode": "http", "host": "127.0.0.1", "port": web.port})
    world.destinations[f"{lane}:{name}"] = [web.root]
    return web


def queue_files(world, instance: str) -> list[str]:
    """Return the paths of the files queued for instance (pending, later versions, spool)."""
    found = []
    for folder in (world.layout.pending(instance), world.layout.later(instance),
                   world.layout.spool(instance)):  # fmt: skip
        for top, _, names in os.walk(world.box.path(folder)):
            found += [os.path.join(top, name) for name in names]
    return found


def upload_again_and_again(world, lane: str, name: str, versions: list[bytes]) -> None:
    """Upload versions under one name, each once the lane has taken the one before (a
    product re-sent every so often)."""
    incoming = world.box.path(world.layout.incoming(lane))
    for data in versions:
        world.upload(lane, {name: data})
        wait_for(lambda: os.listdir(incoming) == [], 20, "the lane to take the upload")


@contextlib.contextmanager
def manager_by_hand(container):
    """Stop the manager's timer and watch (passes are run by the test), start them after."""
    container.run("systemctl", "stop", "ftpdup-watch.service", "ftpdup-manager.timer")
    # A pass the timer or the watch started just before goes on: wait for its end.
    wait_for(
        lambda: container.is_active("ftpdup-manager.service") in ("inactive", "failed"),
        60,
        "the manager's last pass to end",
    )
    try:
        yield
    finally:
        container.run("systemctl", "start", "ftpdup-watch.service", "ftpdup-manager.timer")


def test_a_name_sent_again_during_an_outage_reaches_every_subscriber_in_order(world):
    lane = world.add_lane("again")
    down = world.add_ftp_subscriber(lane, "archive", history=True)
    web = nginx_subscriber(world, lane, "web")
    for sub in ("archive", "web"):
        world.wait_active(world.unit("carrier", f"{lane}:{sub}"))
    down.stop()
    versions = [os.urandom(7000 + 13 * number) for number in range(9)]
    upload_again_and_again(world, lane, "latest.xml", versions)
    wait_for(
        lambda: web.requests("PUT", succeeded=True).count("/latest.xml") == 9,
        60,
        f"9 versions delivered to the healthy subscriber\n{world.journal()}",
    )
    assert len(queue_files(world, f"{lane}:archive")) == 9  # all kept for the one down
    down.start()
    wait_for(lambda: len(down.received()) == 9, 120, f"9 versions\n{world.journal()}")
    assert [sha for _, sha in down.received()] == [digest(data) for data in versions]
    wait_for(lambda: not queue_files(world, f"{lane}:archive"), 30, "its queue to empty")


def test_a_service_without_instances_keeps_its_files_until_one_registers(world, container):
    lane = world.add_lane("svcwait")
    service = f"svcwait-{world.tag}"
    value = {"mode": "http", "consul_service": service, "directory": "store"}
    world.put_subscriber(lane, "cluster", value)
    world.wait_active(world.unit("sprinkler", lane))
    files = {f"wait-{number}.dat": os.urandom(900 + number) for number in range(5)}
    world.upload(lane, files)
    parked = container.path(world.layout.spool(f"{lane}:cluster"))
    wait_for(lambda: sorted(os.listdir(parked)) == sorted(files), 30, "the files to wait")

    def row():
        found = container.run("ftpdup", "status", "--json", f"{lane}:cluster", check=False)
        rows = json.loads(found.stdout)["rows"] if found.stdout else []
        return rows[0] if rows and rows[0]["backlog_files"] == 5 else None

    waiting = wait_for(row, 30, "the status to show the waiting files")
    assert waiting["level"] == "warning" and "has no passing instance" in waiting["notes"][0]
    roots = [world.add_service_instance(service, number, "store") for number in range(2)]
    world.wait_at(roots, files, timeout=120)
    wait_for(lambda: not os.path.exists(parked), 30, "the parked queue to be handed over")


def test_a_removal_killed_or_failing_at_any_step_buries_every_queued_file(world, container):
    lane = world.add_lane("bury")
    gone = world.add_ftp_subscriber(lane, "gone")
    world.add_http_subscriber(lane, "stays")
    instance = f"{lane}:gone"
    unit = world.unit("carrier", instance)
    world.wait_active(unit)
    gone.stop()
    files = {f"q-{number}.bin": os.urandom(3000 + number) for number in range(7)}
    world.upload(lane, files)
    versions = [os.urandom(500 + number) for number in range(3)]
    upload_again_and_again(world, lane, "same.bin", versions)
    sent = sorted([digest(data) for data in files.values()] + [digest(v) for v in versions])
    wait_for(lambda: len(queue_files(world, instance)) == 10, 30, "10 files queued for it")
    dead = container.path(world.layout.dead(instance))

    def buried() -> int:
        return len(deadletter.entries(dead))

    with manager_by_hand(container):
        world.agent.delete(world.key(lane, "subscribers/gone"))
        crash = container.run(PYTHON, CRASHES, "apply", "before-burial", check=False)
        assert crash.returncode == CRASHED, crash.stderr
        assert container.is_active(unit) in ("inactive", "unknown")
        assert len(queue_files(world, instance)) == 10 and buried() == 0
        for count, total in ((1, 1), (3, 4)):  # killed after 1, then 3 more files
            crash = container.run(PYTHON, CRASHES, "apply", "after-files", str(count), check=False)
            assert crash.returncode == CRASHED, crash.stderr
            assert buried() == total and len(queue_files(world, instance)) == 10 - total
        # An error, not a crash: the reasons file cannot be written (a directory there).
        reasons = os.path.join(dead, "reasons.log")
        os.rename(reasons, reasons + ".aside")
        os.mkdir(reasons)
        failing = container.run("ftpdup", "apply", check=False)
        assert failing.returncode == 1, failing.stderr
        assert "burying the queue of" in failing.stderr
        assert buried() == 4 and len(queue_files(world, instance)) == 6
        os.rmdir(reasons)
        os.rename(reasons + ".aside", reasons)
        done = container.run("ftpdup", "apply", check=False)
        assert done.returncode == 0, done.stderr
    letters = deadletter.entries(dead)
    assert queue_files(world, instance) == [] and len(letters) == 10
    assert all(f"subscriber gone removed from lane {lane}" in letter.reason for letter in letters)
    kept = []
    for letter in letters:
        with open(letter.path, "rb") as handle:
            kept.append(digest(handle.read()))
    assert sorted(kept) == sent
    for kind in ("pending", "later", "spool"):
        assert not os.path.exists(container.path(os.path.join(world.layout.root, kind, instance)))


def test_a_carrier_killed_after_the_confirmation_sends_again_and_loses_nothing(world, container):
    lane = world.add_lane("confirm")
    web = nginx_subscriber(world, lane, "web")
    unit = world.unit("carrier", f"{lane}:web")
    world.wait_active(unit)
    command = f"{PYTHON} {CRASHES} carrier %i 3"
    world.drop_in(unit, "crash", f"ExecStart=\nExecStart={command}")
    container.run("systemctl", "restart", unit)
    world.wait_active(unit)
    files = {f"sure-{number:02d}.bin": os.urandom(4000 + number) for number in range(12)}
    world.upload(lane, files)
    world.wait_at([web.root], files, timeout=120)
    spool = container.path(world.layout.spool(f"{lane}:web"))
    wait_for(lambda: os.listdir(spool) == [], 60, "the spool to empty")
    state = container.path(world.layout.state(f"{lane}:web"))
    crashed = [name for name in os.listdir(state) if name.startswith("crashed-on-")]
    deliveries = count_deliveries(web)
    duplicates = sum(count - 1 for count in deliveries.values())
    print(f"\n{len(crashed)} crashes after a confirmation, {duplicates} files sent again")
    assert len(crashed) >= 3, crashed
    # Each file confirmed but not deleted yet when the carrier died went again (with it,
    # those delivered just before, whose deletion had not happened yet).
    assert all(deliveries[name[len("crashed-on-") :]] >= 2 for name in crashed)
    assert set(deliveries) == set(files)
    assert int(container.show(unit, "NRestarts")) >= len(crashed)
    assert not os.path.exists(os.path.join(container.path(world.layout.dead(f"{lane}:web"))))


def test_files_moved_in_by_hand_are_taken_whatever_their_owner_mode_or_time(world, container):
    lane = world.add_lane("byhand")
    world.add_http_subscriber(lane, "web")
    world.wait_active(world.unit("carrier", f"{lane}:web"))
    files = {f"kept-{number}.grib": os.urandom(6000 + number) for number in range(3)}
    with manager_by_hand(container):
        for name, data in files.items():
            path = f"/root/{name}"
            with open(container.path(path), "wb") as handle:
                handle.write(data)
            container.run("chown", "4321:4321", path)
            container.run("chmod", "0644", path)
            container.run("touch", "-d", "3 days ago", path)
            container.run("mv", path, f"{world.layout.incoming(lane)}/{name}")

        def unfit():
            found = container.run("ftpdup", "status", "--json", lane, check=False)
            rows = json.loads(found.stdout)["rows"] if found.stdout else []
            sprinkler = [row for row in rows if row["kind"] == "sprinkler"]
            return sprinkler and "may not link" in sprinkler[0]["last_error"] and sprinkler[0]

        row = wait_for(unfit, 30, "the status to show files the sprinkler may not link")
        assert row["level"] == "warning" and row["backlog_files"] == 3
        container.run("ftpdup", "apply")  # the manager's pass gives them to the lane
    world.wait_at(world.destinations[f"{lane}:web"], files)
    assert not os.path.exists(container.path(world.layout.dead(f"{lane}:web")))
