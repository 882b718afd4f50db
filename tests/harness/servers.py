"""More real subscriber servers: nginx with WebDAV (HTTP and HTTPS) and vsftpd (FTP and FTPS).

Each runs as a separate process on loopback with its own configuration
file, written by the test; vsftpd gets a Unix account made for the test.
"""

from __future__ import annotations

import os
import pwd
import random
import signal
import subprocess
from contextlib import suppress

from ftpdup.host.vsftpd import render_pam
from tests.harness.procs import Process, free_port, free_port_run, port_open, wait_for


class NginxDav:
    """nginx serving root with WebDAV PUT, DELETE, MKCOL, COPY and MOVE.

    tls = (certificate, key) serves HTTPS; client_ca also asks the client for
    a certificate signed by it. basic_auth = (user, password) requires it.
    read_only refuses every write with 403.
    """

    def __init__(
        self,
        root: str,
        workdir: str,
        tls: tuple[str, str] | None = None,
        client_ca: str = "",
        basic_auth: tuple[str, str] | None = None,
        read_only: bool = False,
    ) -> None:
        self.root = root
        self.workdir = os.path.join(workdir, f"nginx-{free_port()}")
        self.port = free_port()
        self.tls = tls
        self.client_ca = client_ca
        self.basic_auth = basic_auth
        self.read_only = read_only
        self.process: Process | None = None
        os.makedirs(root, exist_ok=True)
        os.makedirs(os.path.join(self.workdir, "body"), exist_ok=True)

    def _config(self) -> str:
        listen = f"127.0.0.1:{self.port}" + (" ssl" if self.tls else "")
        server = [f"listen {listen};", f"root {self.root};", "client_max_body_size 0;"]
        if self.tls:
            server += [f"ssl_certificate {self.tls[0]};", f"ssl_certificate_key {self.tls[1]};"]
        if self.client_ca:
            server += [f"ssl_client_certificate {self.client_ca};", "ssl_verify_client on;"]
        location = ["dav_methods PUT DELETE MKCOL COPY MOVE;", "create_full_put_path off;"]
        if self.basic_auth:
            htpasswd = os.path.join(self.workdir, "htpasswd")
            hashed = subprocess.run(
                ["openssl", "passwd", "-6", self.basic_auth[1]],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            with open(htpasswd, "w") as handle:
                handle.write(f"{self.basic_auth[0]}:{hashed}\n")
            location += ['auth_basic "subscriber";', f"auth_basic_user_file {htpasswd};"]
        if self.read_only:
            location += ["limit_except GET HEAD { deny all; }"]
        server.append("location / { " + " ".join(location) + " }")
        return f"""
daemon off;
user root;
worker_processes 1;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/error.log;
events {{ worker_connections 1024; }}
http {{
    log_format probe '$remote_addr - $remote_user [$time_local] "$request" $status '
                     '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_injected"';
    access_log {self.workdir}/access.log probe;
    client_body_temp_path {self.workdir}/body;
    server {{ {" ".join(server)} }}
}}
"""

    def start(self) -> NginxDav:
        config = os.path.join(self.workdir, "nginx.conf")
        with open(config, "w") as handle:
            handle.write(self._config())
        self.process = Process(["nginx", "-c", config], os.path.join(self.workdir, "out.log"))
        wait_for(lambda: self._listening(), 20, f"nginx on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"nginx exited:\n{self.process.output()[-2000:]}")
        return port_open(self.port)

    def log_lines(self) -> list[str]:
        """Return the access log's lines (the last field: the request's X-Injected header)."""
        with open(os.path.join(self.workdir, "access.log"), errors="replace") as handle:
            return handle.read().splitlines()

    def requests(self, method: str, succeeded: bool = False) -> list[str]:
        """Return the paths of the requests of method in the access log (only 2xx: succeeded)."""
        paths = []
        with open(os.path.join(self.workdir, "access.log"), errors="replace") as handle:
            for line in handle:
                parts = line.split('"')
                if len(parts) > 2 and parts[1].startswith(f"{method} "):
                    status = parts[2].split()[0]
                    if not succeeded or status.startswith("2"):
                        paths.append(parts[1].split()[1])
        return paths

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


class VsftpdSubscriber:
    """vsftpd with one local account whose home is root; FTPS with tls = (cert, key).

    With TLS, logins and data must be encrypted, with TLS 1.2 and session
    reuse on the data connections (vsftpd's require_ssl_reuse=YES).
    deny_file is vsftpd's pattern of names it refuses.
    """

    def __init__(
        self,
        root: str,
        workdir: str,
        tls: tuple[str, str] | None = None,
        deny_file: str = "",
        host: str = "127.0.0.1",
        namespace=None,
        passive_ports: int = 20,
    ) -> None:
        self.root = root
        self.passive_ports = passive_ports
        self.workdir = workdir
        self.tls = tls
        self.deny_file = deny_file
        self.host = host if namespace is None else namespace.address
        self.namespace = namespace
        self.port = free_port()
        self.user = f"fds{random.randrange(16**6):06x}"
        self.password = f"pw-{random.randrange(16**8):08x}"
        self.pam_service = f"ftpdup-sub-{self.port}"
        self.process: Process | None = None
        self.has_account = False
        os.makedirs(root, exist_ok=True)

    def start(self) -> VsftpdSubscriber:
        if not self.has_account:
            self._account()
            self.has_account = True
        pasv = free_port_run(self.passive_ports)
        lines = [
            "listen=YES", "listen_ipv6=NO", "background=NO",
            f"listen_address={self.host}", f"listen_port={self.port}",
            "anonymous_enable=NO", "local_enable=YES", "write_enable=YES",
            "local_umask=022", "chroot_local_user=YES", "allow_writeable_chroot=YES",
            f"pam_service_name={self.pam_service}", "seccomp_sandbox=NO",
            f"pasv_min_port={pasv}", f"pasv_max_port={pasv + self.passive_ports - 1}",
            "secure_chroot_dir=/var/run/vsftpd/empty",
            f"vsftpd_log_file={self.workdir}/vsftpd-sub-{self.port}.xfer", "xferlog_enable=YES",
        ]  # fmt: skip
        if self.deny_file:
            lines.append(f"deny_file={self.deny_file}")
        if self.tls:
            lines += [
                "ssl_enable=YES", f"rsa_cert_file={self.tls[0]}",
                f"rsa_private_key_file={self.tls[1]}",
                "force_local_logins_ssl=YES", "force_local_data_ssl=YES", "require_ssl_reuse=YES",
                "ssl_sslv2=NO", "ssl_sslv3=NO", "ssl_tlsv1=NO",
            ]  # fmt: skip
        config = os.path.join(self.workdir, f"vsftpd-sub-{self.port}.conf")
        with open(config, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        argv, log = ["vsftpd", config], os.path.join(self.workdir, f"vsftpd-sub-{self.port}.log")
        self.process = self.namespace.start(argv, log) if self.namespace else Process(argv, log)
        wait_for(lambda: port_open(self.port, self.host), 20, f"vsftpd on port {self.port}")
        return self

    def _account(self) -> None:
        with open(f"/etc/pam.d/{self.pam_service}", "w") as pam:
            pam.write(render_pam(debian=os.path.exists("/etc/debian_version")))
        subprocess.run(
            ["useradd", "--home-dir", self.root, "--no-create-home", "--shell",
             "/usr/sbin/nologin", self.user],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(["chpasswd"], input=f"{self.user}:{self.password}\n", text=True, check=True)
        uid = pwd.getpwnam(self.user).pw_uid
        for folder, _, _ in os.walk(self.root):
            os.chown(folder, uid, -1)

    def stop(self) -> None:
        """Stop the server and cut its sessions (vsftpd's session processes lead sessions of
        their own and outlive the listener)."""
        if self.process is not None:
            config = self.process.argv[-1].encode()
            self.process.stop()
            self.process = None
            for pid in _processes_of(b"vsftpd\0" + config + b"\0"):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Stop the server and remove its account and PAM service."""
        self.stop()
        subprocess.run(["userdel", self.user], capture_output=True)
        with suppress(FileNotFoundError):
            os.unlink(f"/etc/pam.d/{self.pam_service}")


def _processes_of(command_line: bytes) -> list[int]:
    """Return the processes whose command line (NUL-separated, NUL-ended) is command_line."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if handle.read() == command_line:
                        found.append(int(entry))
            except OSError:
                continue
    return found
