"""The validated configuration: lanes, their subscribers, and the problems found."""

from __future__ import annotations

from dataclasses import dataclass, field

FTP = "ftp"
HTTP = "http"


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the Consul tree: the key path it belongs to and what is wrong."""

    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Subscriber:
    """Where a lane's files are pushed: one host, or every instance of a Consul service."""

    name: str
    mode: str
    directory: str = "."
    host: str | None = None
    port: int | None = None
    service: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tmp_suff: str = ".t"
    verify_size: bool = False
    # TLS: explicit FTPS, or HTTPS; the server's certificate is checked
    # (against ca_file, else the system's CAs) unless tls_verify is False.
    tls: bool = False
    tls_verify: bool = True
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    # HTTP (WebDAV): PUT under NAME+tmp_suff then MOVE; MKCOL missing folders.
    atomic: bool = False
    mkcol: bool = False
    # Sessions kept open to the subscriber, delivering the spool oldest first.
    connections: int = 1
    modify_index: int = 0


@dataclass(frozen=True)
class Lane:
    """An incoming directory: its FTP account, expiry, exclusions and subscribers."""

    name: str
    user: str
    password: str = field(repr=False)
    uid: int
    lifetime: int | None = None
    exclude: tuple[str, ...] = ()
    subscribers: tuple[Subscriber, ...] = ()
    modify_index: int = 0
    # Several hosts: how many accept the lane (None: all of them), and which may.
    replicas: int | None = None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Every valid lane, plus what was rejected.

    ``broken_lanes`` and ``broken_subscribers`` name the entries that exist in
    Consul but could not be used: whoever acts on the configuration must leave
    what they already have for those untouched rather than treat them as gone.
    """

    lanes: tuple[Lane, ...] = ()
    problems: tuple[Problem, ...] = ()
    broken_lanes: frozenset[str] = frozenset()
    broken_subscribers: frozenset[tuple[str, str]] = frozenset()

    def errors(self) -> list[Problem]:
        """Return the problems that made a lane or subscriber unusable."""
        return [problem for problem in self.problems if not problem.warning]
