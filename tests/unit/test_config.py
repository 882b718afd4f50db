"""The configuration model: Consul tree -> lanes and subscribers, with every problem named."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftpdup.config.literal import ValueDecodeError, decode_mapping
from ftpdup.config.parse import Entry, parse_tree

PREFIX = "ftp_duplicator"
LANE_SETTINGS = {
    "exclude": ["*.t", "*.f"],
    "user": "transmet_fac",
    "password": "xxxxxx",
    "uid": 501,
    "lifetime": 60,
}


def tree(values: dict, prefix: str = PREFIX) -> dict:
    """Return Consul entries for {relative key: value (dict -> JSON, str as is, None)}."""
    entries = {}
    for index, (key, value) in enumerate(values.items(), start=1):
        raw = json.dumps(value).encode() if isinstance(value, dict) else value
        raw = raw.encode() if isinstance(raw, str) else raw
        entries[f"{prefix}/incoming_directories/{key}"] = Entry(raw, index)
    return entries


def test_reference_examples_parse_with_defaults():
    config = parse_tree(
        tree(
            {
                "transmet_fac/settings": LANE_SETTINGS,
                "transmet_fac/subscribers/webdav": {
                    "consul_service": "autoclean-webdav",
                    "mode": "http",
                    "directory": "racine/data/",
                },
                "transmet_fac/subscribers/meaux": "{'host': 'meaux', 'user': 'baptiste', "
                "'password': 'xxxxxx', 'mode': 'ftp', "
                "'directory': 'textes', 'tmp_suff': '.f'}",
                "transmet_fac/subscribers/plain": {
                    "mode": "ftp",
                    "host": "h",
                    "user": "u",
                    "passwd": "p",
                },
                "transmet_fac/subscribers/web": {"mode": "http", "host": "w", "port": 8080},
            }
        )
    )
    assert config.problems == ()
    (lane,) = config.lanes
    assert (lane.name, lane.user, lane.uid, lane.lifetime) == (
        "transmet_fac",
        "transmet_fac",
        501,
        60,
    )
    assert lane.exclude == ("*.t", "*.f")
    subs = {sub.name: sub for sub in lane.subscribers}
    assert subs["webdav"].service == "autoclean-webdav" and subs["webdav"].host is None
    assert (subs["meaux"].port, subs["meaux"].tmp_suff, subs["meaux"].directory) == (
        21,
        ".f",
        "textes",
    )
    assert (subs["plain"].password, subs["plain"].directory, subs["plain"].tmp_suff) == (
        "p",
        ".",
        ".t",
    )
    assert (subs["web"].port, subs["web"].directory) == (8080, ".")


def test_service_consul_alias_and_python_literals():
    config = parse_tree(
        tree(
            {
                "l/settings": "{'user': 'u1', 'password': 'p', 'uid': 1000, 'exclude': ['*.t']}",
                "l/subscribers/s": "{'mode': 'http', 'service_consul': 'svc', 'directory': 'd'}",
            }
        )
    )
    assert config.problems == ()
    assert config.lanes[0].subscribers[0].service == "svc"


def test_bad_subscriber_is_reported_and_skipped_the_rest_is_used():
    config = parse_tree(
        tree(
            {
                "transmet_fac/settings": LANE_SETTINGS,
                "transmet_fac/subscribers/meaux": {"mode": "sftp", "host": "meaux"},
                "transmet_fac/subscribers/good": {"mode": "http", "host": "h", "port": 80},
                "other/settings": {**LANE_SETTINGS, "uid": "abc"},
                "third/settings": {**LANE_SETTINGS, "user": "third"},
            }
        )
    )
    messages = [str(problem) for problem in config.errors()]
    assert (
        "incoming_directories/transmet_fac/subscribers/meaux: "
        "'mode' must be \"ftp\" or \"http\", not 'sftp'" in messages
    )
    assert "incoming_directories/other/settings: 'uid' must be an integer, not 'abc'" in messages
    assert sorted(lane.name for lane in config.lanes) == ["third", "transmet_fac"]
    assert [sub.name for sub in config.lanes[1].subscribers] == ["good"]
    assert config.broken_lanes == {"other"}
    assert config.broken_subscribers == {("transmet_fac", "meaux")}


def test_every_problem_of_one_value_is_collected():
    config = parse_tree(tree({"l/settings": {"uid": 0, "lifetime": -1, "exclude": [3]}}))
    messages = sorted(problem.message for problem in config.problems)
    assert messages == [
        "'exclude' must be a list of glob patterns",
        "'lifetime' must be between 0 and 5270400, not -1",
        "'password' is required",
        "'uid' must be between 1 and 2147483647, not 0",
        "'user' is required",
    ]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "value is empty"),
        (b"\xff\xfe", "value is not UTF-8 text"),
        (b"[1, 2]", "value must be a dictionary, not list"),
        (b"{'a': __import__('os').system('true')}", "value is neither JSON nor a Python literal"),
        (b"{1: 2}", "dictionary keys must be strings"),
    ],
)
def test_unreadable_values_name_the_problem(raw, message):
    with pytest.raises(ValueDecodeError, match=message.replace("(", r"\(")):
        decode_mapping(raw)


@pytest.mark.parametrize(
    "name",
    [
        "..",
        ".hidden",
        "a/b",
        "",
        "a:b",
        "tab\there",
        "new\nline",
        "x" * 101,
        "-lead",
        "sp ace",
        "nul\0",
    ],
)
def test_unsafe_lane_and_subscriber_names_are_rejected(name):
    config = parse_tree(
        {
            f"{PREFIX}/incoming_directories/{name}/settings": Entry(
                json.dumps(LANE_SETTINGS).encode()
            ),
            f"{PREFIX}/incoming_directories/ok/settings": Entry(json.dumps(LANE_SETTINGS).encode()),
            f"{PREFIX}/incoming_directories/ok/subscribers/{name}": Entry(
                b'{"mode":"http","host":"h"}'
            ),
        }
    )
    assert [lane.name for lane in config.lanes] == ["ok"]
    assert config.lanes[0].subscribers == ()
    assert len(config.errors()) >= 1
    assert all(
        "name" in problem.message or "missing" in problem.message or "unknown" in problem.message
        for problem in config.problems
    )


def test_missing_settings_and_unknown_keys():
    config = parse_tree(
        tree(
            {
                "nolane/subscribers/s": {"mode": "http", "host": "h"},
                "l/settings": {**LANE_SETTINGS, "colour": "blue"},
                "l/whatever": "x",
            }
        )
    )
    assert [str(p) for p in config.errors()] == [
        "incoming_directories/nolane/settings: missing: the lane has no settings key"
    ]
    warnings = sorted(str(p) for p in config.problems if p.warning)
    assert warnings == [
        "incoming_directories/l/settings: unknown setting 'colour' ignored",
        "incoming_directories/l/whatever: unknown key, ignored",
    ]


def test_prefix_is_configurable_and_other_prefixes_are_ignored():
    entries = {
        **tree({"a/settings": LANE_SETTINGS}, prefix="custom/dup"),
        **tree({"b/settings": LANE_SETTINGS}),
    }
    config = parse_tree(entries, prefix="custom/dup")
    assert [lane.name for lane in config.lanes] == ["a"]


def test_passwords_never_appear_in_problems_or_reprs():
    config = parse_tree(
        tree(
            {
                "l/settings": {**LANE_SETTINGS, "password": "s3cret-lane"},
                "l/subscribers/s": {
                    "mode": "ftp",
                    "host": "h",
                    "user": "u",
                    "password": "s3cret-sub",
                    "port": "nope",
                },
            }
        )
    )
    text = repr(config) + "".join(str(problem) for problem in config.problems)
    assert "s3cret" not in text


@given(st.binary(max_size=200))
def test_any_bytes_give_a_config_or_problems_never_an_exception(raw):
    config = parse_tree(
        {
            f"{PREFIX}/incoming_directories/l/settings": Entry(raw),
            f"{PREFIX}/incoming_directories/l/subscribers/s": Entry(raw),
        }
    )
    assert config.lanes or config.errors()


def test_tls_and_webdav_options_of_a_subscriber():
    config = parse_tree(
        tree(
            {
                "l/settings": LANE_SETTINGS,
                "l/subscribers/ftps": {"mode": "ftp", "host": "h", "user": "u", "password": "p",
                                       "tls": True, "ca_file": "/etc/pki/ca.pem"},
                "l/subscribers/dav": {"mode": "http", "host": "h", "tls": "yes", "atomic": True,
                                      "mkcol": True, "tls_verify": False,
                                      "cert_file": "/etc/c.pem", "key_file": "/etc/k.pem"},
                "l/subscribers/badftp": {"mode": "ftp", "host": "h", "user": "u",
                                         "password": "p", "atomic": True},
                "l/subscribers/halfcert": {"mode": "http", "host": "h", "cert_file": "/c.pem"},
                "l/subscribers/relative": {"mode": "http", "host": "h", "ca_file": "ca.pem"},
            }
        )
    )  # fmt: skip
    subs = {sub.name: sub for sub in config.lanes[0].subscribers}
    assert sorted(subs) == ["dav", "ftps"]
    assert (
        subs["ftps"].tls and subs["ftps"].tls_verify and subs["ftps"].ca_file == "/etc/pki/ca.pem"
    )
    dav = subs["dav"]
    assert (dav.tls, dav.atomic, dav.mkcol, dav.tls_verify) == (True, True, True, False)
    messages = {problem.path.rsplit("/", 1)[1]: problem.message for problem in config.errors()}
    assert "'atomic' and 'mkcol' are for mode \"http\"" in messages["badftp"]
    assert messages["halfcert"] == "'cert_file' and 'key_file' go together"
    assert messages["relative"] == "'ca_file' must be an absolute path"


# -- trees migrated from ftp-duplicator: what it took is taken, with the same meaning ---


def test_values_the_old_tool_took_are_taken_with_the_same_meaning():
    config = parse_tree(
        tree(
            {
                "Old.Lane/settings": "{'user': 'Transmet.Fac', 'password': 123456, "
                "'uid': 501.0, 'lifetime': 0, 'exclude': ['*.t']}",
                "Old.Lane/subscribers/root": "{'mode': 'FTP', 'host': 'meaux', 'user': 'b', "
                "'passwd': 42, 'directory': '', 'tmp_suff': ''}",
                "Old.Lane/subscribers/web": {"mode": "HTTP", "host": "w", "port": 8080.0},
            }
        )
    )
    assert config.errors() == []
    (lane,) = config.lanes
    assert (lane.user, lane.password, lane.uid, lane.lifetime) == ("Transmet.Fac", "123456", 501, 0)
    root, web = lane.subscribers
    assert (root.mode, root.password, root.directory, root.tmp_suff) == ("ftp", "42", ".", "")
    assert (web.mode, web.port) == ("http", 8080)
    (warning,) = [str(p) for p in config.problems]  # lifetime 0: said how it is read
    assert "'lifetime' 0: every file left in the lane" in warning


def test_silent_differences_are_warnings_that_name_the_key():
    config = parse_tree(
        tree(
            {
                "obs/settings": "{'user': 'u', 'password': 'p', 'uid': 501, "
                "'exclude': ['*.t' '*.f']}",
                "obs/subscribers/svc": {"mode": "http", "consul_service": "dav", "port": 81},
                "obs/subscribers/both": {"mode": "ftp", "host": "h", "user": "u",
                                         "password": "one", "passwd": "two"},
            }
        )
    )  # fmt: skip
    assert config.errors() == []
    warnings = [str(p) for p in config.problems]
    assert (
        "incoming_directories/obs/settings: '*.t' and '*.f' have no comma between them "
        "(line 1 column 62): they are read as one string" in warnings
    )
    assert (
        "incoming_directories/obs/subscribers/svc: 'port' is ignored with 'consul_service': "
        "each instance's own port is used, as ftp-duplicator did" in warnings
    )
    assert (
        "incoming_directories/obs/subscribers/both: both 'password' and 'passwd' are given: "
        "'password' is used" in warnings
    )
    lane = config.lanes[0]
    assert lane.exclude == ("*.t*.f",)  # as Python (and the old tool) read it
    both, svc = lane.subscribers
    assert both.password == "one" and svc.port is None


def test_a_mistyped_python_literal_is_reported_with_its_line_and_column():
    config = parse_tree(tree({"obs/settings": "{'user': 'u',\n 'password' 'p', 'uid': 1}"}))
    (problem,) = config.problems
    text = str(problem)  # Python's own words for the mistake change with its version
    assert text.startswith("incoming_directories/obs/settings: value is not a valid Python")
    assert "at line 2 column" in text and text.endswith("(nor JSON)")
