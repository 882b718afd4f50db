"""Hostile Consul values against the installed product, under the real systemd.

Whatever is written in Consul, ftpdup must not change an account that is not
a lane account of its own, nor vsftpd's or PAM's files, nor the units of
other lanes; ``ftpdup check`` names every bad value with its key.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.harness.procs import wait_for

pytestmark = pytest.mark.system

WATCHED = [
    "/etc/shadow",
    "/etc/passwd",
    "/etc/group",
    "/etc/gshadow",
    "/etc/ftpdup/vsftpd.conf",
    "/etc/ftpdup/vsftpd.users",
    "/etc/pam.d/ftpdup-vsftpd",
    "/etc/systemd/system/ftpdup-carrier@.service.d/40-ftpdup-settings.conf",
    "/etc/systemd/system/ftpdup-sprinkler@.service.d/40-ftpdup-settings.conf",
]


def digests(container, paths: list[str]) -> dict[str, str]:
    found = {}
    for path in paths:
        with open(container.path(path), "rb") as handle:
            found[path] = hashlib.sha256(handle.read()).hexdigest()
    return found


def settled(container) -> bool:
    """Return True when the manager is idle and has nothing left to change."""
    if container.is_active("ftpdup-manager.service") != "inactive":
        return False
    lines = container.run("ftpdup", "plan", check=False).stdout.splitlines()
    return all(line.startswith("error:") or line == "nothing to change" for line in lines)


def test_hostile_values_change_no_account_file_or_other_lane(world, container):
    lane = world.add_lane("keep")
    world.add_ftp_subscriber(lane, "ftpsub")
    units = [world.unit("sprinkler", lane), world.unit("carrier", f"{lane}:ftpsub")]
    for unit in units:
        world.wait_active(unit)
    wait_for(lambda: settled(container), 120, f"the manager to settle\n{world.journal()}")
    sprinkler_spec = (
        f"/etc/ftpdup/workers/sprinkler/{units[0].split('@')[1][: -len('.service')]}.json"
    )
    spec_files = [f"/etc/ftpdup/workers/carrier/{units[1].split('@')[1][: -len('.service')]}.json"]
    before = digests(container, WATCHED + spec_files)
    pid = container.main_pid(units[1])
    good = world.lanes[lane]
    uid = good["uid"]

    hostile = {
        f"pw-{world.tag}/settings": {"user": "accpw", "password": "x\nroot:owned", "uid": uid + 1},
        f"cr-{world.tag}/settings": {"user": "acccr", "password": "x\r\nroot::0:0", "uid": uid + 2},
        f"root-{world.tag}/settings": {"user": "root", "password": "x", "uid": uid + 3},
        f"zero-{world.tag}/settings": {"user": "acczero", "password": "x", "uid": 0},
        f"nl-{world.tag}/settings": {"user": "acc\nroot", "password": "x", "uid": uid + 4},
        f"steal-{world.tag}/settings": {"user": good["user"], "password": "x", "uid": uid + 5},
        f"uid-{world.tag}/settings": {"user": "accuid", "password": "x", "uid": 1},
        f"glob-{world.tag}/settings": {**good, "user": "accglob", "uid": uid + 6,
                                       "exclude": ["*.t\nroot"]},
        f"{lane}/subscribers/crlf": {"mode": "ftp", "host": "127.0.0.1", "user": "u",
                                     "password": "p\r\nDELE x"},
        f"{lane}/subscribers/dir": {"mode": "http", "host": "127.0.0.1", "directory": "d\nx"},
        f"{lane}/subscribers/hst": {"mode": "http", "host": "127.0.0.1\nX-Y: z"},
        f"{lane}/subscribers/svc": {"mode": "http", "consul_service": "a b/../c"},
        f"{lane}/subscribers/ftpsub": {"mode": "ftp", "host": "127.0.0.1", "user": "sub",
                                       "password": "x", "tmp_suff": ".t\n"},
    }  # fmt: skip
    for key, value in hostile.items():
        world.agent.put(f"{container.prefix}/incoming_directories/{key}", value)
    odd = f"{container.prefix}/incoming_directories/évil lane-{world.tag}/"
    world.agent.put(f"{odd}settings", good)
    try:
        container.run("systemctl", "start", "ftpdup-manager.service", check=False)
        wait_for(lambda: settled(container), 120, f"the manager to settle\n{world.journal()}")

        # The refused subscriber that had a carrier keeps it as it was; the new refused
        # ones get a parked queue each, where the lane's files wait until they are fixed.
        assert digests(container, WATCHED + spec_files) == before
        assert container.main_pid(units[1]) == pid
        with open(container.path(sprinkler_spec)) as handle:
            outputs = {o["instance"]: o["parked"] for o in json.load(handle)["outputs"]}
        assert outputs.pop(f"{lane}:ftpsub") == ""
        assert sorted(outputs) == [f"{lane}:{sub}" for sub in ("crlf", "dir", "hst", "svc")]
        assert all("refused" in why for why in outputs.values())
        for user in ("accpw", "acccr", "acczero", "accuid", "accglob"):
            assert container.run("getent", "passwd", user, check=False).returncode != 0

        check = container.run("ftpdup", "check", check=False)
        assert check.returncode == 1
        errors = [line for line in check.stdout.splitlines() if line.startswith("error: ")]
        for key in hostile:
            assert any(f"incoming_directories/{key}:" in line for line in errors), (key, errors)
        assert any(f"incoming_directories/évil lane-{world.tag}:" in line for line in errors)
        assert "root:owned" not in check.stdout and "DELE" not in check.stdout
        assert not [line for line in check.stdout.splitlines() if line.startswith("root")]

        files = {"still-flowing.bin": os.urandom(5000)}
        world.upload(lane, files)
        world.wait_at(world.destinations[f"{lane}:ftpsub"], files)
    finally:
        for key in hostile:
            if not key.startswith(lane):
                world.agent.delete(f"{container.prefix}/incoming_directories/{key.split('/')[0]}/",
                                   recurse=True)  # fmt: skip
        world.agent.delete(odd, recurse=True)
