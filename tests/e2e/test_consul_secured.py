"""Consul as sites run it: HTTPS with a private CA and client certificates, and ACL tokens.

Real agents: certificates are made by ``consul tls``; one agent serves HTTPS
only with verify_incoming, another enforces ACLs (default deny).
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from ftpdup import consul_source, settings
from tests.harness.consul_agent import ConsulAgent

pytestmark = pytest.mark.e2e

LANE = {"user": "tlsup", "password": "pw", "uid": 4601}
ROOT_TOKEN = "5d8a3b1e-6c0f-4f7e-9d3a-1b2c3d4e5f60"


@pytest.fixture(scope="module")
def tls_agent(base_dir, certificates):
    hcl = f"""
verify_incoming = true
verify_outgoing = true
ca_file = "{certificates["ca"]}"
cert_file = "{certificates["server"]}"
key_file = "{certificates["server_key"]}"
"""
    client = (certificates["ca"], certificates["client"], certificates["client_key"])
    agent = ConsulAgent(base_dir, name="tls", hcl=hcl, tls=client)
    try:
        yield agent.start()
    finally:
        agent.stop()


def test_https_with_a_private_ca_and_a_client_certificate(tls_agent, certificates, tmp_path):
    tls_agent.put("tls/incoming_directories/l/settings", LANE)
    config = tmp_path / "ftpdup.conf"
    config.write_text(
        f"[ftpdup]\nconsul_url = {tls_agent.url}\nkey_prefix = tls\n"
        f"consul_ca_file = {certificates['ca']}\nconsul_cert_file = {certificates['client']}\n"
        f"consul_key_file = {certificates['client_key']}\n"
    )
    host = settings.load(str(config))
    snapshot = consul_source.load(consul_source.connect(**host.consul_access({})), "tls")
    assert [lane.name for lane in snapshot.config.lanes] == ["l"]

    # The same from Consul's own environment variables, the settings left empty.
    environ = {
        "CONSUL_HTTP_ADDR": tls_agent.url.replace("https://", ""),
        "CONSUL_HTTP_SSL": "true",
        "CONSUL_CACERT": certificates["ca"],
        "CONSUL_CLIENT_CERT": certificates["client"],
        "CONSUL_CLIENT_KEY": certificates["client_key"],
    }
    access = settings.Settings().consul_access(environ)
    assert access["url"] == tls_agent.url
    snapshot = consul_source.load(consul_source.connect(**access), "tls")
    assert [lane.name for lane in snapshot.config.lanes] == ["l"]


@pytest.mark.parametrize("missing", ["client certificate", "server's CA"])
def test_tls_failures_are_consul_errors_never_no_lanes(tls_agent, certificates, missing):
    access = {
        "url": tls_agent.url,
        "ca_file": certificates["ca"],
        "cert_file": certificates["client"],
        "key_file": certificates["client_key"],
        "timeout": 5,
    }
    if missing == "client certificate":
        access.update(cert_file="", key_file="")
    else:
        access.update(ca_file=certificates["other_ca"])
    with pytest.raises(consul_source.ConsulError, match="Consul unreachable"):
        consul_source.load(consul_source.connect(**access), "tls")


def api(agent: ConsulAgent, method: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{agent.url}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"X-Consul-Token": ROOT_TOKEN},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def acl_agent(base_dir):
    hcl = f"""
primary_datacenter = "dc1"
acl {{
  enabled = true
  default_policy = "deny"
  tokens {{
    master = "{ROOT_TOKEN}"
  }}
}}
"""
    agent = ConsulAgent(base_dir, name="acl", hcl=hcl, token=ROOT_TOKEN)
    try:
        yield agent.start()
    finally:
        agent.stop()


def token_for(agent: ConsulAgent, name: str, rules: str) -> str:
    """Return a new ACL token holding only a policy with rules."""
    api(agent, "PUT", "/v1/acl/policy", {"Name": name, "Rules": rules})
    return api(agent, "PUT", "/v1/acl/token", {"Policies": [{"Name": name}]})["SecretID"]


def test_a_token_that_may_read_only_the_prefix_and_services_is_enough(acl_agent, tmp_path):
    acl_agent.put("acl/incoming_directories/l/settings", LANE)
    acl_agent.put(
        "acl/incoming_directories/l/subscribers/c",
        {"mode": "http", "consul_service": "store", "directory": "d"},
    )
    acl_agent.put("elsewhere/secret", {"not": "for ftpdup"})
    acl_agent.register("store", "store-1", 8080)
    token = token_for(
        acl_agent,
        "ftpdup-read",
        'key_prefix "acl/" { policy = "read" }\n'
        'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }\n',
    )
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    config = tmp_path / "ftpdup.conf"
    config.write_text(f"[ftpdup]\nconsul_url = {acl_agent.url}\nconsul_token_file = {token_file}\n")
    client = consul_source.connect(**settings.load(str(config)).consul_access({}))
    snapshot = consul_source.load(client, "acl")
    assert [lane.name for lane in snapshot.config.lanes] == ["l"]
    assert [instance.id for instance in snapshot.instances["store"]] == ["store-1"]
    with pytest.raises(consul_source.ConsulError):
        consul_source.load(client, "elsewhere")  # not this token's to read


def test_a_token_without_rights_is_a_consul_error_never_no_lanes(acl_agent):
    acl_agent.put("acl/incoming_directories/l/settings", LANE)
    token = token_for(acl_agent, "nothing", 'key_prefix "unrelated/" { policy = "read" }\n')
    client = consul_source.connect(acl_agent.url, token=token, timeout=5)
    with pytest.raises(consul_source.ConsulError, match="refusing to read that as 'no lanes'"):
        consul_source.load(client, "acl")
    environ = {"CONSUL_HTTP_ADDR": acl_agent.url, "CONSUL_HTTP_TOKEN": token}
    assert settings.Settings().consul_access(environ)["token"] == token
