"""A separate host for a subscriber: a network namespace behind a veth, optionally a slow link.

The namespace gets 10.200.N.2, the host side 10.200.N.1; servers started in
it are reachable from the host and from the test container (which shares
the host's network). ``tc tbf`` on the host side shapes what is sent to the
namespace: a WAN link of about ``rate`` bytes per second.
"""

from __future__ import annotations

import itertools
import os
import subprocess

from tests.harness.procs import Process

_numbers = itertools.count(int.from_bytes(os.urandom(1), "big") % 200 + 20)


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


class Namespace:
    """One network namespace with one veth pair to the host."""

    def __init__(self) -> None:
        self.number = next(_numbers)
        self.name = f"ftpdup-t{self.number}"
        self.outside = f"vfd{self.number}o"
        self.inside = f"vfd{self.number}i"
        self.address = f"10.200.{self.number}.2"
        self.processes: list[Process] = []

    def create(self) -> Namespace:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        _ip("netns", "add", self.name)
        _ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
        _ip("link", "set", self.inside, "netns", self.name)
        _ip("addr", "add", f"10.200.{self.number}.1/24", "dev", self.outside)
        _ip("link", "set", self.outside, "up")
        inside = ["-n", self.name]
        _ip(*inside, "addr", "add", f"{self.address}/24", "dev", self.inside)
        _ip(*inside, "link", "set", self.inside, "up")
        _ip(*inside, "link", "set", "lo", "up")
        return self

    def shape(self, bytes_per_second: int) -> None:
        """Limit what the host sends into the namespace to about bytes_per_second."""
        rate = f"{bytes_per_second * 8 // 1000}kbit"
        subprocess.run(
            ["tc", "qdisc", "replace", "dev", self.outside, "root", "tbf", "rate", rate,
             "burst", "64kbit", "latency", "500ms"],
            check=True,
            capture_output=True,
        )  # fmt: skip

    def unshape(self) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", self.outside, "root"], capture_output=True)

    def start(self, argv: list[str], log_path: str) -> Process:
        """Start argv inside the namespace; it is stopped with the namespace."""
        process = Process(["ip", "netns", "exec", self.name, *argv], log_path)
        self.processes.append(process)
        return process

    def delete(self) -> None:
        for process in self.processes:
            process.stop()
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True)
