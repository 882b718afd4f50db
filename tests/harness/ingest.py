"""The lanes' FTP ingest: a real vsftpd with ftpdup's own configuration, and lane users."""

from __future__ import annotations

import ftplib
import os
import pwd
import random
import subprocess
from contextlib import suppress

from ftpdup.host.vsftpd import VsftpdOptions, render_config, render_pam
from tests.harness.procs import Process, free_port, free_port_run, port_open, wait_for


class VsftpdIngest:
    """vsftpd listening on 127.0.0.1, admitting only the lane users added to it."""

    def __init__(
        self,
        workdir: str,
        tls: tuple[str, str] | None = None,
        tls_required: bool = False,
        passive_ports: int = 20,
    ) -> None:
        """tls = (certificate, key) offers explicit TLS; tls_required refuses plain FTP.

        passive_ports is the size of the passive range (a busy benchmark needs more).
        """
        self.workdir = workdir
        self.passive_ports = passive_ports
        self.tls = tls
        self.tls_required = tls_required
        self.port = free_port()
        self.userlist = os.path.join(workdir, f"vsftpd-{self.port}.users")
        self.config = os.path.join(workdir, f"vsftpd-{self.port}.conf")
        self.users: dict[str, str] = {}
        self.process: Process | None = None
        self.pam_service = f"ftpdup-test-{self.port}"

    def start(self) -> VsftpdIngest:
        with open(f"/etc/pam.d/{self.pam_service}", "w") as pam:
            pam.write(render_pam(debian=os.path.exists("/etc/debian_version")))
        pasv = free_port_run(self.passive_ports)
        options = VsftpdOptions(
            listen_port=self.port,
            listen_address="127.0.0.1",
            pasv_min_port=pasv,
            pasv_max_port=pasv + self.passive_ports - 1,
            userlist_file=self.userlist,
            pam_service=self.pam_service,
            log_file=os.path.join(self.workdir, f"vsftpd-transfers-{self.port}.log"),
            ssl_cert_file=self.tls[0] if self.tls else "",
            ssl_key_file=self.tls[1] if self.tls else "",
            ssl_required=self.tls_required,
        )
        with open(self.config, "w") as config:
            config.write(render_config(options))
        self._write_userlist()
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        log = os.path.join(self.workdir, f"vsftpd-{self.port}.log")
        self.process = Process(["vsftpd", self.config], log)
        wait_for(self._listening, 20, "vsftpd to listen")
        return self

    def _listening(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"vsftpd exited:\n{self.process.output()[-2000:]}")
        return port_open(self.port)

    def _write_userlist(self) -> None:
        with open(self.userlist, "w") as handle:
            handle.write("".join(f"{user}\n" for user in sorted(self.users)))

    def add_lane_user(self, home: str, password: str) -> tuple[str, int]:
        """Create a Unix account for a lane (nologin shell, home = lane dir); return (name, uid)."""
        name = f"fdt{random.randrange(16**6):06x}"
        uid = next(
            u for u in iter(lambda: random.randrange(20000, 60000), None) if not _uid_used(u)
        )
        os.makedirs(home, exist_ok=True)
        subprocess.run(
            [
                "useradd",
                "--uid",
                str(uid),
                "--home-dir",
                home,
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--no-user-group",
                "--gid",
                "users",
                name,
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        os.chown(home, uid, -1)
        os.chmod(home, 0o770)
        self.users[name] = password
        self._write_userlist()
        return name, uid

    def login(self, user: str) -> ftplib.FTP:
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", self.port, timeout=30)
        ftp.login(user, self.users[user])
        ftp.set_pasv(True)
        return ftp

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        for user in self.users:
            subprocess.run(["userdel", user], capture_output=True)
        with suppress(FileNotFoundError):
            os.unlink(f"/etc/pam.d/{self.pam_service}")


def _uid_used(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False
