"""ftpdup installed from this checkout into a container booted with systemd-nspawn."""

from __future__ import annotations

import pytest

from tests.harness.consul_agent import REPOSITORY, ConsulAgent
from tests.harness.container import Container
from tests.harness.procs import free_port, wait_for
from tests.harness.system_world import SystemWorld

COLLECTD_SERVICE = "ftpdup-test-collectd"
SETTINGS = """\
[ftpdup]
consul_url = {consul_url}
key_prefix = {prefix}
log_level = info
restart_period = {restart_period}
restart_variance = 1
stop_timeout = 20
retry_max_delay = 2
collectd_service = {collectd_service}
collectd_hostname = ftpdup-system-test
collectd_config = /etc/collectd/collectd.conf.d/ftpdup.conf

[vsftpd]
listen_address = 127.0.0.1
listen_port = {ftp_port}
pasv_min_port = {pasv}
pasv_max_port = {pasv_max}
"""


def raise_inotify_instances(wanted: int) -> None:
    path = "/proc/sys/fs/inotify/max_user_instances"
    with open(path) as handle:
        current = int(handle.read())
    if current < wanted:
        with open(path, "w") as handle:
            handle.write(str(wanted))


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
    # Every worker holds an inotify instance as the ftpdup user, which the
    # container shares with the host: raise the per-user limit as the
    # package's sysctl.d file does on a real host (/proc/sys is read-only inside).
    raise_inotify_instances(8192)
    try:
        box.boot()
        box.copy_in(REPOSITORY, "/opt/ftpdup/src")
        box.run("/opt/ftpdup/src/scripts/install-from-checkout")
        pasv = free_port()
        box.ftp_port = free_port()
        prefix = "ftpdup-system"
        system_consul.put(f"{prefix}/incoming_directories/", None)
        box.write(
            "/etc/ftpdup/ftpdup.conf",
            SETTINGS.format(
                consul_url=system_consul.url,
                prefix=prefix,
                restart_period=3000,
                ftp_port=box.ftp_port,
                collectd_service=COLLECTD_SERVICE,
                pasv=pasv,
                pasv_max=pasv + 10,
            ),
        )
        # collectd (Debian's collectd-core) reads ftpdup's file and little else.
        box.write(
            "/etc/collectd/collectd.conf",
            'Interval 1\nInclude "/etc/collectd/collectd.conf.d/*.conf"\n',
        )
        box.run("systemctl", "enable", "--now", "ftpdup.target")
        wait_for(lambda: box.is_active("ftpdup-watch.service") == "active", 60, "ftpdup-watch")
        wait_for(lambda: box.is_active("ftpdup-vsftpd.service") == "active", 60, "vsftpd")
        box.prefix = prefix
        yield box
    finally:
        box.stop()


@pytest.fixture
def world(container, system_consul, base_dir):
    test_world = SystemWorld(container, system_consul, base_dir)
    try:
        yield test_world
    finally:
        test_world.close()
