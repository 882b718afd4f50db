"""The sprinkler's file handling on a real filesystem, including every crash point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import sdnotify

from ftpdup import deadletter, specs
from ftpdup.desired import output
from ftpdup.layout import Layout
from ftpdup.specs import Drain, SprinklerSpec
from ftpdup.workers import sprinkler as sprinkler_module
from ftpdup.workers.sprinkler import Sprinkler

INSTANCES = ("lane:a", "lane:b", "lane:c")


@pytest.fixture
def layout(tmp_path):
    return Layout(str(tmp_path))


def make(layout: Layout, instances=INSTANCES, exclude=()) -> Sprinkler:
    spec = SprinklerSpec(
        lane="lane",
        incoming=layout.incoming("lane"),
        staging=layout.staging("lane"),
        outputs=tuple(output(layout, i) for i in instances),
        exclude=tuple(exclude),
    )
    sprinkler = Sprinkler(spec)
    sprinkler.prepare()
    return sprinkler


def write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def spooled(layout: Layout, instance: str) -> dict[str, bytes]:
    folder = layout.spool(instance)
    return {name: read(os.path.join(folder, name)) for name in os.listdir(folder)}


def run_once(sprinkler: Sprinkler) -> None:
    sprinkler.rescan()
    sprinkler.step()


def leftovers(layout: Layout) -> list[str]:
    return [
        name
        for kind in ("incoming", "staging", "pending", "later")
        for _, _, names in os.walk(os.path.join(layout.root, kind))
        for name in names
    ]


def test_file_is_linked_into_every_spool_and_leaves_the_lane(layout):
    sprinkler = make(layout)
    write(os.path.join(layout.incoming("lane"), "f1"), b"data")
    run_once(sprinkler)
    for instance in INSTANCES:
        assert spooled(layout, instance) == {"f1": b"data"}
    assert leftovers(layout) == []
    inodes = {os.stat(os.path.join(layout.spool(i), "f1")).st_ino for i in INSTANCES}
    assert len(inodes) == 1  # hard links, not copies


def test_excluded_files_stay_in_the_lane(layout):
    sprinkler = make(layout, exclude=["*.t", "tmp*"])
    for name in ("x.t", "tmp1", "real"):
        write(os.path.join(layout.incoming("lane"), name), b"1")
    run_once(sprinkler)
    assert sorted(os.listdir(layout.incoming("lane"))) == ["tmp1", "x.t"]
    assert spooled(layout, "lane:a") == {"real": b"1"}


def test_crash_between_links_is_finished_by_a_restart_without_duplicates(layout):
    # State left by a crash during step 2: staged, linked for one carrier only.
    make(layout)
    staged = os.path.join(layout.staging("lane"), "f2")
    write(staged, b"v")
    os.link(staged, os.path.join(layout.pending("lane:a"), "f2"))
    run_once(make(layout))
    for instance in INSTANCES:
        assert spooled(layout, instance) == {"f2": b"v"}
    assert leftovers(layout) == []


def test_crash_during_publish_does_not_resend_what_a_carrier_already_delivered(layout):
    # Step 2 completed (staging name gone); "a" was published and already delivered,
    # "b" and "c" are still pending.
    make(layout)
    write(os.path.join(layout.pending("lane:b"), "f3"), b"v")
    os.link(
        os.path.join(layout.pending("lane:b"), "f3"), os.path.join(layout.pending("lane:c"), "f3")
    )
    run_once(make(layout))
    assert spooled(layout, "lane:a") == {}
    assert spooled(layout, "lane:b") == spooled(layout, "lane:c") == {"f3": b"v"}
    assert leftovers(layout) == []


def test_same_name_waits_behind_the_older_file_and_both_are_kept(layout):
    sprinkler = make(layout, instances=("lane:a",))
    lane = layout.incoming("lane")
    spool = layout.spool("lane:a")
    write(os.path.join(lane, "same"), b"version 1")
    run_once(sprinkler)
    write(os.path.join(lane, "same"), b"version 2")  # a new inode, the old one is queued
    sprinkler.on_names(["same"])
    sprinkler.step()
    assert read(os.path.join(spool, "same")) == b"version 1"
    assert read(os.path.join(layout.pending("lane:a"), "same")) == b"version 2"
    write(os.path.join(lane, "same"), b"version 3")
    sprinkler.on_names(["same"])
    sprinkler.step()
    assert os.listdir(lane) == [] and os.listdir(layout.staging("lane")) == []
    assert versions_later(layout, "lane:a") == [b"version 3"]
    # The carrier delivers version 1, then 2: each time the next version moves up at once
    # (the spool is watched while a name waits for it).
    for expected in (b"version 2", b"version 3"):
        os.unlink(os.path.join(spool, "same"))
        sprinkler.step()
        assert read(os.path.join(spool, "same")) == expected
    assert leftovers(layout) == []


def versions_later(layout: Layout, instance: str) -> list[bytes]:
    """Return the contents of the versions queued in instance's later folder, oldest first."""
    folder = layout.later(instance)
    if not os.path.isdir(folder):
        return []
    return [
        read(os.path.join(folder, seq, name))
        for seq in sorted(os.listdir(folder))
        for name in os.listdir(os.path.join(folder, seq))
    ]


def test_any_number_of_versions_queue_in_order_and_hold_back_no_other_subscriber(layout):
    sprinkler = make(layout)
    lane = layout.incoming("lane")
    sent = [f"version {number}".encode() for number in range(15)]
    delivered: dict[str, list[bytes]] = {"lane:b": [], "lane:c": []}
    for data in sent:
        write(os.path.join(lane, "latest.xml"), data)
        sprinkler.on_names(["latest.xml"])
        sprinkler.step()
        assert os.listdir(lane) == []  # the lane empties whatever the subscribers do
        for healthy, got in delivered.items():  # their carriers deliver at once
            path = os.path.join(layout.spool(healthy), "latest.xml")
            got.append(read(path))
            os.unlink(path)
            sprinkler.step()
    assert delivered == {"lane:b": sent, "lane:c": sent}
    # "lane:a" is down: it holds every version, in order, none overwritten.
    queued = [read(os.path.join(layout.spool("lane:a"), "latest.xml"))]
    queued.append(read(os.path.join(layout.pending("lane:a"), "latest.xml")))
    assert queued + versions_later(layout, "lane:a") == sent
    # A restart reads the queue back as it was.
    sprinkler = make(layout)
    run_once(sprinkler)
    got = []
    for _ in sent:
        path = os.path.join(layout.spool("lane:a"), "latest.xml")
        got.append(read(path))
        os.unlink(path)
        sprinkler.step()
    assert got == sent
    assert leftovers(layout) == [] and versions_later(layout, "lane:a") == []


def test_a_crash_in_the_fan_out_of_a_later_version_queues_it_once(layout):
    make(layout)
    for instance in INSTANCES:  # each output holds version 1 (spool) and 2 (pending)
        write(os.path.join(layout.spool(instance), "n"), b"v1")
        write(os.path.join(layout.pending(instance), "n"), b"v2")
    staged = os.path.join(layout.staging("lane"), "n")
    write(staged, b"v3")
    # Version 3 had reached the later folder of "lane:a" only when the sprinkler died.
    os.makedirs(os.path.join(layout.later("lane:a"), "00000000000000000007"))
    os.link(staged, os.path.join(layout.later("lane:a"), "00000000000000000007", "n"))
    sprinkler = make(layout)
    run_once(sprinkler)
    for instance in INSTANCES:
        assert versions_later(layout, instance) == [b"v3"]
    assert os.listdir(layout.staging("lane")) == []


def test_a_file_moved_in_with_an_old_time_counts_its_age_from_its_taking(layout):
    sprinkler = make(layout)
    path = os.path.join(layout.incoming("lane"), "old.grib")
    write(path, b"three days old")
    three_days_ago = time.time() - 3 * 86400
    os.utime(path, (three_days_ago, three_days_ago))
    run_once(sprinkler)
    for instance in INSTANCES:
        taken = os.stat(os.path.join(layout.spool(instance), "old.grib")).st_mtime
        assert abs(time.time() - taken) < 60


def test_a_parked_queue_keeps_its_files_in_order_until_max_age(layout):
    parked = output(
        layout, "lane:svc", "subscriber svc: Consul service 's' has no passing instance"
    )
    spec = SprinklerSpec(
        lane="lane",
        incoming=layout.incoming("lane"),
        staging=layout.staging("lane"),
        outputs=(output(layout, "lane:a"), parked),
        max_age=3600,
    )
    sprinkler = Sprinkler(spec)
    sprinkler.prepare()
    run_once(sprinkler)
    lane = layout.incoming("lane")
    for data in (b"one", b"two"):
        write(os.path.join(lane, "same"), data)
        sprinkler.on_names(["same"])
        sprinkler.step()
    write(os.path.join(lane, "other"), b"three")
    sprinkler.on_names(["other"])
    sprinkler.step()
    assert leftovers(layout) == ["same", "same"]  # both queues' second version, pending
    assert spooled(layout, "lane:svc") == {"same": b"one", "other": b"three"}
    # Nothing is deleted; past max_age, files go to the dead letters with the reason.
    an_hour_ago = time.time() - 3700
    for path in (os.path.join(layout.spool("lane:svc"), "same"),
                 os.path.join(layout.pending("lane:svc"), "same")):  # fmt: skip
        os.utime(path, (an_hour_ago, an_hour_ago))
    sprinkler._sweep_parked()
    letters = deadletter.entries(layout.dead("lane:svc"))
    assert sorted(letter.name for letter in letters) == ["same", "same"]
    assert all("has no passing instance" in letter.reason for letter in letters)
    assert spooled(layout, "lane:svc") == {"other": b"three"}


def test_a_parked_queue_is_handed_over_to_the_instances_oldest_version_first(layout):
    parked = "lane:svc"
    make(layout, instances=(parked,))
    write(os.path.join(layout.spool(parked), "same"), b"one")
    write(os.path.join(layout.pending(parked), "same"), b"two")
    os.makedirs(os.path.join(layout.later(parked), "00000000000000000009"))
    write(os.path.join(layout.later(parked), "00000000000000000009", "same"), b"three")
    write(os.path.join(layout.spool(parked), "solo"), b"four")
    instances = ("lane:svc:i1", "lane:svc:i2")
    queue = (layout.pending(parked), layout.spool(parked), layout.later(parked))
    spec = SprinklerSpec(
        lane="lane",
        incoming=layout.incoming("lane"),
        staging=layout.staging("lane"),
        outputs=tuple(output(layout, i) for i in instances),
        drains=(Drain(parked, *queue, into=instances),),
    )
    sprinkler = Sprinkler(spec)
    sprinkler.prepare()
    run_once(sprinkler)
    for instance in instances:
        got = []
        while os.path.exists(os.path.join(layout.spool(instance), "same")):
            got.append(read(os.path.join(layout.spool(instance), "same")))
            os.unlink(os.path.join(layout.spool(instance), "same"))
            sprinkler.step()
        assert got == [b"one", b"two", b"three"]
        assert spooled(layout, instance) == {"solo": b"four"}
    assert not any(os.path.exists(folder) for folder in queue)


def test_an_upload_of_the_same_name_during_the_taking_never_writes_into_a_queue(
    layout, monkeypatch
):
    """A new STOR of a name opens the file while the sprinkler holds its lease: the kernel
    makes it wait, then lets it write into whatever file that was, wherever it went. The
    file goes back to the lane for that upload instead of on to the spools."""
    sprinkler = make(layout, instances=("lane:a",))
    path = os.path.join(layout.incoming("lane"), "again")
    write(path, b"old")
    writers = []

    def lease_then_writer(descriptor):
        taken = real_lease(descriptor)

        def upload():
            handle = os.open(path, os.O_WRONLY | os.O_TRUNC)  # waits for the lease
            os.write(handle, b"new upload")
            os.close(handle)

        writers.append(threading.Thread(target=upload))
        writers[-1].start()
        time.sleep(0.3)  # the writer is now waiting for the lease
        return taken

    real_lease = sprinkler_module.lease
    monkeypatch.setattr(sprinkler_module, "lease", lease_then_writer)
    run_once(sprinkler)
    monkeypatch.setattr(sprinkler_module, "lease", real_lease)
    writers[0].join(10)
    assert spooled(layout, "lane:a") == {} and os.listdir(layout.staging("lane")) == []
    assert read(path) == b"new upload"
    sprinkler.next_busy_retry = 0
    sprinkler.step()
    assert spooled(layout, "lane:a") == {"again": b"new upload"}


def test_a_sprinkler_without_leases_refuses_to_start(tmp_path):
    """As an ordinary user without CAP_LEASE, the sprinkler cannot tell an upload in
    progress from a complete file: it says so and does not start."""
    top = tempfile.mkdtemp(prefix="ftpdup-nolease-")  # where an ordinary user may look
    os.chmod(top, 0o777)
    layout = Layout(os.path.join(top, "data"))
    spec = SprinklerSpec("lane", layout.incoming("lane"), layout.staging("lane"))
    spec_file = os.path.join(top, "spec.json")
    with open(spec_file, "w") as handle:
        handle.write(specs.to_json(spec))
    # The checkout and the virtual environment may be out of nobody's reach: a copy of the
    # package and of what a worker imports goes where it may read.
    source = os.path.join(top, "lib")
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shutil.copytree(os.path.join(repository, "ftpdup"), os.path.join(source, "ftpdup"))
    shutil.copytree(os.path.dirname(sdnotify.__file__), os.path.join(source, "sdnotify"))
    for folder, _, _ in os.walk(source):
        os.chmod(folder, 0o755)
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "ftpdup", "sprinkler", "lane", "--spec", spec_file],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": source},
    )  # fmt: skip
    shutil.rmtree(top)
    assert result.returncode == 1, result.stderr
    assert "lacks CAP_LEASE" in result.stderr and "Traceback" not in result.stderr


def test_file_open_for_writing_is_not_taken_until_closed(layout):
    sprinkler = make(layout)
    path = os.path.join(layout.incoming("lane"), "growing")
    with open(path, "wb") as writer:
        writer.write(b"half")
        writer.flush()
        run_once(sprinkler)
        assert os.listdir(layout.incoming("lane")) == ["growing"]
        assert spooled(layout, "lane:a") == {}
        writer.write(b" and the rest")
    # No event needed: a file found busy is looked at again (the kernel may report
    # IN_CLOSE_WRITE a moment before the writer is gone).
    assert sprinkler.busy == {"growing"}
    wait = sprinkler.step()
    assert 0 < wait <= 0.002
    time.sleep(wait)
    sprinkler.step()
    assert spooled(layout, "lane:a") == {"growing": b"half and the rest"}


def test_no_subscriber_deletes(layout):
    sprinkler = make(layout, instances=())
    write(os.path.join(layout.incoming("lane"), "gone"), b"x")
    run_once(sprinkler)
    assert leftovers(layout) == []


def test_directories_and_symlinks_in_the_lane_are_left_alone(layout):
    sprinkler = make(layout)
    lane = layout.incoming("lane")
    os.mkdir(os.path.join(lane, "subdir"))
    os.symlink("/etc/passwd", os.path.join(lane, "link"))
    os.mkfifo(os.path.join(lane, "pipe"))
    write(os.path.join(lane, "file"), b"delivered beside them")
    run_once(sprinkler)
    assert sorted(os.listdir(lane)) == ["link", "pipe", "subdir"]
    assert spooled(layout, "lane:a") == {"file": b"delivered beside them"}
    # Each is reported, with what it is, in the status; gone, it is forgotten.
    odd = {entry["name"]: entry["kind"] for entry in sprinkler.snapshot()["odd_entries"]}
    assert odd == {"link": "a symbolic link", "pipe": "a named pipe (FIFO)",
                   "subdir": "a folder"}  # fmt: skip
    assert "3 entries in the lane that are not files" in sprinkler.status()
    os.rmdir(os.path.join(lane, "subdir"))
    sprinkler._look_for_odd_entries()
    assert sprinkler.snapshot()["odd_entries_total"] == 2


def test_a_folder_made_in_the_lane_later_is_reported_within_one_sweep(layout):
    sprinkler = make(layout)
    run_once(sprinkler)
    os.mkdir(os.path.join(layout.incoming("lane"), "made-by-root"))
    sprinkler.next_sweep = 0.0
    sprinkler.step()
    assert sprinkler.snapshot()["odd_entries"] == [{"name": "made-by-root", "kind": "a folder"}]


def test_parked_queues_are_swept_often_enough_for_their_max_age():
    assert sprinkler_module.sweep_interval(60) == 3.0  # the smallest allowed max_age
    assert sprinkler_module.sweep_interval(86400) == 60.0
    assert sprinkler_module.sweep_interval(1) == 1.0


def test_a_parked_file_reaches_the_dead_letters_soon_after_max_age(layout):
    parked = output(layout, "lane:svc", "subscriber svc: no passing instance")
    spec = SprinklerSpec(lane="lane", incoming=layout.incoming("lane"),
                         staging=layout.staging("lane"), outputs=(parked,), max_age=2)  # fmt: skip
    sprinkler = Sprinkler(spec)
    sprinkler.prepare()
    run_once(sprinkler)
    write(os.path.join(layout.incoming("lane"), "waits"), b"x")
    sprinkler.on_names(["waits"])
    taken = time.time()
    while not deadletter.entries(layout.dead("lane:svc")) and time.time() - taken < 20:
        time.sleep(min(1.0, sprinkler.step() or 1.0))
    letters = deadletter.entries(layout.dead("lane:svc"))
    assert [letter.name for letter in letters] == ["waits"]
    # Set aside after its age and within one sweep interval (1 s) more, plus a loop turn.
    assert letters[0].buried_at >= taken + 2 - 1


def test_a_file_still_open_is_looked_at_less_and_less_often(layout):
    sprinkler = make(layout)
    path = os.path.join(layout.incoming("lane"), "slow")
    waits = []
    with open(path, "wb") as writer:
        writer.write(b"x")
        writer.flush()
        run_once(sprinkler)
        for _ in range(10):
            sprinkler.next_busy_retry = 0  # as if the wait were over
            waits.append(round(sprinkler.step(), 3))
    assert waits == [0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.25, 0.25, 0.25, 0.25]
    assert os.listdir(layout.incoming("lane")) == ["slow"]
