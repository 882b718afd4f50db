"""ftpdup beside the tools a site would run instead: MetPX Sarracenia sr3 and rclone.

The same work, the same subscriber servers (vsftpd, and nginx WebDAV where a
tool speaks HTTP), the same machine, one run. Files appear in one folder by
rename (complete when they appear, as an FTP upload's final state is), from a
folder prepared on the same disk and written out first. Arrivals at a
subscriber are seen with inotify (the final name), as in bench/run.py.

- ftpdup: a lane's sprinkler watching the folder, one carrier per subscriber,
  with ftpdup's defaults (one session per carrier); the rows that add
  ``connections: 4`` say so. A configuration change is what the manager does
  for a subscriber added (start its carrier, restart the sprinkler with the
  new queue); the manager's own reaction to Consul is P4's row.
- sr3: a ``watch`` of the folder posting to a local RabbitMQ, one ``sender``
  per subscriber, run with ``sr3 start``; settings in ``sr3_configs`` with
  the reason for each. Installed into its own virtual environment.
- rclone: ``rclone copy`` of the folder, one run per subscriber (it has no
  watch: the rows that need one say so), with its defaults.

Run as root: ``.venv/bin/python bench/peers.py [--tiny] [--docs]``. Prints
one table, writes bench/results/peers.json; --docs also rewrites the peers
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import run
from run import Arrivals, machine, peak_rss_kib, small_files

from ftpdup.specs import CarrierSpec, Output, SprinklerSpec, Target
from tests.harness.pipeline import start_worker
from tests.harness.procs import Process, free_port, port_open, wait_for
from tests.harness.servers import NginxDav, VsftpdSubscriber

HERE = os.path.dirname(os.path.abspath(__file__))
SR3_VERSION = "3.3.1"
SR3_HOME = "/var/cache/ftpdup-bench/sr3-" + SR3_VERSION
FULL = {"small": 3000, "size": 4096, "latency_files": 100, "rate": 10, "big": 1 << 30,
        "outage": 30, "stream_rate": 10, "idle": 60, "timeout": 900}  # fmt: skip
TINY = {"small": 40, "size": 4096, "latency_files": 10, "rate": 10, "big": 4 << 20,
        "outage": 3, "stream_rate": 10, "idle": 2, "timeout": 300}  # fmt: skip
TOOLS = ("ftpdup", "sr3", "rclone")


class Servers:
    """The subscribers of every measure: four vsftpd and one nginx, files on their own tmpfs."""

    def __init__(self, base: str, sizes: dict) -> None:
        self.base = base
        self.remote = os.path.join(base, "subscribers")
        os.makedirs(self.remote)
        size = 2 * sizes["big"] + (1 << 30)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                        self.remote], check=True)  # fmt: skip
        self.ftp = [
            VsftpdSubscriber(os.path.join(self.remote, f"ftp{n}"), base, passive_ports=200).start()
            for n in range(4)
        ]
        self.web = NginxDav(os.path.join(self.remote, "web"), base).start()
        self.count = 0

    def folder(self, server) -> tuple[str, Arrivals]:
        """Return a new empty folder on server (its path there) and a watch of its arrivals."""
        self.count += 1
        name = f"m{self.count}"
        path = os.path.join(server.root, name)
        os.makedirs(path)
        if isinstance(server, VsftpdSubscriber):
            shutil.chown(path, server.user)
        arrivals = Arrivals(path)
        arrivals.start()
        return name, arrivals

    def close(self) -> None:
        self.web.stop()
        for server in self.ftp:
            server.remove()
        subprocess.run(["umount", self.remote], check=False)


class Source:
    """Files prepared on the disk and made to appear in the watched folder by rename."""

    def __init__(self, base: str, label: str) -> None:
        self.ready = os.path.join(base, f"ready-{label}")
        self.folder = os.path.join(base, f"watched-{label}")
        os.makedirs(self.ready)
        os.makedirs(self.folder)

    def prepare(self, count: int, size: int, prefix: str) -> list[str]:
        names = small_files(self.ready, count, size, prefix)
        os.sync()
        return names

    def appear(self, names: list[str]) -> dict[str, float]:
        """Move names into the watched folder; return when each appeared."""
        appeared = {}
        for name in names:
            os.rename(os.path.join(self.ready, name), os.path.join(self.folder, name))
            appeared[name] = time.monotonic()
        return appeared

    def trickle(self, names: list[str], rate: float) -> dict[str, float]:
        """Move names in at a steady rate per second; return when each appeared."""
        appeared = {}
        for name in names:
            due = time.monotonic() + 1 / rate
            appeared.update(self.appear([name]))
            time.sleep(max(0.0, due - time.monotonic()))
        return appeared


class Tool:
    """One tool's pipeline from a watched folder to subscribers (see each subclass)."""

    name = ""
    watches = True

    def start(self, folder: str, targets: list[tuple[object, str]], **options) -> None:
        raise NotImplementedError

    def add(self, target: tuple[object, str]) -> None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def transfer_pids(self) -> list[int]:
        """The processes that move the bytes (for the peak RSS of one big file)."""
        return self.pids()

    def stop(self) -> None:
        raise NotImplementedError


class Ftpdup(Tool):
    """A sprinkler and one carrier per subscriber, as processes with ftpdup's defaults."""

    name = "ftpdup"

    def __init__(self, base: str) -> None:
        self.base = base
        self.runs = 0
        self.processes: dict[str, Process] = {}
        self.outputs: list[Output] = []
        self.folder = ""
        self.options: dict = {}

    def start(self, folder: str, targets: list[tuple[object, str]], **options) -> None:
        self.runs += 1
        options.pop("also", None)
        self.folder, self.options, self.outputs = folder, options, []
        for target in targets:
            self._carrier(target)
        self._sprinkler()

    def _carrier(self, target: tuple[object, str]) -> None:
        server, directory = target
        name = f"r{self.runs}c{len(self.outputs)}"
        work = os.path.join(self.base, f"ftpdup-{name}")
        spec = CarrierSpec(
            instance=f"peers:{name}", spool=os.path.join(work, "spool"),
            dead=os.path.join(work, "dead"), state=os.path.join(work, "state"),
            target=target_of(server, directory, **self.options),
        )  # fmt: skip
        os.makedirs(spec.spool)
        self.processes[name] = start_worker("carrier", name, spec, self.base, self.base, "warning")
        self.outputs.append(Output(spec.instance, spec.spool + ".pending", spec.spool))

    def _sprinkler(self) -> None:
        old = self.processes.pop("sprinkler", None)
        if old is not None:
            old.stop()
        staging = os.path.join(self.base, f"ftpdup-staging-{self.runs}")
        spec = SprinklerSpec("peers", self.folder, staging, tuple(self.outputs))
        self.processes["sprinkler"] = start_worker(
            "sprinkler", f"peers{self.runs}", spec, self.base, self.base, "warning"
        )
        time.sleep(0.5)

    def add(self, target: tuple[object, str]) -> None:
        self._carrier(target)
        self._sprinkler()

    def pids(self) -> list[int]:
        return [process.pid for process in self.processes.values()]

    def transfer_pids(self) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name != "sprinkler"]

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.processes.clear()


def target_of(server, directory: str, **options) -> Target:
    if isinstance(server, VsftpdSubscriber):
        return Target("ftp", server.host, server.port, directory=directory,
                      user=server.user, password=server.password, **options)  # fmt: skip
    return Target("http", "127.0.0.1", server.port, directory=directory, **options)


class Rclone(Tool):
    """``rclone copy`` of the folder to each subscriber, the remotes defined in the
    environment (the passwords never on a command line). It has no watch."""

    name = "rclone"
    watches = False

    def __init__(self, base: str) -> None:
        self.base = base
        self.running: list[subprocess.Popen] = []
        self.peak_kib = 0

    def environment(self, server) -> tuple[dict, str]:
        """Return the environment defining an FTP server as a remote, and the remote's name.
        (Its WebDAV remote reads metadata with PROPFIND before any PUT, which nginx's
        WebDAV module answers with 405: rclone cannot push to the HTTP subscriber here.)"""
        name = f"FTP{server.port}"
        secret = subprocess.run(
            ["rclone", "obscure", "-"], input=server.password, capture_output=True,
            text=True, check=True,
        ).stdout.strip()  # fmt: skip
        values = {"TYPE": "ftp", "HOST": server.host, "PORT": str(server.port),
                  "USER": server.user, "PASS": secret}  # fmt: skip
        environment = {f"RCLONE_CONFIG_{name}_{key}": value for key, value in values.items()}
        return {**os.environ, "RCLONE_CONFIG": "/dev/null", **environment}, name.lower()

    def copy(self, folder: str, targets: list[tuple[object, str]]) -> list[int]:
        """Run one rclone copy per target at once; return their exit codes, and keep the
        highest peak RSS any of them had."""
        self.running = []
        for server, directory in targets:
            environment, remote = self.environment(server)
            self.running.append(subprocess.Popen(
                ["rclone", "copy", "--log-level", "ERROR", folder, f"{remote}:{directory}"],
                env=environment, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        peaks = {process.pid: 0 for process in self.running}
        while any(process.poll() is None for process in self.running):
            for process in self.running:
                peaks[process.pid] = max(peaks[process.pid], peak_rss_or_zero(process.pid))
            time.sleep(0.05)
        self.peak_kib = max(self.peak_kib, *peaks.values())
        return [process.returncode for process in self.running]

    def pids(self) -> list[int]:
        return [process.pid for process in self.running if process.poll() is None]

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait()


def peak_rss_or_zero(pid: int) -> int:
    try:
        return peak_rss_kib(pid)
    except (OSError, StopIteration):
        return 0


class Sr3(Tool):
    """A watch posting to a local RabbitMQ and one sender per subscriber, run by ``sr3``."""

    name = "sr3"

    def __init__(self, base: str) -> None:
        self.base = base
        self.home = os.path.join(base, "sr3-home")
        os.makedirs(self.home)
        self.broker = RabbitMQ(base).start()
        self.runs = 0
        self.flows: list[str] = []
        self.folder = ""
        self.instances = 1

    def environment(self) -> dict:
        return {
            **os.environ, "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, "config"),
            "XDG_CACHE_HOME": os.path.join(self.home, "cache"),
            "XDG_STATE_HOME": os.path.join(self.home, "state"),
            "PATH": os.path.join(SR3_HOME, "bin") + os.pathsep + os.environ["PATH"],
        }  # fmt: skip

    def sr3(self, *argv: str) -> str:
        run_ = subprocess.run([os.path.join(SR3_HOME, "bin", "sr3"), *argv],
                              env=self.environment(), capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip
        if run_.returncode != 0:
            raise RuntimeError(f"sr3 {' '.join(argv)}: {run_.stdout[-2000:]}{run_.stderr[-2000:]}")
        return run_.stdout

    def config_dir(self) -> str:
        return os.path.join(self.home, "config", "sr3")

    def write(self, flow: str, text: str) -> None:
        path = os.path.join(self.config_dir(), flow + ".conf")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)

    def credentials(self, servers: list) -> None:
        lines = [f"{self.broker.url_with_password}"]
        for server in servers:
            address = f"{server.user}:{server.password}@{server.host}:{server.port}"
            lines.append(f"ftp://{address}/ passive,binary")
        path = os.path.join(self.config_dir(), "credentials.conf")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def start(self, folder: str, targets: list[tuple[object, str]], **options) -> None:
        self.runs += 1
        self.folder = folder
        self.credentials([server for server, _ in targets] + options.get("also", []))
        self.flows = []
        self.instances = options.get("instances", 1)
        for target in targets:
            self._sender(target)
        watch = f"watch/peers{self.runs}"
        self.write(watch, sr3_watch(self.broker.url, self.exchange(), folder))
        self.sr3("declare", watch)
        self.sr3("start", watch)
        self.flows.append(watch)
        self._wait_running()

    def exchange(self) -> str:
        return f"xs_guest_peers{self.runs}"

    def _sender(self, target: tuple[object, str]) -> None:
        server, directory = target
        flow = f"sender/peers{self.runs}s{len(self.flows)}"
        queue = f"q_guest.peers{self.runs}.s{len(self.flows)}"
        text = sr3_sender(self.broker.url, self.exchange(), server, directory, queue)
        if self.instances > 1:
            text += (
                f"# {self.instances} transfers at once: sr3's way is more instances of a flow\n"
                f"instances {self.instances}\n"
            )
        self.write(flow, text)
        self.sr3("declare", flow)
        self.sr3("start", flow)
        self.flows.append(flow)

    def add(self, target: tuple[object, str]) -> None:
        self._sender(target)

    def _wait_running(self) -> None:
        wanted = len(self.flows) + (self.instances - 1) * (len(self.flows) - 1)
        wait_for(lambda: len(self.pids()) >= wanted, 60, "sr3 instances")
        time.sleep(1)

    def pids(self) -> list[int]:
        """The sr3 instances of this bench (their environment names its home)."""
        marker = f"XDG_CONFIG_HOME={os.path.join(self.home, 'config')}".encode()
        return [pid for pid, environ, command in processes()
                if marker in environ and b"instance" in command]  # fmt: skip

    def broker_pids(self) -> list[int]:
        return self.broker.pids()

    def transfer_pids(self) -> list[int]:
        return self.pids()

    def stop(self) -> None:
        for flow in self.flows:
            self.sr3("stop", flow)
        end_all(self.pids, "sr3 instances")
        for flow in self.flows:
            self.sr3("cleanup", flow)
        self.flows = []

    def close(self) -> None:
        self.broker.stop()


def sr3_watch(broker: str, exchange: str, folder: str) -> str:
    """The watch, as sr3's documentation sets one up for a folder whose files senders push
    (its pitcher example, CommandLineGuide, DetectFileReady); each setting that is not
    a default carries its reason."""
    return f"""post_broker {broker}
post_exchange {exchange}
# local files named by absolute path: "file: url's are a common choice" for local consumers
post_baseUrl file:
path {folder}
# files appear by rename, complete; a delete here must not become a delete at subscribers
fileEvents create,modify
# DetectFileReady: 0.1 s is reasonable with inotify (the watch's own default is 5 s)
sleep 0.1
# a queue must outlive the longest interruption (the default lets it expire)
expire 1h
accept .*
"""


def sr3_sender(broker: str, exchange: str, server, directory: str, queue: str) -> str:
    """One sender per subscriber (its own queue, so each gets every file), as sr3's
    documentation sets one up; each setting that is not a default carries its reason."""
    return f"""broker {broker}
exchange {exchange}
# a fixed queue name, declared before the watch posts: a post no queue holds is lost
queueName {queue}
expire 1h
sendTo ftp://{server.user}@{server.host}:{server.port}/
# written as NAME.tmp and renamed when complete (the code's default is the final name)
inflight .tmp
# failed files wait in the retry queue until housekeeping (default 300 s)
housekeeping 30
# as the watch: poll the broker every 0.1 s
sleep 0.1
# the subscriber's folder, relative to the login's home, with no tree under it
mirror off
directory {directory}
accept .*
"""


class RabbitMQ:
    """A RabbitMQ node of its own (port, data, logs) for sr3. Debian's wrapper runs it as
    the rabbitmq user, outside this process's group: its processes are found by the node
    name in their environment."""

    def __init__(self, base: str) -> None:
        self.base = os.path.join(base, "rabbitmq")
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"peers{self.port}@localhost"
        self.process: Process | None = None
        self.url = f"amqp://guest@127.0.0.1:{self.port}/"
        self.url_with_password = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def environment(self) -> dict:
        return {
            **os.environ, "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.base, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.base, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.base, "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.base, "enabled_plugins"),
            "RABBITMQ_PID_FILE": os.path.join(self.base, "pid"),
        }  # fmt: skip

    def start(self) -> RabbitMQ:
        for folder in ("mnesia", "log"):
            os.makedirs(os.path.join(self.base, folder))
        with open(os.path.join(self.base, "enabled_plugins"), "w") as handle:
            handle.write("[].\n")
        subprocess.run(["chown", "-R", "rabbitmq:", self.base], check=True)
        self.process = Process(["rabbitmq-server"], os.path.join(self.base, "..", "rabbitmq.log"),
                               env=self.environment())  # fmt: skip
        wait_for(lambda: port_open(self.port), 120, f"RabbitMQ on port {self.port}")
        return self

    def pids(self, with_epmd: bool = False) -> list[int]:
        """The node's processes (epmd, the name server any node shares, only if asked)."""
        marker = f"RABBITMQ_NODENAME={self.node}".encode()
        found = []
        for pid, environ, command in processes():
            if marker in environ and (with_epmd or b"epmd" not in command):
                found.append(pid)
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        subprocess.run(["rabbitmqctl", "-n", self.node, "stop"], env=self.environment(),
                       capture_output=True, timeout=120)  # fmt: skip
        end_all(lambda: self.pids(with_epmd=True), "the broker", grace=0)
        self.process.stop()
        self.process = None


def end_all(pids, what: str, grace: float = 10.0) -> None:
    """Wait up to grace seconds for the processes pids() names to end, kill those left, and
    wait until they are gone."""
    deadline = time.monotonic() + grace
    while pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids():
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pids(), 30, f"{what} to end")


def processes():
    """Yield (pid, environment entries, command line) of every process that can be read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        yield int(entry), environ, command


def install_sr3() -> None:
    """Create sr3's own virtual environment, once per version."""
    if os.path.exists(os.path.join(SR3_HOME, "bin", "sr3")):
        return
    subprocess.run([sys.executable, "-m", "venv", SR3_HOME], check=True)
    subprocess.run([os.path.join(SR3_HOME, "bin", "pip"), "install", "-q",
                    f"metpx-sr3[amqp]=={SR3_VERSION}"], check=True)  # fmt: skip


class Measures:
    """Each row's measure, for any tool: returns a dict of figures, or None where the
    tool cannot do the work."""

    def __init__(self, base: str, servers: Servers, sizes: dict) -> None:
        self.base = base
        self.servers = servers
        self.sizes = sizes
        self.runs = 0

    def _source(self) -> Source:
        self.runs += 1
        return Source(self.base, f"s{self.runs}")

    def _targets(self, servers: list) -> tuple[list, list[Arrivals]]:
        folders = [self.servers.folder(server) for server in servers]
        targets = [(server, name) for server, (name, _) in zip(servers, folders)]
        return targets, [arrivals for _, arrivals in folders]

    def many_small(self, tool: Tool, servers: list, **options) -> dict:
        """Files per second, first appearance to the last delivered to every server."""
        source = self._source()
        names = source.prepare(self.sizes["small"], self.sizes["size"], "small")
        targets, watches = self._targets(servers)
        try:
            if tool.watches:
                tool.start(source.folder, targets, **options)
                started = min(source.appear(names).values())
            else:
                source.appear(names)
                started = time.monotonic()
                codes = tool.copy(source.folder, targets)
                if any(codes):
                    raise RuntimeError(f"{tool.name} exited with {codes}")
            finished = max(arrivals.wait(names, self.sizes["timeout"]) for arrivals in watches)
            short = sum(short_files(arrivals, names, self.sizes["size"]) for arrivals in watches)
        finally:
            stop_all(tool, watches)
        return {"files_s": len(names) / (finished - started), "short": short}

    def latency(self, tool: Tool) -> dict | None:
        """Appearance to delivery (ms) at a steady rate, percentiles."""
        if not tool.watches:
            return None
        source = self._source()
        names = source.prepare(self.sizes["latency_files"], self.sizes["size"], "lat")
        targets, watches = self._targets(self.servers.ftp[:1])
        try:
            tool.start(source.folder, targets)
            appeared = source.trickle(names, self.sizes["rate"])
            watches[0].wait(names, self.sizes["timeout"])
            values = sorted((watches[0].seen[n] - appeared[n]) * 1000 for n in names)
        finally:
            stop_all(tool, watches)
        return {"p50": statistics.median(values), "p95": percentile(values, 95),
                "p99": percentile(values, 99), "max": values[-1]}  # fmt: skip

    def big(self, tool: Tool) -> dict:
        """MB/s of one big file, and the highest peak RSS of the tool's processes."""
        source = self._source()
        size = self.sizes["big"]
        block = os.urandom(1 << 20)
        with open(os.path.join(source.ready, "big.bin"), "wb") as handle:
            for _ in range(size >> 20):
                handle.write(block)
        os.sync()
        targets, watches = self._targets(self.servers.ftp[:1])
        try:
            if tool.watches:
                tool.start(source.folder, targets)
                started = source.appear(["big.bin"])["big.bin"]
                peak = PeakRss(tool.pids)
                finished = watches[0].wait(["big.bin"], self.sizes["timeout"])
                peak_kib = peak.stop()
                cpu = {"sender_cpu_s": cpu_seconds(tool.transfer_pids()),
                       "all_cpu_s": cpu_seconds(tool.pids())}  # fmt: skip
            else:
                source.appear(["big.bin"])
                started = time.monotonic()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                tool.copy(source.folder, targets)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                finished = watches[0].wait(["big.bin"], self.sizes["timeout"])
                peak_kib = tool.peak_kib
                used = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                cpu = {"sender_cpu_s": used, "all_cpu_s": used}
            short = short_files(watches[0], ["big.bin"], size)
        finally:
            stop_all(tool, watches)
            shutil.rmtree(os.path.join(targets[0][0].root, targets[0][1]), ignore_errors=True)
        return {"mb_s": size / (finished - started) / 1e6, "peak_rss_mib": peak_kib / 1024,
                "short": short, "seconds": finished - started, **cpu}  # fmt: skip

    def outage(self, tool: Tool) -> dict:
        """A subscriber down (listener and sessions) for a while in the middle of the work:
        files lost (or short) once everything drained, files delivered while it was down
        (0 when the outage was real), and seconds from its return to the delivery of the
        last file that appeared before it."""
        server, outage = self.servers.ftp[0], self.sizes["outage"]
        source = self._source()
        targets, watches = self._targets([server])
        appeared: dict[str, float] = {}
        try:
            if tool.watches:
                rate = self.sizes["stream_rate"]
                names = source.prepare(int((outage + 10) * rate), self.sizes["size"], "out")
                tool.start(source.folder, targets)
                stream = threading.Thread(
                    target=lambda: appeared.update(source.trickle(names, rate))
                )
                stream.start()
                time.sleep(3)
            else:
                names = source.prepare(self.sizes["small"], self.sizes["size"], "out")
                appeared = source.appear(names)
                codes: list[int] = []
                stream = threading.Thread(
                    target=lambda: codes.extend(tool.copy(source.folder, targets))
                )
                stream.start()
                tenth = len(names) // 10
                wait_for(lambda: len(watches[0].seen) >= tenth, 120, "the copy under way")
            server.stop()
            down = time.monotonic()
            time.sleep(outage)
            server.start()
            back = time.monotonic()
            stream.join()
            if not tool.watches and codes != [0]:
                tool.copy(source.folder, targets)  # the next scheduled run, at once
            with suppress(TimeoutError):
                watches[0].wait(names, self.sizes["timeout"])
            seen = dict(watches[0].seen)
            lost = len(set(names) - seen.keys())
            short = short_files(watches[0], names, self.sizes["size"])
        finally:
            if server.process is None:
                server.start()
            stop_all(tool, watches)
        backlog = [seen[n] for n in names if appeared[n] < back and n in seen]
        while_down = sum(down + 1 < when < back for when in seen.values())
        return {"files": len(names), "lost": lost, "short": short, "while_down": while_down,
                "drain_s": max(0.0, max(backlog, default=back) - back)}  # fmt: skip

    def change(self, tool: Tool) -> dict | None:
        """Seconds from adding a subscriber to its first delivery, files streaming in."""
        if not tool.watches:
            return None
        source = self._source()
        rate = self.sizes["stream_rate"]
        names = source.prepare(rate * 15, self.sizes["size"], "chg")
        targets, watches = self._targets(self.servers.ftp[:2])
        try:
            tool.start(source.folder, targets[:1], also=[targets[1][0]])
            stream = threading.Thread(target=source.trickle, args=(names, rate))
            stream.start()
            time.sleep(3)
            changed = time.monotonic()
            tool.add(targets[1])
            wait_for(lambda: watches[1].seen, 120, "the first file at the added subscriber")
            first = min(watches[1].seen.values())
            stream.join()
            watches[0].wait(names, self.sizes["timeout"])
        finally:
            stop_all(tool, watches)
        return {"first_s": first - changed}

    def footprint(self, tool: Tool) -> dict | None:
        """RSS and PSS of everything the tool runs for one folder to 3 subscribers, and its
        CPU while idle (% of one core)."""
        if not tool.watches:
            return None
        source = self._source()
        targets, watches = self._targets(self.servers.ftp[:3])
        try:
            tool.start(source.folder, targets)
            time.sleep(5)
            pids = tool.pids()
            extra = tool.broker_pids() if isinstance(tool, Sr3) else []
            before = cpu_seconds(pids + extra)
            time.sleep(self.sizes["idle"])
            after = cpu_seconds(pids + extra)
            result = {
                "processes": len(pids),
                "rss_mib": sum(memory_kib(pid, "Rss") for pid in pids) / 1024,
                "pss_mib": sum(memory_kib(pid, "Pss") for pid in pids) / 1024,
                "idle_cpu_percent": 100 * (after - before) / self.sizes["idle"],
            }
            if extra:
                result["broker_rss_mib"] = sum(memory_kib(pid, "Rss") for pid in extra) / 1024
                result["broker_pss_mib"] = sum(memory_kib(pid, "Pss") for pid in extra) / 1024
        finally:
            stop_all(tool, watches)
        return result


class PeakRss(threading.Thread):
    """The highest VmHWM among the processes pids() names, sampled until stop()."""

    def __init__(self, pids) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = 0
        self.stopping = threading.Event()
        self.start()

    def run(self) -> None:
        self.sample()
        while not self.stopping.wait(0.1):
            self.sample()

    def sample(self) -> None:
        for pid in self.pids():
            self.peak = max(self.peak, peak_rss_or_zero(pid))

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        self.sample()  # the high-water mark stays while the process lives
        return self.peak


def stop_all(tool: Tool, watches: list[Arrivals]) -> None:
    tool.stop()
    for arrivals in watches:
        arrivals.stop()


def short_files(arrivals: Arrivals, names: list[str], size: int) -> int:
    """Count the delivered names whose size at the subscriber is not size."""
    folder = arrivals.folder
    short = 0
    for name in names:
        try:
            short += os.path.getsize(os.path.join(folder, name)) != size
        except FileNotFoundError:
            continue
    return short


def percentile(values: list[float], which: int) -> float:
    return values[max(0, int(len(values) * which / 100) - 1)]


def memory_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return 0


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def measure(tools: dict[str, Tool], measures: Measures, servers: Servers, only=()) -> dict:
    """Run every row (or those named in only) for every tool; return results[row][tool]."""
    ftp = servers.ftp
    rows = {
        "small_1": lambda tool: measures.many_small(tool, ftp[:1]),
        "small_1_x4": lambda tool: measures.many_small(tool, ftp[:1], **four(tool)),
        "small_3": lambda tool: measures.many_small(tool, ftp[:3]),
        "small_http": lambda tool: (
            measures.many_small(tool, [servers.web]) if isinstance(tool, Ftpdup) else None
        ),
        "latency": measures.latency,
        "big": measures.big,
        "outage": measures.outage,
        "change": measures.change,
        "footprint": measures.footprint,
    }
    results: dict = {row: {} for row in rows}
    for row, run_row in rows.items():
        if only and row not in only:
            continue
        for name, tool in tools.items():
            os.sync()
            results[row][name] = run_row(tool)
            print(f"{row} {name}: {results[row][name]}", file=sys.stderr, flush=True)
    return results


def four(tool: Tool) -> dict:
    """Each tool's way to four transfers at once (rclone's default already)."""
    if isinstance(tool, Ftpdup):
        return {"connections": 4}
    if isinstance(tool, Sr3):
        return {"instances": 4}
    return {}


# Why a tool has no figure in a row.
CANNOT = {
    ("small_http", "sr3"): "cannot: no HTTP PUT",
    ("small_http", "rclone"): "cannot: needs PROPFIND",
    ("footprint", "rclone"): "nothing resident",
}


def cell(value, pattern: str, tool: str, row: str) -> str:
    if value is None:
        return CANNOT.get((row, tool), "cannot: no watch")
    return pattern.format(**value)


# row, label, figure picked for the ratio, which way is better, how each cell is written
ROWS = (
    ("small_1", "3,000 small files to 1 FTP subscriber (files/s)", "files_s", "higher",
     "{files_s:.0f}"),
    ("small_1_x4", "the same, 4 transfers at once (files/s)", "files_s", "higher",
     "{files_s:.0f}"),
    ("small_3", "the same to 3 FTP subscribers (files/s, to the last)", "files_s", "higher",
     "{files_s:.0f}"),
    ("small_http", "the same to 1 WebDAV subscriber (files/s)", "files_s", "higher",
     "{files_s:.0f}"),
    ("latency", "latency at 10 files/s p50/p95/p99 (ms)", "p99", "lower",
     "{p50:.1f}/{p95:.1f}/{p99:.1f}"),
    ("big", "one 1 GiB file (MB/s)", "mb_s", "higher", "{mb_s:.0f}"),
    ("big", "peak RSS of one process, 1 GiB file (MiB)", "peak_rss_mib", "lower",
     "{peak_rss_mib:.0f}"),
    ("outage", "subscriber down 30 s: files lost / short", "lost", "lower",
     "{lost} / {short} of {files}"),
    ("outage", "subscriber down 30 s: its backlog delivered after its return (s)", "drain_s",
     "lower", "{drain_s:.1f}"),
    ("change", "subscriber added: first delivery (s)", "first_s", "lower", "{first_s:.1f}"),
    ("footprint", "1 folder x 3 subscribers: RSS / PSS (MiB)", "pss_mib", "lower",
     "{rss_mib:.0f} / {pss_mib:.0f}"),
    ("footprint", "the same: idle CPU over 60 s (% of a core)", "idle_cpu_percent", "lower",
     "{idle_cpu_percent:.2f}"),
)  # fmt: skip


def table(results: dict) -> list[tuple[str, ...]]:
    """Return rows: measure, ftpdup, sr3, rclone, ftpdup / best other, better."""
    lines = []
    for row, label, figure, better, pattern in ROWS:
        cells = [cell(results[row].get(tool), pattern, tool, row) for tool in TOOLS]
        if row == "footprint" and results[row].get("sr3"):
            broker = results[row]["sr3"]
            if "broker_rss_mib" in broker and "RSS" in label:
                cells[1] += " + broker {broker_rss_mib:.0f} / {broker_pss_mib:.0f}".format(**broker)
        lines.append((label, *cells, ratio(results[row], figure, better), better))
    return lines


def ratio(values: dict, figure: str, better: str) -> str:
    """ftpdup's figure over the best other tool's ("" where no other has one)."""
    own = (values.get("ftpdup") or {}).get(figure)
    others = [v[figure] for tool, v in values.items() if tool != "ftpdup" and v]
    if own is None or not others:
        return ""
    best = max(others) if better == "higher" else min(others)
    if best == 0:
        return "=" if own == 0 else "-"
    return f"{own / best:.2g}" if own / best < 0.1 else f"{own / best:.2f}"


def render(rows) -> str:
    head = ("measure", "ftpdup", "sr3", "rclone", "ftpdup / best other", "better")
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


MARK = run.PEERS_MARK


def docs_section(results: dict, text: str) -> str:
    return f"""{MARK}
The latest run of `bench/peers.py`: the same work for ftpdup, MetPX
Sarracenia sr3 {results["sr3_version"]} (a watch posting to RabbitMQ
{results["rabbitmq_version"]}, one sender per subscriber) and rclone
{results["rclone_version"]}, against the same vsftpd and nginx subscribers,
in one run. Files appear in the watched folder by rename; rclone has no
watch, so its rates run from the start of `rclone copy` and its rows that
need a watch say so. See `bench/README.md` for each tool's settings and what
the rows where ftpdup trails come from.

Machine: {results["machine"]}; {results["date"]}.

{text}
"""


def versions() -> dict:
    rclone = subprocess.run(["rclone", "version"], capture_output=True, text=True).stdout
    rabbit = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "rabbitmq-server"],
                            capture_output=True, text=True).stdout  # fmt: skip
    return {"sr3_version": SR3_VERSION, "rclone_version": rclone.split()[1] if rclone else "?",
            "rabbitmq_version": rabbit.split("-")[0] or "?"}  # fmt: skip


def main(arguments: argparse.Namespace) -> dict:
    sizes = TINY if arguments.tiny else FULL
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # servers stop on the way out
    install_sr3()
    base = tempfile.mkdtemp(prefix="ftpdup-peers-")
    os.chmod(base, 0o755)
    servers = Servers(base, sizes)
    tools: dict[str, Tool] = {}
    try:
        tools = {"ftpdup": Ftpdup(base), "sr3": Sr3(base), "rclone": Rclone(base)}
        only = [row for row in arguments.only.split(",") if row]
        results = measure(tools, Measures(base, servers, sizes), servers, only)
    finally:
        for tool in tools.values():
            tool.stop()
        if isinstance(tools.get("sr3"), Sr3):
            tools["sr3"].close()
        servers.close()
        shutil.rmtree(base, ignore_errors=True)
    results.update(versions())
    results["machine"] = machine()
    results["date"] = time.strftime("%Y-%m-%d")
    results["sizes"] = sizes
    return results


def write_docs(results: dict, text: str) -> None:
    """Replace the peers section of docs/benchmarks.md (the rest is bench/run.py's)."""
    path = os.path.join(HERE, "..", "docs", "benchmarks.md")
    with open(path) as handle:
        page = handle.read().split(MARK)[0].rstrip("\n") + "\n"
    with open(path, "w") as handle:
        handle.write(page + docs_section(results, text))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds' worth (CI)")
    parser.add_argument("--docs", action="store_true", help="rewrite the peers section of "
                        "docs/benchmarks.md")  # fmt: skip
    parser.add_argument("--only", default="", help="some rows, e.g. small_1,latency (tries)")
    parser.add_argument("--output", default=os.path.join(HERE, "results", "peers.json"))
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
        write_docs(results, text)
