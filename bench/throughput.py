"""Throughput of one lane to an FTP and an HTTP subscriber, and the workers' memory.

Real components on loopback (Consul, vsftpd, pyftpdlib, WsgiDAV), ftpdup's
workers as processes. Run as root: ``.venv/bin/python bench/throughput.py``.
Prints one row per file size: files, bytes, seconds from the first upload to
the last delivery at both subscribers, files/s, MB/s, peak RSS of each worker.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import contextlib

from tests.harness.consul_agent import ConsulAgent
from tests.harness.ingest import VsftpdIngest
from tests.harness.world import World

CASES = [(2000, 1024), (200, 1024 * 1024), (4, 256 * 1024 * 1024)]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class PeakRss(threading.Thread):
    """Sample the RSS of some processes until stopped; keep the peak of each."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            for key, pid in self.pids.items():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    self.peak[key] = max(self.peak[key], rss_kib(pid))


def sparse_upload(world: World, lane: str, count: int, size: int) -> dict[str, bytes]:
    """Return the files uploaded (random content, the same block repeated for big ones)."""
    block = os.urandom(min(size, 1024 * 1024))
    files = {f"b{size}-{n:05d}.bin": block * (size // len(block)) for n in range(count)}
    world.upload(lane, files)
    return files


def main() -> None:
    base = tempfile.mkdtemp(prefix="ftpdup-bench-")
    os.chmod(base, 0o755)
    agent = ConsulAgent(base, name="bench").start()
    ingest = VsftpdIngest(base).start()
    print(f"{'files':>6} {'size':>10} {'seconds':>8} {'files/s':>8} {'MB/s':>7}  peak RSS (MiB)")
    try:
        for count, size in CASES:
            world = World(agent, ingest, base)
            try:
                world.add_lane("bench")
                world.add_ftp_subscriber("bench", "ftp")
                world.add_http_subscriber("bench", "http")
                pipeline = world.start()
                time.sleep(1.0)
                sampler = PeakRss({key: p.pid for key, p in pipeline.processes.items()})
                sampler.start()
                started = time.monotonic()
                files = sparse_upload(world, "bench", count, size)
                world.wait_delivered("bench", files, timeout=1800)
                seconds = time.monotonic() - started
                sampler.done.set()
                total = count * size
                peaks = " ".join(
                    f"{k.split(':', 1)[0]}={v / 1024:.0f}" for k, v in sampler.peak.items()
                )
                print(
                    f"{count:>6} {size:>10} {seconds:>8.2f} {count / seconds:>8.1f} "
                    f"{total / seconds / 1e6:>7.1f}  {peaks}",
                    flush=True,
                )
            finally:
                world.close()
                shutil.rmtree(world.root, ignore_errors=True)
    finally:
        ingest.stop()
        agent.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
