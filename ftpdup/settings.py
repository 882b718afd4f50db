"""Host settings: one INI file (default /etc/ftpdup/ftpdup.conf), every key with a default."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, fields

DEFAULT_PATH = "/etc/ftpdup/ftpdup.conf"
ENVIRONMENT_VARIABLE = "FTPDUP_CONFIG"


class SettingsError(Exception):
    """The settings file cannot be read or holds a bad value."""


@dataclass(frozen=True)
class Settings:
    """Everything about this host that is not in Consul. Field names are the file's keys."""

    consul_url: str = "http://127.0.0.1:8500"
    consul_token_file: str = ""
    consul_timeout: float = 10.0
    key_prefix: str = "ftp_duplicator"
    data_root: str = "/var/lib/ftpdup"
    etc_dir: str = "/etc/ftpdup"
    unit_dir: str = "/etc/systemd/system"
    log_level: str = "info"
    carrier_max_age: int = 86400
    retry_max_delay: float = 60.0
    restart_period: int = 3600
    restart_variance: int = 300
    stop_timeout: int = 30
    service_user: str = "ftpdup"
    service_group: str = "ftpdup"
    collectd_service: str = ""
    collectd_hostname: str = ""
    collectd_config: str = "/etc/collectd.d/ftpdup.conf"
    vsftpd_unit: str = "ftpdup-vsftpd.service"
    vsftpd_listen_address: str = ""
    vsftpd_listen_port: int = 21
    vsftpd_pasv_address: str = ""
    vsftpd_pasv_min_port: int = 21100
    vsftpd_pasv_max_port: int = 21110

    def spec_path(self, kind: str, name: str) -> str:
        """Return where the manager keeps the spec of worker kind ("sprinkler"/"carrier") name."""
        return os.path.join(self.etc_dir, "workers", kind, f"{name}.json")

    def consul_token(self) -> str | None:
        """Return the Consul ACL token read from consul_token_file, or None."""
        if not self.consul_token_file:
            return None
        try:
            with open(self.consul_token_file, encoding="utf-8") as handle:
                return handle.read().strip() or None
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
                values[name] = kind(raw.strip())
            except ValueError:
                raise SettingsError(
                    f"{path}: [{section}] {key}: must be {kind.__name__}, not {raw!r}"
                ) from None
    return Settings(**values)
