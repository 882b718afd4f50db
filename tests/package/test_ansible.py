"""The Ansible role: lint (production profile), its argument specs, and two runs in the container.

ansible-core runs inside the booted container against itself (connection
local), installs the RPM built from this checkout, and must report nothing
changed the second time; then a file is delivered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from tests.harness.consul_agent import REPOSITORY
from tests.harness.procs import free_port, wait_for
from tests.harness.system_world import SystemWorld

pytestmark = pytest.mark.package

ANSIBLE = os.path.join(REPOSITORY, "ansible")
ROLE = os.path.join(ANSIBLE, "roles", "ftpdup")


def load(*parts: str):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def test_the_role_passes_ansible_lint_production():
    done = subprocess.run(
        ["ansible-lint", "--offline", "--nocolor"], cwd=ANSIBLE, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed with production profile" in done.stdout + done.stderr


def test_argument_specs_and_defaults_say_the_same():
    defaults = load("defaults", "main.yml")
    options = load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(options) == sorted(defaults)
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name
        assert spec["description"], name
    assert options["ftpdup_consul_token"]["no_log"] is True


def test_templates_carry_the_ansible_managed_header():
    for name in os.listdir(os.path.join(ROLE, "templates")):
        with open(os.path.join(ROLE, "templates", name)) as handle:
            assert handle.readline().startswith("{{ ansible_managed | comment }}"), name


def play(box, extra: dict) -> dict[str, int]:
    """Run the role in the container; return the play recap's counts for the host."""
    box.write("/opt/ftpdup/ansible-vars.json", json.dumps(extra), mode=0o600)
    done = box.run(
        "ansible-playbook",
        "-i", "/opt/ftpdup/inventory-test.ini",
        "-e", "@/opt/ftpdup/ansible-vars.json",
        "/opt/ftpdup/ansible/site.yml",
        check=False,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = re.search(r"localhost\s*:\s*(.*)", done.stdout.split("PLAY RECAP")[-1])
    assert recap, done.stdout[-2000:]
    counts = dict(re.findall(r"(\w+)=(\d+)", recap[1]))
    return {key: int(value) for key, value in counts.items()}


def test_the_role_converges_twice_and_delivers(bare_container, package_consul, rpms, base_dir):
    box = bare_container
    box.copy_in(ANSIBLE, "/opt/ftpdup/ansible")
    box.copy_in(rpms[1], "/opt/ftpdup/" + os.path.basename(rpms[1]))
    box.write("/opt/ftpdup/inventory-test.ini", "[ftpdup]\nlocalhost ansible_connection=local\n")
    box.prefix = "ftpdup-role"
    box.ftp_port = free_port()
    pasv = free_port()
    package_consul.put(f"{box.prefix}/incoming_directories/", None)
    token = "a-consul-token-never-shown"
    variables = {
        "ftpdup_install_source": "file",
        "ftpdup_rpm_file": "/opt/ftpdup/" + os.path.basename(rpms[1]),
        "ftpdup_rpm_installer": "rpm",
        "ftpdup_consul_url": package_consul.url,
        "ftpdup_consul_token": token,
        "ftpdup_key_prefix": box.prefix,
        "ftpdup_vsftpd_listen_address": "127.0.0.1",
        "ftpdup_vsftpd_listen_port": box.ftp_port,
        "ftpdup_vsftpd_pasv_min_port": pasv,
        "ftpdup_vsftpd_pasv_max_port": pasv + 10,
        "ftpdup_settings": {"retry_max_delay": 2, "stop_timeout": 20},
    }
    first = play(box, variables)
    assert first["changed"] > 0 and first["failed"] == 0
    second = play(box, variables)
    assert second["changed"] == 0 and second["failed"] == 0, second
    settings = box.run("cat", "/etc/ftpdup/ftpdup.conf").stdout
    assert settings.startswith("#") and "Ansible managed" in settings
    assert "consul_token_file = /etc/ftpdup/consul-token" in settings and token not in settings
    assert box.run("stat", "-c", "%a", "/etc/ftpdup/consul-token").stdout.strip() == "600"
    journal = box.run("journalctl", "--no-pager", "-o", "cat", check=False).stdout
    assert token not in journal
    wait_for(lambda: box.is_active("ftpdup-watch.service") == "active", 60, "ftpdup-watch")

    world = SystemWorld(box, package_consul, base_dir)
    try:
        lane = world.add_lane("role")
        world.add_http_subscriber(lane, "websub")
        world.wait_active(world.unit("carrier", f"{lane}:websub"))
        files = {"through-the-role.bin": os.urandom(12345)}
        world.upload(lane, files)
        world.wait_at(world.destinations[f"{lane}:websub"], files)
    finally:
        world.close()
