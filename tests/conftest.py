"""Session-wide real components: one Consul agent and one vsftpd, shared by the tests."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.harness.consul_agent import ConsulAgent
from tests.harness.ingest import VsftpdIngest


@pytest.fixture(scope="session")
def base_dir():
    """A world-readable scratch directory (lane homes must be reachable by their users)."""
    path = tempfile.mkdtemp(prefix="ftpdup-tests-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def consul_agent(base_dir):
    agent = ConsulAgent(base_dir)
    try:
        yield agent.start()
    finally:
        agent.stop()


@pytest.fixture(scope="session")
def ingest(base_dir):
    server = VsftpdIngest(base_dir)
    try:
        yield server.start()
    finally:
        server.stop()
