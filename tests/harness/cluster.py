"""Several ftpdup hosts behind one Consul, on one machine, as in production.

A bridge (10.203.0.1/24 on the host), a Consul server on it (with DNS), and
booted containers on it, each with its own address (10.203.0.1N), its own
root filesystem kept across boots (an overlay of the cached one), its own
Consul client agent joined to the server (ftpdup talks to it at
127.0.0.1:8500), its own vsftpd, and ftpdup installed from this checkout
with ``cluster_service = ftpdup``. Subscribers listen on the host's bridge
address: another host, as the containers see it.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import urllib.request
import uuid

from tests.harness.consul_agent import REPOSITORY, ConsulAgent, consul_binary
from tests.harness.container import Container, rootfs
from tests.harness.installed import raise_inotify_instances
from tests.harness.procs import Process, wait_for

BRIDGE = "br-ftpdup"
NETWORK = "10.203.0"
GATEWAY = f"{NETWORK}.1"
PREFIX = "ftpdup-cluster-test"

SETTINGS = """\
[ftpdup]
consul_url = http://127.0.0.1:8500
key_prefix = {prefix}
cluster_service = ftpdup
cluster_host_id = {host_id}
cluster_address = {address}
cluster_drain_grace = 5
retry_max_delay = 2
restart_variance = 1
stop_timeout = 20

[vsftpd]
listen_address = {address}
listen_port = 21
pasv_min_port = 21100
pasv_max_port = 21110
"""

UNITS = {
    "cluster-net.service": """\
[Unit]
Description=the test network's address
Before=network.target consul-client.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/ip link set host0 up
ExecStart=/usr/sbin/ip addr replace {address}/24 dev host0
[Install]
WantedBy=multi-user.target
""",
    "consul-client.service": """\
[Unit]
Description=Consul client agent of the test cluster
After=cluster-net.service
Before=ftpdup.target
[Service]
StateDirectory=consul
ExecStart=/usr/local/bin/consul agent -data-dir /var/lib/consul -node {host_id} \
-bind {address} -client 127.0.0.1 -retry-join {join} -retry-interval 1s
Restart=always
RestartSec=1s
[Install]
WantedBy=multi-user.target
""",
}


class Host:
    """One ftpdup host of the cluster: its container, its address, its ID."""

    def __init__(self, cluster: Cluster, number: int) -> None:
        self.number = number
        self.host_id = f"node{number}"
        self.address = f"{NETWORK}.1{number}"
        self.folder = os.path.join(cluster.workdir, f"host-{number}")
        self.merged = os.path.join(self.folder, "root")
        self.box = Container(cluster.workdir, f"ftpdup-{self.host_id}", self.merged, BRIDGE)

    def mount(self) -> None:
        """Mount its root filesystem: the cached one below, its own changes above."""
        for name in ("upper", "work", "root"):
            os.makedirs(os.path.join(self.folder, name), exist_ok=True)
        if not os.path.ismount(self.merged):
            options = (f"lowerdir={rootfs()},upperdir={self.folder}/upper,"
                       f"workdir={self.folder}/work")  # fmt: skip
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, self.merged],
                           check=True)  # fmt: skip

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", self.merged], check=False, capture_output=True)


class Neighbour:
    """Another machine on the bridge (a network namespace, 10.203.0.N), for subscribers.

    Has what FtpSubscriber needs of a namespace: ``address`` and ``start``.
    """

    def __init__(self, number: int) -> None:
        self.name = f"ftpdup-cn{number}"
        self.outside = f"vcn{number}o"
        self.address = f"{NETWORK}.{number}"
        self.processes: list[Process] = []

    def create(self) -> Neighbour:
        self.delete()
        inside = ["ip", "-n", self.name]
        for argv in (["ip", "netns", "add", self.name],
                     ["ip", "link", "add", self.outside, "type", "veth", "peer", "name", "eth0",
                      "netns", self.name],
                     ["ip", "link", "set", self.outside, "master", BRIDGE, "up"],
                     [*inside, "addr", "add", f"{self.address}/24", "dev", "eth0"],
                     [*inside, "link", "set", "eth0", "up"],
                     [*inside, "link", "set", "lo", "up"]):  # fmt: skip
            subprocess.run(argv, check=True, capture_output=True)
        return self

    def start(self, argv: list[str], log_path: str) -> Process:
        process = Process(["ip", "netns", "exec", self.name, *argv], log_path)
        self.processes.append(process)
        return process

    def delete(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True)


class Cluster:
    """The bridge, the Consul server and the hosts; ``close`` takes them all down."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.server: ConsulAgent | None = None
        self.hosts: dict[int, Host] = {}
        self.lanes: dict[str, dict] = {}
        self.neighbour = Neighbour(2)

    def start(self, count: int) -> Cluster:
        _bridge_up()
        self.neighbour.create()
        self.server = ConsulAgent(self.workdir, name="cluster-server", address=GATEWAY, dns=True,
                                  data_dir=os.path.join(self.workdir, "consul-server"))  # fmt: skip
        self.server.start()
        self.server.put(f"{PREFIX}/incoming_directories/", None)
        for number in range(1, count + 1):
            self.add_host(number)
        return self

    def add_host(self, number: int) -> Host:
        """Make, boot and install host number; return it once its Consul agent has joined."""
        raise_inotify_instances(8192)
        host = Host(self, number)
        self.hosts[number] = host
        host.mount()
        shutil.copy(consul_binary(), os.path.join(host.merged, "usr/local/bin/consul"))
        join = f"{GATEWAY}:{self.server.server_port + 1}"
        for name, text in UNITS.items():
            path = os.path.join(host.merged, "etc/systemd/system", name)
            with open(path, "w") as handle:
                handle.write(text.format(address=host.address, host_id=host.host_id, join=join))
            wants = os.path.join(host.merged, "etc/systemd/system/multi-user.target.wants")
            os.makedirs(wants, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.symlink(f"/etc/systemd/system/{name}", os.path.join(wants, name))
        self.boot(number)
        box = host.box
        box.copy_in(REPOSITORY, "/opt/ftpdup/src")
        box.run("/opt/ftpdup/src/scripts/install-from-checkout")
        box.write("/etc/ftpdup/ftpdup.conf", SETTINGS.format(
            prefix=PREFIX, host_id=host.host_id, address=host.address))  # fmt: skip
        box.run("systemctl", "enable", "--now", "ftpdup.target")
        wait_for(lambda: host.host_id in self.registered(), 90, f"{host.host_id} registered")
        return host

    def boot(self, number: int) -> None:
        """Boot host number (again) and wait for its Consul agent."""
        host = self.hosts[number]
        host.box.boot()
        wait_for(lambda: host.host_id in self.members(), 60, f"{host.host_id} in Consul")

    def kill(self, number: int) -> None:
        """Crash host number: its container's init is killed, nothing in it shuts down."""
        self.hosts[number].box.kill()

    def cut(self, number: int, cut: bool = True) -> None:
        """Cut host number off the network (its veth on the bridge down), or join it again."""
        link = f"vb-{self.hosts[number].box.name}"[:15]
        subprocess.run(["ip", "link", "set", link, "down" if cut else "up"], check=True,
                       capture_output=True)  # fmt: skip

    # What Consul says ----------------------------------------------------------------

    def api(self, path: str):
        with urllib.request.urlopen(f"{self.server.url}{path}", timeout=10) as answer:
            return json.loads(answer.read())

    def members(self) -> set[str]:
        """Return the nodes Consul has alive."""
        return {member["Name"] for member in self.api("/v1/agent/members") if member["Status"] == 1}

    def registered(self) -> set[str]:
        """Return the hosts registered as the service ftpdup."""
        return {entry["ServiceMeta"].get("host_id", "") for entry in
                self.api("/v1/catalog/service/ftpdup")}  # fmt: skip

    def passing(self, lane: str = "") -> list[str]:
        """Return the passing hosts (that accept lane, if given), by the health API."""
        query = "?passing" + (f"&tag=lane-{lane}" if lane else "")
        found = self.api(f"/v1/health/service/ftpdup{query}")
        return sorted(entry["Service"]["Meta"]["host_id"] for entry in found)

    def dns(self, name: str) -> list[str]:
        """Return the addresses Consul's DNS gives for name (e.g. lane-x.ftpdup.service.consul)."""
        return sorted(_dns_query(GATEWAY, self.server.dns_port, name))

    # Lanes and files -----------------------------------------------------------------

    @staticmethod
    def lane_name(short: str) -> str:
        """Return a new lane name starting with short."""
        return f"{short}-{uuid.uuid4().hex[:4]}"

    def add_lane(self, short: str, subscribers: dict[str, dict], name: str = "",
                 **extra) -> str:  # fmt: skip
        """Put a lane (named name, or short and a random end) with subscribers (name ->
        value) and extra settings into Consul in one transaction; return its name."""
        lane = name or self.lane_name(short)
        settings = {"user": f"c{lane}".replace("-", "")[:32], "password": uuid.uuid4().hex,
                    "uid": random.randrange(30000, 60000), "exclude": ["*.t"], **extra}  # fmt: skip
        values = {f"{PREFIX}/incoming_directories/{lane}/settings": settings}
        for subscriber, value in subscribers.items():
            values[f"{PREFIX}/incoming_directories/{lane}/subscribers/{subscriber}"] = value
        self.server.put_many(values)
        self.lanes[lane] = settings
        return lane

    def remove_lane(self, lane: str) -> None:
        self.server.client().kv.delete(f"{PREFIX}/incoming_directories/{lane}", recurse=True)

    def remove_subscriber(self, lane: str, subscriber: str) -> None:
        self.server.client().kv.delete(f"{PREFIX}/incoming_directories/{lane}/subscribers/"
                                       f"{subscriber}")  # fmt: skip

    def upload(self, number: int, lane: str, files: dict[str, bytes]) -> None:
        """Upload files into lane on host number. Raise ftplib.error_perm if it refuses."""
        settings = self.lanes[lane]
        ftp = ftplib.FTP()
        ftp.connect(self.hosts[number].address, 21, timeout=30)
        try:
            ftp.login(settings["user"], settings["password"])
            for name, data in files.items():
                ftp.storbinary(f"STOR {name}", io.BytesIO(data))
        finally:
            with contextlib.suppress(OSError, EOFError, ftplib.Error):
                ftp.quit()

    def upload_anywhere(self, lane: str, files: dict[str, bytes]) -> int:
        """Upload files into lane on a host Consul's DNS gives for it, as an uploader would;
        return that host's number. Raise LookupError if DNS gives none."""
        addresses = self.dns(f"lane-{lane}.ftpdup.service.consul")
        if not addresses:
            raise LookupError(f"no host in DNS for lane {lane}")
        number = self.number_of(random.choice(addresses))
        self.upload(number, lane, files)
        return number

    def number_of(self, address: str) -> int:
        return next(number for number, host in self.hosts.items() if host.address == address)

    def accepts(self, number: int, lane: str) -> bool:
        """Return True if host number takes a login of lane's account."""
        settings = self.lanes[lane]
        ftp = ftplib.FTP()
        try:
            ftp.connect(self.hosts[number].address, 21, timeout=10)
            ftp.login(settings["user"], settings["password"])
            ftp.quit()
            return True
        except ftplib.error_perm:
            return False
        finally:
            ftp.close()

    def close(self) -> None:
        for host in self.hosts.values():
            host.box.stop()
            host.unmount()
        self.neighbour.delete()
        if self.server is not None:
            self.server.stop()
        _bridge_down()


def _bridge_up() -> None:
    _bridge_down()
    for argv in (["ip", "link", "add", BRIDGE, "type", "bridge"],
                 ["ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE],
                 ["ip", "link", "set", BRIDGE, "up"]):  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True)


def _bridge_down() -> None:
    subprocess.run(["ip", "link", "del", BRIDGE], check=False, capture_output=True)


def _dns_query(server: str, port: int, name: str) -> list[str]:
    """Return the A records a DNS server gives for name (one UDP query, no library)."""
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + b"\0\1\0\1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(packet, (server, port))
        answer = sock.recv(4096)
    count = struct.unpack("!H", answer[6:8])[0]
    offset = 12 + len(question) + 4
    found = []
    for _ in range(count):
        if answer[offset] & 0xC0 == 0xC0:  # a pointer to the name
            offset += 2
        else:
            while answer[offset]:
                offset += answer[offset] + 1
            offset += 1
        kind, _, _, length = struct.unpack("!HHIH", answer[offset : offset + 10])
        offset += 10
        if kind == 1 and length == 4:
            found.append(socket.inet_ntoa(answer[offset : offset + 4]))
        offset += length
    return found
