"""The RPM built from this checkout, and a booted container to install it into."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.harness.consul_agent import REPOSITORY, ConsulAgent
from tests.harness.container import Container
from tests.harness.installed import raise_inotify_instances


def build_rpm(release: int, folder: str) -> str:
    """Build the RPM with scripts/build-rpm; return its path."""
    script = os.path.join(REPOSITORY, "scripts", "build-rpm")
    done = subprocess.run(
        [script, "--release", str(release), folder], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def rpms(base_dir) -> dict[int, str]:
    """Release 1 and release 2 of the package (the second for the upgrade)."""
    folder = os.path.join(base_dir, "rpms")
    return {release: build_rpm(release, folder) for release in (1, 2)}


@pytest.fixture(scope="session")
def package_consul(base_dir):
    agent = ConsulAgent(base_dir, name="package")
    try:
        yield agent.start()
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def bare_container(base_dir):
    """A booted container where ftpdup is not installed (only the distribution's packages)."""
    raise_inotify_instances(8192)
    box = Container(base_dir, name="ftpdup-package")
    try:
        yield box.boot()
    finally:
        box.stop()
