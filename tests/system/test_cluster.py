"""Several hosts behind one Consul: placement, a crash, a drain, an outage, a host added.

Three booted containers on a bridge (tests.harness.cluster), each with its
own address, vsftpd, ftpdup and Consul client agent, joined to a Consul
server on the host; the subscriber is an FTP server on another machine of
the bridge (a network namespace). Files are counted one by one: each upload
that got its 226 must reach the subscriber, whole.
"""

from __future__ import annotations

import ftplib
import itertools
import json
import os
import threading
import time

import pytest

from ftpdup.cluster import owners
from tests.harness.cluster import Cluster
from tests.harness.consul_agent import REPOSITORY
from tests.harness.ftp_server import FtpSubscriber
from tests.harness.procs import free_port, wait_for

pytestmark = pytest.mark.system

ANSIBLE = os.path.join(REPOSITORY, "ansible")
STAND_IN = os.path.join(REPOSITORY, "tests", "harness", "roles")

SPOOLS = "/var/lib/ftpdup/incoming /var/lib/ftpdup/staging /var/lib/ftpdup/pending " \
         "/var/lib/ftpdup/later /var/lib/ftpdup/spool"  # fmt: skip


@pytest.fixture(scope="module")
def cluster(base_dir):
    found = Cluster(os.path.join(base_dir, "cluster"))
    os.makedirs(found.workdir, exist_ok=True)
    try:
        yield found.start(3)
    finally:
        found.close()


@pytest.fixture(scope="module")
def subscriber(cluster, base_dir):
    """An FTP server on another machine of the bridge."""
    server = FtpSubscriber(os.path.join(base_dir, "cluster-sub"), base_dir,
                           namespace=cluster.neighbour)  # fmt: skip
    yield server.start()
    server.stop()


def value_of(server: FtpSubscriber) -> dict:
    return {"mode": "ftp", "host": server.host, "port": server.port, "user": server.user,
            "password": server.password, "directory": "."}  # fmt: skip


def ids(cluster: Cluster, numbers=None) -> list[str]:
    return sorted(cluster.hosts[n].host_id for n in (numbers or cluster.hosts))


def number(host_id: str) -> int:
    return int(host_id.removeprefix("node"))


def settle(cluster: Cluster, lanes: list[str], replicas: int, up=None,
           timeout: float = 120) -> dict:  # fmt: skip
    """Wait until the hosts up (numbers; default all) are the passing ones and each lane is
    on those rendezvous hashing gives it among them, by the health API; return lane -> those
    host IDs."""
    everyone = ids(cluster, up)
    wait_for(lambda: cluster.passing() == everyone, timeout, f"{everyone} passing")
    wanted = {lane: owners(lane, replicas, (), everyone) for lane in lanes}
    wait_for(lambda: all(cluster.passing(lane) == wanted[lane] for lane in lanes), timeout,
             f"lanes on {wanted}")  # fmt: skip
    return wanted


def refusing(cluster: Cluster, host_id: str, lane: str) -> None:
    """Wait until host_id refuses lane's login (a lane that leaves is refused after a grace)."""
    wait_for(lambda: not cluster.accepts(number(host_id), lane), 60, f"{host_id} to refuse {lane}")


def in_dns(cluster: Cluster, lane: str) -> list[str]:
    """Return the addresses Consul's DNS gives for lane."""
    return cluster.dns(f"lane-{lane}.ftpdup.service.consul")


def received_bytes(server: FtpSubscriber, names) -> dict[str, bytes]:
    found = {}
    for name in names:
        path = os.path.join(server.root, name)
        if os.path.exists(path):
            with open(path, "rb") as handle:
                found[name] = handle.read()
    return found


def wait_delivered(server: FtpSubscriber, files: dict[str, bytes], timeout: float = 180) -> None:
    """Wait until every file is at the subscriber with its bytes."""
    wait_for(lambda: received_bytes(server, files) == files, timeout,
             f"{len(files)} files at the subscriber")  # fmt: skip


def held(cluster: Cluster, host: int) -> list[str]:
    """Return the files host holds in its lanes and queues."""
    out = cluster.hosts[host].box.run("sh", "-c", f"find {SPOOLS} -type f 2>/dev/null",
                                      check=False).stdout  # fmt: skip
    return out.split()


def status_all(cluster: Cluster, host: int) -> tuple[int, dict]:
    result = cluster.hosts[host].box.run("ftpdup", "status", "--all-hosts", "--json", check=False)
    return result.returncode, json.loads(result.stdout)


class Uploader(threading.Thread):
    """Uploads files of size bytes into lanes, one after another, each to a host Consul's
    DNS gives at that moment; records every outcome and every empty DNS answer."""

    def __init__(self, cluster: Cluster, lanes: list[str], tag: str, size: int) -> None:
        super().__init__(daemon=True)
        self.cluster, self.lanes, self.tag, self.size = cluster, lanes, tag, size
        self.done: dict[str, bytes] = {}
        self.failed: list[str] = []
        self.empty_dns: list[str] = []
        self.hosts: dict[str, int] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        for count in itertools.count():
            if self.stopping.is_set():
                return
            lane = self.lanes[count % len(self.lanes)]
            name = f"{self.tag}-{count:05d}.bin"
            data = os.urandom(self.size)
            try:
                self.hosts[name] = self.cluster.upload_anywhere(lane, {name: data})
                self.done[name] = data
            except LookupError:
                self.empty_dns.append(lane)
            except (OSError, EOFError, ftplib.Error) as error:
                self.failed.append(f"{name} ({lane}): {error!r}")

    def stop(self) -> None:
        self.stopping.set()
        self.join(120)


def test_with_two_replicas_each_lane_is_on_exactly_two_hosts_and_refused_by_the_others(
    cluster, subscriber
):
    lanes = [cluster.add_lane(f"two{i}", {"sub": value_of(subscriber)}, replicas=2)
             for i in range(5)]  # fmt: skip
    placed = settle(cluster, lanes, 2)
    files = {}
    for lane in lanes:
        addresses = in_dns(cluster, lane)
        assert addresses == sorted(cluster.hosts[number(h)].address for h in placed[lane])
        for host_id in ids(cluster):
            if host_id in placed[lane]:
                assert cluster.accepts(number(host_id), lane), host_id
            else:  # it took the lane while alone, then let go of it (after a grace)
                refusing(cluster, host_id, lane)
        for host_id in placed[lane]:
            name = f"{lane}-{host_id}.bin"
            files[name] = os.urandom(50_000)
            cluster.upload(number(host_id), lane, {name: files[name]})
    wait_delivered(subscriber, files)
    # Every host reads every lane: each refuses a bad one, naming the key.
    bad = cluster.add_lane("bad", {"sub": value_of(subscriber)}, replicas="two")
    for host in cluster.hosts.values():
        wait_for(lambda h=host: bad in h.box.run("ftpdup", "status", check=False).stdout, 90,
                 "the refusal")  # fmt: skip
        shown = host.box.run("ftpdup", "status", check=False).stdout
        line = next(line for line in shown.splitlines() if bad in line)
        assert "replicas" in line and "refused" in line, shown
    cluster.remove_lane(bad)


def test_status_of_all_hosts_shows_a_subscriber_down_behind_one_host(cluster, subscriber):
    down = {"mode": "ftp", "host": cluster.neighbour.address, "port": free_port(),
            "user": "x", "password": "secret-of-the-down-one", "directory": "."}  # fmt: skip
    lane = cluster.add_lane("pin", {"down": down}, hosts=["node1"])
    wait_for(lambda: cluster.passing(lane) == ["node1"], 90, "the pinned lane on node1")
    assert not cluster.accepts(2, lane) and not cluster.accepts(3, lane)
    cluster.upload(1, lane, {"waiting.bin": b"w" * 1000})

    def row_of_node1():
        code, found = status_all(cluster, 2)
        for entry in found["hosts"]:
            for row in entry["rows"]:
                if entry["host_id"] == "node1" and row.get("subscriber") == "down" \
                        and row.get("lane") == lane and row.get("backlog_files") == 1:  # fmt: skip
                    return code, entry, row
        return None

    code, entry, row = wait_for(row_of_node1, 90, "node1's row in node2's view")
    assert {e["host_id"] for e in status_all(cluster, 3)[1]["hosts"]} == {"node1", "node2",
                                                                          "node3"}  # fmt: skip
    assert row["level"] in ("warning", "critical") and code != 0
    assert not entry["stale"]
    table = cluster.hosts[3].box.run("ftpdup", "status", "--all-hosts", check=False).stdout
    assert any(line.startswith("node1") and f"{lane}:down" in line for line in table.splitlines())
    kv = cluster.api("/v1/kv/ftpdup-cluster/hosts/?recurse")
    assert "secret-of-the-down-one" not in json.dumps(kv)
    assert all(cluster.lanes[lane]["password"] not in json.dumps(kv) for lane in cluster.lanes)
    cluster.remove_subscriber(lane, "down")


def lanes_owned_by(cluster: Cluster, host_id: str, count: int, tag: str, subscriber) -> list[str]:
    """Add count lanes (replicas 2) that are host_id's among all hosts."""
    names = (cluster.lane_name(tag) for _ in itertools.count())
    mine = itertools.islice((n for n in names if host_id in owners(n, 2, (), ids(cluster))), count)
    return [cluster.add_lane(tag, {"sub": value_of(subscriber)}, name=n, replicas=2) for n in mine]


def test_a_killed_host_leaves_dns_and_delivers_what_it_took_once_back(cluster, subscriber):
    lanes = lanes_owned_by(cluster, "node3", 2, "crash", subscriber)
    settle(cluster, lanes, 2)
    subscriber.stop()  # what node3 takes stays on node3
    taken = {}
    for lane in lanes:
        for i in range(5):
            name = f"{lane}-before-{i}.bin"
            taken[name] = os.urandom(200_000)
            cluster.upload(3, lane, {name: taken[name]})
    cluster.kill(3)
    gone = cluster.hosts[3].address
    for lane in lanes:
        wait_for(lambda lane=lane: gone not in in_dns(cluster, lane), 20, "node3 out of DNS")
    # The others take its lanes; uploads go on there.
    settle(cluster, lanes, 2, up=[1, 2])
    meanwhile = Uploader(cluster, lanes, "meanwhile", 20_000)
    meanwhile.start()

    # node3's summary gets stale: the view of all hosts calls it critical.
    def stale():
        code, found = status_all(cluster, 1)
        node3 = [e for e in found["hosts"] if e["host_id"] == "node3"]
        return code == 2 and node3 and node3[0]["stale"] and node3[0]["level"] == "critical"

    wait_for(stale, 150, "node3's summary stale", interval=5)
    meanwhile.stop()
    assert not meanwhile.failed and not meanwhile.empty_dns
    assert len(meanwhile.done) > 10 and 3 not in meanwhile.hosts.values()
    subscriber.start()
    wait_delivered(subscriber, meanwhile.done)
    assert not received_bytes(subscriber, taken)  # still on node3, which is down
    cluster.boot(3)
    wait_delivered(subscriber, taken)
    settle(cluster, lanes, 2)
    wait_for(lambda: not held(cluster, 3), 60, "node3 empty")


def test_a_host_cut_off_leaves_dns_and_delivers_what_it_took_once_joined_again(cluster, subscriber):
    lanes = lanes_owned_by(cluster, "node2", 2, "cut", subscriber)
    settle(cluster, lanes, 2)
    taken = {}
    for lane in lanes:
        for i in range(20):
            name = f"{lane}-taken-{i}.bin"
            taken[name] = os.urandom(100_000)
        cluster.upload(2, lane, {name: taken[name] for name in taken if name.startswith(lane)})
    cluster.cut(2)
    try:
        gone = cluster.hosts[2].address
        for lane in lanes:
            wait_for(lambda lane=lane: gone not in in_dns(cluster, lane), 30, "node2 out of DNS")
        meanwhile = Uploader(cluster, lanes, "cut-off", 20_000)
        meanwhile.start()
        time.sleep(30)
        meanwhile.stop()
    finally:
        cluster.cut(2, cut=False)
    assert not meanwhile.failed and not meanwhile.empty_dns and len(meanwhile.done) > 10
    wait_delivered(subscriber, {**taken, **meanwhile.done})
    settle(cluster, lanes, 2)
    wait_for(lambda: not held(cluster, 2), 60, "node2 empty")


def test_a_drain_during_a_stream_of_uploads_cuts_none_and_ends_empty(cluster, subscriber):
    lanes = lanes_owned_by(cluster, "node1", 3, "drain", subscriber)
    settle(cluster, lanes, 2)
    stream = Uploader(cluster, lanes, "stream", 2_000_000)
    stream.start()
    wait_for(lambda: len(stream.done) >= 6, 60, "the stream to flow")
    node1 = cluster.hosts[1].box
    print(node1.run("ftpdup", "drain").stdout)
    gone = cluster.hosts[1].address
    wait_for(lambda: gone not in in_dns(cluster, lanes[0]), 10, "node1 out of DNS")
    wait_for(lambda: "drained since" in node1.run("ftpdup", "status", check=False).stdout, 180,
             "node1 drained")  # fmt: skip
    stream.stop()
    assert not stream.failed and not stream.empty_dns
    assert 1 in stream.hosts.values()  # it was taking uploads when the drain came
    assert not held(cluster, 1)
    for lane in lanes:
        assert not cluster.accepts(1, lane)
    wait_delivered(subscriber, stream.done)
    node1.run("ftpdup", "undrain")
    settle(cluster, lanes, 2)
    assert all("node1" in cluster.passing(lane) for lane in lanes)


def test_the_rolling_upgrade_playbook_drains_upgrades_and_takes_a_host_back(cluster, subscriber):
    lanes = lanes_owned_by(cluster, "node1", 2, "roll", subscriber)
    settle(cluster, lanes, 2)
    stream = Uploader(cluster, lanes, "roll", 500_000)
    stream.start()
    wait_for(lambda: len(stream.done) >= 4, 60, "the stream to flow")
    box = cluster.hosts[1].box
    box.copy_in(ANSIBLE, "/opt/ftpdup/ansible")
    box.copy_in(STAND_IN, "/opt/ftpdup/test-roles")
    box.write("/opt/ftpdup/inventory-test.ini", "[ftpdup]\nlocalhost ansible_connection=local\n")
    played = box.run(
        "env", "ANSIBLE_ROLES_PATH=/opt/ftpdup/test-roles", "ANSIBLE_NOCOLOR=1",
        "ansible-playbook", "-i", "/opt/ftpdup/inventory-test.ini",
        "-e", "ftpdup_upgrade_role=upgrade_stand_in", "-e", "ftpdup_drain_timeout=240",
        "/opt/ftpdup/ansible/rolling-upgrade.yml", check=False, timeout=600,
    )  # fmt: skip
    assert played.returncode == 0, played.stdout[-4000:]
    assert "failed=0" in played.stdout and box.run("test", "-s", "/var/lib/ftpdup-upgraded")
    stream.stop()
    assert not stream.failed and not stream.empty_dns
    wait_delivered(subscriber, stream.done)
    settle(cluster, lanes, 2)
    assert all("node1" in cluster.passing(lane) for lane in lanes)


def test_a_consul_server_outage_stops_no_ingest_and_no_delivery(cluster, subscriber):
    lanes = [cluster.add_lane(f"out{i}", {"sub": value_of(subscriber)}, replicas=2)
             for i in range(2)]  # fmt: skip
    placed = settle(cluster, lanes, 2)
    cluster.server.stop()
    files = {}
    started = time.monotonic()
    count = 0
    while time.monotonic() - started < 60:
        for lane in lanes:
            for host_id in placed[lane]:
                name = f"outage-{count:04d}.bin"
                files[name] = os.urandom(30_000)
                cluster.upload(number(host_id), lane, {name: files[name]})
                count += 1
        time.sleep(2)
    wait_delivered(subscriber, files, timeout=60)
    cluster.server.start()
    settle(cluster, lanes, 2)
    for lane in lanes:
        assert cluster.passing(lane) == placed[lane]


def test_a_host_added_takes_only_its_lanes_add_before_remove(cluster, subscriber):
    after_hosts = [*ids(cluster), "node4"]

    def moves(lane: str) -> bool:
        return owners(lane, 2, (), ids(cluster)) != owners(lane, 2, (), after_hosts)

    names = [cluster.lane_name("add") for _ in range(100)]
    chosen = [n for n in names if moves(n)][:4] + [n for n in names if not moves(n)][:4]
    lanes = [cluster.add_lane("add", {"sub": value_of(subscriber)}, name=n, replicas=2)
             for n in chosen]  # fmt: skip
    before = settle(cluster, lanes, 2)
    after = {lane: owners(lane, 2, (), after_hosts) for lane in lanes}
    moving = [lane for lane in lanes if before[lane] != after[lane]]
    assert len(moving) == 4
    samples: dict[str, list[list[str]]] = {lane: [] for lane in lanes}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            for lane in lanes:
                samples[lane].append(cluster.passing(lane))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stream = Uploader(cluster, lanes, "grow", 10_000)
    stream.start()
    cluster.add_host(4)
    settle(cluster, lanes, 2, timeout=180)
    stop.set()
    watcher.join(30)
    stream.stop()
    assert not stream.failed and not stream.empty_dns
    for lane in lanes:
        seen = [sample for sample in samples[lane] if sample]
        assert len(seen) == len(samples[lane]), f"{lane} was on no host for a moment"
        if lane in moving:
            # add before remove: never fewer than 2 hosts, only old and new owners
            assert all(len(s) >= 2 and set(s) <= set(before[lane]) | set(after[lane])
                       for s in seen), (lane, seen)  # fmt: skip
        else:
            assert all(s == before[lane] for s in seen), (lane, seen)
    wait_delivered(subscriber, stream.done)
    for lane in moving:
        for host_id in set(before[lane]) - set(after[lane]):
            refusing(cluster, host_id, lane)
