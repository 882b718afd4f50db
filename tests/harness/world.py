"""A test's own lanes and subscribers, in its own Consul prefix and data root."""

from __future__ import annotations

import io
import os
import uuid

from ftpdup.layout import Layout
from tests.harness.consul_agent import ConsulAgent
from tests.harness.delivery import wait_until_held
from tests.harness.ftp_server import FtpSubscriber, HttpSubscriber
from tests.harness.ingest import VsftpdIngest
from tests.harness.pipeline import Pipeline
from tests.harness.servers import NginxDav


class World:
    """Lanes, subscriber servers and ftpdup workers for one test; ``close`` removes them."""

    def __init__(self, agent: ConsulAgent, ingest: VsftpdIngest, base_dir: str) -> None:
        self.agent = agent
        self.ingest = ingest
        self.tag = uuid.uuid4().hex[:8]
        self.prefix = f"ftpdup-test-{self.tag}"
        self.root = os.path.join(base_dir, self.tag)
        self.layout = Layout(os.path.join(self.root, "data"))
        os.makedirs(self.layout.root, mode=0o755)
        self.lane_users: dict[str, str] = {}
        self.servers: list[FtpSubscriber | HttpSubscriber | NginxDav] = []
        self.destinations: dict[tuple[str, str], list[str]] = {}
        self.pipeline: Pipeline | None = None

    def key(self, lane: str, rest: str) -> str:
        return f"{self.prefix}/incoming_directories/{lane}/{rest}"

    def add_lane(self, lane: str, exclude=(), python_literal: bool = False) -> str:
        """Create the lane's FTP account and its settings key; return the user name."""
        password = uuid.uuid4().hex
        user, uid = self.ingest.add_lane_user(self.layout.incoming(lane), password)
        settings = {
            "user": user,
            "password": password,
            "uid": uid,
            "lifetime": 60,
            "exclude": list(exclude),
        }
        value = repr(settings) if python_literal else settings
        self.agent.put(self.key(lane, "settings"), value)
        self.lane_users[lane] = user
        return user

    def add_ftp_subscriber(
        self, lane: str, name: str, directory: str = ".", history: bool = False, **extra
    ):
        root = os.path.join(self.root, f"ftp-{lane}-{name}")
        server = FtpSubscriber(root, self.root, history=history).start()
        self.servers.append(server)
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        value = {
            "mode": "ftp",
            "host": "127.0.0.1",
            "port": server.port,
            "user": server.user,
            "passwd": server.password,
            "directory": directory,
            **extra,
        }
        self.agent.put(self.key(lane, f"subscribers/{name}"), value)
        self.destinations[(lane, name)] = [os.path.join(root, directory)]
        return server

    def add_http_subscriber(self, lane: str, name: str, directory: str = "."):
        root = os.path.join(self.root, f"http-{lane}-{name}")
        server = HttpSubscriber(root, self.root).start()
        self.servers.append(server)
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        value = {"mode": "http", "host": "127.0.0.1", "port": server.port, "directory": directory}
        self.agent.put(self.key(lane, f"subscribers/{name}"), value)
        self.destinations[(lane, name)] = [os.path.join(root, directory)]
        return server

    def add_nginx_subscriber(self, lane: str, name: str) -> NginxDav:
        """Start nginx (WebDAV; its access log counts every PUT) and subscribe it to lane."""
        server = NginxDav(os.path.join(self.root, f"nginx-{lane}-{name}"), self.root).start()
        self.servers.append(server)
        value = {"mode": "http", "host": "127.0.0.1", "port": server.port}
        self.agent.put(self.key(lane, f"subscribers/{name}"), value)
        self.destinations[(lane, name)] = [server.root]
        return server

    def add_service_instance(self, service: str, number: int, directory: str) -> str:
        """Start a WebDAV server, register it as an instance of service; return its folder."""
        root = os.path.join(self.root, f"{service}-{number}")
        server = HttpSubscriber(root, self.root).start()
        self.servers.append(server)
        os.makedirs(os.path.join(root, directory), exist_ok=True)
        self.agent.register(service, f"{service}-{number}", server.port)
        return os.path.join(root, directory)

    def add_service_subscriber(self, lane: str, name: str, instances: int, directory: str):
        service = f"svc-{self.tag}-{name}"
        roots = []
        for number in range(instances):
            root = os.path.join(self.root, f"svc-{lane}-{name}-{number}")
            server = HttpSubscriber(root, self.root).start()
            self.servers.append(server)
            os.makedirs(os.path.join(root, directory), exist_ok=True)
            self.agent.register(service, f"{service}-{number}", server.port)
            roots.append(os.path.join(root, directory))
        value = {"mode": "http", "service_consul": service, "directory": directory}
        self.agent.put(self.key(lane, f"subscribers/{name}"), repr(value))
        self.destinations[(lane, name)] = roots
        return service

    def start(self, **settings) -> Pipeline:
        settings.setdefault("retry_max_delay", 2.0)
        self.pipeline = Pipeline(
            self.agent.url, self.prefix, self.layout.root, self.root, **settings
        ).start()
        return self.pipeline

    def upload(self, lane: str, files: dict[str, bytes]) -> None:
        """Upload files into the lane by FTP, as the lane's user, over one session."""
        ftp = self.ingest.login(self.lane_users[lane])
        try:
            for name, data in files.items():
                ftp.storbinary(f"STOR {name}", io.BytesIO(data))
        finally:
            ftp.quit()

    def wait_delivered(self, lane: str, files: dict[str, bytes], timeout: float = 60.0):
        """Wait until every subscriber destination of lane holds files byte for byte."""
        for (dest_lane, _), roots in self.destinations.items():
            if dest_lane == lane:
                for root in roots:
                    wait_until_held(root, files, timeout, self._logs)

    def queued_files(self) -> list[str]:
        """Return every file left in incoming, staging and the queues (pending, later, spool)."""
        left = []
        for kind in ("incoming", "staging", "pending", "later", "spool"):
            for folder, _, names in os.walk(os.path.join(self.layout.root, kind)):
                left.extend(os.path.join(folder, name) for name in names)
        return left

    def _logs(self) -> str:
        return self.pipeline.logs() if self.pipeline else ""

    def close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
        for server in self.servers:
            server.stop()
        for service_id in list(self.agent.client().agent.services()):
            if self.tag in service_id:
                self.agent.deregister(service_id)
        self.agent.delete(self.prefix, recurse=True)
