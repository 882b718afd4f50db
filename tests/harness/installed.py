"""ftpdup installed from this checkout into a booted container, enabled, pointed at Consul.

Shared by the system tests and the benchmarks.
"""

from __future__ import annotations

from tests.harness.consul_agent import REPOSITORY, ConsulAgent
from tests.harness.container import Container
from tests.harness.procs import free_port, wait_for

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
    """Raise this host's per-user inotify instances to wanted, as the package's sysctl does.

    Every worker holds one, all as the ftpdup user, which the container
    shares with the host; /proc/sys is read-only inside the container.
    """
    path = "/proc/sys/fs/inotify/max_user_instances"
    with open(path) as handle:
        current = int(handle.read())
    if current < wanted:
        with open(path, "w") as handle:
            handle.write(str(wanted))


def install(
    box: Container,
    agent: ConsulAgent,
    prefix: str,
    collectd_service: str = "",
    restart_period: int = 3000,
    extra_settings: str = "",
) -> Container:
    """Install ftpdup into the booted box from this checkout, configure it and start it.

    extra_settings are more lines of the [ftpdup] section. Sets ``box.prefix``
    (the Consul prefix, created empty) and ``box.ftp_port``.
    """
    raise_inotify_instances(8192)
    box.copy_in(REPOSITORY, "/opt/ftpdup/src")
    box.run("/opt/ftpdup/src/scripts/install-from-checkout")
    pasv = free_port()
    box.ftp_port = free_port()
    agent.put(f"{prefix}/incoming_directories/", None)
    box.write(
        "/etc/ftpdup/ftpdup.conf",
        SETTINGS.format(
            consul_url=agent.url,
            prefix=prefix,
            restart_period=restart_period,
            ftp_port=box.ftp_port,
            collectd_service=collectd_service,
            pasv=pasv,
            pasv_max=pasv + 10,
        ).replace("[ftpdup]\n", f"[ftpdup]\n{extra_settings}"),
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
    return box
