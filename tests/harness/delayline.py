"""A host behind a link with a round-trip delay: a network namespace reached through two TUN
devices and a relay that holds every packet for half the delay each way.

The kernel here has no netem, so the delay is made in user space: this is a
link emulator, the servers behind it are real. Run as a module it is the
relay: ``python -m tests.harness.delayline NAMESPACE NUMBER DELAY_MS``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import heapq
import os
import select
import struct
import subprocess
import sys
import time

from tests.harness.netns import Namespace
from tests.harness.procs import Process, wait_for

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000


class DelayedNamespace(Namespace):
    """A namespace at 10.201.N.2, a round trip of delay_ms away from the host (10.201.N.1)."""

    def __init__(self, delay_ms: float, workdir: str) -> None:
        super().__init__()
        self.delay_ms = delay_ms
        self.workdir = workdir
        self.address = f"10.201.{self.number}.2"
        self.relay: Process | None = None

    def create(self) -> DelayedNamespace:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        argv = [sys.executable, "-m", "tests.harness.delayline", self.name, str(self.number),
                str(self.delay_ms)]  # fmt: skip
        log = os.path.join(self.workdir, f"delayline-{self.number}.log")
        self.relay = Process(argv, log, env={**os.environ, "PYTHONPATH": _top()})
        wait_for(lambda: _has_address(self.name, self.address), 20, "the delayed link")
        return self

    def delete(self) -> None:
        super().delete()
        if self.relay is not None:
            self.relay.stop()
            self.relay = None


def _top() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _has_address(namespace: str, address: str) -> bool:
    shown = subprocess.run(["ip", "-n", namespace, "-br", "addr"], capture_output=True, text=True)
    return f"{address}/" in shown.stdout or f"{address} " in shown.stdout


def _open_tun(name: str) -> int:
    descriptor = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(descriptor, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return descriptor


def _enter(namespace: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    descriptor = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
    if libc.setns(descriptor, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(descriptor)


def relay(namespace: str, number: int, delay_ms: float) -> None:
    """Create both ends of the link, then hold each packet delay_ms / 2 before passing it on."""
    outside_name, inside_name = f"fdd{number}o", f"fdd{number}i"
    outside = _open_tun(outside_name)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    _enter(namespace)
    inside = _open_tun(inside_name)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns(home, CLONE_NEWNET)
    subnet = f"10.201.{number}"
    for argv in (
        ["ip", "addr", "add", f"{subnet}.1", "peer", f"{subnet}.2", "dev", outside_name],
        ["ip", "link", "set", outside_name, "up"],
        ["ip", "-n", namespace, "addr", "add", f"{subnet}.2", "peer", f"{subnet}.1", "dev",
         inside_name],
        ["ip", "-n", namespace, "link", "set", inside_name, "up"],
    ):  # fmt: skip
        subprocess.run(argv, check=True)
    other = {outside: inside, inside: outside}
    hold = delay_ms / 2000
    queue: list[tuple[float, int, int, bytes]] = []
    sequence = 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([outside, inside], [], [], timeout)
        now = time.monotonic()
        for descriptor in readable:
            while True:
                try:
                    packet = os.read(descriptor, 65536)
                except BlockingIOError:
                    break
                sequence += 1
                heapq.heappush(queue, (now + hold, sequence, other[descriptor], packet))
        while queue and queue[0][0] <= time.monotonic():
            _, _, descriptor, packet = heapq.heappop(queue)
            with contextlib.suppress(OSError):  # a full queue drops it, as a link would
                os.write(descriptor, packet)


if __name__ == "__main__":
    relay(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
