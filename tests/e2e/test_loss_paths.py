"""Files lost or stranded on ordinary days, end to end: none any more.

A name sent again and again while a subscriber is down, a subscriber whose
Consul service has no instance yet, files moved into a lane with old times,
a dead letter set aside for its age and replayed. Real vsftpd ingest, real
subscribers (pyftpdlib recording every file it receives, nginx logging
every PUT), ftpdup's workers as processes.
"""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from ftpdup import deadletter
from tests.harness.procs import wait_for

pytestmark = pytest.mark.e2e


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_name_sent_again_while_a_subscriber_is_down_reaches_everyone_every_time(world):
    world.add_lane("radar")
    down = world.add_ftp_subscriber("radar", "archive", history=True)
    webs = [world.add_nginx_subscriber("radar", name) for name in ("web1", "web2")]
    down.stop()
    pipeline = world.start()
    versions = [os.urandom(3000 + number) for number in range(11)]
    lane = world.layout.incoming("radar")
    for data in versions:
        world.upload("radar", {"latest.png": data})
        # As a product re-sent every minute: the lane has taken the last one already.
        wait_for(lambda: os.listdir(lane) == [], 10, "the lane to take the upload")
    for web in webs:
        wait_for(
            lambda web=web: web.requests("PUT", succeeded=True).count("/latest.png") == 11,
            60,
            f"11 versions at {web.root}\n{pipeline.logs()}",
        )
        with open(os.path.join(web.root, "latest.png"), "rb") as handle:
            assert handle.read() == versions[-1]
    # The subscriber that was down holds nothing back, and gets every version, in order.
    down.start()
    wait_for(lambda: len(down.received()) == 11, 90, f"11 versions\n{pipeline.logs()}")
    assert [sha for _, sha in down.received()] == [digest(data) for data in versions]
    wait_for(lambda: not world.queued_files(), 30, "every queue to empty")


def test_files_for_a_service_without_instances_wait_for_its_first_instance(world):
    world.add_lane("fresh")
    service = world.add_service_subscriber("fresh", "cluster", 0, "store")
    pipeline = world.start()
    assert pipeline.desired.carriers == {}
    (parked,) = pipeline.desired.sprinklers["fresh"].outputs
    assert parked.instance == "fresh:cluster" and "has no passing instance" in parked.parked
    files = {f"obs-{number}.txt": os.urandom(500 + number) for number in range(6)}
    world.upload("fresh", files)
    spool = world.layout.spool("fresh:cluster")
    wait_for(
        lambda: os.path.isdir(spool) and sorted(os.listdir(spool)) == sorted(files),
        20,
        f"the files to wait\n{pipeline.logs()}",
    )
    assert "has no subscriber" not in pipeline.worker("sprinkler", "fresh").output()
    roots = [world.add_service_instance(service, number, "store") for number in range(2)]
    pipeline.reconcile()  # as the manager does on the change in Consul
    for root in roots:
        wait_for(
            lambda root=root: sorted(os.listdir(root)) == sorted(files),
            60,
            f"the files at {root}\n{pipeline.logs()}",
        )
    for root in roots:
        for name, data in files.items():
            with open(os.path.join(root, name), "rb") as handle:
                assert handle.read() == data
    wait_for(lambda: not world.queued_files(), 30, "every queue to empty")
    assert not os.path.exists(spool)


def test_files_moved_in_with_old_times_are_delivered_not_set_aside(world, tmp_path):
    world.add_lane("moved")
    world.add_http_subscriber("moved", "web")
    world.add_ftp_subscriber("moved", "ftp")
    pipeline = world.start(carrier_max_age=3600)
    files = {f"kept-{number}.grib": os.urandom(4000 + number) for number in range(3)}
    old = os.path.join(world.layout.root, "old-volume")  # the old tool's volume, same fs
    os.makedirs(old)
    three_days_ago = time.time() - 3 * 86400
    for name, data in files.items():
        path = os.path.join(old, name)
        with open(path, "wb") as handle:
            handle.write(data)
        os.utime(path, (three_days_ago, three_days_ago))
        os.rename(path, os.path.join(world.layout.incoming("moved"), name))
    world.wait_delivered("moved", files)
    for instance in ("moved:web", "moved:ftp"):
        assert deadletter.entries(world.layout.dead(instance)) == []
    assert "dead letter" not in pipeline.logs()


def test_a_dead_letter_set_aside_for_its_age_is_delivered_when_replayed(world):
    world.add_lane("late")
    server = world.add_ftp_subscriber("late", "ftp")
    server.stop()
    pipeline = world.start(carrier_max_age=5)
    world.upload("late", {"slow.txt": b"too late once"})
    dead = world.layout.dead("late:ftp")
    wait_for(lambda: deadletter.entries(dead), 30, f"the file set aside\n{pipeline.logs()}")
    server.start()
    (letter,) = deadletter.entries(dead)
    assert "not delivered within max_age=5 s" in letter.reason
    layout = world.layout
    queue = (layout.pending("late:ftp"), layout.later("late:ftp"), layout.spool("late:ftp"))
    assert deadletter.replay(letter, queue)
    world.wait_delivered("late", {"slow.txt": b"too late once"})
    assert deadletter.entries(dead) == []
