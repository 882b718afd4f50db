"""The Ansible role: lint (production profile), its argument specs, and runs in the container.

ansible-core runs inside the booted container against itself (connection
local): a check run on the fresh host, then a run that installs the RPM
built from this checkout with dnf (EL9's packages are stand-ins, see
tests.harness.el9), a second that changes nothing, a check run that sees
no drift; then a file is delivered, and a changed passive range closes the
old one in firewalld. firewalld itself cannot run in the container (it
shares the host's network and would change the host's firewall): a named
stand-in ``firewall-cmd`` keeps its runtime and permanent state in files.
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
    assert options["ftpdup_consul_environment"]["no_log"] is True


def test_templates_carry_the_ansible_managed_header():
    for name in os.listdir(os.path.join(ROLE, "templates")):
        with open(os.path.join(ROLE, "templates", name)) as handle:
            assert handle.readline().startswith("{{ ansible_managed | comment }}"), name


def play(box, extra: dict, *options: str, ok: bool = True):
    """Run the role in the container; return the play recap's counts for the host (and,
    with ok False, the run itself, which may fail)."""
    box.write("/opt/ftpdup/ansible-vars.json", json.dumps(extra), mode=0o600)
    done = box.run(
        "ansible-playbook",
        "-i", "/opt/ftpdup/inventory-test.ini",
        "-e", "@/opt/ftpdup/ansible-vars.json",
        *options,
        "/opt/ftpdup/ansible/site.yml",
        check=False,
        timeout=600,
    )  # fmt: skip
    if not ok:
        return done
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = re.search(r"localhost\s*:\s*(.*)", done.stdout.split("PLAY RECAP")[-1])
    assert recap, done.stdout[-2000:]
    counts = dict(re.findall(r"(\w+)=(\d+)", recap[1]))
    return {key: int(value) for key, value in counts.items()}


FIREWALL_CMD = r"""#!/bin/sh
# Stand-in for firewalld's firewall-cmd (a fake: firewalld cannot run in this
# container without changing the host's firewall). It keeps each zone's ports,
# runtime and permanent, in files, and logs every call.
state=/var/lib/firewalld-standin
mkdir -p "$state/runtime" "$state/permanent"
echo "$*" >> "$state/calls.log"
kind=runtime zone=public action= port=
for argument in "$@"; do
    case $argument in
        --permanent) kind=permanent ;;
        --zone=*) zone=${argument#--zone=} ;;
        --get-default-zone) echo public; exit 0 ;;
        --reload) action=reload ;;
        --list-ports) action=list ;;
        --add-port=*) action=add port=${argument#--add-port=} ;;
        --remove-port=*) action=remove port=${argument#--remove-port=} ;;
        --query-port=*) action=query port=${argument#--query-port=} ;;
    esac
done
file=$state/$kind/$zone
touch "$file"
case $action in
    list) tr '\n' ' ' < "$file"; echo ;;
    add) grep -qx "$port" "$file" || echo "$port" >> "$file" ;;
    remove) grep -vx "$port" "$file" > "$file.new"; mv "$file.new" "$file" ;;
    query) grep -qx "$port" "$file" ;;
    reload) cp "$state/permanent/"* "$state/runtime/" 2>/dev/null ;;
esac
"""


def install_firewalld_standin(box) -> None:
    """Put the stand-in firewall-cmd in place, and a firewalld.service that runs."""
    box.write("/usr/bin/firewall-cmd", FIREWALL_CMD, mode=0o755)
    box.write(
        "/etc/systemd/system/firewalld.service",
        "[Unit]\nDescription=stand-in for firewalld (see firewall-cmd)\n"
        "[Service]\nExecStart=/bin/sleep infinity\n",
    )
    box.run("systemctl", "daemon-reload")
    box.run("systemctl", "start", "firewalld.service")


def firewall(box) -> dict[str, list[str]]:
    """Return the stand-in's open ports: runtime and permanent, of the public zone."""
    found = {}
    for kind in ("runtime", "permanent"):
        done = box.run("cat", f"/var/lib/firewalld-standin/{kind}/public", check=False)
        found[kind] = sorted(done.stdout.split())
    return found


def test_the_role_converges_twice_and_delivers(bare_container, package_consul, rpms, base_dir):
    box = bare_container
    box.copy_in(ANSIBLE, "/opt/ftpdup/ansible")
    box.copy_in(rpms[1], "/opt/ftpdup/" + os.path.basename(rpms[1]))
    box.write("/opt/ftpdup/inventory-test.ini", "[ftpdup]\nlocalhost ansible_connection=local\n")
    install_firewalld_standin(box)
    box.prefix = "ftpdup-role"
    box.ftp_port = free_port()
    pasv = free_port()
    package_consul.put(f"{box.prefix}/incoming_directories/", None)
    token = "a-consul-token-never-shown"
    variables = {
        "ftpdup_install_source": "file",
        "ftpdup_rpm_file": "/opt/ftpdup/" + os.path.basename(rpms[1]),
        "ftpdup_consul_url": package_consul.url,
        "ftpdup_consul_token": token,
        "ftpdup_consul_environment": {"CONSUL_HTTP_TOKEN": token},
        "ftpdup_key_prefix": box.prefix,
        "ftpdup_vsftpd_listen_address": "127.0.0.1",
        "ftpdup_vsftpd_listen_port": box.ftp_port,
        "ftpdup_vsftpd_pasv_min_port": pasv,
        "ftpdup_vsftpd_pasv_max_port": pasv + 10,
        "ftpdup_settings": {"retry_max_delay": 2, "stop_timeout": 20},
    }
    checked = play(box, variables, "--check", "--diff")  # a fresh host: it must not fail
    assert checked["failed"] == 0 and checked["changed"] > 0
    assert box.run("rpm", "-q", "ftpdup", check=False).returncode != 0  # nothing done
    first = play(box, variables)
    assert first["changed"] > 0 and first["failed"] == 0
    second = play(box, variables)
    assert second["changed"] == 0 and second["failed"] == 0, second
    drift = play(box, variables, "--check", "--diff")
    assert drift["changed"] == 0 and drift["failed"] == 0, drift
    assert box.run("rpm", "-q", "python3-requests").returncode == 0  # dnf resolved it
    settings = box.run("cat", "/etc/ftpdup/ftpdup.conf").stdout
    assert settings.startswith("#") and "Ansible managed" in settings
    assert "consul_token_file = /etc/ftpdup/consul-token" in settings and token not in settings
    assert box.run("stat", "-c", "%a", "/etc/ftpdup/consul-token").stdout.strip() == "600"
    journal = box.run("journalctl", "--no-pager", "-o", "cat", check=False).stdout
    assert token not in journal
    assert (
        box.run("systemctl", "is-enabled", "vsftpd.service", check=False).stdout.strip() == "masked"
    )
    ports = sorted([f"{box.ftp_port}/tcp", f"{pasv}-{pasv + 10}/tcp"])
    assert firewall(box) == {"runtime": ports, "permanent": ports}
    calls = box.run("cat", "/var/lib/firewalld-standin/calls.log").stdout
    assert "--reload" not in calls
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

    # Another passive range: the old one is closed, runtime and permanent.
    moved = {**variables, "ftpdup_vsftpd_pasv_min_port": pasv + 20,
             "ftpdup_vsftpd_pasv_max_port": pasv + 30}  # fmt: skip
    assert play(box, moved)["failed"] == 0
    ports = sorted([f"{box.ftp_port}/tcp", f"{pasv + 20}-{pasv + 30}/tcp"])
    assert firewall(box) == {"runtime": ports, "permanent": ports}


def test_a_repository_with_signature_checks_and_no_key_stops_in_preflight(bare_container):
    box = bare_container
    box.copy_in(ANSIBLE, "/opt/ftpdup/ansible-preflight")
    box.write("/opt/ftpdup/inventory-test.ini", "[ftpdup]\nlocalhost ansible_connection=local\n")
    variables = {"ftpdup_rpm_repo_url": "file:///srv/nowhere", "ftpdup_rpm_repo_gpgcheck": True}
    done = play(box, variables, "--tags", "ftpdup_preflight", ok=False)
    assert done.returncode != 0
    assert "ftpdup_rpm_repo_gpgkey is empty" in done.stdout
