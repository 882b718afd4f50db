"""Consul's load with several hosts: 3 hosts, 1,000 lanes, each host behind its own agent.

A Consul server and three client agents (real Consul processes, on loopback)
stand for three ftpdup hosts; each "host" is what ftpdup's watch does with
Consul, with ftpdup's own code: a blocking read of the whole tree and of
the cluster's members (consul_source.load), its registration with a tag per
lane it accepts (membership.Membership.register, lanes placed by
cluster.owners with replicas 2) and its published summary. Measures:

- the tree: keys and bytes for LANES lanes of 2 subscribers each;
- one full read (tree + members, validated) through a client agent, and
  the tree's bare read, medians of 7;
- a registration with its tags; the health API's answer for the service;
- pickup: a key changed once a second, CHANGES times; the time until each
  host's blocking read returns with it (what starts a manager pass);
- the server's CPU seconds and memory over those changes.

Run as root: ``.venv/bin/python bench/cluster.py [LANES]``; writes
``bench/results/cluster-LANES.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ftpdup import consul_source
from ftpdup.cluster import owners
from ftpdup.membership import Membership
from ftpdup.settings import Settings
from tests.harness.consul_agent import ConsulAgent, consul_binary
from tests.harness.procs import Process, free_port, free_port_run, wait_for

PREFIX = "ftpdup-bench-cluster"
HOSTS = 3
CHANGES = 30
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cluster-{}.json")


class ClientAgent:
    """A Consul client agent on loopback, joined to the server."""

    def __init__(self, workdir: str, name: str, join: str) -> None:
        self.http_port = free_port()
        serf = free_port_run(2)
        self.argv = [consul_binary(), "agent", "-data-dir", os.path.join(workdir, name),
                     "-node", name, "-bind", "127.0.0.1", "-client", "127.0.0.1",
                     "-http-port", str(self.http_port), "-dns-port", "-1", "-grpc-port", "-1",
                     "-serf-lan-port", str(serf), "-serf-wan-port", str(serf + 1),
                     "-server-port", str(free_port()), "-retry-join", join,
                     "-retry-interval", "1s"]  # fmt: skip
        self.log = os.path.join(workdir, f"consul-{name}.log")
        self.process: Process | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self) -> ClientAgent:
        self.process = Process(self.argv, self.log)
        client = consul_source.connect(self.url)
        wait_for(lambda: _has_leader(client), 60, "the client agent to join")
        return self


def _has_leader(client) -> bool:
    try:
        return bool(client.status.leader())
    except Exception:
        return False


def lane_values(count: int) -> dict[str, dict]:
    values = {}
    for number in range(count):
        lane = f"lane{number:04d}"
        values[f"{PREFIX}/incoming_directories/{lane}/settings"] = {
            "user": f"u{lane}", "password": uuid.uuid4().hex, "uid": 20000 + number,
            "replicas": 2}  # fmt: skip
        for sub in ("ftp", "web"):
            values[f"{PREFIX}/incoming_directories/{lane}/subscribers/{sub}"] = {
                "mode": (sub == "ftp" and "ftp") or "http", "host": f"{sub}.example",
                "user": "u", "password": uuid.uuid4().hex}  # fmt: skip
    return values


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    lanes = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    base = tempfile.mkdtemp(prefix="ftpdup-bench-cluster-")
    server = ConsulAgent(base, name="bench-server").start()
    agents = []
    try:
        join = f"127.0.0.1:{server.server_port + 1}"
        agents = [ClientAgent(base, f"host{n}", join).start() for n in range(1, HOSTS + 1)]
        values = lane_values(lanes)
        started = time.monotonic()
        server.put_many(values)
        write_s = time.monotonic() - started
        tree_bytes = sum(len(k) + len(json.dumps(v)) for k, v in values.items())
        hosts = [f"host{n}" for n in range(1, HOSTS + 1)]
        names = [f"lane{n:04d}" for n in range(lanes)]
        registrations = []
        for number, agent in enumerate(agents, 1):
            host = Settings(data_root=os.path.join(base, f"root{number}"),
                            cluster_service="ftpdup", cluster_host_id=f"host{number}",
                            vsftpd_listen_address=f"127.0.0.{number + 1}")  # fmt: skip
            mine = [lane for lane in names if host.host_id() in owners(lane, 2, (), hosts)]
            os.makedirs(os.path.join(host.data_root, "status"))
            with open(os.path.join(host.data_root, "status", "manager.json"), "w") as handle:
                json.dump({"cluster": {"accepting": mine}}, handle)
            client = consul_source.connect(agent.url)
            begun = time.monotonic()
            Membership(host, client).register()
            registrations.append({"host": host.host_id(), "tags": len(mine),
                                  "seconds": round(time.monotonic() - begun, 4)})  # fmt: skip
        client = consul_source.connect(agents[0].url)
        _, health = client.health.service("ftpdup")
        health_bytes = len(json.dumps(health))
        reads = []
        for _ in range(7):
            begun = time.monotonic()
            snapshot = consul_source.load(client, PREFIX, cluster_service="ftpdup")
            reads.append(time.monotonic() - begun)
        assert len(snapshot.config.lanes) == lanes and len(snapshot.members) == HOSTS
        raw = []
        for _ in range(7):
            begun = time.monotonic()
            client.kv.get(f"{PREFIX}/", recurse=True)
            raw.append(time.monotonic() - begun)
        pickup = measure_pickup(server, agents, snapshot.index)
        result = {
            "lanes": lanes, "hosts": HOSTS, "keys": len(values),
            "tree_bytes": tree_bytes, "write_s": round(write_s, 2),
            "full_read_s_median": round(statistics.median(reads), 4),
            "raw_tree_read_s_median": round(statistics.median(raw), 4),
            "registrations": registrations, "health_answer_bytes": health_bytes,
            **pickup,
        }  # fmt: skip
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS.format(lanes), "w") as handle:
            json.dump(result, handle, indent=1)
        print(json.dumps(result, indent=1))
    finally:
        for agent in agents:
            if agent.process is not None:
                agent.process.stop()
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def measure_pickup(server: ConsulAgent, agents: list[ClientAgent], index: int) -> dict:
    """Change a key once a second; return how long each host's blocking read took to see it,
    and the server's CPU and memory meanwhile."""
    seen: list[list[tuple[int, float]]] = [[] for _ in agents]
    stop = threading.Event()

    def watch(slot: int, agent: ClientAgent) -> None:
        client = consul_source.connect(agent.url)
        current = index
        while not stop.is_set():
            try:
                snapshot = consul_source.load(client, PREFIX, (), current, "5s", "ftpdup")
            except consul_source.ConsulError:
                return  # the agents stop at the end
            if snapshot.index > current:
                seen[slot].append((snapshot.index, time.monotonic()))
                current = snapshot.index

    threads = [threading.Thread(target=watch, args=(n, a), daemon=True)
               for n, a in enumerate(agents)]  # fmt: skip
    for thread in threads:
        thread.start()
    time.sleep(1)
    pid = server.process.pid
    cpu_before = cpu_seconds(pid)
    client = server.client()
    puts = []
    for change in range(CHANGES):
        begun = time.monotonic()
        client.kv.put(f"{PREFIX}/incoming_directories/lane0000/settings",
                      json.dumps({"user": "ulane0000", "password": "p" * 32, "uid": 20000,
                                  "replicas": 2, "lifetime": change + 1}))  # fmt: skip
        puts.append((client.kv.get(f"{PREFIX}/incoming_directories/lane0000/settings")[1]
                     ["ModifyIndex"], begun))  # fmt: skip
        time.sleep(1)
    time.sleep(6)
    stop.set()
    cpu = cpu_seconds(pid) - cpu_before
    latencies = []
    for modify, begun in puts:
        for host in seen:
            first = next((at for idx, at in host if idx >= modify), None)
            if first is not None:
                latencies.append(first - begun)
    latencies.sort()
    return {
        "changes": CHANGES, "pickups_seen": len(latencies),
        "pickup_ms_p50": round(1000 * statistics.median(latencies), 1),
        "pickup_ms_max": round(1000 * latencies[-1], 1),
        "server_cpu_s_per_change": round(cpu / CHANGES, 4),
        "server_rss_mib": round(rss_mib(pid), 1),
    }  # fmt: skip


if __name__ == "__main__":
    main()
