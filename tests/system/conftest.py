"""ftpdup installed from this checkout into a container booted with systemd-nspawn."""

from __future__ import annotations

import pytest

from tests.harness.consul_agent import ConsulAgent
from tests.harness.container import Container
from tests.harness.installed import install
from tests.harness.system_world import SystemWorld

COLLECTD_SERVICE = "ftpdup-test-collectd"


@pytest.fixture(scope="session")
def system_consul(base_dir):
    """A Consul agent of the system tests' own (one test stops and restarts it)."""
    agent = ConsulAgent(base_dir, name="system")
    try:
        yield agent.start()
    finally:
        agent.stop()


@pytest.fixture(scope="session")
def container(base_dir, system_consul):
    """A booted container with ftpdup installed, enabled and pointed at system_consul."""
    box = Container(base_dir, name="ftpdup-system")
    try:
        yield install(box.boot(), system_consul, "ftpdup-system", COLLECTD_SERVICE)
    finally:
        box.stop()


@pytest.fixture
def world(container, system_consul, base_dir):
    test_world = SystemWorld(container, system_consul, base_dir)
    try:
        yield test_world
    finally:
        test_world.close()
