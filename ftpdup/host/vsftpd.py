"""vsftpd as the lanes' FTP ingest: its configuration, PAM service and user list."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import jinja2

from ftpdup.config.names import unix_user_problem

PAM_SERVICE = "ftpdup-vsftpd"
# The stock PAM file of vsftpd without pam_shells: lane users have a nologin shell.
PAM_FILE = """\
# Managed by ftpdup: vsftpd's PAM service for lane users (nologin shell allowed).
auth\trequired\tpam_listfile.so item=user sense=deny file={ftpusers} onerr=succeed
auth\tinclude\t{auth}
account\tinclude\t{account}
session\tinclude\t{session}
"""


@dataclass(frozen=True)
class VsftpdOptions:
    """What the rendered vsftpd configuration depends on."""

    listen_port: int = 21
    listen_address: str = ""
    pasv_address: str = ""
    pasv_min_port: int = 21100
    pasv_max_port: int = 21110
    userlist_file: str = "/etc/ftpdup/vsftpd.users"
    pam_service: str = PAM_SERVICE
    secure_chroot_dir: str = "/var/run/vsftpd/empty"
    log_file: str = "/var/log/ftpdup-vsftpd.log"
    background: bool = False
    ssl_cert_file: str = ""
    ssl_key_file: str = ""
    ssl_required: bool = False


# vsftpd reads one "name=value" per line, with no quoting: a value is one word.
_CONFIG_WORD = re.compile(r"[A-Za-z0-9_./:%@+-]*")


def render_config(options: VsftpdOptions, header: str = "Managed by ftpdup: do not edit.") -> str:
    """Return the vsftpd.conf text for options (no trailing spaces: vsftpd refuses them).

    Raise ValueError if a value could end its line or hold a space: vsftpd
    has no quoting, so such a value would add or break a setting.
    """
    for option in fields(options):
        value = getattr(options, option.name)
        if isinstance(value, str) and not _CONFIG_WORD.fullmatch(value):
            raise ValueError(f"vsftpd setting {option.name} holds an unsafe value {value!r}")
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("ftpdup", "templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    text = environment.get_template("vsftpd.conf.j2").render(header=header, **vars(options))
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def render_userlist(users: list[str]) -> str:
    """Return the vsftpd user list admitting exactly users (one name per line).

    Raise ValueError for a name that is not a valid account name.
    """
    for user in users:
        if unix_user_problem(user):
            raise ValueError(f"vsftpd user list: {unix_user_problem(user)}")
    return "".join(f"{user}\n" for user in sorted(users))


def render_pam(debian: bool) -> str:
    """Return the PAM service file: Debian's common-* stacks, or RHEL's password-auth."""
    if debian:
        return PAM_FILE.format(
            ftpusers="/etc/ftpusers",
            auth="common-auth",
            account="common-account",
            session="common-session",
        )
    return PAM_FILE.format(
        ftpusers="/etc/vsftpd/ftpusers",
        auth="password-auth",
        account="password-auth",
        session="password-auth",
    )
