"""A tree written for ftp-duplicator, migrated whole: every lane delivers, the check says how.

The values are the forms the old tool took (Python literals, an account
name with capitals and a dot, numbers for passwords, a float for an
integer, an empty directory and tmp_suff, the mode in capitals, lifetime 0,
a port on a service subscriber, password and passwd both, a list with a
missing comma), applied by the installed manager under systemd.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.harness.ftp_server import FtpSubscriber
from tests.system.conftest import COLLECTD_SERVICE as COLLECTD

pytestmark = pytest.mark.system

OLD_ENVIRONMENT = """\
DUPLICATORFTP_CONSUL=http://consul.example.org:8500
DUPLICATORFTP_CIRCUS_MAX_AGE=1800
DUPLICATORFTP_CIRCUS_MAX_AGE_VARIANCE=120
DUPLICATORFTP_WATCHER_MAX_AGE=3600
DUPLICATORFTP_CARRIER_MAX_AGE=172800
DUPLICATORFTP_LOG_LEVEL=WARN
AUTOCLEANFTP_PASV_ADDRESS=192.0.2.10
DUPLICATORFTP_UNUSED_THING=1
"""


def test_an_old_tree_is_taken_whole_and_every_lane_delivers(world, container):
    lane = f"Old.Lane-{world.tag}"
    user = f"Up.{world.tag}"
    uid = random.randrange(30000, 60000)
    settings = (
        f"{{'user': '{user}', 'password': 246810, 'uid': {uid}.0, 'lifetime': 0, "
        "'exclude': ['*.t' '*.part']}"
    )
    world.agent.put(world.key(lane, "settings"), settings)
    world.lanes[lane] = {"user": user, "password": "246810", "uid": uid}
    ftp = FtpSubscriber(os.path.join(world.root, "old-ftp"), world.root, password="13579")
    world.servers["old-ftp"] = ftp.start()
    world.put_subscriber(lane, "ftp", repr({
        "mode": "FTP", "host": "127.0.0.1", "port": ftp.port, "user": "sub", "passwd": 13579,
        "directory": "", "tmp_suff": "",
    }))  # fmt: skip
    web = world.http_server("old-web")
    world.put_subscriber(lane, "web", repr({
        "mode": "HTTP", "host": "127.0.0.1", "port": float(web.port), "directory": "",
    }))  # fmt: skip
    service = f"old-{world.tag}"
    store = world.add_service_instance(service, 0, "store")
    world.put_subscriber(lane, "cluster", repr({
        "mode": "http", "service_consul": service, "port": 1, "directory": "store",
        "password": "a", "passwd": "b",
    }))  # fmt: skip
    world.wait_active(world.unit("carrier", f"{lane}:cluster:{service}-0"))
    for sub in ("ftp", "web"):
        world.wait_active(world.unit("carrier", f"{lane}:{sub}"))

    container.write("/root/old-environment", OLD_ENVIRONMENT)
    check = container.run(
        "ftpdup", "check", "--from-ftp-duplicator", "--env-file", "/root/old-environment",
        check=False,
    )  # fmt: skip
    out = check.stdout
    # Warnings only, but for this test host's collectd service, which has no instance.
    errors = [line for line in out.splitlines() if "error:" in line]
    assert errors == [f"error: collectd service '{COLLECTD}' has no passing instance: "
                      "collectd configuration left as it is"], out  # fmt: skip
    assert out.count("have no comma between them") == 1  # each problem said once
    for line in ("consul_url = http://consul.example.org:8500", "restart_period = 1800",
                 "restart_variance = 120", "carrier_max_age = 172800", "log_level = warning",
                 "pasv_address = 192.0.2.10"):  # fmt: skip
        assert line in out, line
    assert "DUPLICATORFTP_UNUSED_THING: not used by ftpdup" in out
    assert "DUPLICATORFTP_WATCHER_MAX_AGE=3600 (seconds" in out and "(60 min)" in out
    assert f"lane {lane}: taken, 3 subscribers (cluster, ftp, web)" in out
    assert "'lifetime' is 0 min here, the old DUPLICATORFTP_WATCHER_MAX_AGE made 60 min" in out
    assert "'*.t' and '*.part' have no comma between them" in out
    assert "'port' is ignored with 'consul_service'" in out
    assert "both 'password' and 'passwd' are given: 'password' is used" in out

    files = {f"old-{number}.dat": os.urandom(2000 + number) for number in range(3)}
    world.upload(lane, files)
    world.wait_at([ftp.root, web.root, store], files)
    assert sorted(os.listdir(ftp.root)) == sorted(files)  # no temporary name was used
