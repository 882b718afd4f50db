"""Hostile values at every place a Consul or settings value can reach.

The boundary (config parsing) refuses them with the key path; each sink
(accounts, vsftpd files, collectd, unit drop-ins, FTP and HTTP commands)
refuses them again on its own.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import uuid

import pytest

from ftpdup import settings
from ftpdup.config.parse import Entry, parse_tree
from ftpdup.host import accounts, collectd, vsftpd
from ftpdup.host.shadow import HASH_PATTERN, sha512_crypt
from ftpdup.host.units import template_drop_in
from ftpdup.specs import Target
from ftpdup.transfer import TransferError, open_transfer
from tests.harness.ftp_server import FtpSubscriber
from tests.harness.procs import wait_for
from tests.harness.servers import NginxDav

PREFIX = "ftp_duplicator/incoming_directories"
LANE = {"user": "obsup", "password": "pw", "uid": 3001}
FTP = {"mode": "ftp", "host": "h", "user": "u", "password": "p"}
HOSTILE = {
    "newline": "x\nroot:injected",
    "carriage return": "x\r\nDELE /",
    "nul": "x\0y",
    "tab": "x\ty",
    "very long": "x" * 5000,
    "lone surrogate": "x\ud800",
    "c1 control": "x\x85y",
}


def parse(values: dict):
    entries = {
        f"{PREFIX}/{key}": Entry(json.dumps(value).encode() if isinstance(value, dict) else value)
        for key, value in values.items()
    }
    return parse_tree(entries)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize("key", ["user", "password", "exclude"])
def test_a_hostile_lane_value_is_refused_with_its_key_and_the_other_lanes_go_on(key, kind):
    value = [HOSTILE[kind]] if key == "exclude" else HOSTILE[kind]
    config = parse({"bad/settings": {**LANE, key: value}, "good/settings": {**LANE, "uid": 3002}})
    assert [lane.name for lane in config.lanes] == ["good"]
    assert config.broken_lanes == {"bad"}
    (problem,) = config.errors()
    assert problem.path == "incoming_directories/bad/settings"
    assert key in problem.message
    if key == "password":
        assert HOSTILE[kind][:5] not in problem.message.replace("'password'", "")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
@pytest.mark.parametrize(
    "key", ["host", "user", "password", "directory", "tmp_suff", "consul_service"]
)
def test_a_hostile_subscriber_value_is_refused_with_its_key_and_the_others_go_on(key, kind):
    value = {**FTP, key: HOSTILE[kind]}
    if key == "consul_service":
        value = {"mode": "http", "consul_service": HOSTILE[kind]}
    config = parse({"l/settings": LANE, "l/subscribers/bad": value, "l/subscribers/good": FTP})
    assert [sub.name for sub in config.lanes[0].subscribers] == ["good"]
    assert config.broken_subscribers == {("l", "bad")}
    messages = [str(problem) for problem in config.errors()]
    assert messages and all(
        m.startswith("incoming_directories/l/subscribers/bad: ") for m in messages
    )
    assert any(key in m for m in messages)
    assert all("\n" not in m and "\r" not in m and "\0" not in m for m in messages)


@pytest.mark.parametrize(
    "host", ["a b", "h/x", "user@h", "h:21", "h\n", "-", "a..b", "x" * 300, "h?x", "[::1"]
)
def test_hosts_must_be_host_names_or_addresses(host):
    config = parse({"l/settings": LANE, "l/subscribers/s": {**FTP, "host": host}})
    assert config.lanes[0].subscribers == ()
    assert "'host'" in config.errors()[0].message


@pytest.mark.parametrize("host", ["ftp.example.org", "10.0.0.1", "::1", "[fe80::1]", "h_1"])
def test_real_host_names_and_addresses_are_accepted(host):
    config = parse({"l/settings": LANE, "l/subscribers/s": {**FTP, "host": host}})
    assert config.lanes[0].subscribers[0].host == host


def test_colons_are_fine_in_passwords_and_ftp_users_but_not_in_http_basic_auth_users():
    config = parse(
        {
            "l/settings": {**LANE, "password": "a:b:c"},
            "l/subscribers/ftp": {**FTP, "user": "d:e", "password": "f:g"},
            "l/subscribers/web": {"mode": "http", "host": "w", "user": "d:e", "password": "x"},
        }
    )
    assert config.lanes[0].password == "a:b:c"
    assert [sub.name for sub in config.lanes[0].subscribers] == ["ftp"]
    assert "'user' must not contain ':'" in config.errors()[0].message


@pytest.mark.parametrize(
    "raw",
    [
        b"\xe9t\xe9",
        b"{" * 100000,
        b'{"user": "' + b"x" * 70000 + b'"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"uid": ' + b"9" * 5000 + b"}",
    ],
)
def test_undecodable_huge_or_deep_values_are_problems_never_exceptions(raw):
    config = parse({"bad/settings": raw, "good/settings": LANE})
    assert [lane.name for lane in config.lanes] == ["good"]
    assert config.errors()[0].path == "incoming_directories/bad/settings"


def test_key_names_with_control_characters_are_shown_escaped():
    config = parse({"l/settings": LANE, "l/odd\nkey": {"a": 1}})
    (warning,) = [p for p in config.problems if p.warning]
    assert str(warning) == "incoming_directories/l/odd\\nkey: unknown key, ignored"


@pytest.mark.parametrize("uid", [0, -1, 2**31, 2**63, "1e3", True, "²"])
def test_uids_must_be_plain_positive_integers(uid):
    config = parse({"l/settings": {**LANE, "uid": uid}})
    assert config.lanes == () and "'uid'" in config.errors()[0].message


# -- accounts ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["pässwörd:1", "x" * 200, "a b\\c$6$"])
def test_the_password_hash_is_sha512_crypt_as_openssl_makes_it(password):
    hashed = sha512_crypt(password, "saltsalt")
    assert HASH_PATTERN.fullmatch(hashed)
    reference = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", "saltsalt", password],
        capture_output=True,
        text=True,
        check=True,
    )
    assert hashed == reference.stdout.strip()
    assert HASH_PATTERN.fullmatch(sha512_crypt("x\nroot:y"))


@pytest.fixture
def lane_account():
    """A real account of this host, created as ftpdup creates lane accounts."""
    user = f"fdh{uuid.uuid4().hex[:8]}"
    lane = f"lane{user}"
    subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--comment",
         f"ftpdup lane {lane}", user],
        check=True,
    )  # fmt: skip
    yield user, lane
    subprocess.run(["userdel", user], capture_output=True)


def shadow_lines() -> dict[str, str]:
    with open("/etc/shadow") as shadow:
        return {line.split(":", 1)[0]: line for line in shadow}


def test_a_hostile_password_sets_exactly_one_account(lane_account):
    user, lane = lane_account
    before = shadow_lines()
    accounts.set_password(user, lane, "x\nroot:$6$evil$injected\n")
    after = shadow_lines()
    assert set(after) == set(before)
    changed = [name for name in after if after[name] != before[name]]
    assert changed == [user]
    stored = after[user].split(":")[1]
    assert HASH_PATTERN.fullmatch(stored)
    assert sha512_crypt("x\nroot:$6$evil$injected\n", stored.split("$")[2]) == stored


@pytest.mark.parametrize("target", ["root", "daemon", "nobody"])
def test_accounts_that_are_not_the_lanes_are_never_changed(lane_account, target):
    user, lane = lane_account
    before = shadow_lines()
    with pytest.raises(accounts.AccountError, match="not ftpdup's account"):
        accounts.set_password(target, lane, "anything")
    with pytest.raises(accounts.AccountError):
        accounts.remove(target, lane)
    with pytest.raises(accounts.AccountError, match="not ftpdup's account"):
        accounts.set_password(user, "another-lane", "anything")  # ours, but not that lane's
    assert shadow_lines() == before
    assert pwd.getpwnam(target)


@pytest.mark.parametrize("user", ["root\nx", "a:b", "-o", "x" * 40, ".hidden", "1st"])
def test_account_names_are_checked_again_before_any_command(user):
    with pytest.raises(accounts.AccountError, match="refused"):
        accounts.create(user, 4000, "users", "/tmp/x", "lane", "pw")


# -- generated files --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("listen_address", "127.0.0.1\nanonymous_enable=YES"),
        ("pasv_address", "1.2.3.4 x"),
        ("userlist_file", "/etc/x\r\n"),
        ("log_file", "/var/log/x\0"),
    ],
)
def test_vsftpd_config_refuses_values_that_would_add_a_setting(field, value):
    with pytest.raises(ValueError, match=field):
        vsftpd.render_config(vsftpd.VsftpdOptions(**{field: value}))


@pytest.mark.parametrize("user", ["a\nroot", "root:x", "", "x y"])
def test_vsftpd_user_list_refuses_what_is_not_one_account_name(user):
    with pytest.raises(ValueError):
        vsftpd.render_userlist(["good", user])


def test_collectd_config_quotes_and_refuses_line_breaks():
    text = collectd.render([('a"b\\c', "/d/x")], ("10.0.0.1", 25826))
    assert 'Instance "a\\"b\\\\c"' in text
    with pytest.raises(ValueError):
        collectd.render([("a", "/d/x")], ("10.0.0.1", 25826), hostname="h\nLoadPlugin exec")


def test_unit_drop_ins_escape_specifiers_and_refuse_line_breaks():
    text = template_drop_in("carrier", 60, 1, 30, "/srv/%h", "/etc/ftpdup")
    assert "ReadWritePaths=/srv/%%h" in text
    with pytest.raises(ValueError):
        template_drop_in("carrier", 60, 1, 30, "/srv/x\nExecStartPre=/bin/sh", "/etc/ftpdup")


@pytest.mark.parametrize(
    "line",
    [
        "data_root = relative/path",
        "data_root = /srv/with space",
        "[vsftpd]\nlisten_address = 1.2.3.4;x",
        "[vsftpd]\npasv_address = a b",
        "[vsftpd]\nlisten_port = 70000",
        "service_user = Root!",
        "log_level = chatty",
        "collectd_hostname = h/x",
        "vsftpd_unit = x.socket",
    ],
)
def test_unsafe_host_settings_stop_with_the_key_named(tmp_path, line):
    path = tmp_path / "ftpdup.conf"
    path.write_text(line if line.startswith("[") else f"[ftpdup]\n{line}\n")
    key = line.split("\n")[-1].split("=")[0].strip()
    with pytest.raises(settings.SettingsError, match=key.replace("vsftpd_", "")):
        settings.load(str(path))


# -- protocol commands ------------------------------------------------------------------


@pytest.fixture
def ftp_server(tmp_path):
    server = FtpSubscriber(str(tmp_path / "ftproot"), str(tmp_path)).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "field, value",
    [("user", "sub\r\nDELE x"), ("password", "p\nQUIT"), ("directory", "d\r\nRMD /")],
)
def test_ftp_commands_are_never_built_from_unchecked_text(tmp_path, ftp_server, field, value):
    fields = {"user": "sub", "password": "subpw", field: value}
    target = Target("ftp", "127.0.0.1", ftp_server.port, **fields)
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with open(source, "rb") as handle, pytest.raises(TransferError, match="CR, LF or NUL"):
        open_transfer(target).send(handle, "f")


def test_http_requests_are_never_built_from_unchecked_text(tmp_path):
    """A password and a file name holding a line break reach a real server (nginx) as
    what they are, never as a header of their own: nginx logs the X-Injected header of
    each request ("-": none) and the path as it came."""
    server = NginxDav(str(tmp_path / "web"), str(tmp_path)).start()
    try:
        source = tmp_path / "f"
        source.write_bytes(b"x")
        target = Target("http", "127.0.0.1", server.port, user="u",
                        password="p\r\nX-Injected: 1")  # fmt: skip
        transfer = open_transfer(target)
        with open(source, "rb") as handle:
            transfer.send(handle, "a\r\nX-Injected: 2\r\nb")
        transfer.close()
        # nginx writes its log line once the answer is sent: wait for it.
        (line,) = wait_for(server.log_lines, 10, "nginx's access log line")
        assert '"PUT /a%0D%0AX-Injected%3A%202%0D%0Ab HTTP/1.1" 201' in line
        assert line.endswith('"-"')  # the request carried no X-Injected header
        assert os.listdir(server.root) == ["a\r\nX-Injected: 2\r\nb"]
    finally:
        server.stop()
    with open(source, "rb") as handle, pytest.raises(TransferError):
        open_transfer(Target("http", "h\r\nX: y", 80)).send(handle, "f")
