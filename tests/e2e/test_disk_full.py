"""The data root on a small filesystem that fills up: nothing acknowledged is lost.

Real vsftpd ingest and workers; the lanes, spools and dead letters of the
test live on a size-limited tmpfs mounted for it.
"""

from __future__ import annotations

import ftplib
import io
import os
import subprocess
import time

import pytest

from tests.harness.procs import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def small_world(world):
    """The test's world with its data root on an 8 MiB tmpfs."""
    root = world.layout.root
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", root], check=True)
    try:
        yield world
    finally:
        world.close()
        subprocess.run(["umount", "-l", root], check=False)


def upload_until_refused(world, lane: str) -> tuple[dict[str, bytes], str]:
    """Upload 1 MiB files until vsftpd refuses one; return (acknowledged files, the refusal)."""
    ftp = world.ingest.login(world.lane_users[lane])
    acknowledged = {}
    try:
        for number in range(40):
            name, data = f"obs-{number:02d}.bin", os.urandom(1024 * 1024)
            try:
                ftp.storbinary(f"STOR {name}", io.BytesIO(data))
            except ftplib.Error as refusal:
                return acknowledged, str(refusal)
            except OSError:  # vsftpd closed the data connection: its answer says why
                try:
                    ftp.voidresp()
                except ftplib.Error as refusal:
                    return acknowledged, str(refusal)
                raise
            acknowledged[name] = data
    finally:
        ftp.close()
    raise AssertionError("the filesystem never filled up")


def test_a_full_data_root_refuses_uploads_and_delivery_resumes_when_space_is_freed(small_world):
    world = small_world
    world.add_lane("full")
    subscriber = world.add_ftp_subscriber("full", "ftpsub")
    subscriber.stop()  # files pile up in the spool
    pipeline = world.start()
    acknowledged, refusal = upload_until_refused(world, "full")
    assert refusal.startswith(("451", "452", "552")), refusal
    assert 3 <= len(acknowledged) <= 8  # an 8 MiB filesystem
    time.sleep(2)
    lane = world.layout.incoming("full")
    assert [name for name in os.listdir(lane) if name not in acknowledged] == []  # no partial
    for name in ("sprinkler:full", "carrier:full:ftpsub"):
        assert pipeline.processes[name].alive(), name
    spool = world.layout.spool("full:ftpsub")
    assert sorted(os.listdir(spool)) == sorted(acknowledged)
    subscriber.start()  # delivering frees the space
    world.wait_delivered("full", acknowledged, timeout=90)
    wait_for(lambda: not os.listdir(spool), 30, "the spool to empty")
    more = {"after.bin": os.urandom(2 * 1024 * 1024)}
    world.upload("full", more)  # there is room again
    world.wait_delivered("full", more)


def test_a_dead_letter_waits_for_space_and_is_kept_with_its_reason(small_world):
    world = small_world
    world.add_lane("dead")
    subscriber = world.add_ftp_subscriber("dead", "ftpsub")
    subscriber.stop()
    pipeline = world.start(carrier_max_age=6)
    files = {f"old-{n}.bin": os.urandom(100_000) for n in range(3)}
    world.upload("dead", files)
    spool = world.layout.spool("dead:ftpsub")
    wait_for(lambda: os.path.isdir(spool) and sorted(os.listdir(spool)) == sorted(files),
             30, "files queued")  # fmt: skip
    filler = os.path.join(world.layout.root, "filler")
    with open(filler, "wb") as handle:  # leave no room, not even for reasons.log
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    carrier = pipeline.worker("carrier", "dead:ftpsub")
    wait_for(lambda: "cannot set" in carrier.output(), 60, "the carrier to try to set aside")
    assert "No space left on device" in carrier.output()
    assert sorted(os.listdir(spool)) == sorted(files) and carrier.alive()
    os.unlink(filler)
    dead = os.path.join(world.layout.dead("dead:ftpsub"), "files")
    wait_for(
        lambda: os.path.isdir(dead) and sorted(os.listdir(dead)) == sorted(files),
        60,
        f"the files in the dead letters\n{carrier.output()[-2000:]}",
    )
    with open(os.path.join(world.layout.dead("dead:ftpsub"), "reasons.log")) as reasons:
        assert reasons.read().count("not delivered within max_age=6 s") == 3
    for name, data in files.items():
        with open(os.path.join(dead, name), "rb") as handle:
            assert handle.read() == data
