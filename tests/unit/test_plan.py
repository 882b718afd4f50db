"""The manager's pure reconcile: what it plans for a given Consul snapshot and host state."""

from __future__ import annotations

import json

from ftpdup import specs
from ftpdup.config.parse import Entry, parse_tree
from ftpdup.consul_source import Instance, Snapshot
from ftpdup.host.accounts import Account
from ftpdup.host.units import spec_name, template_path, unit_name
from ftpdup.manager.actual import Actual
from ftpdup.manager.plan import LaneRecord, make_plan
from ftpdup.settings import Settings

HOST = Settings(etc_dir="/etc/ftpdup", unit_dir="/etc/systemd/system", data_root="/srv/dup")
LANE = {"user": "obsup", "password": "pw", "uid": 3001, "lifetime": 5}
FTP = {"mode": "ftp", "host": "h", "user": "u", "password": "p"}
WEB = {"mode": "http", "host": "w", "port": 8080}


def snapshot(values: dict, instances=None) -> Snapshot:
    entries = {
        f"ftp_duplicator/incoming_directories/{key}": Entry(
            json.dumps(value).encode() if isinstance(value, dict) else value.encode()
        )
        for key, value in values.items()
    }
    entries["ftp_duplicator/incoming_directories/"] = Entry(None)
    return Snapshot(parse_tree(entries), instances or {}, 1)


def applied(snap: Snapshot, accounts=None, now: float = 1e9, actual=None, host=HOST) -> Actual:
    """Return the Actual a host has once make_plan's plan for snap was applied."""
    actual = actual or Actual(accounts=dict(accounts or {}))
    plan = make_plan(snap, host, actual, now)
    for account in plan.create_accounts:
        actual.accounts[account.user] = Account(
            account.user, account.uid, f"ftpdup lane {account.lane}", account.home
        )
    for path, (text, _) in plan.writes.items():
        if "/workers/" in path:
            kind = path.split("/workers/")[1].split("/")[0]
            actual.specs[kind][spec_name(path.rsplit("/", 1)[1])] = text
        elif "/lanes/" in path:
            actual.lanes[path.rsplit("/", 1)[1][: -len(".json")]] = text
        else:
            actual.files[path] = text
        if path.endswith("/absent.json"):
            actual.absent = json.loads(text)
    for path in plan.removes:
        for kind in ("sprinkler", "carrier"):
            actual.specs[kind].pop(spec_name(path.rsplit("/", 1)[1]), None)
    # The queues on disk: the carriers' (made by the manager) and the sprinklers' outputs.
    actual.queues -= set(plan.bury_queues)
    actual.lane_folders -= set(plan.bury_lanes)
    for directory in plan.directories:
        kind, name = directory.path.split("/")[-2:]
        if kind in ("pending", "spool"):
            actual.queues.add(name)
        elif kind in ("incoming", "staging"):
            actual.lane_folders.add(name)
    for text in actual.specs["sprinkler"].values():
        actual.queues |= {output.instance for output in specs.from_json(text).outputs}
    actual.active.update({unit: "active" for unit in plan.start | plan.enable})
    actual.active.update({unit: "inactive" for unit in plan.hold | plan.stop})
    return actual


def test_new_lane_creates_account_files_and_units():
    plan = make_plan(snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP}), HOST, Actual(), 0)
    assert [(a.user, a.uid, a.home) for a in plan.create_accounts] == [
        ("obsup", 3001, "/srv/dup/incoming/obs")
    ]
    assert (
        plan.enable == plan.start == {unit_name("sprinkler", "obs"), unit_name("carrier", "obs:a")}
    )
    assert "/etc/ftpdup/workers/carrier/obs:a.json" in plan.writes
    assert plan.writes["/etc/ftpdup/workers/carrier/obs:a.json"][1] == 0o600
    assert plan.daemon_reload and plan.vsftpd == "restart"
    assert "pw" not in " ".join(plan.lines()).split()


def test_second_pass_changes_nothing():
    snap = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP, "obs/subscribers/b": WEB})
    plan = make_plan(snap, HOST, applied(snap), 0)
    assert plan.lines() == []


def test_changing_one_subscriber_restarts_only_its_carrier():
    before = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP, "obs/subscribers/b": WEB})
    after = snapshot(
        {
            "obs/settings": LANE,
            "obs/subscribers/a": FTP,
            "obs/subscribers/b": {**WEB, "directory": "new"},
        }
    )
    plan = make_plan(after, HOST, applied(before), 0)
    assert plan.restart == {unit_name("carrier", "obs:b")}
    assert plan.start == plan.enable == plan.stop == set()
    assert not plan.daemon_reload  # only its spec changed: no unit file did


def test_removed_subscriber_is_stopped_and_its_queue_buried():
    before = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP, "obs/subscribers/b": WEB})
    after = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP})
    plan = make_plan(after, HOST, applied(before), 0)
    assert plan.stop == {unit_name("carrier", "obs:b")}
    assert plan.bury_queues == {"obs:b": "subscriber b removed from lane obs"}
    assert plan.restart == {unit_name("sprinkler", "obs")}  # its outputs changed
    assert "/etc/ftpdup/workers/carrier/obs:b.json" in plan.removes


def test_broken_subscriber_keeps_its_carrier_and_the_sprinkler_keeps_feeding_it():
    before = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP, "obs/subscribers/b": WEB})
    after = snapshot(
        {"obs/settings": LANE, "obs/subscribers/a": FTP, "obs/subscribers/b": {"mode": "gopher"}}
    )
    plan = make_plan(after, HOST, applied(before), 0)
    assert plan.stop == plan.restart == set() and plan.bury_queues == {}
    assert any("'mode' must be" in error for error in plan.errors)


def test_broken_lane_is_left_exactly_as_it_is():
    before = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP})
    after = snapshot({"obs/settings": "{not valid", "obs/subscribers/a": FTP})
    plan = make_plan(after, HOST, applied(before), 0)
    problem = (
        "incoming_directories/obs/settings: value is neither JSON nor a Python literal "
        "(JSON: Expecting property name enclosed in double quotes at line 1 column 2)"
    )
    assert plan.errors == [problem]
    # Only the manager's status file changes: it now lists the problem.
    assert list(plan.writes) == ["/srv/dup/status/manager.json"]
    assert json.loads(plan.writes["/srv/dup/status/manager.json"][0])["problems"] == [problem]
    assert not [line for line in plan.lines() if "manager.json" not in line and "error" not in line]


def test_removed_lane_removes_account_units_and_buries():
    before = snapshot({"obs/settings": LANE, "obs/subscribers/a": FTP})
    plan = make_plan(snapshot({}), HOST, applied(before), 0)
    assert plan.stop == {unit_name("sprinkler", "obs"), unit_name("carrier", "obs:a")}
    assert plan.remove_lanes == {"obs": "lane obs removed from Consul"}
    assert plan.remove_accounts == [("obsup", "obs")]
    assert plan.bury_queues == {"obs:a": "lane obs removed from Consul"}
    assert plan.bury_lanes == {"obs": "lane obs removed from Consul"}


def test_accounts_ftpdup_did_not_create_are_never_touched():
    foreign = {"obsup": Account("obsup", 3001, "Some Body", "/home/obsup")}
    plan = make_plan(snapshot({"obs/settings": LANE}), HOST, Actual(accounts=foreign), 0)
    assert plan.create_accounts == plan.set_passwords == [] and plan.enable == set()
    assert "exists and is not ftpdup's account" in plan.errors[0]
    taken_uid = {"other": Account("other", 3001, "", "/home/other")}
    plan = make_plan(snapshot({"obs/settings": LANE}), HOST, Actual(accounts=taken_uid), 0)
    assert plan.create_accounts == [] and "uid 3001 belongs to account 'other'" in plan.errors[0]
    # A removed lane whose account was not ftpdup's keeps the account.
    actual = Actual(
        accounts=foreign,
        lanes={
            "obs": LaneRecord.for_lane(snapshot({"obs/settings": LANE}).config.lanes[0]).to_json()
        },
    )
    assert make_plan(snapshot({}), HOST, actual, 0).remove_accounts == []


def test_password_change_sets_the_password_only():
    before = snapshot({"obs/settings": LANE})
    plan = make_plan(
        snapshot({"obs/settings": {**LANE, "password": "new"}}), HOST, applied(before), 0
    )
    assert [a.user for a in plan.set_passwords] == ["obsup"]
    assert plan.restart == plan.start == set()
    assert "new" not in "".join(plan.lines())


def test_service_instances_get_one_carrier_each():
    values = {"obs/settings": LANE, "obs/subscribers/c": {"mode": "http", "consul_service": "s"}}
    two = {"s": (Instance("s-1", "10.0.0.1", 81), Instance("s-2", "10.0.0.2", 82))}
    actual = applied(snapshot(values, two))
    assert set(actual.specs["carrier"]) == {"obs:c:s-1", "obs:c:s-2"}
    target = specs.from_json(actual.specs["carrier"]["obs:c:s-2"]).target
    assert (target.host, target.port) == ("10.0.0.2", 82)


def test_an_instance_that_stops_passing_is_held_for_the_grace_then_buried():
    values = {"obs/settings": LANE, "obs/subscribers/c": {"mode": "http", "consul_service": "s"}}
    two = {"s": (Instance("s-1", "10.0.0.1", 81), Instance("s-2", "10.0.0.2", 82))}
    one = {"s": two["s"][:1]}
    host = Settings(data_root="/srv/dup", instance_grace=600)
    actual = applied(snapshot(values, two), host=host)
    unit = unit_name("carrier", "obs:c:s-2")

    gone = make_plan(snapshot(values, one), host, actual, 1000.0)
    assert gone.hold == {unit} and gone.stop == set() and gone.bury_queues == {}
    assert "/etc/ftpdup/workers/carrier/obs:c:s\\x2d2.json" not in gone.removes
    # The sprinkler keeps feeding the held instance's spool: its spec is unchanged.
    assert "/etc/ftpdup/workers/sprinkler/obs.json" not in gone.writes
    assert gone.restart == set()
    assert json.loads(gone.writes["/srv/dup/manager/absent.json"][0]) == {"obs:c:s-2": 1000.0}

    actual = applied(snapshot(values, one), actual=actual, host=host, now=1000.0)
    actual.active[unit] = "inactive"
    later = make_plan(snapshot(values, one), host, actual, 1599.0)
    assert not later.changes()  # still within the grace: nothing to do

    back = make_plan(snapshot(values, two), host, actual, 1500.0)
    assert back.start == {unit} and back.bury_queues == {}
    assert json.loads(back.writes["/srv/dup/manager/absent.json"][0]) == {}

    past = make_plan(snapshot(values, one), host, actual, 1601.0)
    assert past.stop == {unit}
    assert "not passing for longer than instance_grace=600 s" in past.bury_queues["obs:c:s-2"]


def test_the_instance_grace_defaults_to_carrier_max_age():
    assert Settings(carrier_max_age=7200).grace() == 7200
    assert Settings(carrier_max_age=7200, instance_grace=30).grace() == 30


def test_lifetime_expiry_lists_only_old_files():
    actual = applied(snapshot({"obs/settings": LANE}))
    actual.lane_files = {"obs": [("old.t", 1000.0), ("new.t", 1000.0 + 299)]}
    plan = make_plan(snapshot({"obs/settings": LANE}), HOST, actual, now=1000.0 + 301)
    assert plan.expire == {"obs": (5, ["old.t"])}


def test_collectd_config_is_written_when_its_service_has_an_instance():
    host = Settings(
        etc_dir="/e",
        unit_dir="/u",
        data_root="/d",
        collectd_service="collectd",
        collectd_config="/c/ftpdup.conf",
    )
    snap = snapshot(
        {"obs/settings": LANE, "obs/subscribers/a": FTP},
        {"collectd": (Instance("c1", "10.1.1.1", 25826),)},
    )
    plan = make_plan(snap, host, Actual(), 0)
    text = plan.writes["/c/ftpdup.conf"][0]
    assert '<Directory "/d/incoming/obs">' in text and '<Directory "/d/spool/obs:a">' in text
    assert 'Server "10.1.1.1" "25826"' in text and plan.reload_collectd
    plan = make_plan(snapshot({"obs/settings": LANE}), host, Actual(), 0)
    assert "has no passing instance" in plan.errors[0] and "/c/ftpdup.conf" not in plan.writes


def test_specs_are_named_by_instance_and_drop_ins_hold_no_secret():
    values = {"obs-1/settings": LANE, "obs-1/subscribers/a": {**FTP, "password": "s3cr3t"}}
    plan = make_plan(snapshot(values), HOST, Actual(), 0)
    spec = plan.writes["/etc/ftpdup/workers/carrier/obs\\x2d1:a.json"]
    assert spec[1] == 0o600 and json.loads(spec[0])["target"]["password"] == "s3cr3t"
    drop_in = plan.writes[template_path(HOST.unit_dir, "carrier")][0]
    assert "ReadWritePaths=/srv/dup" in drop_in and "StandardInput" not in drop_in
    assert not [path for path in plan.writes if "/systemd/" in path and "@obs" in path]
    elsewhere = Settings(etc_dir="/srv/etc%d", data_root="/srv/dup")
    drop_in = make_plan(snapshot(values), elsewhere, Actual(), 0).writes[
        template_path(elsewhere.unit_dir, "sprinkler")
    ][0]
    assert "StandardInput=file:/srv/etc%%d/workers/sprinkler/%i.json" in drop_in
    assert not [
        text
        for path, (text, _) in plan.writes.items()
        if "s3cr3t" in text and "/workers/" not in path
    ]


def test_two_lanes_claiming_one_account_apply_only_the_first():
    snap = snapshot({"a/settings": LANE, "b/settings": {**LANE, "uid": 3002}})
    plan = make_plan(snap, HOST, Actual(), 0)
    assert [account.lane for account in plan.create_accounts] == ["a"]
    assert plan.errors == [
        "incoming_directories/b/settings: user 'obsup' is already lane a's; lane not applied"
    ]
