"""The sprinkler's file handling on a real filesystem, including every crash point."""

from __future__ import annotations

import os
import time

import pytest

from ftpdup.layout import Layout
from ftpdup.specs import Output, SprinklerSpec
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
        outputs=tuple(Output(i, layout.pending(i), layout.spool(i)) for i in instances),
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
        for kind in ("incoming", "staging", "pending")
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
    assert read(os.path.join(layout.staging("lane"), "same")) == b"version 3"
    # The carrier delivers version 1, then 2: each time the next version moves up.
    for expected in (b"version 2", b"version 3"):
        os.unlink(os.path.join(spool, "same"))
        sprinkler.last_retry = 0
        sprinkler.step()
        sprinkler.last_retry = 0
        sprinkler.step()
        assert read(os.path.join(spool, "same")) == expected
    assert leftovers(layout) == []


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
    run_once(sprinkler)
    assert sorted(os.listdir(lane)) == ["link", "subdir"]
    assert spooled(layout, "lane:a") == {}


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
