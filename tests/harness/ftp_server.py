"""Real FTP and HTTP (WebDAV) subscriber servers, each a separate process on loopback."""

from __future__ import annotations

import os
import sys

from tests.harness.procs import Process, free_port, port_open, wait_for


class FtpSubscriber:
    """A pyftpdlib server with one writable account, restartable on the same port."""

    def __init__(self, root: str, workdir: str, user: str = "sub", password: str = "subpw") -> None:
        self.root = root
        self.workdir = workdir
        self.user = user
        self.password = password
        self.port = free_port()
        self.process: Process | None = None
        os.makedirs(root, exist_ok=True)

    def start(self) -> FtpSubscriber:
        pasv = free_port()
        argv = [
            sys.executable,
            "-m",
            "pyftpdlib",
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-w",
            "-d",
            self.root,
            "-u",
            self.user,
            "-P",
            self.password,
            "-r",
            f"{pasv}-{pasv + 20}",
        ]
        self.process = Process(argv, os.path.join(self.workdir, f"ftp-{self.port}.log"))
        wait_for(lambda: port_open(self.port), 20, f"the FTP subscriber on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class HttpSubscriber:
    """A WsgiDAV server (cheroot) accepting anonymous PUT into root."""

    def __init__(self, root: str, workdir: str) -> None:
        self.root = root
        self.workdir = workdir
        self.port = free_port()
        self.process: Process | None = None
        os.makedirs(root, exist_ok=True)

    def start(self) -> HttpSubscriber:
        wsgidav = os.path.join(os.path.dirname(sys.executable), "wsgidav")
        argv = [
            wsgidav,
            "-H",
            "127.0.0.1",
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
        wait_for(lambda: port_open(self.port), 30, f"the HTTP subscriber on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
