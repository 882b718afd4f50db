"""Real FTP and HTTP (WebDAV) subscriber servers, each a separate process.

They listen on loopback, or on the address of a network namespace of the
test's own (tests.harness.netns), which stands for another host.
"""

from __future__ import annotations

import os
import sys

from tests.harness.procs import Process, free_port, port_open, wait_for


class FtpSubscriber:
    """A pyftpdlib server with one writable account, restartable on the same port.

    File names reach its disk as the bytes the client sent (see pyftpd.py).
    With a namespace, it runs there, on the namespace's address.
    """

    def __init__(
        self,
        root: str,
        workdir: str,
        user: str = "sub",
        password: str = "subpw",
        namespace=None,
        permissions: str = "elradfmwMT",
        history: bool = False,
    ) -> None:
        self.root = root
        self.permissions = permissions  # pyftpdlib's letters: "f" is rename
        # With history, every file received is recorded (see received()).
        self.history = (
            os.path.join(workdir, f"ftp-{os.path.basename(root)}.history") if history else ""
        )
        self.workdir = workdir
        self.user = user
        self.password = password
        self.namespace = namespace
        self.host = namespace.address if namespace else "127.0.0.1"
        self.port = free_port()
        self.process: Process | None = None
        os.makedirs(root, exist_ok=True)

    def start(self) -> FtpSubscriber:
        pasv = free_port()
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyftpd.py")
        argv = [sys.executable, script, self.host, str(self.port), self.root]
        argv += [self.user, self.password, str(pasv), str(pasv + 20), self.permissions]
        argv += [self.history] if self.history else []
        log = os.path.join(self.workdir, f"ftp-{self.port}.log")
        self.process = self.namespace.start(argv, log) if self.namespace else Process(argv, log)
        wait_for(
            lambda: port_open(self.port, self.host), 20, f"the FTP subscriber on port {self.port}"
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def received(self) -> list[tuple[str, str]]:
        """Return (name, SHA-256) of every file received, in order (with history only)."""
        try:
            with open(self.history, encoding="utf-8", errors="surrogateescape") as log:
                return [tuple(line.rstrip("\n").split("\t")) for line in log]  # type: ignore[misc]
        except FileNotFoundError:
            return []


class HttpSubscriber:
    """A WsgiDAV server (cheroot) accepting anonymous PUT into root, on address."""

    def __init__(self, root: str, workdir: str, address: str = "127.0.0.1") -> None:
        self.root = root
        self.workdir = workdir
        self.address = address
        self.port = free_port()
        self.process: Process | None = None
        os.makedirs(root, exist_ok=True)

    def start(self) -> HttpSubscriber:
        wsgidav = os.path.join(os.path.dirname(sys.executable), "wsgidav")
        argv = [
            wsgidav,
            "-H",
            self.address,
            "-p",
            str(self.port),
            "-r",
            self.root,
            "--auth",
            "anonymous",
            "--no-config",
            "-q",
        ]
        self.process = Process(argv, os.path.join(self.workdir, f"http-{self.port}.log"))
        wait_for(
            lambda: port_open(self.port, self.address), 30, f"the HTTP subscriber on {self.port}"
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
