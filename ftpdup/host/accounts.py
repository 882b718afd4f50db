"""Lane FTP accounts: read the account database, create, update and remove accounts.

ftpdup marks the accounts it creates with the comment ``ftpdup lane LANE`` and
never touches any other account: every change checks the account's comment
first. A password reaches the account tools only as a SHA-512 crypt hash,
for exactly one named account, so no Consul text is ever parsed by them.
"""

from __future__ import annotations

import logging
import pwd
import subprocess
from dataclasses import dataclass

from ftpdup.config.names import name_problem, unix_user_problem
from ftpdup.host.shadow import HASH_PATTERN, sha512_crypt

log = logging.getLogger(__name__)

COMMENT_PREFIX = "ftpdup lane "
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True)
class Account:
    """One entry of the account database."""

    name: str
    uid: int
    comment: str
    home: str

    def is_lane_account(self, lane: str) -> bool:
        """Return True if ftpdup created this account for lane."""
        return self.comment == f"{COMMENT_PREFIX}{lane}"


def read_accounts() -> dict[str, Account]:
    """Return every account of this host by name."""
    return {
        entry.pw_name: Account(entry.pw_name, entry.pw_uid, entry.pw_gecos, entry.pw_dir)
        for entry in pwd.getpwall()
    }


class AccountError(Exception):
    """An account command failed."""


def _run(argv: list[str], stdin: str | None = None) -> None:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise AccountError(f"{argv[0]} failed: {result.stderr.strip()}")


def _check_names(user: str, lane: str) -> None:
    """Raise AccountError unless user and lane are names ftpdup accepts."""
    problem = unix_user_problem(user) or name_problem(lane)
    if problem:
        raise AccountError(f"refused: {problem}")


def _check_owned(user: str, lane: str) -> None:
    """Raise AccountError unless user exists now and is ftpdup's account of lane."""
    _check_names(user, lane)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise AccountError(f"account {user} does not exist") from None
    if entry.pw_gecos != f"{COMMENT_PREFIX}{lane}":
        raise AccountError(f"account {user} is not ftpdup's account of lane {lane}: left alone")


def create(user: str, uid: int, group: str, home: str, lane: str, password: str) -> None:
    """Create a lane account (nologin shell, home = lane directory) and set its password."""
    _check_names(user, lane)
    _run(
        [
            "useradd",
            "--uid",
            str(uid),
            "--gid",
            group,
            "--home-dir",
            home,
            "--no-create-home",
            "--shell",
            NOLOGIN,
            "--comment",
            f"{COMMENT_PREFIX}{lane}",
            user,
        ]
    )
    set_password(user, lane, password)
    log.info("created account %s (uid %d) for lane %s", user, uid, lane)


def set_password(user: str, lane: str, password: str) -> None:
    """Set the password of ftpdup's account user of lane, and of no other account.

    The password is hashed here; ``chpasswd -e`` gets one line, ``USER:HASH``,
    on standard input (never argv). Raise AccountError if user is not the
    lane's account or the line could address anything else.
    """
    _check_owned(user, lane)
    hashed = sha512_crypt(password)
    if not HASH_PATTERN.fullmatch(hashed):
        raise AccountError("refused: the computed password hash is malformed")
    _run(["chpasswd", "-e"], stdin=f"{user}:{hashed}\n")


def remove(user: str, lane: str) -> None:
    """Remove ftpdup's account user of lane (never another account)."""
    _check_owned(user, lane)
    _run(["userdel", user])
    log.info("removed account %s", user)
