"""Whole Consul trees of bad input through check and plan: problems, never exceptions.

Hypothesis builds trees of lanes and subscribers with broken JSON and
literals, wrong types, huge and deeply nested values, unicode and control
characters, traversal names, duplicate users and uids and uid 0, beside one
good lane. Whatever the rest holds, the good lane is planned exactly as if
it were alone, every problem names its key path on one printable line, and
nothing raises.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftpdup.config.parse import Entry, parse_tree
from ftpdup.consul_source import Instance, Snapshot
from ftpdup.manager.actual import Actual
from ftpdup.manager.plan import lane_refusals, make_plan
from ftpdup.settings import Settings

PREFIX = "ftp_duplicator/incoming_directories"
HOST = Settings(data_root="/srv/dup")
GOOD = {
    "settings": {"user": "goodlane", "password": "pw", "uid": 4242424, "exclude": ["*.t"]},
    "subscribers/web": {"mode": "http", "host": "web.example", "port": 8080},
    "subscribers/cluster": {"mode": "http", "consul_service": "store", "directory": "d"},
}
INSTANCES = {"store": (Instance("store-1", "10.0.0.1", 80),)}

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["..", ".", "a/b", "../../etc", "x\ny", "x\r\nDELE /", "\0", "é", "\U0001d518"]
    ),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=20),
    st.just("x" * 3000),
)
names = st.one_of(
    st.sampled_from(
        ["good", "a", "b", "lane-1", "z.z", "_x", "+bad", "-bad", ".hidden", "..", "a:b"]
    ),
    hostile_text.filter(lambda text: "/" not in text and text),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), hostile_text
)
nested = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
users = st.sampled_from(
    ["root", "daemon", "u1", "u2", "goodlane", "ftpdup", "x y", "Upper", "a" * 40]
)
uids = st.one_of(st.sampled_from([0, 1, 1000, 1001, 4242424, 65534, -5]), st.integers(-10, 2**40))
lane_values = st.fixed_dictionaries(
    {},
    optional={
        "user": users | nested,
        "password": hostile_text | nested,
        "uid": uids | nested,
        "lifetime": st.integers(-5, 10**9) | nested,
        "exclude": st.lists(hostile_text, max_size=5) | nested,
        "unknown": nested,
    },
)
subscriber_values = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.sampled_from(["ftp", "http", "sftp", ""]) | nested,
        "host": st.sampled_from(["h", "10.0.0.1", "::1", "a b", "h/x"]) | hostile_text,
        "port": st.integers(-1, 70000) | nested,
        "user": hostile_text,
        "password": hostile_text,
        "passwd": hostile_text,
        "directory": hostile_text | nested,
        "tmp_suff": hostile_text,
        "consul_service": st.sampled_from(["store", "a b"]) | hostile_text,
        "verify_size": nested,
    },
)


def encoded(value) -> st.SearchStrategy[bytes]:
    """Return the ways a value may be written in Consul: JSON, a literal, or broken."""
    text = json.dumps(value, default=str)
    return st.sampled_from(
        [
            text.encode(),
            repr(value).encode(),
            text[: len(text) // 2].encode(),
            b"\xff\xfe" + text.encode(),
            b"[" * 3000,
            b"",
        ]
    )


@st.composite
def trees(draw) -> dict[str, Entry]:
    entries = {f"{PREFIX}/": Entry(None)}
    for key, value in GOOD.items():
        entries[f"{PREFIX}/good/{key}"] = Entry(json.dumps(value).encode(), 7)
    for lane in draw(st.lists(names, max_size=5, unique=True)):
        if lane == "good":
            continue
        if draw(st.booleans()):
            raw = draw(lane_values.flatmap(encoded))
            entries[f"{PREFIX}/{lane}/settings"] = Entry(raw, draw(st.integers(0, 99)))
        for subscriber in draw(st.lists(names, max_size=3, unique=True)):
            raw = draw(subscriber_values.flatmap(encoded))
            entries[f"{PREFIX}/{lane}/subscribers/{subscriber}"] = Entry(raw)
        if draw(st.booleans()):
            entries[f"{PREFIX}/{lane}/{draw(hostile_text)}"] = Entry(b"{}")
    return entries


def alone() -> dict[str, Entry]:
    entries = {f"{PREFIX}/": Entry(None)}
    for key, value in GOOD.items():
        entries[f"{PREFIX}/good/{key}"] = Entry(json.dumps(value).encode(), 7)
    return entries


def planned_for_good_lane(plan) -> dict:
    """Return what a plan does for the good lane (its specs, units, account)."""
    return {
        # (the lane record holds a salted digest with a random salt)
        "specs": {
            path: text
            for path, (text, _) in plan.writes.items()
            if "/good" in path and "/lanes/" not in path
        },
        "units": sorted(unit for unit in plan.enable | plan.start if "@good" in unit),
        "accounts": [(a.user, a.uid) for a in plan.create_accounts if a.lane == "good"],
    }


EXPECTED = planned_for_good_lane(
    make_plan(Snapshot(parse_tree(alone()), INSTANCES, 1), HOST, Actual(), 1e9)
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_bad_trees_give_problems_with_key_paths_and_leave_the_good_lane_alone(entries):
    config = parse_tree(entries)
    for problem in config.problems:
        assert problem.path.startswith("incoming_directories/"), problem
        assert str(problem).isprintable(), problem
        assert len(str(problem)) < 1000
    assert "good" in [lane.name for lane in config.lanes]
    refused = lane_refusals(config.lanes, {})
    assert "good" not in refused
    plan = make_plan(Snapshot(config, INSTANCES, 1), HOST, Actual(), 1e9)
    assert planned_for_good_lane(plan) == EXPECTED
    assert all(line.isprintable() for line in plan.lines())
    assert "pw" not in [word for line in plan.lines() for word in line.split()]
