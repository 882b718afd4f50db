"""The operator's questions under the real systemd: where is file X, why is subscriber Y behind.

One subscriber is stopped while files flow: ``ftpdup status`` (run by a
member of the monitoring group, not root) shows it behind with its oldest
age and error and exits non-zero; the journal shows one file's whole life;
the metrics file shows the same backlog; a dead letter replayed is
delivered once.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.harness.procs import wait_for
from tests.harness.servers import NginxDav

pytestmark = pytest.mark.system


def as_watcher(container, *argv: str):
    """Run argv as the unprivileged user "watcher", a member of ftpdupmon."""
    if container.run("id", "watcher", check=False).returncode != 0:
        container.run("useradd", "--no-create-home", "--groups", "ftpdupmon", "watcher")
    return container.run("runuser", "-u", "watcher", "--", *argv, check=False)


def test_status_trail_and_metrics_answer_where_a_file_is(world, container):
    lane = world.add_lane("ops")
    down = world.add_ftp_subscriber(lane, "down")
    world.add_http_subscriber(lane, "up")
    units = [world.unit("carrier", f"{lane}:{sub}") for sub in ("down", "up")]
    for unit in units:
        world.wait_active(unit)
    down.stop()
    files = {f"ops-{n}.bin": os.urandom(10_000 + n) for n in range(6)}
    world.upload(lane, files)
    world.wait_at(world.destinations[f"{lane}:up"], files)
    time.sleep(8)  # the status files are written at most every 5 s

    done = as_watcher(container, "ftpdup", "status", "--json", f"{lane}:down")
    assert done.returncode == 1, done.stdout + done.stderr  # warning: behind and failing
    (row,) = json.loads(done.stdout)["rows"]
    assert (row["lane"], row["subscriber"], row["state"]) == (lane, "down", "active")
    assert row["backlog_files"] == 6 and row["backlog_bytes"] == sum(map(len, files.values()))
    assert 8 <= row["oldest_age_s"] < 120 and row["retrying"]
    assert "refused" in row["last_error"] or "Connection" in row["last_error"]
    assert {"unit", "instance", "dead_letters"} <= set(row)
    table = as_watcher(container, "ftpdup", "status", lane)
    assert f"{lane}:up" in table.stdout and "warning" in table.stdout
    assert as_watcher(container, "cat", "/etc/ftpdup/workers/carrier/x.json").returncode != 0

    name = "ops-3.bin"
    trail = container.run("journalctl", "--no-pager", "-o", "json", f"FTPDUP_FILE={name}").stdout
    events = [json.loads(line) for line in trail.splitlines()]
    seen = {(e["FTPDUP_EVENT"], e.get("FTPDUP_SUBSCRIBER", "")) for e in events}
    assert {("arrival", ""), ("fanout", ""), ("delivered", "up")} <= seen, seen
    delivered = next(e for e in events if e["FTPDUP_EVENT"] == "delivered")
    assert delivered["FTPDUP_SIZE"] == str(len(files[name])) and "FTPDUP_DURATION_MS" in delivered
    assert delivered["_SYSTEMD_UNIT"] == units[1].replace("\\\\", "\\")
    trace = container.run("ftpdup", "trace", name).stdout
    assert "arrival" in trace and "delivered" in trace and f"{lane}:up" in trace

    container.run("mkdir", "-p", "/var/lib/node_exporter/textfile_collector")
    container.run("systemctl", "start", "ftpdup-metrics.service")
    with open(container.path("/var/lib/node_exporter/textfile_collector/ftpdup.prom")) as handle:
        text = handle.read()
    labels = f'lane="{lane}",subscriber="down",service_instance=""'
    assert f"ftpdup_backlog_files{{{labels}}} 6" in text
    assert f"ftpdup_retrying{{{labels}}} 1" in text
    assert (
        f'ftpdup_delivered_files_total{{lane="{lane}",subscriber="up",service_instance=""}} 6'
        in text
    )
    assert "ftpdup_transfer_duration_seconds_bucket" in text


def test_a_replayed_dead_letter_is_delivered_once(world, container):
    lane = world.add_lane("replay")
    web = NginxDav(os.path.join(world.root, "dav"), world.root).start()
    world.servers["dav"] = web
    value = {"mode": "http", "host": "127.0.0.1", "port": web.port}
    world.put_subscriber(lane, "dav", value)
    unit = world.unit("carrier", f"{lane}:dav")
    world.wait_active(unit)
    web.stop()
    files = {"again.bin": os.urandom(5000), "other.bin": os.urandom(7000)}
    world.upload(lane, files)
    spool = container.path(world.layout.spool(f"{lane}:dav"))
    wait_for(lambda: sorted(os.listdir(spool)) == sorted(files), 30, "files queued")
    world.agent.delete(world.key(lane, "subscribers/dav"))  # removed: its queue is buried
    world.wait_gone(unit)

    def listing() -> str:
        return container.run("ftpdup", "deadletter", "list", f"{lane}:dav").stdout

    wait_for(lambda: "other.bin" in listing(), 60, "the queue in the dead letters")
    assert "again.bin" in listing() and "subscriber dav removed" in listing()

    web.start()
    world.put_subscriber(lane, "dav", value)  # back
    world.wait_active(unit)
    done = container.run("ftpdup", "deadletter", "replay", f"{lane}:dav", "again.bin")
    assert "1 replayed" in done.stdout
    world.wait_at([web.root], {"again.bin": files["again.bin"]})
    time.sleep(3)
    assert web.requests("PUT", succeeded=True).count("/again.bin") == 1
    assert not os.path.exists(os.path.join(web.root, "other.bin"))  # not replayed
    assert "other.bin" in listing() and "again.bin" not in listing()
    trail = container.run("ftpdup", "trace", "again.bin").stdout
    for event in ("dead_letter", "replayed", "delivered"):
        assert event in trail
    container.run("ftpdup", "deadletter", "purge", "--older-than", "0", f"{lane}:dav")
    assert "other.bin" not in container.run("ftpdup", "deadletter", "list", lane).stdout


def test_a_paused_subscriber_queues_its_files_through_passes_and_restarts(world, container):
    lane = world.add_lane("pause")
    web = NginxDav(os.path.join(world.root, "dav-pause"), world.root).start()
    world.servers["dav-pause"] = web
    world.put_subscriber(lane, "maint", {"mode": "http", "host": "127.0.0.1", "port": web.port})
    world.add_http_subscriber(lane, "other")
    unit = world.unit("carrier", f"{lane}:maint")
    world.wait_active(unit)
    world.wait_active(world.unit("carrier", f"{lane}:other"))
    done = container.run("ftpdup", "pause", f"{lane}:maint", "--reason", "maintenance window")
    assert f"{lane}:maint paused" in done.stdout
    assert container.is_active(unit) == "inactive"
    files = {f"held-{n}.bin": os.urandom(3000 + n) for n in range(4)}
    world.upload(lane, files)
    world.wait_at(world.destinations[f"{lane}:other"], files)  # the others go on
    spool = container.path(world.layout.spool(f"{lane}:maint"))
    wait_for(lambda: sorted(os.listdir(spool)) == sorted(files), 30, "the files to queue")
    # Manager passes and a restart of everything leave it paused.
    container.run("systemctl", "start", "ftpdup-manager.service")
    container.run("systemctl", "restart", "ftpdup.target")
    container.run("systemctl", "start", "ftpdup-manager.service")
    assert container.is_active(unit) == "inactive"
    assert container.run("systemctl", "is-enabled", unit, check=False).stdout.strip() == "disabled"
    assert web.requests("PUT") == []

    container.run("systemctl", "start", "ftpdup-metrics.service")  # counts for the group

    def row():
        found = as_watcher(container, "ftpdup", "status", "--json", f"{lane}:maint")
        rows = json.loads(found.stdout)["rows"] if found.stdout else []
        return (found.returncode, rows[0]) if rows and rows[0]["state"] == "paused" else None

    code, paused = wait_for(row, 30, "the status to show the pause")
    assert code == 1 and paused["level"] == "warning"  # a warning, not critical
    assert "paused since" in paused["notes"][0] and "maintenance window" in paused["notes"][0]
    assert paused["backlog_files"] == 4
    done = container.run("ftpdup", "resume", f"{lane}:maint")
    assert f"{lane}:maint resumed" in done.stdout
    world.wait_at([web.root], files)
    assert container.run("systemctl", "is-enabled", unit).stdout.strip() == "enabled"


def test_dead_letters_have_full_names_ids_json_and_go_to_any_queue(world, container):
    lane = world.add_lane("dl", exclude=["*.t"], lifetime=0)
    other_lane = world.add_lane("dl2")
    down = world.add_ftp_subscriber(lane, "gone")
    world.add_http_subscriber(lane, "kept")
    world.add_http_subscriber(other_lane, "elsewhere")
    for name in (f"{lane}:gone", f"{lane}:kept", f"{other_lane}:elsewhere"):
        world.wait_active(world.unit("carrier", name))
    down.stop()
    long_name = "SAXX99_LFPW_301200_RRA_bulletin_of_a_long_WMO_style_name_0001.txt"
    files = {long_name: os.urandom(3000), "stuck.t": os.urandom(100)}
    world.upload(lane, files)
    spool = container.path(world.layout.spool(f"{lane}:gone"))
    wait_for(lambda: os.listdir(spool) == [long_name], 30, "the file queued")
    world.agent.delete(world.key(lane, "subscribers/gone"))  # its queue is buried
    container.run("systemctl", "start", "ftpdup-manager.service")  # lifetime 0: stuck.t too

    def letters(folder: str) -> list[dict]:
        done = container.run("ftpdup", "deadletter", "list", "--json", folder)
        return [letter for letter in json.loads(done.stdout) if letter["folder"] == folder]

    wait_for(lambda: letters(f"{lane}:gone") and letters(lane), 60, "the two dead letters")
    (buried,) = letters(f"{lane}:gone")
    assert buried["name"] == long_name and buried["id"] == long_name  # whole, not cut
    assert "subscriber gone removed" in buried["reason"]
    table = container.run("ftpdup", "deadletter", "list", f"{lane}:gone").stdout
    assert long_name in table
    expired = letters(lane)
    assert [letter["name"] for letter in expired] == ["stuck.t"], expired
    assert "lifetime" in expired[0]["reason"]

    # Into another lane's subscriber, by its ID; an expired lane file to a subscriber.
    done = container.run("ftpdup", "deadletter", "replay", f"{lane}:gone", buried["id"],
                         "--to", f"{other_lane}:elsewhere")  # fmt: skip
    assert f"1 replayed into {other_lane}:elsewhere" in done.stdout
    world.wait_at(world.destinations[f"{other_lane}:elsewhere"], {long_name: files[long_name]})
    done = container.run("ftpdup", "deadletter", "replay", lane, "--all", "--to", f"{lane}:kept")
    assert f"1 replayed into {lane}:kept" in done.stdout
    world.wait_at(world.destinations[f"{lane}:kept"], files)
    assert letters(f"{lane}:gone") == [] and letters(lane) == []
