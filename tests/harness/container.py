"""A real systemd: a Debian 12 root filesystem booted with systemd-nspawn.

The container shares the host's network (servers on 127.0.0.1 are reachable
both ways); ``--volatile=overlay`` throws away every change at shutdown.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from tests.harness.consul_agent import REPOSITORY
from tests.harness.procs import Process, wait_for

PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"


def rootfs() -> str:
    """Return the cached root filesystem, building it if needed (scripts/build-rootfs)."""
    script = os.path.join(REPOSITORY, "scripts", "build-rootfs")
    done = subprocess.run([script], check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]


CGROUP_HIERARCHIES = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")


class Container:
    """One booted container; ``run`` executes commands inside it."""

    def __init__(self, workdir: str, name: str = "ftpdup-test", directory: str = "",
                 bridge: str = "") -> None:  # fmt: skip
        """directory: a root filesystem of its own, kept across boots (default: the cached
        one, every change thrown away). bridge: a network of its own, on that bridge
        (default: the host's network)."""
        self.workdir = workdir
        self.name = name
        self.directory = directory
        self.bridge = bridge
        self.process: Process | None = None
        self.leader = 0

    def boot(self) -> Container:
        subprocess.run([os.path.join(REPOSITORY, "scripts", "nspawn-prepare")], check=True)
        argv = [
            "systemd-nspawn",
            "-D",
            self.directory or rootfs(),
            "-M",
            self.name,
            "--register=no",
            "--keep-unit",
            "-b",
            "--console=passive",
        ]
        argv += [] if self.directory else ["--volatile=overlay"]
        argv += [f"--network-bridge={self.bridge}"] if self.bridge else []
        if self.directory:
            argv = self._own_cgroups(argv)
        self.process = Process(argv, os.path.join(self.workdir, f"nspawn-{self.name}.log"))
        self.leader = wait_for(self._leader, 60, "the container's init")
        wait_for(self._booted, 120, "the container to finish booting", interval=0.2)
        return self

    def _own_cgroups(self, argv: list[str]) -> list[str]:
        """Return argv run in cgroups of its own: with --keep-unit, containers started from
        one process share its cgroups, and their systemds would manage the same units'."""
        moves = []
        for hierarchy in CGROUP_HIERARCHIES:
            folder = os.path.join(hierarchy, f"ftpdup-{self.name}")
            if os.path.isdir(hierarchy):
                os.makedirs(folder, exist_ok=True)
                moves.append(f"echo $$ > {folder}/cgroup.procs")
        return ["sh", "-c", " && ".join([*moves, 'exec "$@"']), "sh", *argv]

    def _leader(self) -> int:
        assert self.process is not None
        if not self.process.alive():
            raise RuntimeError(f"systemd-nspawn exited:\n{self.process.output()[-3000:]}")
        found = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout.split()
        # nspawn's own helper child comes and goes first: the leader is PID 1 inside.
        return next((int(pid) for pid in found if _pid_inside(int(pid)) == 1), 0)

    def _booted(self) -> bool:
        state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")

    def run(self, *argv: str, check: bool = True, input: str | None = None, timeout: float = 300):
        """Run argv inside the container; return the CompletedProcess (text)."""
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "env", "-i", PATH, *argv],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def path(self, inside: str) -> str:
        """Return the host path of a path inside the container."""
        return f"/proc/{self.leader}/root{inside}"

    def copy_in(self, source: str, destination: str) -> None:
        """Copy source (a file, or a tree without its build leftovers) to destination inside.
        A tree's top is made readable by all (a checkout may be 0700): workers read it."""
        target = self.path(destination)
        if os.path.isdir(source):
            shutil.copytree(
                source,
                target,
                symlinks=True,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(
                    ".git", ".venv", "__pycache__", "*.egg-info", "build"
                ),
            )
            os.chmod(target, 0o755)
        else:
            shutil.copy2(source, target)

    def write(self, inside: str, text: str, mode: int = 0o644) -> None:
        target = self.path(inside)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as handle:
            handle.write(text)
        os.chmod(target, mode)

    # systemd's view -----------------------------------------------------------------

    def is_active(self, unit: str) -> str:
        return self.run("systemctl", "is-active", unit, check=False).stdout.strip()

    def show(self, unit: str, prop: str) -> str:
        return self.run("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()

    def main_pid(self, unit: str) -> int:
        return int(self.show(unit, "MainPID") or 0)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout

    def units(self, pattern: str = "ftpdup*") -> dict[str, str]:
        """Return {unit: ActiveState} of loaded units matching pattern."""
        out = self.run(
            "systemctl", "list-units", "--all", "--plain", "--no-legend", pattern, check=False
        ).stdout
        return {line.split()[0]: line.split()[2] for line in out.splitlines() if line.strip()}

    def kill(self) -> None:
        """Crash the container: SIGKILL its init (everything in it dies at once)."""
        if self.process is not None and self.leader:
            os.kill(self.leader, signal.SIGKILL)
            wait_for(lambda: not self.process.alive(), 30, f"{self.name} to die")
        self.process = None
        self.leader = 0

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.alive() and self.leader:
            self.run("systemctl", "poweroff", "--no-block", check=False, timeout=30)
            deadline = time.monotonic() + 30
            while self.process.alive() and time.monotonic() < deadline:
                time.sleep(0.2)
        self.process.stop()
        self.process = None


def _pid_inside(pid: int) -> int:
    """Return the PID that pid has in its own PID namespace (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            line = next(line for line in handle if line.startswith("NSpid:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[-1])
