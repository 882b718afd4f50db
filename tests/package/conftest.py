"""The RPMs built from this checkout for EL9, and a booted container to install them into.

The RPMs are built with EL9's systemd macros (stand-ins, tests/package/el9):
their scriptlets are the ones an EL9 build has. The container is made to
look like EL9 to dnf (tests.harness.el9): dnf installs the RPMs there,
resolving their requirements against stand-ins of EL9's packages.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.harness import el9
from tests.harness.consul_agent import REPOSITORY, ConsulAgent
from tests.harness.container import Container
from tests.harness.installed import raise_inotify_instances


def build_rpm(release: int, folder: str) -> str:
    """Build the RPMs with scripts/build-rpm and EL9's systemd macros; return the path of
    ftpdup's."""
    script = os.path.join(REPOSITORY, "scripts", "build-rpm")
    done = subprocess.run(
        [script, "--release", str(release), "--load", el9.MACROS, folder],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def rpms(base_dir) -> dict[int, str]:
    """Release 1 and release 2 of the package (the second for the upgrade)."""
    folder = os.path.join(base_dir, "rpms")
    return {release: build_rpm(release, folder) for release in (1, 2)}


@pytest.fixture(scope="session")
def el9_repository(base_dir) -> str:
    """The repository of EL9 stand-in packages."""
    return el9.build_repository(os.path.join(base_dir, "el9-standins"))


@pytest.fixture(scope="session")
def package_consul(base_dir):
    agent = ConsulAgent(base_dir, name="package")
    try:
        yield agent.start()
    finally:
        agent.stop()


@pytest.fixture(scope="module")
def bare_container(base_dir, el9_repository):
    """A booted container where ftpdup is not installed, that dnf sees as EL9."""
    raise_inotify_instances(8192)
    box = Container(base_dir, name="ftpdup-package")
    try:
        el9.prepare(box.boot(), el9_repository)
        yield box
    finally:
        box.stop()
