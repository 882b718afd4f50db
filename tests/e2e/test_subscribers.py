"""What subscribers answer, against real servers: TLS both ways, WebDAV publication, failures.

Servers: vsftpd (FTP and FTPS, session reuse required), nginx with WebDAV
(HTTP and HTTPS, client certificates, basic auth), pyftpdlib and WsgiDAV;
certificates made by the test. Each failure must be classified (the file
waits, or the subscriber pauses), retried with the growing delay, logged
once per state change, and never set aside before carrier_max_age unless
retrying can never succeed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import subprocess
import threading
import time
import uuid

import pytest

from ftpdup.specs import CarrierSpec, Target
from ftpdup.workers.carrier import Carrier
from tests.harness.ftp_server import FtpSubscriber, HttpSubscriber
from tests.harness.procs import free_port
from tests.harness.servers import NginxDav, VsftpdSubscriber

pytestmark = pytest.mark.e2e


@pytest.fixture
def root(base_dir):
    """A folder for a server's files, reachable by the accounts servers run as."""
    path = os.path.join(base_dir, f"srv-{uuid.uuid4().hex[:8]}")
    os.makedirs(path, mode=0o755)
    return path


def carrier(root: str, target: Target, **extra) -> Carrier:
    spec = CarrierSpec(
        instance="lane:sub",
        spool=os.path.join(root, "spool"),
        dead=os.path.join(root, "dead"),
        state=os.path.join(root, "state"),
        target=target,
        **{"retry_max_delay": 4, **extra},
    )
    worker = Carrier(spec)
    worker.prepare()
    return worker


def queue(worker: Carrier, files: dict[str, bytes]) -> None:
    for age, (name, data) in enumerate(reversed(files.items())):
        path = os.path.join(worker.spec.spool, name)
        with open(path, "wb") as handle:
            handle.write(data)
        os.utime(path, (time.time() - age - 1, time.time() - age - 1))
    worker.rescan()


def attempts(worker: Carrier, count: int, files_too: bool = True) -> None:
    """Step count times, letting the subscriber's delay run out (and the files', if files_too)."""
    for _ in range(count):
        worker.subscriber.next_try = 0.0
        if files_too:
            worker.waiting = [(0.0, mtime, name) for _, mtime, name in worker.waiting]
        worker.step()


def delivered(folder: str, files: dict[str, bytes]) -> bool:
    for name, data in files.items():
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                if handle.read() != data:
                    return False
        except FileNotFoundError:
            return False
    return True


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture
def ftps_server(root, base_dir, certificates):
    server = VsftpdSubscriber(
        root, base_dir, tls=(certificates["server"], certificates["server_key"])
    )
    yield server.start()
    server.remove()


def test_ftps_with_a_protected_data_channel_and_session_reuse(ftps_server, certificates, root):
    login = {"user": ftps_server.user, "password": ftps_server.password}
    target = Target(
        "ftp", "127.0.0.1", ftps_server.port, tls=True, ca_file=certificates["ca"], **login
    )
    worker = carrier(os.path.join(root, "c"), target)
    files = {f"secret-{n}.bin": os.urandom(300_000 + n) for n in range(3)}
    queue(worker, files)
    attempts(worker, 3)
    assert delivered(ftps_server.root, files), worker.subscriber.error
    assert worker.transfer._ftp.sock.version() in ("TLSv1.2", "TLSv1.3")
    worker.finish()


@pytest.mark.parametrize("case", ["plain FTP", "unknown CA"])
def test_ftps_refusals_pause_the_subscriber(ftps_server, certificates, root, case, caplog):
    caplog.set_level(logging.DEBUG)
    ca = certificates["other_ca"] if case == "unknown CA" else certificates["ca"]
    target = Target("ftp", "127.0.0.1", ftps_server.port, user=ftps_server.user,
                    password=ftps_server.password, tls=case != "plain FTP", ca_file=ca)  # fmt: skip
    worker = carrier(os.path.join(root, "c"), target)
    queue(worker, {"waits.bin": b"x"})
    attempts(worker, 4)
    assert worker.subscriber.failures == 4
    expected = "encryption" if case == "plain FTP" else "CERTIFICATE_VERIFY_FAILED"
    assert expected in worker.subscriber.error
    assert os.listdir(worker.spec.spool) == ["waits.bin"]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # once per state change, not once per attempt


@pytest.fixture
def https_server(root, base_dir, certificates):
    server = NginxDav(
        root,
        base_dir,
        tls=(certificates["server"], certificates["server_key"]),
        client_ca=certificates["ca"],
    )
    yield server.start()
    server.stop()


def test_https_with_a_private_ca_and_a_client_certificate(https_server, certificates, root):
    target = Target("http", "127.0.0.1", https_server.port, tls=True,
                    ca_file=certificates["ca"], cert_file=certificates["client"],
                    key_file=certificates["client_key"])  # fmt: skip
    worker = carrier(os.path.join(root, "c"), target)
    files = {f"over-https-{n}.bin": os.urandom(200_000) for n in range(3)}
    queue(worker, files)
    attempts(worker, 3)
    assert delivered(https_server.root, files), worker.subscriber.error
    worker.finish()


@pytest.mark.parametrize("case", ["no client certificate", "unknown CA", "plain HTTP"])
def test_https_failures_pause_the_subscriber(https_server, certificates, root, case):
    client = {} if case == "no client certificate" else {
        "cert_file": certificates["client"], "key_file": certificates["client_key"]
    }  # fmt: skip
    ca = certificates["other_ca"] if case == "unknown CA" else certificates["ca"]
    target = Target("http", "127.0.0.1", https_server.port, tls=case != "plain HTTP",
                    ca_file=ca, **client)  # fmt: skip
    worker = carrier(os.path.join(root, "c"), target, max_age=3600)
    queue(worker, {"waits.bin": b"x"})
    attempts(worker, 3)
    assert os.listdir(worker.spec.spool) == ["waits.bin"] and not os.path.exists(worker.spec.dead)
    # nginx answers a missing client certificate with 400, about the request: the
    # file waits on its own (and three refusals in a row pause the subscriber).
    errors = worker.subscriber.error + str(worker.file_retries)
    expected = {"no client certificate": "400", "unknown CA": "CERTIFICATE_VERIFY_FAILED"}
    assert expected.get(case, "") in errors


# -- WebDAV publication and FTP checks -------------------------------------------------


def test_atomic_webdav_publication_never_shows_a_partial_file(root, base_dir):
    server = NginxDav(root, base_dir).start()
    seen: list[int] = []
    data = os.urandom(60 * 1024 * 1024)
    final = os.path.join(root, "model.grib2")
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                seen.append(os.path.getsize(final))

    try:
        target = Target("http", "127.0.0.1", server.port, atomic=True, tmp_suff=".part")
        worker = carrier(os.path.join(root, "c"), target)
        queue(worker, {"model.grib2": data})
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        attempts(worker, 1)
        stop.set()
        watcher.join()
        assert delivered(root, {"model.grib2": data})
        assert set(seen) <= {len(data)}  # whenever the name existed, the file was whole
        assert server.requests("MOVE") == ["/model.grib2.part"]
        assert not os.path.exists(final + ".part")
    finally:
        server.stop()


def test_mkcol_creates_a_missing_directory(root, base_dir):
    server = HttpSubscriber(root, base_dir).start()  # WsgiDAV answers 409 for a missing parent
    try:
        target = Target("http", "127.0.0.1", server.port, directory="a/b/c", mkcol=True)
        worker = carrier(os.path.join(root, "c"), target)
        queue(worker, {"deep.bin": b"made its own way"})
        attempts(worker, 1)
        assert delivered(os.path.join(root, "a", "b", "c"), {"deep.bin": b"made its own way"})
    finally:
        server.stop()


def test_ftp_size_check_after_upload(root, base_dir):
    server = FtpSubscriber(os.path.join(root, "ftp"), base_dir).start()
    try:
        target = Target("ftp", "127.0.0.1", server.port, user="sub", password="subpw",
                        verify_size=True)  # fmt: skip
        worker = carrier(os.path.join(root, "c"), target)
        files = {"checked.bin": os.urandom(1234567)}
        queue(worker, files)
        attempts(worker, 1)
        assert delivered(server.root, files)
    finally:
        server.stop()


def test_an_upload_the_server_kept_short_is_caught_by_the_size_check(root, caplog):
    """The server answers 226 but keeps only part of the file (a fault a real server shows
    only on a failing disk): the size check refuses the rename, the file is sent again."""
    caplog.set_level(logging.INFO)
    with faulty_carrier(root, {"short_stores": 1}, verify_size=True) as (server, worker):
        files = {"whole.bin": os.urandom(300_000)}
        queue(worker, files)
        attempts(worker, 3)
        assert delivered(server.folder, files)
        assert sorted(os.listdir(server.folder)) == ["whole.bin"]
        assert server.short_stored == 1
        assert "size check: the server holds 150000 of 300000" in caplog.text


# -- failures, classified --------------------------------------------------------------


def mount_small(path: str, size: str) -> None:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path],
                   check=True)  # fmt: skip


def test_ftp_failures_are_classified(root, base_dir, caplog):
    caplog.set_level(logging.DEBUG)
    ftp = FtpSubscriber(os.path.join(root, "ftp"), base_dir).start()
    try:
        cases = {
            "bad password (530)": Target("ftp", "127.0.0.1", ftp.port, user="sub", password="no"),
            "directory missing (550)": Target("ftp", "127.0.0.1", ftp.port, user="sub",
                                              password="subpw", directory="missing"),
            "connection refused": Target("ftp", "127.0.0.1", free_port(), user="u", password="p"),
        }  # fmt: skip
        for case, target in cases.items():
            worker = carrier(os.path.join(root, case), target, max_age=3600)
            queue(worker, {"waits.bin": b"x", "also.bin": b"y"})
            caplog.clear()
            attempts(worker, 5)
            assert worker.subscriber.failures == 5, case  # the subscriber, not the file
            assert sorted(os.listdir(worker.spec.spool)) == ["also.bin", "waits.bin"], case
            assert not os.path.exists(worker.spec.dead), case  # only max_age sets aside
            assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1, case
        os.makedirs(os.path.join(ftp.root, "missing"))
        attempts(
            worker := carrier(os.path.join(root, "again"), cases["directory missing (550)"]), 0
        )
        queue(worker, {"now.bin": b"z"})
        attempts(worker, 1)
        assert delivered(os.path.join(ftp.root, "missing"), {"now.bin": b"z"})
    finally:
        ftp.stop()


def test_an_ftp_name_the_server_denies_waits_and_the_others_go_on(root, base_dir):
    server = VsftpdSubscriber(os.path.join(root, "ftp"), base_dir, deny_file="{*.exe}").start()
    try:
        target = Target("ftp", "127.0.0.1", server.port, user=server.user,
                        password=server.password)  # fmt: skip
        worker = carrier(os.path.join(root, "c"), target, max_age=3600)
        files = {"virus.exe": b"no", "report.txt": b"yes", "data.bin": b"yes too"}
        queue(worker, files)
        attempts(worker, 3, files_too=False)  # the refused name waits its own second
        assert delivered(server.root, {"report.txt": b"yes", "data.bin": b"yes too"})
        assert os.listdir(worker.spec.spool) == ["virus.exe"]
        assert "550" in worker.file_retries["virus.exe"].error
        assert worker.subscriber.failures == 0
    finally:
        server.remove()


def test_a_refused_rename_waits_and_the_session_stays_in_step(root, base_dir, caplog):
    """RNFR and RNTO go out together: a refused RNTO (its name is a folder at the server)
    is that file's failure, and the next file's answers are its own."""
    server = VsftpdSubscriber(os.path.join(root, "ftp"), base_dir).start()
    try:
        os.makedirs(os.path.join(server.root, "taken.txt", "inside"))
        target = Target("ftp", "127.0.0.1", server.port, user=server.user,
                        password=server.password)  # fmt: skip
        worker = carrier(os.path.join(root, "c"), target, max_age=3600)
        files = {"taken.txt": b"waits", "first.bin": b"one", "second.bin": b"two"}
        queue(worker, files)
        attempts(worker, 3, files_too=False)
        assert delivered(server.root, {"first.bin": b"one", "second.bin": b"two"})
        assert os.listdir(worker.spec.spool) == ["taken.txt"]
        assert worker.file_retries["taken.txt"].error.endswith("550 Rename failed.")
        assert worker.subscriber.failures == 0
        os.rmdir(os.path.join(server.root, "taken.txt", "inside"))
        os.rmdir(os.path.join(server.root, "taken.txt"))
        attempts(worker, 1)
        assert delivered(server.root, files)
        assert "one command at a time" not in caplog.text
    finally:
        server.remove()


def test_a_refused_rnfr_keeps_the_session_in_step(root, base_dir):
    """A refused RNFR (no right to rename) is that file's failure; the RNTO sent with it
    is answered too (503), so each next command reads its own answer."""
    server = FtpSubscriber(os.path.join(root, "ftp"), base_dir, permissions="elradmwMT").start()
    try:
        target = Target("ftp", "127.0.0.1", server.port, user="sub", password="subpw")
        worker = carrier(os.path.join(root, "c"), target, max_age=3600)
        files = {f"f{n}.bin": os.urandom(1000 + n) for n in range(2)}
        queue(worker, files)
        attempts(worker, 2, files_too=False)
        assert sorted(os.listdir(worker.spec.spool)) == sorted(files)
        for name, data in files.items():  # each STOR after a refused rename went through
            with open(os.path.join(server.root, name + ".t"), "rb") as handle:
                assert handle.read() == data
            assert "550" in worker.file_retries[name].error
        assert worker.subscriber.failures == 0
    finally:
        worker.finish()
        server.stop()


class FaultyFtpServer(threading.Thread):
    """A fake FTP server, for fault injection only; no real server here can be made to
    show either fault. With drop_early_input it reads each command with one recv() and
    drops whatever came with it, as a server may do with a command sent before its
    answer to the previous one. With refuse_early_data it answers a STOR whose data
    arrived before the command was read with 425. With short_stores it confirms an
    upload of which it kept only half."""

    def __init__(self, folder: str, drop_early_input=False, refuse_early_data=False,
                 short_stores: int = 0) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.folder = folder
        self.drop_early_input = drop_early_input
        self.refuse_early_data = refuse_early_data
        # The first short_stores uploads keep only their first half, and are confirmed.
        self.short_stores = short_stores
        self.short_stored = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.early_refused = 0

    def run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                control, _ = self.listener.accept()
                with control:
                    self.serve(control)

    def commands(self, control: socket.socket):
        """Yield (command, argument) as read from control (dropping input, if told to)."""
        pending = b""
        while True:
            if b"\r\n" not in pending:
                received = control.recv(4096)
                if not received:
                    return
                pending += received
                if b"\r\n" not in pending:
                    continue
            line, _, pending = pending.partition(b"\r\n")
            if self.drop_early_input:
                pending = b""
            command, _, argument = line.partition(b" ")
            yield command.upper(), argument

    def serve(self, control: socket.socket) -> None:
        control.sendall(b"220 fake\r\n")
        data_listener, renaming = None, b""
        for command, argument in self.commands(control):
            if command == b"PASV":
                data_listener = socket.create_server(("127.0.0.1", 0))
                port = data_listener.getsockname()[1]
                answer = b"227 Entering Passive Mode (127,0,0,1,%d,%d)" % (port >> 8, port & 255)
            elif command == b"STOR" and data_listener is not None:
                answer = self.store(control, data_listener, argument)
                data_listener = None
            elif command == b"RNFR":
                renaming, answer = argument, b"350 ready"
            elif command == b"RNTO":
                os.rename(os.path.join(self.folder, os.fsdecode(renaming)),
                          os.path.join(self.folder, os.fsdecode(argument)))  # fmt: skip
                answer = b"250 renamed"
            elif command == b"SIZE":
                path = os.path.join(self.folder, os.fsdecode(argument))
                found = os.path.exists(path)
                answer = b"213 %d" % os.path.getsize(path) if found else b"550 no such file"
            elif command == b"DELE":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.folder, os.fsdecode(argument)))
                answer = b"250 deleted"
            elif command == b"QUIT":
                control.sendall(b"221 bye\r\n")
                return
            else:
                answer = {b"USER": b"331 password", b"PASS": b"230 in", b"TYPE": b"200 ok",
                          b"NOOP": b"200 ok"}.get(command, b"502 no")  # fmt: skip
            control.sendall(answer + b"\r\n")

    def store(self, control: socket.socket, data_listener: socket.socket, name: bytes) -> bytes:
        """Take one STOR's data into name; return the final answer."""
        with data_listener:
            data_listener.settimeout(10)
            connection, _ = data_listener.accept()
            with connection:
                early = select.select([connection], [], [], 0.05)[0]
                if self.refuse_early_data and early:
                    self.early_refused += 1
                    return b"425 Data came before its command."
                control.sendall(b"150 go\r\n")
                path = os.path.join(self.folder, os.fsdecode(name))
                with open(path, "wb") as out:
                    while block := connection.recv(65536):
                        out.write(block)
                if self.short_stored < self.short_stores:
                    self.short_stored += 1
                    os.truncate(path, os.path.getsize(path) // 2)
        return b"226 done"

    def stop(self) -> None:
        self.listener.close()


@contextlib.contextmanager
def faulty_carrier(root: str, faults: dict, verify_size: bool = False, **extra):
    """Yield (server, carrier) for a FaultyFtpServer with faults, stopping both after."""
    folder = os.path.join(root, "fake")
    os.makedirs(folder)
    server = FaultyFtpServer(folder, **faults)
    server.start()
    try:
        target = Target("ftp", "127.0.0.1", server.port, user="u", password="p",
                        verify_size=verify_size)  # fmt: skip
        worker = carrier(os.path.join(root, "c"), target, max_age=3600, **extra)
        try:
            yield server, worker
        finally:
            worker.finish()
    finally:
        server.stop()


def test_a_server_that_drops_early_commands_gets_them_one_at_a_time(root, caplog):
    caplog.set_level(logging.INFO)
    with faulty_carrier(root, {"drop_early_input": True}, timeout=1.0) as (server, worker):
        files = {f"f{n}.bin": os.urandom(2000 + n) for n in range(3)}
        queue(worker, files)
        attempts(worker, 4)
        assert delivered(server.folder, files)
        assert os.listdir(worker.spec.spool) == []
        assert "left a command sent early unanswered: one command at a time" in caplog.text


def test_a_server_that_refuses_data_before_its_stor_gets_it_after_the_go_ahead(root, caplog):
    caplog.set_level(logging.INFO)
    with faulty_carrier(root, {"refuse_early_data": True}) as (server, worker):
        files = {f"f{n}.bin": os.urandom(3000 + n) for n in range(3)}
        queue(worker, files)
        attempts(worker, 3)
        assert delivered(server.folder, files)
        assert os.listdir(worker.spec.spool) == []
        assert server.early_refused == 1
        assert worker.subscriber.failures == 0 and not worker.file_retries
        assert "refused data sent before its STOR was answered" in caplog.text


def test_a_full_ftp_subscriber_disk_holds_files_until_space_is_freed(root, base_dir):
    disk = os.path.join(root, "ftp")
    mount_small(disk, "2m")
    server = VsftpdSubscriber(disk, base_dir).start()
    try:
        with open(os.path.join(disk, "filler"), "wb") as handle:
            handle.write(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
        target = Target("ftp", "127.0.0.1", server.port, user=server.user,
                        password=server.password)  # fmt: skip
        worker = carrier(os.path.join(root, "c"), target, max_age=3600)
        files = {f"big-{n}.bin": os.urandom(300_000) for n in range(4)}
        queue(worker, files)
        attempts(worker, 8)
        assert sorted(os.listdir(worker.spec.spool)) == sorted(files)
        assert not os.path.exists(worker.spec.dead)
        assert worker.subscriber.failures or worker.file_retries  # retried, with delays
        os.unlink(os.path.join(disk, "filler"))
        for name in os.listdir(disk):
            if name.endswith(".t"):
                os.unlink(os.path.join(disk, name))
        attempts(worker, 8)
        assert delivered(disk, files)
    finally:
        server.remove()
        subprocess.run(["umount", "-l", disk], check=False)  # a session may still close


def test_http_failures_are_classified(root, base_dir, certificates):
    servers = {
        "bad password (401)": NginxDav(os.path.join(root, "a"), base_dir, basic_auth=("u", "p")),
        "forbidden (403)": NginxDav(os.path.join(root, "b"), base_dir, read_only=True),
        # WsgiDAV answers 409 for a missing parent (nginx: 500).
        "directory missing (409)": HttpSubscriber(os.path.join(root, "c"), base_dir),
    }
    try:
        for case, server in servers.items():
            server.start()
            extra = {"user": "u", "password": "wrong"} if "401" in case else {}
            directory = "missing" if "409" in case else "."
            target = Target("http", "127.0.0.1", server.port, directory=directory, **extra)
            worker = carrier(os.path.join(root, case), target, max_age=3600)
            queue(worker, {"one.bin": b"1", "two.bin": b"2", "three.bin": b"3"})
            attempts(worker, 6, files_too="403" not in case)
            assert len(os.listdir(worker.spec.spool)) == 3, case
            assert not os.path.exists(worker.spec.dead), case
            if "403" in case:  # about the file: each waits on its own, three pause it all
                assert len(worker.file_retries) == 3 and len(worker.refused_in_a_row) == 3, case
            else:  # the subscriber's: it pauses, and each try is made with another file
                assert worker.subscriber.failures == 6, case
            assert case.split("(")[1][:3] in worker.subscriber.error, case
    finally:
        for server in servers.values():
            server.stop()


def test_a_full_http_subscriber_disk_pauses_the_subscriber(root, base_dir):
    disk = os.path.join(root, "web")
    mount_small(disk, "1m")
    server = NginxDav(disk, base_dir).start()
    try:
        target = Target("http", "127.0.0.1", server.port)
        worker = carrier(os.path.join(root, "c"), target, max_age=3600)
        files = {"too-big.bin": os.urandom(3 * 1024 * 1024)}
        queue(worker, files)
        attempts(worker, 3)
        assert os.listdir(worker.spec.spool) == ["too-big.bin"]
        assert not os.path.exists(worker.spec.dead)
        # nginx answers a full disk with 500 (Apache's mod_dav with 507): both are the
        # subscriber's failure, retried with the growing delay.
        assert worker.subscriber.failures == 3 and "500" in worker.subscriber.error
    finally:
        server.stop()
        subprocess.run(["umount", "-l", disk], check=False)  # a session may still close
