"""Host settings: one INI file (default /etc/ftpdup/ftpdup.conf), every key with a default."""

from __future__ import annotations

import configparser
import os
import re
import socket
from dataclasses import dataclass, fields

from ftpdup.config.names import name_problem, systemd_escape, unix_user_problem
from ftpdup.config.values import has_control, host_problem, service_name_problem

DEFAULT_PATH = "/etc/ftpdup/ftpdup.conf"
ENVIRONMENT_VARIABLE = "FTPDUP_CONFIG"


class SettingsError(Exception):
    """The settings file cannot be read or holds a bad value."""


@dataclass(frozen=True)
class Settings:
    """Everything about this host that is not in Consul. Field names are the file's keys."""

    # Left empty, each Consul setting is taken from Consul's own environment
    # variables (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN_FILE or CONSUL_HTTP_TOKEN,
    # CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY).
    consul_url: str = ""
    consul_token_file: str = ""
    consul_ca_file: str = ""
    consul_cert_file: str = ""
    consul_key_file: str = ""
    consul_timeout: float = 10.0
    key_prefix: str = "ftp_duplicator"
    data_root: str = "/var/lib/ftpdup"
    etc_dir: str = "/etc/ftpdup"
    unit_dir: str = "/etc/systemd/system"
    log_level: str = "info"
    carrier_max_age: int = 86400
    instance_grace: int = -1
    retry_max_delay: float = 60.0
    transfer_timeout: float = 60.0
    restart_period: int = 3600
    restart_variance: int = 300
    stop_timeout: int = 30
    service_user: str = "ftpdup"
    service_group: str = "ftpdup"
    dead_letter_retention_days: float = 30.0
    status_warning_age: int = 900
    status_critical_age: int = 3600
    low_space_warning_percent: float = 10.0
    low_space_critical_percent: float = 5.0
    metrics_file: str = "/var/lib/node_exporter/textfile_collector/ftpdup.prom"
    collectd_service: str = ""
    collectd_hostname: str = ""
    collectd_config: str = "/etc/collectd.d/ftpdup.conf"
    vsftpd_unit: str = "ftpdup-vsftpd.service"
    vsftpd_listen_address: str = ""
    vsftpd_listen_port: int = 21
    vsftpd_pasv_address: str = ""
    vsftpd_pasv_min_port: int = 21100
    vsftpd_pasv_max_port: int = 21110
    vsftpd_ssl_cert_file: str = ""
    vsftpd_ssl_key_file: str = ""
    vsftpd_ssl_required: bool = False
    # Several hosts behind one Consul (off unless cluster_service is set): the
    # service this host registers as, its ID (default: its host name), the
    # address uploaders reach it at (default: what Consul knows of the node),
    # the KV folder where each host publishes its status, and how long a
    # draining host still takes new logins.
    cluster_service: str = ""
    cluster_host_id: str = ""
    cluster_address: str = ""
    cluster_kv_prefix: str = "ftpdup-cluster"
    cluster_drain_grace: int = 30

    def spec_path(self, kind: str, name: str) -> str:
        """Return where the manager keeps the spec of worker kind ("sprinkler"/"carrier") name.

        The file is named after the unit's instance (systemd-escaped, ``%i``).
        """
        return os.path.join(self.etc_dir, "workers", kind, f"{systemd_escape(name)}.json")

    def host_id(self) -> str:
        """Return this host's ID in the cluster: cluster_host_id, else the host name."""
        return self.cluster_host_id or socket.gethostname().split(".")[0]

    def grace(self) -> int:
        """Return how long a service instance may stop passing before its files are set aside."""
        return self.instance_grace if self.instance_grace >= 0 else self.carrier_max_age

    def consul_access(self, environ: dict[str, str] | None = None) -> dict:
        """Return how to reach Consul, as consul_source.connect's keyword arguments.

        A setting left empty is taken from Consul's standard environment
        variable. Raise SettingsError if a token file cannot be read.
        """
        environ = os.environ if environ is None else environ
        url = self.consul_url or environ.get("CONSUL_HTTP_ADDR", "") or DEFAULT_CONSUL
        if "//" not in url:
            ssl = environ.get("CONSUL_HTTP_SSL", "").lower() == "true"
            url = f"{'https' if ssl else 'http'}://{url}"
        token_file = self.consul_token_file or environ.get("CONSUL_HTTP_TOKEN_FILE", "")
        token = _read_token(token_file) if token_file else environ.get("CONSUL_HTTP_TOKEN")
        return {
            "url": url,
            "token": token or None,
            "timeout": self.consul_timeout,
            "ca_file": self.consul_ca_file or environ.get("CONSUL_CACERT", ""),
            "cert_file": self.consul_cert_file or environ.get("CONSUL_CLIENT_CERT", ""),
            "key_file": self.consul_key_file or environ.get("CONSUL_CLIENT_KEY", ""),
            "verify": environ.get("CONSUL_HTTP_SSL_VERIFY", "").lower() != "false",
        }


DEFAULT_CONSUL = "http://127.0.0.1:8500"


def _read_token(path: str) -> str:
    """Return the ACL token in the file at path. Raise SettingsError naming the file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise SettingsError(f"consul_token_file: {error}") from None


def load(path: str | None = None) -> Settings:
    """Return the settings in path (or $FTPDUP_CONFIG, or the default file).

    A missing default file means all defaults; a missing file that was asked
    for, an unknown key or a bad value raise SettingsError naming the key.
    """
    explicit = path or os.environ.get(ENVIRONMENT_VARIABLE)
    path = explicit or DEFAULT_PATH
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        if explicit:
            raise SettingsError(f"{path}: file not found") from None
        return Settings()
    except (OSError, configparser.Error) as error:
        raise SettingsError(f"{path}: {error}") from None
    return _from_parser(parser, path)


def _boolean(raw: str) -> bool:
    """Return the boolean an INI value says (yes/no, true/false, on/off, 1/0)."""
    words = {"yes": True, "true": True, "on": True, "1": True}
    words.update({"no": False, "false": False, "off": False, "0": False})
    try:
        return words[raw.strip().lower()]
    except KeyError:
        raise ValueError(raw) from None


def _from_parser(parser: configparser.ConfigParser, path: str) -> Settings:
    known = {field.name: field for field in fields(Settings)}
    values = {}
    for section in parser.sections():
        for key, raw in parser.items(section):
            name = key if section == "ftpdup" else f"{section}_{key}"
            if name not in known:
                raise SettingsError(f"{path}: [{section}] {key}: unknown setting")
            kind = type(known[name].default)
            try:
                values[name] = _boolean(raw) if kind is bool else kind(raw.strip())
            except ValueError:
                raise SettingsError(
                    f"{path}: [{section}] {key}: must be {kind.__name__}, not {raw!r}"
                ) from None
    result = Settings(**values)
    problem = settings_problem(result)
    if problem:
        raise SettingsError(f"{path}: {problem}")
    return result


# key -> (lowest, highest) value allowed; 0 means "never" only where said so.
RANGES = {
    "consul_timeout": (1, 600),
    "carrier_max_age": (60, 366 * 86400),
    "instance_grace": (-1, 366 * 86400),  # -1: as long as carrier_max_age
    "retry_max_delay": (1, 86400),
    "transfer_timeout": (1, 86400),
    "restart_period": (0, 366 * 86400),  # 0: workers are never restarted
    "restart_variance": (0, 86400),
    "stop_timeout": (1, 86400),
    "dead_letter_retention_days": (0, 36500),  # 0: dead letters are kept until purged
    "status_warning_age": (1, 366 * 86400),
    "status_critical_age": (1, 366 * 86400),
    "low_space_warning_percent": (0, 100),
    "low_space_critical_percent": (0, 100),
    "cluster_drain_grace": (0, 86400),
}
PATH_KEYS = ("data_root", "etc_dir", "unit_dir", "collectd_config")
OPTIONAL_PATH_KEYS = (
    "metrics_file",
    "consul_token_file",
    "consul_ca_file",
    "consul_cert_file",
    "consul_key_file",
    "vsftpd_ssl_cert_file",
    "vsftpd_ssl_key_file",
)
HOST_KEYS = ("vsftpd_listen_address", "vsftpd_pasv_address", "collectd_hostname")
PORT_KEYS = ("vsftpd_listen_port", "vsftpd_pasv_min_port", "vsftpd_pasv_max_port")
LOG_LEVELS = ("debug", "info", "warning", "error")
_UNIT = re.compile(r"[A-Za-z0-9:_.@-]+\.service")


def settings_problem(host: Settings) -> str | None:
    """Return the first setting that is unsafe to write into a unit, vsftpd or collectd file.

    Paths are absolute and hold no whitespace or control character (they go
    into unit files and vsftpd's configuration); addresses are host names or
    IP addresses; ports are ports; numbers are within RANGES (a time of 0
    would set every file aside, or restart workers without end). Return None
    if every setting is usable.
    """
    for key, (lowest, highest) in RANGES.items():
        value = getattr(host, key)
        if not lowest <= value <= highest:
            meaning = {"restart_period": " (0: never)", "dead_letter_retention_days": " (0: never)",
                       "instance_grace": " (-1: as carrier_max_age)"}.get(key, "")  # fmt: skip
            return f"{key}: must be between {lowest} and {highest}{meaning}, not {value:g}"
    if host.status_critical_age < host.status_warning_age:
        return "status_critical_age: must not be below status_warning_age"
    if host.low_space_critical_percent > host.low_space_warning_percent:
        return "low_space_critical_percent: must not be above low_space_warning_percent"
    for key in PATH_KEYS + OPTIONAL_PATH_KEYS:
        value = getattr(host, key)
        if (value or key not in OPTIONAL_PATH_KEYS) and not _plain_path(value):
            return f"{key}: must be an absolute path without spaces or control characters"
    for key in HOST_KEYS:
        value = getattr(host, key)
        if value and host_problem(value):
            return f"{key}: {host_problem(value)}"
    for key in PORT_KEYS:
        if not 1 <= getattr(host, key) <= 65535:
            return f"{key}: must be a port between 1 and 65535"
    if host.vsftpd_pasv_min_port > host.vsftpd_pasv_max_port:
        return "vsftpd pasv_min_port is above pasv_max_port"
    if bool(host.vsftpd_ssl_cert_file) != bool(host.vsftpd_ssl_key_file):
        return "vsftpd ssl_cert_file and ssl_key_file go together"
    if host.vsftpd_ssl_required and not host.vsftpd_ssl_cert_file:
        return "vsftpd ssl_required needs ssl_cert_file and ssl_key_file"
    for key in ("service_user", "service_group"):
        if unix_user_problem(getattr(host, key)):
            return f"{key}: {unix_user_problem(getattr(host, key))}"
    if host.collectd_service and service_name_problem(host.collectd_service):
        return f"collectd_service: {service_name_problem(host.collectd_service)}"
    if host.cluster_service and service_name_problem(host.cluster_service):
        return f"cluster_service: {service_name_problem(host.cluster_service)}"
    if host.cluster_host_id and name_problem(host.cluster_host_id):
        return f"cluster_host_id: {name_problem(host.cluster_host_id)}"
    if host.cluster_address and host_problem(host.cluster_address):
        return f"cluster_address: {host_problem(host.cluster_address)}"
    if has_control(host.cluster_kv_prefix) or not host.cluster_kv_prefix.strip("/"):
        return "cluster_kv_prefix: must be a Consul key folder"
    if host.log_level.lower() not in LOG_LEVELS:
        return f"log_level: must be one of {', '.join(LOG_LEVELS)}"
    if not _UNIT.fullmatch(host.vsftpd_unit):
        return "vsftpd_unit: must be a service unit name"
    for key, value in (("consul_url", host.consul_url or "-"), ("key_prefix", host.key_prefix)):
        if not value or has_control(value) or " " in value:
            return f"{key}: must not be empty or hold spaces or control characters"
    return None


def _plain_path(value: str) -> bool:
    return value.startswith("/") and not has_control(value) and not any(c.isspace() for c in value)
