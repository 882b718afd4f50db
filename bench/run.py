"""Every benchmark figure beside its ceiling, measured in the same run against the same servers.

Subscribers are real servers: vsftpd for FTP, nginx (WebDAV) for HTTP, with
their files on a tmpfs of their own (a subscriber is another machine: its
writes must not share the journal of ftpdup's filesystem); the lanes' ingest
is vsftpd with ftpdup's configuration, on the disk like ftpdup's data; ftpdup's
workers run as processes. Arrivals at a subscriber are seen with inotify (the server's final
rename), not by polling.

- P1 small files (4 KiB): one carrier alone, FTP and HTTP, beside a bare
  ftplib loop over one session (STOR tmp + rename) and a bare
  requests.Session PUT loop; one login per file (ftp-duplicator's way) as a
  baseline; the carrier with ``connections: 4``; a whole lane to 2 FTP + 1
  HTTP subscribers.
- P2 latency from the upload's close to the file at the subscriber, at a
  steady 100 files/s, alone and while another lane moves a 1 GiB file.
- P3 one big file over FTP and over HTTP beside ``curl -T``; the carrier's
  peak RSS.
- P4 scale under the real systemd (bench/scale.py).
- P5 the sprinkler's fan-out to 4 spools beside a bare rename/link loop, with
  each file's data written out before it leaves the lane (as ftpdup does) and
  without; P2 beside 1 GiB also without.

Run as root: ``.venv/bin/python bench/run.py [--tiny] [--docs]``. Prints one
table, writes bench/results/bench.json; --docs also rewrites
docs/benchmarks.md with the table and the machine it ran on.
"""

from __future__ import annotations

import argparse
import ftplib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import requests
import scale

from ftpdup.moves import write_out
from ftpdup.specs import CarrierSpec, Output, SprinklerSpec, Target
from ftpdup.watcher import DirectoryWatcher
from tests.harness.delayline import DelayedNamespace
from tests.harness.ingest import VsftpdIngest
from tests.harness.pipeline import start_worker
from tests.harness.procs import Process
from tests.harness.servers import NginxDav, VsftpdSubscriber

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = {"small": 5000, "size": 4096, "rounds": 7, "latency_seconds": 20, "rate": 100,
        "big": 1 << 30, "fanout": 5000, "scale": (100, 4, 60), "wan_files": 400}  # fmt: skip
TINY = {"small": 60, "size": 4096, "rounds": 1, "latency_seconds": 2, "rate": 100,
        "big": 8 << 20, "fanout": 100, "scale": (3, 2, 3), "wan_files": 10}  # fmt: skip
# Where bench/peers.py's section of docs/benchmarks.md begins.
PEERS_MARK = "\n## Beside sr3 and rclone\n"
# The round trip of the WAN measure (a delayed link to a namespace).
WAN_DELAY_MS = 10


class Arrivals(threading.Thread):
    """Record when each name arrives (is closed or renamed into) a folder, with inotify."""

    def __init__(self, folder: str) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.watcher = DirectoryWatcher(folder)
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            names, _ = self.watcher.wait(0.2)
            now = time.monotonic()
            for name in names:
                self.seen.setdefault(name, now)

    def wait(self, names, timeout: float) -> float:
        """Return the time the last of names arrived; raise TimeoutError after timeout."""
        deadline = time.monotonic() + timeout
        wanted = set(names)
        while not wanted <= self.seen.keys():
            if time.monotonic() > deadline:
                missing = len(wanted - self.seen.keys())
                raise TimeoutError(f"{missing} files never arrived")
            time.sleep(0.01)
        return max(self.seen[name] for name in wanted)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.watcher.close()


class Bench:
    """The servers shared by every measure, and the folders of the run."""

    def __init__(self, base: str, sizes: dict) -> None:
        self.base = base
        self.sizes = sizes
        self.results: dict = {}
        # A subscriber is another machine: its files go to a tmpfs of their own, so that
        # its writes do not share the journal of the filesystem ftpdup works on.
        self.remote = self._folder("subscribers")
        size = 4 * sizes["big"] + (1 << 30)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                        self.remote], check=True)  # fmt: skip
        self.ftp = [
            VsftpdSubscriber(
                self._folder(f"subscribers/ftp{n}"), self.remote, passive_ports=400
            ).start()
            for n in range(2)
        ]
        self.web = NginxDav(self._folder("subscribers/web"), self.remote).start()
        self.ingest = VsftpdIngest(base, passive_ports=400).start()
        self.workers: list[Process] = []
        self.runs = 0

    def _folder(self, name: str) -> str:
        path = os.path.join(self.base, name)
        os.makedirs(path, mode=0o755, exist_ok=True)
        return path

    def fresh(self, server) -> str:
        """Return an empty folder at server for one measure, and its path there."""
        self.runs += 1
        name = f"m{self.runs}"
        folder = os.path.join(server.root, name)
        os.makedirs(folder)
        if isinstance(server, VsftpdSubscriber):
            shutil.chown(folder, server.user)
        return name

    def target(self, server, directory: str, **extra) -> Target:
        if isinstance(server, VsftpdSubscriber):
            return Target("ftp", server.host, server.port, directory=directory,
                          user=server.user, password=server.password, **extra)  # fmt: skip
        return Target("http", "127.0.0.1", server.port, directory=directory, **extra)

    def start(self, kind: str, name: str, spec) -> Process:
        process = start_worker(kind, name, spec, self.base, self.base, "warning")
        self.workers.append(process)
        time.sleep(0.5)
        return process

    def carrier(self, name: str, target: Target) -> tuple[Process, CarrierSpec]:
        folder = self._folder(f"c-{name}")
        spec = CarrierSpec(
            instance=f"bench:{name}", spool=os.path.join(folder, "spool"),
            dead=os.path.join(folder, "dead"), state=os.path.join(folder, "state"), target=target,
        )  # fmt: skip
        os.makedirs(spec.spool, exist_ok=True)
        return self.start("carrier", name, spec), spec

    def stop(self) -> None:
        for process in self.workers:
            process.stop()
        self.workers.clear()


def small_files(folder: str, count: int, size: int, prefix: str) -> list[str]:
    os.makedirs(folder, exist_ok=True)
    data = os.urandom(size)
    names = [f"{prefix}-{n:05d}.bin" for n in range(count)]
    for name in names:
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
    return names


def feed(source: str, spool: str, names: list[str]) -> float:
    """Move the prepared files into a spool at once; return when it started."""
    started = time.monotonic()
    for name in names:
        os.rename(os.path.join(source, name), os.path.join(spool, name))
    return started


def rate_of_carrier(bench: Bench, server, label: str, count: int = 0, **extra) -> float:
    """Return the files per second one carrier delivers to server, from its spool."""
    directory = bench.fresh(server)
    arrivals = Arrivals(os.path.join(server.root, directory))
    arrivals.start()
    _, spec = bench.carrier(label, bench.target(server, directory, **extra))
    source = os.path.join(bench.base, f"src-{label}")
    names = small_files(source, count or bench.sizes["small"], bench.sizes["size"], label)
    started = feed(source, spec.spool, names)
    finished = arrivals.wait(names, 900)
    arrivals.stop()
    bench.stop()
    return len(names) / (finished - started)


def rate_of_bare_ftp(bench: Bench, server, per_file_login: bool = False, count: int = 0) -> float:
    """Return files per second of a bare ftplib loop (one session, or one login per file)."""
    directory = bench.fresh(server)
    count = count or bench.sizes["small"] // (10 if per_file_login else 1)
    source = os.path.join(bench.base, f"bare-{directory}")
    names = small_files(source, count, bench.sizes["size"], "bare")

    def session() -> ftplib.FTP:
        ftp = ftplib.FTP()
        ftp.connect(server.host, server.port, timeout=30)
        ftp.login(server.user, server.password)
        ftp.cwd(directory)
        return ftp

    started = time.monotonic()
    ftp = None if per_file_login else session()
    for name in names:
        connection = session() if per_file_login else ftp
        with open(os.path.join(source, name), "rb") as handle:
            connection.storbinary(f"STOR {name}.t", handle)
        connection.rename(f"{name}.t", name)
        if per_file_login:
            connection.quit()
    seconds = time.monotonic() - started
    if ftp is not None:
        ftp.quit()
    return count / seconds


def rate_of_bare_http(bench: Bench) -> float:
    """Return files per second of a bare requests.Session PUT loop."""
    directory = bench.fresh(bench.web)
    source = os.path.join(bench.base, f"bare-{directory}")
    names = small_files(source, bench.sizes["small"], bench.sizes["size"], "bare")
    session = requests.Session()
    started = time.monotonic()
    for name in names:
        with open(os.path.join(source, name), "rb") as handle:
            session.put(f"http://127.0.0.1:{bench.web.port}/{directory}/{name}", data=handle)
    return len(names) / (time.monotonic() - started)


def p1(bench: Bench) -> None:
    """Rates of small files; each figure is the median of interleaved rounds (the machine's
    noise on loopback is of the order of 20 %)."""
    ftp, web = bench.ftp[0], bench.web
    measures = {
        "ftp_carrier": lambda n: rate_of_carrier(bench, ftp, f"p1ftp{n}"),
        "ftp_ceiling": lambda n: rate_of_bare_ftp(bench, ftp),
        "ftp_carrier_4": lambda n: rate_of_carrier(bench, ftp, f"p1ftpq{n}", connections=4),
        "http_carrier": lambda n: rate_of_carrier(bench, web, f"p1web{n}"),
        "http_ceiling": lambda n: rate_of_bare_http(bench),
        "http_carrier_4": lambda n: rate_of_carrier(bench, web, f"p1webq{n}", connections=4),
    }
    rounds: dict[str, list[float]] = {name: [] for name in measures}
    for number in range(bench.sizes["rounds"]):
        for name, measure in measures.items():
            os.sync()  # the last measure's writeback never lands in this one
            rounds[name].append(measure(number))
    results = bench.results["p1"] = {name: statistics.median(v) for name, v in rounds.items()}
    results["rounds"] = rounds
    results["ftp_login_per_file"] = rate_of_bare_ftp(bench, ftp, per_file_login=True)
    results["lane"] = lane_rate(bench)
    results["wan"] = wan_rates(bench)


def wan_rates(bench: Bench) -> dict:
    """Return files per second to a vsftpd across a link with WAN_DELAY_MS of round trip:
    one carrier session, the bare loop, and the carrier with ``connections: 4``."""
    count = bench.sizes["wan_files"]
    namespace = DelayedNamespace(WAN_DELAY_MS, bench.base).create()
    try:
        server = VsftpdSubscriber(
            bench._folder("subscribers/wan"), bench.remote, namespace=namespace
        ).start()
        try:
            return {
                "delay_ms": WAN_DELAY_MS,
                "ftp_carrier": rate_of_carrier(bench, server, "wan1", count),
                "ftp_ceiling": rate_of_bare_ftp(bench, server, count=count),
                "ftp_carrier_4": rate_of_carrier(bench, server, "wan4", count, connections=4),
            }
        finally:
            server.remove()
    finally:
        namespace.delete()


def lane(bench: Bench, name: str, servers: list, sync: bool = True) -> tuple[str, str, list]:
    """Start a lane (sprinkler + carriers) to servers, its uploads synced before they are
    taken unless sync is False; return (its user, password, arrivals)."""
    home = os.path.join(bench.base, f"lane-{name}")
    password = f"pw-{name}"
    user, _ = bench.ingest.add_lane_user(home, password)
    outputs, watchers = [], []
    for number, server in enumerate(servers):
        directory = bench.fresh(server)
        watcher = Arrivals(os.path.join(server.root, directory))
        watcher.start()
        watchers.append(watcher)
        _, spec = bench.carrier(f"{name}{number}", bench.target(server, directory))
        outputs.append(Output(spec.instance, spec.spool + ".pending", spec.spool))
    staging = os.path.join(bench.base, f"staging-{name}")
    bench.start("sprinkler", name, SprinklerSpec(name, home, staging, tuple(outputs), sync=sync))
    return user, password, watchers


def upload(bench: Bench, user: str, password: str, names_and_data) -> dict[str, float]:
    """Upload files by FTP into a lane; return when each upload was closed (226 received)."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", bench.ingest.port, timeout=30)
    ftp.login(user, password)
    closed = {}
    for name, data in names_and_data:
        ftp.storbinary(f"STOR {name}", io.BytesIO(data) if isinstance(data, bytes) else data)
        closed[name] = time.monotonic()
    ftp.quit()
    return closed


def lane_rate(bench: Bench) -> dict:
    """Return files per second of a whole lane to 2 FTP + 1 HTTP subscribers, per subscriber."""
    bench.ingest.users.clear()
    user, password, watchers = lane(bench, "p1lane", [*bench.ftp, bench.web])
    count = bench.sizes["small"]
    data = os.urandom(bench.sizes["size"])
    names = [f"lane-{n:05d}.bin" for n in range(count)]
    started = time.monotonic()
    upload(bench, user, password, ((name, data) for name in names))
    rates = [count / (watcher.wait(names, 900) - started) for watcher in watchers]
    for watcher in watchers:
        watcher.stop()
    bench.stop()
    return {"ftp1": rates[0], "ftp2": rates[1], "http": rates[2]}


def latencies(bench: Bench, with_bulk: bool, sync: bool = True) -> dict:
    """Return latency percentiles (ms) at a steady rate, optionally beside a 1 GiB transfer,
    optionally without syncing each upload."""
    label = ("p2bulk" if with_bulk else "p2") + ("" if sync else "nosync")
    user, password, (watcher,) = lane(bench, label, [bench.ftp[0]], sync)
    bulk = None
    if with_bulk:
        bulk_user, bulk_password, (bulk_watcher,) = lane(bench, label + "big", [bench.ftp[1]])
        bulk = threading.Thread(target=upload_big, args=(bench, bulk_user, bulk_password))
        bulk.start()
        time.sleep(0.5)
    rate, seconds = bench.sizes["rate"], bench.sizes["latency_seconds"]
    data = os.urandom(bench.sizes["size"])
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", bench.ingest.port, timeout=30)
    ftp.login(user, password)
    closed = {}
    for number in range(rate * seconds):
        due = time.monotonic() + 1 / rate
        name = f"lat-{number:05d}.bin"
        ftp.storbinary(f"STOR {name}", io.BytesIO(data))
        closed[name] = time.monotonic()
        time.sleep(max(0.0, due - time.monotonic()))
    ftp.quit()
    watcher.wait(closed, 120)
    values = sorted((watcher.seen[name] - closed[name]) * 1000 for name in closed)
    if bulk is not None:
        bulk.join()
        bulk_watcher.wait(["big.bin"], 900)
        bulk_watcher.stop()
    watcher.stop()
    bench.stop()
    return {
        "p50": statistics.median(values),
        "p95": values[int(len(values) * 0.95) - 1],
        "p99": values[int(len(values) * 0.99) - 1],
        "max": values[-1],
        "files": len(values),
    }


def upload_big(bench: Bench, user: str, password: str) -> None:
    """Upload the big file into a lane with curl (a Python thread here would compete for
    the interpreter with the thread that times the small files)."""
    subprocess.run(
        ["curl", "-sS", "-K", "-", "-T", big_file(bench),
         f"ftp://127.0.0.1:{bench.ingest.port}/big.bin"],
        input=f'user = "{user}:{password}"\n', text=True, check=True,
    )  # fmt: skip


def big_file(bench: Bench) -> str:
    path = os.path.join(bench.base, "big.bin")
    if not os.path.exists(path):
        block = os.urandom(1 << 20)
        with open(path, "wb") as handle:
            for _ in range(bench.sizes["big"] >> 20):
                handle.write(block)
    return path


def big_transfer(bench: Bench, server, label: str) -> dict:
    """Return MB/s of one big file by a carrier and by curl -T, and the carrier's peak RSS."""
    path = big_file(bench)
    size = os.path.getsize(path)
    directory = bench.fresh(server)
    arrivals = Arrivals(os.path.join(server.root, directory))
    arrivals.start()
    process, spec = bench.carrier(label, bench.target(server, directory))
    os.link(path, os.path.join(bench.base, "big-link"))
    started = time.monotonic()
    os.rename(os.path.join(bench.base, "big-link"), os.path.join(spec.spool, "big.bin"))
    finished = arrivals.wait(["big.bin"], 1800)
    peak = peak_rss_kib(process.pid)
    arrivals.stop()
    bench.stop()
    if isinstance(server, VsftpdSubscriber):
        url = f"ftp://{server.user}:{server.password}@127.0.0.1:{server.port}/{directory}/curl.bin"
    else:
        url = f"http://127.0.0.1:{server.port}/{directory}/curl.bin"
    curl_started = time.monotonic()
    subprocess.run(["curl", "-sS", "-T", path, url], check=True)
    curl_seconds = time.monotonic() - curl_started
    shutil.rmtree(os.path.join(server.root, directory))  # room on the subscribers' tmpfs
    return {
        "carrier_mb_s": size / (finished - started) / 1e6,
        "curl_mb_s": size / curl_seconds / 1e6,
        "peak_rss_mib": peak / 1024,
    }


def peak_rss_kib(pid: int) -> int:
    """Return the highest resident memory the process has had (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM"))


def fanout(bench: Bench) -> dict:
    """Return files per second of the sprinkler to 4 spools, and of a bare loop doing the same."""
    count = bench.sizes["fanout"]
    results = {}
    for label in ("sprinkler", "sprinkler_no_sync", "bare", "bare_sync"):
        root = bench._folder(f"p5-{label}")
        incoming, staging = os.path.join(root, "incoming"), os.path.join(root, "staging")
        outputs = tuple(
            Output(f"p5:{n}", os.path.join(root, f"pending{n}"), os.path.join(root, f"spool{n}"))
            for n in range(4)
        )
        for folder in (
            [incoming, staging] + [o.pending for o in outputs] + [o.spool for o in outputs]
        ):
            os.makedirs(folder, exist_ok=True)
        watcher = Arrivals(outputs[-1].spool)
        watcher.start()
        source = os.path.join(root, "source")
        names = small_files(source, count, bench.sizes["size"], "fan")
        if label.startswith("sprinkler"):
            spec = SprinklerSpec("p5", incoming, staging, outputs, sync=label == "sprinkler")
            bench.start("sprinkler", "p5", spec)
            started = feed(source, incoming, names)
        else:
            started = feed(source, incoming, names)
            for name in names:
                staged = os.path.join(staging, name)
                if label == "bare_sync":  # the sprinkler's durability: the data on disk first
                    descriptor = os.open(os.path.join(incoming, name), os.O_RDONLY)
                    write_out(descriptor)
                    os.close(descriptor)
                os.rename(os.path.join(incoming, name), staged)
                for output in outputs:
                    os.link(staged, os.path.join(output.pending, name))
                os.unlink(staged)
                for output in outputs:
                    os.rename(os.path.join(output.pending, name), os.path.join(output.spool, name))
        finished = watcher.wait(names, 600)
        watcher.stop()
        bench.stop()
        results[label] = count / (finished - started)
    return results


def machine() -> str:
    with open("/proc/cpuinfo") as handle:
        model = next(
            (line.split(":", 1)[1].strip() for line in handle if "model name" in line), "?"
        )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (
        f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, {platform.platform()}, "
        f"Python {platform.python_version()}, loopback"
    )


def table(results: dict) -> list[tuple[str, str, str, str, str]]:
    """Return rows: measure, ftpdup, ceiling, ratio, goal."""
    p1, p2, p2b, p3, p4, p5 = (results[k] for k in ("p1", "p2", "p2_bulk", "p3", "p4", "p5"))
    p2n = results["p2_bulk_no_sync"]
    wan = p1["wan"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}"

    rows = [
        ("P1 FTP, one session (files/s)", f"{p1['ftp_carrier']:.0f}", f"{p1['ftp_ceiling']:.0f}",
         ratio(p1["ftp_carrier"], p1["ftp_ceiling"]), ">= 0.80"),
        ("P1 FTP, one login per file (baseline)", f"{p1['ftp_login_per_file']:.0f}", "",
         f"x{p1['ftp_carrier'] / p1['ftp_login_per_file']:.0f}", ">= x20"),
        ("P1 FTP, connections: 4 (files/s)", f"{p1['ftp_carrier_4']:.0f}",
         f"{p1['ftp_ceiling']:.0f}", ratio(p1["ftp_carrier_4"], p1["ftp_ceiling"]), ">= 2.5"),
        ("P1 HTTP, one session (files/s)", f"{p1['http_carrier']:.0f}",
         f"{p1['http_ceiling']:.0f}", ratio(p1["http_carrier"], p1["http_ceiling"]), ">= 0.80"),
        ("P1 HTTP, connections: 4 (files/s)", f"{p1['http_carrier_4']:.0f}",
         f"{p1['http_ceiling']:.0f}", ratio(p1["http_carrier_4"], p1["http_ceiling"]), ">= 2.5"),
        (f"P1 FTP over {wan['delay_ms']} ms RTT, one session (files/s)",
         f"{wan['ftp_carrier']:.1f}", f"{wan['ftp_ceiling']:.1f}",
         ratio(wan["ftp_carrier"], wan["ftp_ceiling"]), ">= 0.80"),
        (f"P1 FTP over {wan['delay_ms']} ms RTT, connections: 4 (files/s)",
         f"{wan['ftp_carrier_4']:.1f}", f"{wan['ftp_ceiling']:.1f}",
         ratio(wan["ftp_carrier_4"], wan["ftp_ceiling"]), ">= 2.5"),
        ("P1 lane to 2 FTP + 1 HTTP (files/s each)",
         " / ".join(f"{p1['lane'][k]:.0f}" for k in ("ftp1", "ftp2", "http")), "", "", ""),
        ("P2 latency alone p50/p95/p99/max (ms)",
         "/".join(f"{p2[k]:.1f}" for k in ("p50", "p95", "p99", "max")), "", "", ""),
        ("P2 latency beside 1 GiB p50/p95/p99/max (ms)",
         "/".join(f"{p2b[k]:.1f}" for k in ("p50", "p95", "p99", "max")), "", "",
         "p99 <= 10"),
        ("P2 the same, uploads not synced (ms)",
         "/".join(f"{p2n[k]:.1f}" for k in ("p50", "p95", "p99", "max")), "", "", ""),
        ("P3 big file FTP (MB/s), curl -T", f"{p3['ftp']['carrier_mb_s']:.0f}",
         f"{p3['ftp']['curl_mb_s']:.0f}", ratio(p3["ftp"]["carrier_mb_s"], p3["ftp"]["curl_mb_s"]),
         ">= 0.80"),
        ("P3 big file HTTP (MB/s), curl -T", f"{p3['http']['carrier_mb_s']:.0f}",
         f"{p3['http']['curl_mb_s']:.0f}",
         ratio(p3["http"]["carrier_mb_s"], p3["http"]["curl_mb_s"]), ">= 0.80"),
        ("P3 carrier peak RSS FTP / HTTP (MiB)",
         f"{p3['ftp']['peak_rss_mib']:.0f} / {p3['http']['peak_rss_mib']:.0f}", "", "", "< 50"),
        (f"P4 bring-up of {p4['lanes'] * (p4['subscribers_per_lane'] + 1)} units (s)",
         f"{p4['bring_up_s']}", "", "", "< 120"),
        ("P4 no-change reconcile (s)", f"{p4['no_change_reconcile_s']}", "", "", "< 5"),
        ("P4 one changed subscriber applied (s)", f"{p4['one_change_applied_s']}", "", "", ""),
        ("P4 mean PSS per worker (MiB)", f"{p4['mean_pss_mib']}", "", "", "<= 12"),
        ("P4 idle CPU of all workers (% of a core)", f"{p4['idle_cpu_percent_of_one_core']}", "",
         "", "near 0"),
        ("P5 fan-out to 4 spools, each file synced (files/s)", f"{p5['sprinkler']:.0f}",
         f"{p5['bare_sync']:.0f}", ratio(p5["sprinkler"], p5["bare_sync"]), ">= 0.50"),
        ("P5 the same without syncing each file (files/s)",
         f"{p5['sprinkler_no_sync']:.0f}", f"{p5['bare']:.0f}",
         ratio(p5["sprinkler_no_sync"], p5["bare"]), ""),
    ]  # fmt: skip
    return rows


def render(rows) -> str:
    head = ("measure", "ftpdup", "ceiling", "ratio", "goal")
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def docs_page(results: dict, text: str) -> str:
    """Return docs/benchmarks.md for the results and their rendered table."""
    return f"""# Benchmarks

The latest run of `bench/run.py`: every figure beside its ceiling measured in
the same run, against the same servers (vsftpd and nginx subscribers with
their files on a tmpfs of their own, the lanes' vsftpd ingest and ftpdup's
data on the disk). See `bench/README.md` for what each measure does and for
what limits the figures that miss their goal.

Machine: {results["machine"]}; {results["date"]}.

{text}
"""


def write_docs(page: str) -> None:
    """Write docs/benchmarks.md, keeping the section bench/peers.py wrote there."""
    path = os.path.join(HERE, "..", "docs", "benchmarks.md")
    kept = ""
    if os.path.exists(path):
        with open(path) as handle:
            old = handle.read()
        if PEERS_MARK in old:
            kept = PEERS_MARK + old.split(PEERS_MARK, 1)[1]
    with open(path, "w") as handle:
        handle.write(page + kept)


def main(arguments: argparse.Namespace) -> dict:
    sizes = TINY if arguments.tiny else FULL
    base = tempfile.mkdtemp(prefix="ftpdup-bench-")
    os.chmod(base, 0o755)
    bench = Bench(base, sizes)
    results = bench.results
    only = arguments.only.upper().split(",") if arguments.only else ["P1", "P2", "P3", "P4", "P5"]
    try:
        if "P1" in only:
            p1(bench)
        if "P2" in only:
            results["p2"] = latencies(bench, with_bulk=False)
            results["p2_bulk"] = latencies(bench, with_bulk=True)
            results["p2_bulk_no_sync"] = latencies(bench, with_bulk=True, sync=False)
        if "P3" in only:
            results["p3"] = {
                "ftp": big_transfer(bench, bench.ftp[0], "p3ftp"),
                "http": big_transfer(bench, bench.web, "p3web"),
            }
        if "P5" in only:
            results["p5"] = fanout(bench)
    finally:
        bench.stop()
        bench.ingest.stop()
        bench.web.stop()
        for server in bench.ftp:
            server.remove()
        subprocess.run(["umount", bench.remote], check=False)
        shutil.rmtree(base, ignore_errors=True)
    if "P4" in only:
        results["p4"] = scale.main(*sizes["scale"])
    results["machine"] = machine()
    results["date"] = time.strftime("%Y-%m-%d")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds' worth (CI)")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.md")
    parser.add_argument("--only", default="", help="some of P1,P2,P3,P4,P5 (the table needs all)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "bench.json"))
    arguments = parser.parse_args()
    results = main(arguments)
    os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
    with open(arguments.output, "w") as handle:
        json.dump(results, handle, indent=1)
    if arguments.only:
        print(json.dumps(results, indent=1))
        sys.exit(0)
    text = render(table(results))
    print(text)
    print(f"\n{results['machine']}, {results['date']}")
    if arguments.docs:
        write_docs(docs_page(results, text))
