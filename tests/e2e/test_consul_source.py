"""The Consul source against a real agent: errors are errors, never an empty configuration."""

from __future__ import annotations

import pytest

from ftpdup import cli, consul_source
from tests.harness.consul_agent import ConsulAgent

pytestmark = pytest.mark.e2e

SETTINGS = {"user": "lane1", "password": "pw", "uid": 4242}


def test_missing_prefix_is_an_error_and_an_empty_folder_is_no_lanes(consul_agent):
    client = consul_source.connect(consul_agent.url)
    with pytest.raises(consul_source.ConsulError, match="refusing to read that as 'no lanes'"):
        consul_source.load(client, "ftpdup-test-nothing-here")
    consul_agent.put("ftpdup-test-empty/incoming_directories/", None)
    try:
        snapshot = consul_source.load(client, "ftpdup-test-empty")
        assert snapshot.config.lanes == () and snapshot.config.problems == ()
    finally:
        consul_agent.delete("ftpdup-test-empty", recurse=True)


def test_unreachable_consul_is_an_error(base_dir):
    agent = ConsulAgent(base_dir, name="short-lived").start()
    agent.put("p/incoming_directories/l/settings", SETTINGS)
    client = consul_source.connect(agent.url, timeout=2)
    assert [lane.name for lane in consul_source.load(client, "p").config.lanes] == ["l"]
    agent.stop()
    with pytest.raises(consul_source.ConsulError, match="Consul unreachable"):
        consul_source.load(client, "p")


def test_only_passing_service_instances_are_targets(consul_agent):
    client = consul_agent.client()
    service = "ftpdup-test-health"
    consul_agent.register(service, f"{service}-a", 8001)
    client.agent.service.register(
        service,
        service_id=f"{service}-b",
        address="127.0.0.2",
        port=8002,
        check={"TTL": "60s", "Status": "critical"},
    )
    try:
        instances = consul_source.read_instances(consul_source.connect(consul_agent.url), service)
        assert instances == (consul_source.Instance(f"{service}-a", "127.0.0.1", 8001),)
        client.agent.check.ttl_pass(f"service:{service}-b")
        instances = consul_source.read_instances(consul_source.connect(consul_agent.url), service)
        assert [instance.port for instance in instances] == [8001, 8002]
    finally:
        consul_agent.deregister(f"{service}-a")
        consul_agent.deregister(f"{service}-b")


def test_check_reports_every_refusal_of_apply(consul_agent, tmp_path, capsys):
    prefix = "ftpdup-test-check"
    values = {
        "a/settings": {"user": "claimed", "password": "pw", "uid": 4300},
        "b/settings": {"user": "claimed", "password": "pw", "uid": 4301},
        "c/settings": {"user": "other", "password": "pw", "uid": 4300},
        "d/settings": {"user": "root", "password": "pw", "uid": 4302},
        "e/settings": {"user": "eee", "password": "pw", "uid": 1},
        "f/settings": {"user": "fine", "password": "pw", "uid": 4303},
    }
    for key, value in values.items():
        consul_agent.put(f"{prefix}/incoming_directories/{key}", value)
    config = tmp_path / "ftpdup.conf"
    config.write_text(f"[ftpdup]\nconsul_url = {consul_agent.url}\nkey_prefix = {prefix}\n")
    try:
        assert cli.main(["--config", str(config), "check"]) == 1
    finally:
        consul_agent.delete(prefix, recurse=True)
    out = capsys.readouterr().out
    errors = sorted(line for line in out.splitlines() if line.startswith("error: "))
    assert errors == [
        "error: incoming_directories/b/settings: user 'claimed' is already lane a's; "
        "lane not applied",
        "error: incoming_directories/c/settings: uid 4300 is already lane a's; lane not applied",
        "error: incoming_directories/d/settings: account 'root' exists and is not ftpdup's "
        "account of this lane ('root'); lane not applied",
        "error: incoming_directories/e/settings: uid 1 belongs to account 'daemon'; "
        "lane not applied",
    ]
    assert "lane f: 0 subscribers" in out and "lane b: refused" in out
