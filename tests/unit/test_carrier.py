"""The carrier's queue, retry and dead-letter rules, against real servers on loopback."""

from __future__ import annotations

import os
import time

import pytest

from ftpdup.specs import CarrierSpec, Target
from ftpdup.workers.carrier import Carrier
from tests.harness.ftp_server import FtpSubscriber
from tests.harness.procs import free_port


def spec(tmp_path, target: Target, **extra) -> CarrierSpec:
    return CarrierSpec(
        instance="lane:sub",
        spool=str(tmp_path / "spool"),
        dead=str(tmp_path / "dead"),
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


def drain(carrier: Carrier) -> None:
    carrier.rescan()
    while carrier.queue and not carrier.failures:
        carrier.step()


def test_files_are_delivered_oldest_first_over_one_session(tmp_path, ftp_server):
    target = Target("ftp", "127.0.0.1", ftp_server.port, user="sub", password="subpw")
    carrier = Carrier(spec(tmp_path, target))
    carrier.prepare()
    for number, age in ((1, 30), (2, 10), (3, 20)):
        put(carrier.spec.spool, f"file{number}", f"data {number}".encode(), age=age)
    order = []
    send = carrier.transfer.send
    carrier.transfer.send = lambda source, name: order.append(name) or send(source, name)
    drain(carrier)
    assert order == ["file1", "file3", "file2"]
    assert os.listdir(carrier.spec.spool) == []
    assert sorted(os.listdir(ftp_server.root)) == ["file1", "file2", "file3"]
    ftp = carrier.transfer._ftp
    assert ftp is not None  # the session stays open for the next file
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


def test_failure_keeps_the_file_and_backs_off(tmp_path):
    target = Target("http", "127.0.0.1", free_port())
    carrier = Carrier(spec(tmp_path, target, retry_max_delay=4))
    carrier.prepare()
    put(carrier.spec.spool, "waiting", b"x")
    carrier.rescan()
    delays = []
    for _ in range(5):
        carrier.next_try = 0
        carrier.step()
        delays.append(round(carrier.next_try - time.monotonic()))
    assert delays == [1, 2, 4, 4, 4]
    assert os.listdir(carrier.spec.spool) == ["waiting"]
    assert "Connection" in carrier.last_error or "refused" in carrier.last_error


def test_ftp_names_that_cannot_be_sent_are_dead_lettered(tmp_path, ftp_server):
    target = Target("ftp", "127.0.0.1", ftp_server.port, user="sub", password="subpw")
    carrier = Carrier(spec(tmp_path, target))
    carrier.prepare()
    put(carrier.spec.spool, "bad\nname", b"x")
    drain(carrier)
    assert os.listdir(os.path.join(carrier.spec.dead, "files")) == ["bad\nname"]
