"""ftpdup's workers as plain processes, started from what is in Consul.

This stands in for the manager: it reads Consul with ftpdup's own Consul
source, computes the desired workers with ftpdup's own logic, writes their
specs and runs ``python -m ftpdup sprinkler|carrier`` for each.
"""

from __future__ import annotations

import os
import sys

from ftpdup import consul_source, specs
from ftpdup.config.names import systemd_escape
from ftpdup.desired import Desired, desired_state
from ftpdup.settings import Settings
from tests.harness.procs import Process


class Pipeline:
    """Sprinkler and carrier processes for one Consul prefix and data root."""

    def __init__(self, consul_url: str, prefix: str, data_root: str, workdir: str, **settings):
        self.settings = Settings(
            consul_url=consul_url, key_prefix=prefix, data_root=data_root, **settings
        )
        self.workdir = workdir
        self.spec_dir = os.path.join(workdir, "specs")
        self.processes: dict[str, Process] = {}
        self.desired: Desired | None = None

    def read(self) -> Desired:
        """Return the desired workers for what Consul holds now."""
        client = consul_source.connect(self.settings.consul_url)
        snapshot = consul_source.load(client, self.settings.key_prefix)
        assert not snapshot.config.errors(), snapshot.config.errors()
        self.desired = desired_state(snapshot, self.settings)
        return self.desired

    def start(self) -> Pipeline:
        """Start one process per desired worker (carriers first, then sprinklers)."""
        desired = self.read()
        for instance, spec in desired.carriers.items():
            self.start_worker("carrier", instance, spec)
        for lane, spec in desired.sprinklers.items():
            self.start_worker("sprinkler", lane, spec)
        return self

    def reconcile(self) -> None:
        """Do what the manager does when Consul changes: start new workers, stop gone ones,
        restart those whose spec changed (the sprinkler last)."""
        before = self.desired
        assert before is not None
        after = self.read()
        for kind, old, new in (("carrier", before.carriers, after.carriers),
                               ("sprinkler", before.sprinklers, after.sprinklers)):  # fmt: skip
            for name in set(old) - set(new):
                self.processes.pop(f"{kind}:{name}").stop()
            for name, spec in new.items():
                if old.get(name) != spec:
                    if name in old:
                        self.worker(kind, name).stop()
                    self.start_worker(kind, name, spec)

    def start_worker(self, kind: str, name: str, spec) -> Process:
        process = start_worker(kind, name, spec, self.spec_dir, self.workdir, "debug")
        self.processes[f"{kind}:{name}"] = process
        return process

    def worker(self, kind: str, name: str) -> Process:
        return self.processes[f"{kind}:{name}"]

    def restart_worker(self, kind: str, name: str, kill: bool = False) -> Process:
        process = self.worker(kind, name)
        process.kill() if kill else process.stop()
        assert self.desired is not None
        spec = (self.desired.sprinklers if kind == "sprinkler" else self.desired.carriers)[name]
        return self.start_worker(kind, name, spec)

    def logs(self) -> str:
        return "\n".join(
            f"==== {key}\n{process.output()[-3000:]}" for key, process in self.processes.items()
        )

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()


def start_worker(kind: str, name: str, spec, spec_dir: str, log_dir: str, level: str) -> Process:
    """Write spec (root-only) into spec_dir and start the worker on it, logging at level
    into log_dir/KIND-NAME.log."""
    os.makedirs(spec_dir, exist_ok=True)
    path = os.path.join(spec_dir, f"{kind}-{name}.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(specs.to_json(spec))
    argv = [sys.executable, "-m", "ftpdup", "--log-level", level, kind, systemd_escape(name),
            "--spec", path]  # fmt: skip
    log = os.path.join(log_dir, f"{kind}-{name}.log")
    return Process(argv, log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
