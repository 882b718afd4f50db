"""A system test's lanes and subscribers, applied by ftpdup's own manager under systemd."""

from __future__ import annotations

import contextlib
import ftplib
import io
import os
import random
import uuid

from ftpdup.host.units import unit_name
from ftpdup.layout import Layout
from tests.harness.consul_agent import ConsulAgent
from tests.harness.container import Container
from tests.harness.delivery import wait_until_held
from tests.harness.ftp_server import FtpSubscriber, HttpSubscriber
from tests.harness.procs import wait_for

DATA_ROOT = "/var/lib/ftpdup"


class SystemWorld:
    """Lanes in Consul (unique names), subscriber servers on the host, files by FTP."""

    def __init__(self, box: Container, agent: ConsulAgent, base_dir: str) -> None:
        self.box = box
        self.agent = agent
        self.tag = uuid.uuid4().hex[:6]
        self.root = os.path.join(base_dir, f"system-{self.tag}")
        os.makedirs(self.root, mode=0o755)
        self.layout = Layout(DATA_ROOT)
        self.lanes: dict[str, dict] = {}
        self.servers: dict[str, FtpSubscriber | HttpSubscriber] = {}
        self.destinations: dict[str, list[str]] = {}
        self.drop_ins: list[str] = []

    def key(self, lane: str, rest: str) -> str:
        return f"{self.box.prefix}/incoming_directories/{lane}/{rest}"

    def lane(self, short: str) -> str:
        """Return this test's full lane name for short (with a '-': escaped in unit names)."""
        return f"{short}-{self.tag}"

    def add_lane(self, short: str, **extra) -> str:
        lane = self.lane(short)
        settings = {
            "user": f"up{self.tag}{short}"[:32],
            "password": uuid.uuid4().hex,
            "uid": random.randrange(30000, 60000),
            "lifetime": 60,
            "exclude": ["*.t"],
            **extra,
        }
        self.agent.put(self.key(lane, "settings"), settings)
        self.lanes[lane] = settings
        return lane

    def _claim(self, name: str) -> None:
        """Refuse a second server under one name (the first would run on, never stopped)."""
        if name in self.servers:
            raise ValueError(f"this world runs a server named {name!r} already")

    def add_ftp_subscriber(
        self, lane: str, name: str, directory: str = ".", namespace=None, history: bool = False
    ) -> FtpSubscriber:
        """Start an FTP server (on loopback, or in namespace) and subscribe it to lane.

        With history, the server records every file it receives (``received()``).
        """
        self._claim(name)
        root = os.path.join(self.root, f"ftp-{name}")
        server = FtpSubscriber(root, self.root, password=uuid.uuid4().hex, namespace=namespace,
                               history=history)  # fmt: skip
        server.start()
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        self.servers[name] = server
        self.put_subscriber(
            lane,
            name,
            {
                "mode": "ftp",
                "host": server.host,
                "port": server.port,
                "user": server.user,
                "password": server.password,
                "directory": directory,
            },
        )
        self.destinations[f"{lane}:{name}"] = [os.path.join(root, directory)]
        return server

    def http_server(self, name: str) -> HttpSubscriber:
        """Start an HTTP (WebDAV) server for this test, subscribed to nothing yet."""
        self._claim(name)
        server = HttpSubscriber(os.path.join(self.root, f"http-{name}"), self.root).start()
        self.servers[name] = server
        return server

    def add_http_subscriber(self, lane: str, name: str, directory: str = ".") -> HttpSubscriber:
        server = self.http_server(name)
        root = server.root
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        self.put_subscriber(
            lane,
            name,
            {"mode": "http", "host": "127.0.0.1", "port": server.port, "directory": directory},
        )
        self.destinations[f"{lane}:{name}"] = [os.path.join(root, directory)]
        return server

    def add_service_instance(
        self, service: str, number: int, directory: str, ttl: str | None = None
    ) -> str:
        """Start an HTTP server, register it as an instance of service; return its folder.

        With ttl, the instance has a TTL health check (passing at first).
        """
        self._claim(f"{service}-{number}")
        root = os.path.join(self.root, f"{service}-{number}")
        server = HttpSubscriber(root, self.root).start()
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        instance_id = f"{service}-{number}"
        self.servers[instance_id] = server
        self.agent.register(service, instance_id, server.port, ttl=ttl)
        return os.path.join(root, directory)

    def drop_in(self, unit: str, name: str, text: str) -> None:
        """Add a test drop-in to unit (daemon-reload; the unit applies it when restarted)."""
        self.box.write(f"/etc/systemd/system/{unit}.d/{name}.conf", f"[Service]\n{text}\n")
        self.box.run("systemctl", "daemon-reload")
        self.drop_ins.append(f"/etc/systemd/system/{unit}.d/{name}.conf")

    def put_subscriber(self, lane: str, name: str, value: dict) -> None:
        self.agent.put(self.key(lane, f"subscribers/{name}"), value)

    def upload(self, lane: str, files: dict[str, bytes]) -> None:
        """Upload files by FTP as the lane's user; a name goes as its bytes (os.fsencode)."""
        settings = self.lanes[lane]
        ftp = ftplib.FTP(encoding="latin-1")
        ftp.connect("127.0.0.1", self.box.ftp_port, timeout=30)
        ftp.login(settings["user"], settings["password"])
        try:
            for name, data in files.items():
                wire = os.fsencode(name).decode("latin-1")
                ftp.storbinary(f"STOR {wire}", io.BytesIO(data))
        finally:
            ftp.quit()

    def wait_at(self, folders: list[str], files: dict[str, bytes], timeout: float = 60) -> None:
        for folder in folders:
            wait_until_held(folder, files, timeout, self.journal)

    def journal(self) -> str:
        return self.box.run(
            "journalctl", "--no-pager", "-n", "60", "-o", "short-monotonic", check=False
        ).stdout

    def unit(self, kind: str, name: str) -> str:
        return unit_name(kind, name)

    def wait_active(self, unit: str, timeout: float = 60) -> None:
        wait_for(
            lambda: self.box.is_active(unit) == "active",
            timeout,
            f"{unit} to be active\n{self.journal()}",
            interval=0.2,
        )

    def wait_gone(self, unit: str, timeout: float = 60) -> None:
        wait_for(
            lambda: self.box.is_active(unit) in ("inactive", "unknown"),
            timeout,
            f"{unit} to be stopped\n{self.journal()}",
            interval=0.2,
        )

    def close(self) -> None:
        for server in self.servers.values():
            server.stop()
        for path in self.drop_ins:
            with contextlib.suppress(OSError):
                os.unlink(self.box.path(path))
        if self.drop_ins:
            self.box.run("systemctl", "daemon-reload", check=False)
        if not self.agent.process or not self.agent.process.alive():
            return
        for lane in self.lanes:
            self.agent.delete(self.key(lane, ""), recurse=True)
        for service_id in list(self.agent.client().agent.services()):
            if service_id in self.servers:
                self.agent.deregister(service_id)
