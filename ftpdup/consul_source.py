"""Adapter: read the lanes tree and service instances from Consul (py-consul)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import consul
import requests
import requests.adapters

from ftpdup.cluster import Member
from ftpdup.config.model import Config, Problem
from ftpdup.config.parse import Entry, parse_tree
from ftpdup.config.values import host_problem, printable


class ConsulError(Exception):
    """Consul could not be read, or answered something that cannot be trusted."""


@dataclass(frozen=True)
class Instance:
    """One passing instance of a Consul service: its ID, address and port."""

    id: str
    address: str
    port: int


@dataclass(frozen=True)
class Snapshot:
    """Everything read from Consul in one pass."""

    config: Config
    instances: dict[str, tuple[Instance, ...]]
    index: int
    # Service instances left out because Consul gave an unusable address or port.
    instance_problems: tuple[Problem, ...] = ()
    # The hosts of the cluster (with a cluster_service), passing or not.
    members: tuple[Member, ...] = ()


# How long a blocking query waits for a change before Consul answers anyway.
BLOCKING_WAIT = "5s"
_BLOCKING_WAIT_SECONDS = 5 * 17 / 16  # Consul adds up to wait/16 of jitter


def connect(
    url: str,
    token: str | None = None,
    timeout: float = 10.0,
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
    verify: bool = True,
) -> consul.Consul:
    """Given a Consul URL (``https://consul.example:8501``), return a client for it.

    ca_file checks the server's certificate (else the system's CAs, unless
    verify is False); cert_file and key_file are a client certificate. Every
    request fails after timeout seconds (plus the wait of a blocking query).
    """
    parts = urllib.parse.urlsplit(url if "//" in url else f"//{url}")
    scheme = parts.scheme or "http"
    client = consul.Consul(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or (8501 if scheme == "https" else 8500),
        scheme=scheme,
        token=token or None,
        verify=ca_file or verify,
        cert=(cert_file, key_file) if cert_file and key_file else (cert_file or None),
    )
    client.token = token or None  # py-consul would let $CONSUL_HTTP_TOKEN override it
    if hasattr(client.http, "connections_timeout"):
        client.http.connections_timeout = timeout
    else:  # older py-consul (the one bundled for EL9) sets no timeout at all
        adapter = _TimeoutAdapter(timeout + _BLOCKING_WAIT_SECONDS)
        client.http.session.mount("http://", adapter)
        client.http.session.mount("https://", adapter)
    return client


class _TimeoutAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter that gives every request a timeout when none was given."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def read_tree(
    client: consul.Consul, prefix: str, index: int | None = None, wait: str | None = None
) -> tuple[dict[str, Entry], int]:
    """Return (every key under prefix -> Entry, Consul index). Raise ConsulError on failure.

    A prefix with no key at all is an error, not an empty configuration: an
    empty answer from a wiped or wrong Consul must never remove lanes. To
    run with no lane, keep the folder key ``PREFIX/incoming_directories/``.
    """
    folder = prefix.strip("/") + "/"
    options = {"index": index, "wait": wait} if index is not None else {}
    index, items = call(f"reading {folder}", client.kv.get, folder, recurse=True, **options)
    if not items:
        raise ConsulError(
            f"no key under {folder!r} in Consul: refusing to read that as 'no lanes' "
            f"(create the folder key {folder}incoming_directories/ to run with none)"
        )
    try:
        entries = {
            item["Key"]: Entry(item.get("Value"), int(item["ModifyIndex"])) for item in items
        }
    except (KeyError, TypeError, ValueError) as error:
        raise ConsulError(f"unreadable answer for {folder!r}: {error!r}") from None
    return entries, int(index or 0)


def read_instances(
    client: consul.Consul, service: str, problems: list[Problem] | None = None
) -> tuple[Instance, ...]:
    """Return the passing instances of a Consul service, sorted by ID. Raise ConsulError.

    An instance whose address is not a host name or IP address, or whose port
    is not a port, is left out and described in problems.
    """
    _, nodes = call(f"reading service {service!r}", client.health.service, service, passing=True)
    instances = []
    try:
        for node in nodes or ():
            entry = node["Service"]
            address = str(entry.get("Address") or node["Node"]["Address"])
            instance = Instance(str(entry["ID"]), address, int(entry["Port"]))
            problem = host_problem(address) or (
                None if 0 < instance.port < 65536 else f"port {instance.port} is not a port"
            )
            if problem:
                where = printable(f"service {service}/instance {instance.id}")
                (problems if problems is not None else []).append(
                    Problem(where, f"left out: {problem}")
                )
                continue
            instances.append(instance)
    except (KeyError, TypeError, ValueError) as error:
        raise ConsulError(f"unreadable answer for service {service!r}: {error!r}") from None
    return tuple(sorted(instances, key=lambda instance: instance.id))


def read_members(client: consul.Consul, service: str) -> tuple[Member, ...]:
    """Return the hosts registered as the cluster's service: each host's ID (its meta
    ``host_id``), whether every check of it passes (none in maintenance) and its tags.
    Raise ConsulError."""
    _, nodes = call(f"reading the hosts of {service!r}", client.health.service, service)
    members = []
    try:
        for node in nodes or ():
            entry = node["Service"]
            host_id = str((entry.get("Meta") or {}).get("host_id") or entry["ID"])
            passing = all(check.get("Status") == "passing" for check in node.get("Checks", ()))
            members.append(Member(host_id, passing, frozenset(entry.get("Tags") or ())))
    except (KeyError, TypeError, AttributeError) as error:
        raise ConsulError(f"unreadable answer for service {service!r}: {error!r}") from None
    return tuple(sorted(members, key=lambda member: member.host_id))


def load(
    client: consul.Consul,
    prefix: str,
    extra_services: tuple[str, ...] = (),
    index: int | None = None,
    wait: str | None = None,
    cluster_service: str = "",
) -> Snapshot:
    """Return the validated configuration and the instances of every service it names.

    extra_services are looked up too (e.g. collectd's); cluster_service's
    hosts too, if given. With index and wait, the tree is read by a blocking
    query that returns once the tree changes past index, or after wait.
    """
    entries, index = read_tree(client, prefix, index, wait)
    config = parse_tree(entries, prefix)
    services = {sub.service for lane in config.lanes for sub in lane.subscribers if sub.service}
    services |= {service for service in extra_services if service}
    problems: list[Problem] = []
    instances = {service: read_instances(client, service, problems) for service in sorted(services)}
    members = read_members(client, cluster_service) if cluster_service else ()
    return Snapshot(config, instances, index, tuple(problems), members)


def call(what: str, function, *args, **kwargs):
    """Call a py-consul function, turning every failure into a ConsulError naming what."""
    try:
        return function(*args, **kwargs)
    except consul.ConsulException as error:
        raise ConsulError(f"Consul error while {what}: {error}") from None
    except requests.RequestException as error:
        raise ConsulError(f"Consul unreachable while {what}: {error}") from None
    except ValueError as error:
        raise ConsulError(f"unreadable Consul answer while {what}: {error}") from None
