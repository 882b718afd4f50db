"""Every setting works with a value that is not its default: another data root, another
account for the workers, another folder for the manager's files, on the installed product.

A container of its own: ftpdup installed, then configured with
``data_root = /srv/dup-data``, ``etc_dir = /srv/dup-etc`` and
``service_user = service_group = dupw`` before it starts.
"""

from __future__ import annotations

import json
import os

import pytest

from ftpdup.layout import Layout
from tests.harness.container import Container
from tests.harness.installed import install
from tests.harness.procs import wait_for
from tests.harness.system_world import SystemWorld

pytestmark = pytest.mark.system

ELSEWHERE = """\
data_root = /srv/dup-data
etc_dir = /srv/dup-etc
service_user = dupw
service_group = dupw
"""


@pytest.fixture(scope="module")
def elsewhere(base_dir, system_consul):
    box = Container(base_dir, name="ftpdup-elsewhere").boot()
    try:
        box.run("groupadd", "--system", "dupw")
        box.run("useradd", "--system", "--gid", "dupw", "--no-create-home",
                "--shell", "/usr/sbin/nologin", "dupw")  # fmt: skip
        yield install(box, system_consul, "ftpdup-elsewhere", extra_settings=ELSEWHERE)
    finally:
        box.stop()


def test_another_data_root_worker_account_and_etc_dir_deliver(elsewhere, system_consul, base_dir):
    box = elsewhere
    world = SystemWorld(box, system_consul, base_dir)
    world.layout = Layout("/srv/dup-data")
    try:
        lane = world.add_lane("far")
        world.add_http_subscriber(lane, "web")
        down = world.add_ftp_subscriber(lane, "down")
        for unit in (world.unit("sprinkler", lane), world.unit("carrier", f"{lane}:web")):
            world.wait_active(unit)
        world.wait_active(world.unit("carrier", f"{lane}:down"))
        down.stop()
        files = {f"far-{n}.bin": os.urandom(4000 + n) for n in range(3)}
        world.upload(lane, files)
        world.wait_at(world.destinations[f"{lane}:web"], files)
        # The workers run as dupw; their files, folders and status are where the settings say.
        pid = box.main_pid(world.unit("carrier", f"{lane}:web"))
        owner = box.run("ps", "-o", "user=", "-p", str(pid)).stdout.strip()
        assert owner == "dupw"
        spool = box.path(f"/srv/dup-data/spool/{lane}:down")
        assert sorted(os.listdir(spool)) == sorted(files)
        mode = box.run("stat", "-c", "%U %G %a", f"/srv/dup-data/spool/{lane}:down").stdout
        assert mode.split() == ["dupw", "dupw", "2770"]
        units = [world.unit("carrier", f"{lane}:{sub}") for sub in ("web", "down")]
        specs = os.listdir(box.path("/srv/dup-etc/workers/carrier"))
        assert sorted(specs) == sorted(f"{unit.split('@')[1][: -len('.service')]}.json"
                                       for unit in units)  # fmt: skip
        assert os.path.exists(box.path("/srv/dup-etc/vsftpd.conf"))
        assert not os.path.exists(box.path("/etc/ftpdup/vsftpd.conf"))
        assert box.is_active("ftpdup-vsftpd.service") == "active"

        def down_row():
            found = box.run("ftpdup", "status", "--json", f"{lane}:down", check=False)
            rows = json.loads(found.stdout)["rows"] if found.stdout else []
            return rows[0] if rows and rows[0]["backlog_files"] == 3 else None

        assert wait_for(down_row, 30, "the status of the subscriber down")["level"] == "warning"
        written = f"/srv/dup-data/status/carrier/{lane}:web.json"
        assert box.run("stat", "-c", "%U", written).stdout.strip() == "dupw"
        # The watch (its file system read-only but where a drop-in lets it write) records
        # its view of Consul in the status folder of this data root.
        watch = "/srv/dup-data/status/watch.json"
        box.run("systemctl", "restart", "ftpdup-watch.service")
        wait_for(lambda: box.run("test", "-s", watch, check=False).returncode == 0, 60,
                 "the watch's state")  # fmt: skip
        assert json.loads(box.run("cat", watch).stdout)["consul"] == "ok"
    finally:
        world.close()
