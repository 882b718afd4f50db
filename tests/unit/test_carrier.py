"""The carrier's queue, retry and dead-letter rules, against real servers on loopback."""

from __future__ import annotations

import math
import os
import select
import socket
import threading
import time

import pytest

from ftpdup.specs import CarrierSpec, Target
from ftpdup.transfer import Interrupted, Transfer, TransferError, open_transfer
from ftpdup.transfer.ftp import BLOCK_SIZE
from ftpdup.workers.carrier import Carrier
from ftpdup.workers.sessions import PREFETCH
from tests.harness.ftp_server import FtpSubscriber, HttpSubscriber
from tests.harness.procs import free_port, wait_for
from tests.harness.servers import NginxDav

LATIN1_NAME = os.fsdecode(b"caf\xe9 cr\xe8me.txt")


def spec(tmp_path, target: Target, **extra) -> CarrierSpec:
    return CarrierSpec(
        instance="lane:sub",
        spool=str(tmp_path / "spool"),
        dead=str(tmp_path / "dead"),
        state=str(tmp_path / "state"),
        target=target,
        **extra,
    )


def put(folder: str, name: str, data: bytes, age: float = 0.0) -> str:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(data)
    if age:
        stamp = time.time() - age
        os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def ftp_server(tmp_path):
    server = FtpSubscriber(str(tmp_path / "ftproot"), str(tmp_path)).start()
    yield server
    server.stop()


@pytest.fixture
def http_server(tmp_path):
    server = HttpSubscriber(str(tmp_path / "webroot"), str(tmp_path)).start()
    yield server
    server.stop()


def ftp_target(server: FtpSubscriber, **extra) -> Target:
    return Target("ftp", "127.0.0.1", server.port, user="sub", password="subpw", **extra)


def make_due(carrier: Carrier) -> None:
    """Let every delay run out now (the subscriber's and each file's)."""
    carrier.subscriber.next_try = 0.0
    carrier.waiting = [(0.0, mtime, name) for _, mtime, name in carrier.waiting]


def drain(carrier: Carrier, rounds: int = 100) -> None:
    """Step the carrier until its queue is empty, letting delays run out, at most rounds times."""
    carrier.rescan()
    for _ in range(rounds):
        if not (carrier.ready or carrier.waiting):
            return
        make_due(carrier)
        carrier.step()


def test_files_are_delivered_oldest_first_over_one_session(tmp_path, ftp_server):
    carrier = Carrier(spec(tmp_path, ftp_target(ftp_server)))
    carrier.prepare()
    for number, age in ((1, 30), (2, 10), (3, 20)):
        put(carrier.spec.spool, f"file{number}", f"data {number}".encode(), age=age)
    order = []
    send = carrier.transfer.send
    carrier.transfer.send = lambda source, name, progress, more=False: (
        order.append(name) or send(source, name, progress, more)
    )
    drain(carrier)
    assert order == ["file1", "file3", "file2"]
    assert os.listdir(carrier.spec.spool) == []
    assert sorted(os.listdir(ftp_server.root)) == ["file1", "file2", "file3"]
    assert carrier.transfer._ftp is not None  # the session stays open for the next file
    carrier.finish()


def test_too_old_files_go_to_dead_letters_with_their_reason(tmp_path):
    target = Target("http", "127.0.0.1", free_port())  # nothing listens there
    carrier = Carrier(spec(tmp_path, target, max_age=60))
    carrier.prepare()
    put(carrier.spec.spool, "ancient", b"x", age=3600)
    drain(carrier)
    assert os.listdir(carrier.spec.spool) == []
    assert os.listdir(os.path.join(carrier.spec.dead, "files")) == ["ancient"]
    with open(os.path.join(carrier.spec.dead, "reasons.log")) as reasons:
        assert "ancient\tnot delivered within max_age=60 s" in reasons.read()


def test_subscriber_failure_keeps_the_file_and_backs_off(tmp_path):
    target = Target("http", "127.0.0.1", free_port())
    carrier = Carrier(spec(tmp_path, target, retry_max_delay=4))
    carrier.prepare()
    put(carrier.spec.spool, "waiting", b"x")
    carrier.rescan()
    delays = []
    for _ in range(5):
        make_due(carrier)
        carrier.step()
        delays.append(math.ceil(carrier.subscriber.next_try - time.monotonic()))
    assert delays == [1, 2, 4, 4, 4]
    assert os.listdir(carrier.spec.spool) == ["waiting"]
    assert "refused" in carrier.subscriber.error
    assert "failing since" in carrier.status()


def test_ftp_names_that_cannot_be_sent_are_dead_lettered(tmp_path, ftp_server):
    carrier = Carrier(spec(tmp_path, ftp_target(ftp_server)))
    carrier.prepare()
    put(carrier.spec.spool, "bad\nname", b"x")
    drain(carrier)
    assert os.listdir(os.path.join(carrier.spec.dead, "files")) == ["bad\nname"]
    with open(os.path.join(carrier.spec.dead, "reasons.log")) as reasons:
        assert "bad\\nname" in reasons.read()  # one line per file, whatever its name


def test_a_name_the_server_refuses_waits_while_the_others_go_on(tmp_path, ftp_server):
    # The server refuses to rename onto "blocked": it is a directory there.
    os.makedirs(os.path.join(ftp_server.root, "blocked"))
    carrier = Carrier(spec(tmp_path, ftp_target(ftp_server)))
    carrier.prepare()
    put(carrier.spec.spool, "blocked", b"first in line", age=30)
    put(carrier.spec.spool, "second", b"2", age=20)
    put(carrier.spec.spool, "third", b"3", age=10)
    carrier.rescan()
    for _ in range(3):
        carrier.step()
    assert sorted(os.listdir(carrier.spec.spool)) == ["blocked"]
    assert {"second", "third"} <= set(os.listdir(ftp_server.root))
    assert carrier.subscriber.failures == 0 and "blocked" in carrier.file_retries
    assert "1 waiting on their own retry" in carrier.status()
    os.rmdir(os.path.join(ftp_server.root, "blocked"))
    drain(carrier)
    with open(os.path.join(ftp_server.root, "blocked"), "rb") as delivered:
        assert delivered.read() == b"first in line"


def test_names_that_are_not_utf8_reach_ftp_as_the_same_bytes(tmp_path, ftp_server):
    carrier = Carrier(spec(tmp_path, ftp_target(ftp_server)))
    carrier.prepare()
    put(carrier.spec.spool, LATIN1_NAME, b"latin-1")
    put(carrier.spec.spool, os.fsdecode(b"\xff\xfe.bin"), b"not text at all")
    drain(carrier)
    assert sorted(os.listdir(os.fsencode(ftp_server.root))) == [
        b"caf\xe9 cr\xe8me.txt",
        b"\xff\xfe.bin",
    ]
    assert os.listdir(carrier.spec.spool) == []


def test_an_http_server_that_chokes_on_one_name_does_not_stop_the_others(tmp_path, http_server):
    # WsgiDAV drops the connection when it meets a name that is not UTF-8.
    target = Target("http", "127.0.0.1", http_server.port)
    carrier = Carrier(spec(tmp_path, target))
    carrier.prepare()
    put(carrier.spec.spool, LATIN1_NAME, b"choked on", age=30)
    for number in range(5):
        put(carrier.spec.spool, f"after-{number}", b"fine", age=20 - number)
    carrier.rescan()
    deadline = time.monotonic() + 30
    while len(os.listdir(carrier.spec.spool)) > 1 and time.monotonic() < deadline:
        make_due(carrier)
        carrier.step()
    assert os.listdir(carrier.spec.spool) == [LATIN1_NAME]
    assert sorted(os.listdir(http_server.root)) == [f"after-{n}" for n in range(5)]
    carrier.finish()


class ExplodingTransfer(Transfer):
    """Fault injection (no real server raises inside our code): fails one name unexpectedly."""

    def __init__(self, inner: Transfer, bad_name: str) -> None:
        self.inner = inner
        self.bad_name = bad_name

    def send(self, source, name, progress=None, more=False):
        if name == self.bad_name:
            raise RuntimeError("an unforeseen bug")
        return self.inner.send(source, name, progress, more)

    def close(self):
        self.inner.close()


def test_an_unexpected_error_in_one_delivery_never_stops_the_worker(tmp_path, ftp_server):
    target = ftp_target(ftp_server)
    transfer = ExplodingTransfer(open_transfer(target), "bad")
    carrier = Carrier(spec(tmp_path, target), transfer)
    carrier.prepare()
    put(carrier.spec.spool, "bad", b"x", age=10)
    put(carrier.spec.spool, "good", b"y")
    carrier.rescan()
    carrier.step()
    carrier.step()
    assert os.listdir(carrier.spec.spool) == ["bad"]
    assert "unexpected RuntimeError" in carrier.file_retries["bad"].error
    assert os.listdir(ftp_server.root) == ["good"]


# More than a loopback connection holds in flight (receive buffer up to 32 MiB, send
# buffer up to 4 MiB): a cut upload cannot have reached the server whole.
UNHELD_SIZE = 64 * 1024 * 1024


def cut_once_held(limit: int, partial: str):
    """Return a progress callback that interrupts the transfer once the server has written
    limit bytes to partial (more are sent by then: they are in flight)."""

    def progress(sent: int) -> None:
        if os.path.exists(partial) and os.path.getsize(partial) >= limit:
            raise Interrupted(f"test cut at {sent}")

    return progress


def settled_size(path: str) -> int:
    """Return the size of path once the server has stopped writing to it (the server
    goes on with what it received after the client has cut the upload)."""
    sizes = [-1]

    def unchanged() -> bool:
        time.sleep(0.2)
        sizes.append(os.path.getsize(path))
        return sizes[-1] == sizes[-2]

    wait_for(unchanged, 30, f"the server to finish writing {path}", interval=0)
    return sizes[-1]


def test_an_interrupted_ftp_upload_is_resumed_where_it_stopped(tmp_path, ftp_server, caplog):
    caplog.set_level("INFO")
    target = ftp_target(ftp_server)
    data = os.urandom(UNHELD_SIZE + 11)
    path = put(str(tmp_path / "spool"), "big.bin", data)
    partial = os.path.join(ftp_server.root, "big.bin.t")
    transfer = open_transfer(target, state_dir=str(tmp_path))
    with open(path, "rb") as source, pytest.raises(Interrupted):
        transfer.send(source, "big.bin", cut_once_held(1024 * 1024, partial))
    held = settled_size(partial)
    assert 1024 * 1024 <= held < len(data)
    sizes = []
    with open(path, "rb") as source:
        assert transfer.send(source, "big.bin", sizes.append) == len(data)
    assert sizes[0] > held  # it went on from the server's size, not from 0
    with open(os.path.join(ftp_server.root, "big.bin"), "rb") as delivered:
        assert delivered.read() == data
    assert not os.path.exists(partial)
    assert f"resuming big.bin.t at byte {held} " in caplog.text
    transfer.close()


def test_a_big_ftp_upload_reports_progress_from_its_first_blocks(tmp_path, ftp_server):
    # Only the first block is sent before the go-ahead: a stop request and the
    # watchdog are heard every block, however much the socket would take at once.
    target = ftp_target(ftp_server)
    data = os.urandom(UNHELD_SIZE)
    path = put(str(tmp_path / "spool"), "steady.bin", data)
    transfer = open_transfer(target)
    sizes = []
    with open(path, "rb") as source:
        assert transfer.send(source, "steady.bin", sizes.append) == len(data)
    assert sizes[0] <= 2 * BLOCK_SIZE
    assert len(sizes) >= len(data) // BLOCK_SIZE - 1
    with open(os.path.join(ftp_server.root, "steady.bin"), "rb") as delivered:
        assert delivered.read() == data
    transfer.close()


def test_a_temporary_file_of_another_file_is_never_resumed(tmp_path, ftp_server):
    target = ftp_target(ftp_server)
    path = put(str(tmp_path / "spool"), "same.bin", os.urandom(UNHELD_SIZE))
    partial = os.path.join(ftp_server.root, "same.bin.t")
    transfer = open_transfer(target, state_dir=str(tmp_path))
    with open(path, "rb") as source, pytest.raises(Interrupted):
        transfer.send(source, "same.bin", cut_once_held(512 * 1024, partial))
    assert settled_size(partial) >= 512 * 1024
    os.unlink(path)  # that file went elsewhere; a new file takes its name
    fresh = os.urandom(1024 * 1024 + 5)
    path = put(str(tmp_path / "spool"), "same.bin", fresh)
    with open(path, "rb") as source:
        transfer.send(source, "same.bin")
    with open(os.path.join(ftp_server.root, "same.bin"), "rb") as delivered:
        assert delivered.read() == fresh
    transfer.close()


def test_a_file_named_as_an_uploads_temporary_name_never_corrupts_it(tmp_path, ftp_server):
    """A big X is cut mid-upload (X.t holds part of it at the server); a lane file really
    named X.t comes first in the queue. Sent, it would be renamed over the partial X.t and
    X would resume from its size: a corrupt X. It is refused, with its reason, instead."""
    target = ftp_target(ftp_server)
    carrier = Carrier(
        spec(tmp_path, target), open_transfer(target, state_dir=str(tmp_path / "state"))
    )
    carrier.prepare()
    data = os.urandom(UNHELD_SIZE + 3)
    path = put(carrier.spec.spool, "X", data)
    partial = os.path.join(ftp_server.root, "X.t")
    with open(path, "rb") as source, pytest.raises(Interrupted):
        carrier.transfer.send(source, "X", cut_once_held(1024 * 1024, partial))
    settled_size(partial)
    put(carrier.spec.spool, "X.t", os.urandom(2 * 1024 * 1024), age=60)  # older: it goes first
    drain(carrier)
    with open(os.path.join(ftp_server.root, "X"), "rb") as delivered:
        assert delivered.read() == data
    assert sorted(os.listdir(ftp_server.root)) == ["X"]
    assert os.listdir(os.path.join(carrier.spec.dead, "files")) == ["X.t"]
    with open(os.path.join(carrier.spec.dead, "reasons.log")) as reasons:
        assert "its name is the temporary name of 'X'" in reasons.read()
    carrier.transfer.close()


def test_a_stalled_transfer_fails_while_progress_keeps_being_reported(tmp_path):
    # Fault injection: a peer that accepts the connection and never reads
    # (no real server stalls on demand).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    target = Target("http", "127.0.0.1", listener.getsockname()[1])
    path = put(str(tmp_path), "stuck.bin", os.urandom(32 * 1024 * 1024))
    transfer = open_transfer(target, timeout=2.0)
    calls = []
    started = time.monotonic()
    with open(path, "rb") as source, pytest.raises(TransferError) as failure:
        transfer.send(source, "stuck.bin", lambda sent: calls.append(time.monotonic()))
    assert "no byte moved for 2 s" in str(failure.value)
    assert failure.value.scope == "subscriber"
    stalled = [stamp for stamp in calls if stamp > started + 0.5]
    assert len(stalled) >= 2  # the watchdog is fed while it waits
    listener.close()


def test_several_sessions_deliver_every_file_once_and_none_twice_at_once(tmp_path, base_dir):
    server = NginxDav(os.path.join(base_dir, f"dav-{os.getpid()}"), base_dir).start()
    try:
        target = Target("http", "127.0.0.1", server.port, connections=4)
        carrier = Carrier(spec(tmp_path, target))
        carrier.prepare()
        files = {f"par-{n:03d}.bin": os.urandom(50_000 + n) for n in range(60)}
        for age, (name, data) in enumerate(files.items()):
            put(carrier.spec.spool, name, data, age=100 - age)
        carrier.rescan()
        handed_at_most = 0
        deadline = time.monotonic() + 60
        while os.listdir(carrier.spec.spool) and time.monotonic() < deadline:
            carrier.step()
            handed_at_most = max(handed_at_most, len(carrier.sessions.handed_out))
            assert len(carrier.sessions.handed_out) <= 4 * PREFETCH  # each to one session
            select.select([carrier.sessions.wake_read], [], [], 0.2)
        carrier.finish()
        assert os.listdir(carrier.spec.spool) == []
        for name, data in files.items():
            with open(os.path.join(server.root, name), "rb") as handle:
                assert handle.read() == data
        puts = server.requests("PUT", succeeded=True)
        assert sorted(puts) == sorted(f"/{name}" for name in files)  # each exactly once
        assert handed_at_most == 4 * PREFETCH
        assert carrier.counters.totals["delivered_files"] == 60
    finally:
        server.stop()


def test_a_new_file_under_a_name_still_being_deleted_is_sent_once_the_old_is_gone(
    tmp_path, ftp_server
):
    carrier = Carrier(spec(tmp_path, ftp_target(ftp_server)))
    carrier.prepare()
    stalled = threading.Event()
    unlink = carrier.remover._unlink
    carrier.remover._unlink = lambda name: (stalled.wait(10), unlink(name))  # a slow journal
    carrier.remover.start()
    put(carrier.spec.spool, "same", b"first")
    drain(carrier)
    assert carrier.remover.removing == {"same"}
    carrier.rescan()  # the delivered file is still there: not queued again
    assert not carrier.ready
    stalled.set()
    while os.path.exists(os.path.join(carrier.spec.spool, "same")):
        time.sleep(0.01)
    put(carrier.spec.spool, "same", b"second")  # published before the loop heard of the unlink
    carrier.on_names(["same"])
    assert not carrier.ready
    while carrier.remover.removing:
        carrier.step()
        time.sleep(0.01)
    drain(carrier)
    with open(os.path.join(ftp_server.root, "same"), "rb") as delivered:
        assert delivered.read() == b"second"
    carrier.finish()
    assert os.listdir(carrier.spec.spool) == []


def test_resume_records_older_than_max_age_are_dropped_at_start(tmp_path):
    target = Target("ftp", "127.0.0.1", free_port(), user="u", password="p")
    carrier = Carrier(spec(tmp_path, target, max_age=600))
    os.makedirs(carrier.spec.state)
    stale = put(carrier.spec.state, "ftp-resume-0000beef.json", b"{}", age=3600)
    fresh = put(carrier.spec.state, "ftp-resume-0000cafe.json", b"{}", age=10)
    other = put(carrier.spec.state, "something-else.json", b"{}", age=3600)
    carrier.prepare()
    assert not os.path.exists(stale)
    assert os.path.exists(fresh) and os.path.exists(other)
