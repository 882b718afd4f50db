"""Several hosts: rendezvous placement, add-before-remove, drains, and the manager's plan."""

from __future__ import annotations

import json

from ftpdup import fleet
from ftpdup.cluster import Member, owners, place, tag
from ftpdup.config.model import Lane
from ftpdup.manager.actual import Actual
from ftpdup.manager.plan import make_plan
from ftpdup.settings import Settings
from tests.unit.test_plan import applied, snapshot

LANES = [f"lane{number:04d}" for number in range(1000)]


def lane(name: str, replicas: int | None = 2, hosts=()) -> Lane:
    return Lane(name, "u", "p", 1, replicas=replicas, hosts=tuple(hosts))


def test_each_lane_gets_its_replicas_and_a_new_host_moves_only_what_it_takes():
    three = ["h1", "h2", "h3"]
    before = {name: owners(name, 2, (), three) for name in LANES}
    assert all(len(chosen) == 2 for chosen in before.values())
    counts = {host: sum(host in chosen for chosen in before.values()) for host in three}
    assert all(600 <= count <= 730 for count in counts.values()), counts  # spread evenly
    after = {name: owners(name, 2, (), [*three, "h4"]) for name in LANES}
    moved = [name for name in LANES if after[name] != before[name]]
    # Only lanes the new host takes change, each losing exactly one old owner.
    assert all("h4" in after[name] and len(set(before[name]) & set(after[name])) == 1
               for name in moved)  # fmt: skip
    assert 400 <= len(moved) <= 600  # about 2 in 4
    # A host that leaves moves only the lanes it had.
    gone = {name: owners(name, 2, (), ["h1", "h3"]) for name in LANES}
    assert all(gone[name] == before[name] for name in LANES if "h2" not in before[name])


def test_all_is_every_host_and_a_pin_limits_the_choice():
    assert owners("x", None, (), ["b", "a"]) == ["a", "b"]
    assert owners("x", 1, ("b",), ["a", "b", "c"]) == ["b"]
    assert owners("x", 3, ("a", "z"), ["a", "b"]) == ["a"]


def test_a_lane_leaves_only_once_its_new_owners_pass_and_say_they_accept_it():
    name = next(n for n in LANES if owners(n, 1, (), ["old", "new"]) == ["new"])
    lanes = [lane(name, 1)]
    # The new host counts itself before Consul calls it passing: it takes the lane.
    assert place(lanes, "new", [Member("old")], [], False).accepting == {name}
    # The old owner keeps it while the new one is not passing, or not tagged yet.
    for members in ([Member("old"), Member("new", passing=False)],
                    [Member("old"), Member("new")]):  # fmt: skip
        placed = place(lanes, "old", members, [name], False)
        assert placed.accepting == {name} and placed.leaving == set()
    ready = [Member("old"), Member("new", tags=frozenset({tag(name)}))]
    placed = place(lanes, "old", ready, [name], False)
    assert placed.accepting == set() and placed.leaving == {name}
    # A lane it did not accept is not its business.
    assert place(lanes, "old", ready, [], False) == place(lanes, "old", ready, [], False)
    assert place(lanes, "old", ready, [], False).leaving == set()


def test_a_draining_host_counts_itself_out():
    lanes = [lane(n, None) for n in LANES[:5]]
    members = [Member("a"), Member("b", tags=frozenset(tag(n) for n in LANES[:5]))]
    placed = place(lanes, "a", members, [n for n in LANES[:5]], True)
    assert placed.accepting == set() and placed.leaving == set(LANES[:5])


CLUSTER = Settings(data_root="/srv/dup", cluster_service="ftpdup", cluster_host_id="me")
SETTINGS = {"user": "u1", "password": "pw", "uid": 3001}


def test_the_plan_lets_go_of_a_lane_it_no_longer_holds_files_of_and_keeps_one_it_does():
    values = {"a/settings": {**SETTINGS, "replicas": 1, "hosts": ["other"]},
              "a/subscribers/s": {"mode": "http", "host": "w"},
              "b/settings": {**SETTINGS, "user": "u2", "uid": 3002},
              "b/subscribers/s": {"mode": "http", "host": "w"}}  # fmt: skip
    members = (Member("me"), Member("other", tags=frozenset({tag("a")})))
    snap = snapshot(values)
    snap = type(snap)(snap.config, {}, 1, (), members)
    actual = applied(snapshot(values), host=Settings(data_root="/srv/dup"))
    actual.accepting = {"a", "b"}
    plan = make_plan(snap, CLUSTER, actual, 100)
    status = json.loads(plan.writes["/srv/dup/status/manager.json"][0])["cluster"]
    # Its new owner is ready: lane a leaves, out of the tags at once, logins taken a grace on.
    assert status["accepting"] == ["b"] and status["leaving"] == ["a"]
    assert status["leaving_since"] == {"a": 100} and status["refusing"] == []
    assert "a" not in plan.remove_lanes and not plan.stop
    users = "/etc/ftpdup/vsftpd.users"
    assert "u1" in plan.writes.get(users, (actual.files[users],))[0]
    actual.leaving = {"a": 100.0}
    plan = make_plan(snap, CLUSTER, actual, 100 + CLUSTER.cluster_drain_grace)
    status = json.loads(plan.writes["/srv/dup/status/manager.json"][0])["cluster"]
    # The grace is over: no new login; its workers stay for a pass.
    assert status["refusing"] == ["a"] and status["leaving_since"] == {"a": 100}
    listed = plan.writes[users][0]
    assert "u2" in listed and "u1" not in listed
    assert "a" not in plan.remove_lanes and not plan.stop
    actual.refusing = {"a"}
    actual.busy_lanes = {"a"}  # files of lane a still wait here: it stays, leaving
    plan = make_plan(snap, CLUSTER, actual, 200)
    status = json.loads(plan.writes["/srv/dup/status/manager.json"][0])["cluster"]
    assert status["leaving"] == ["a"] and "a" not in plan.remove_lanes and not plan.stop
    actual.busy_lanes = set()  # delivered: now it goes, its account and workers with it
    plan = make_plan(snap, CLUSTER, actual, 300)
    assert plan.remove_lanes == {"a": "lane a is accepted by other hosts"} and plan.stop
    assert plan.bury_queues == {"a:s": "lane a is accepted by other hosts"}  # empty, removed


def test_without_a_cluster_service_nothing_changes():
    values = {"a/settings": {**SETTINGS, "replicas": 1, "hosts": ["other"]}}
    plan = make_plan(snapshot(values), Settings(data_root="/srv/dup"), Actual(), 0)
    assert json.loads(plan.writes["/srv/dup/status/manager.json"][0])["cluster"] is None
    assert "u1" in plan.writes["/etc/ftpdup/vsftpd.users"][0]


def test_a_host_summary_keeps_what_the_view_of_all_hosts_shows_and_stays_under_consul_limit():
    row = {"lane": "l", "subscriber": "s", "instance": None, "kind": "carrier",
           "state": "active", "backlog_files": 0, "oldest_age_s": None, "last_error": "",
           "dead_letters": 0, "level": "ok", "notes": [], "unit": "u", "backlog_bytes": 0,
           "delivered_files_total": 5, "delivered_bytes_total": 50}  # fmt: skip
    small = fleet.summary("h1", {"level": "ok", "rows": [row]})
    assert small["rows"] == [{key: row[key] for key in fleet.SUMMARY_FIELDS}]
    bad = {**row, "lane": "down", "level": "critical", "last_error": "refused " * 100}
    big = fleet.summary("h1", {"level": "critical", "rows": [row] * 5000 + [bad]})
    assert len(json.dumps(big)) <= fleet.SUMMARY_LIMIT
    assert [r["lane"] for r in big["rows"]] == ["down"] and len(big["rows"][0]["last_error"]) == 200
    assert big["notes"] == ["5000 rows at level ok left out (size limit)"]
