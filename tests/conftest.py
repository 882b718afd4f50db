"""Session-wide real components: one Consul agent and one vsftpd, shared by the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from tests.harness.consul_agent import ConsulAgent, consul_binary
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


@pytest.fixture(scope="session")
def certificates(tmp_path_factory) -> dict[str, str]:
    """A private CA, a server certificate (for 127.0.0.1 and localhost) and a client
    certificate made by ``consul tls``, and another CA that signed neither."""
    folder = tmp_path_factory.mktemp("tls")
    for command in (["ca", "create"], ["cert", "create", "-server"], ["cert", "create", "-client"]):
        subprocess.run(
            [consul_binary(), "tls", *command], cwd=folder, check=True, capture_output=True
        )
    other = tmp_path_factory.mktemp("other-ca")
    subprocess.run(
        [consul_binary(), "tls", "ca", "create"], cwd=other, check=True, capture_output=True
    )
    return {
        "ca": str(folder / "consul-agent-ca.pem"),
        "server": str(folder / "dc1-server-consul-0.pem"),
        "server_key": str(folder / "dc1-server-consul-0-key.pem"),
        "client": str(folder / "dc1-client-consul-0.pem"),
        "client_key": str(folder / "dc1-client-consul-0-key.pem"),
        "other_ca": str(other / "consul-agent-ca.pem"),
    }
