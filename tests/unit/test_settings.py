"""Host settings: Consul's access from the settings file, else from Consul's environment."""

from __future__ import annotations

import os

import pytest

from ftpdup import settings
from ftpdup.settings import Settings


def test_defaults_reach_the_local_agent_without_token_or_tls():
    assert Settings().consul_access({}) == {
        "url": "http://127.0.0.1:8500",
        "token": None,
        "timeout": 10.0,
        "ca_file": "",
        "cert_file": "",
        "key_file": "",
        "verify": True,
    }


def test_consul_environment_variables_fill_what_the_settings_leave_open(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    environ = {
        "CONSUL_HTTP_ADDR": "consul.example:8501",
        "CONSUL_HTTP_SSL": "true",
        "CONSUL_HTTP_TOKEN_FILE": str(token_file),
        "CONSUL_HTTP_TOKEN": "ignored-when-a-file-is-given",
        "CONSUL_CACERT": "/etc/consul/ca.pem",
        "CONSUL_CLIENT_CERT": "/etc/consul/client.pem",
        "CONSUL_CLIENT_KEY": "/etc/consul/client-key.pem",
        "CONSUL_HTTP_SSL_VERIFY": "false",
    }
    access = Settings().consul_access(environ)
    assert access["url"] == "https://consul.example:8501"
    assert access["token"] == "from-the-file"
    assert (access["ca_file"], access["cert_file"], access["key_file"]) == (
        "/etc/consul/ca.pem",
        "/etc/consul/client.pem",
        "/etc/consul/client-key.pem",
    )
    assert access["verify"] is False
    assert Settings().consul_access({"CONSUL_HTTP_TOKEN": "t"})["token"] == "t"


def test_settings_win_over_the_environment(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-settings")
    host = Settings(
        consul_url="https://a.example:8501",
        consul_token_file=str(token_file),
        consul_ca_file="/etc/ftpdup/ca.pem",
    )
    environ = {"CONSUL_HTTP_ADDR": "b:1", "CONSUL_HTTP_TOKEN": "env", "CONSUL_CACERT": "/x"}
    access = host.consul_access(environ)
    assert (access["url"], access["token"], access["ca_file"]) == (
        "https://a.example:8501",
        "from-settings",
        "/etc/ftpdup/ca.pem",
    )


def test_an_unreadable_token_file_is_a_settings_error_naming_it(tmp_path):
    host = Settings(consul_token_file=str(tmp_path / "missing"))
    with pytest.raises(settings.SettingsError, match="consul_token_file"):
        host.consul_access({})


def test_tls_file_settings_must_be_absolute_paths(tmp_path):
    path = tmp_path / "ftpdup.conf"
    path.write_text("[ftpdup]\nconsul_ca_file = relative.pem\n")
    with pytest.raises(settings.SettingsError, match="consul_ca_file"):
        settings.load(str(path))
    path.write_text("[ftpdup]\nconsul_ca_file = /etc/pki/ca.pem\n")
    assert settings.load(str(path)).consul_ca_file == "/etc/pki/ca.pem"
    assert os.path.basename(settings.DEFAULT_PATH) == "ftpdup.conf"


@pytest.mark.parametrize(
    "line, message",
    [
        ("carrier_max_age = 0", "carrier_max_age: must be between 60 and"),
        ("dead_letter_retention_days = -1", "dead_letter_retention_days: must be between 0 and"),
        ("restart_period = -5", "restart_period: must be between 0 and"),
        ("stop_timeout = 0", "stop_timeout: must be between 1 and"),
        ("transfer_timeout = -1", "transfer_timeout: must be between 1 and"),
        ("instance_grace = -2", "instance_grace: must be between -1 and"),
        ("low_space_warning_percent = 120", "low_space_warning_percent: must be between 0 and 100"),
        ("status_critical_age = 10", "status_critical_age: must not be below status_warning_age"),
    ],
)
def test_a_setting_out_of_its_range_stops_the_command_with_the_key_and_the_range(
    tmp_path, line, message
):
    path = tmp_path / "ftpdup.conf"
    path.write_text(f"[ftpdup]\n{line}\n")
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(str(path))


def test_zero_means_never_where_it_is_documented(tmp_path):
    path = tmp_path / "ftpdup.conf"
    path.write_text("[ftpdup]\nrestart_period = 0\ndead_letter_retention_days = 0\n")
    host = settings.load(str(path))
    assert (host.restart_period, host.dead_letter_retention_days) == (0, 0)
