"""Lane FTP accounts: read the account database, create, update and remove accounts.

ftpdup marks the accounts it creates with the comment ``ftpdup lane LANE`` and
never touches any other account.
"""

from __future__ import annotations

import logging
import pwd
import subprocess
from dataclasses import dataclass

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


def create(user: str, uid: int, group: str, home: str, lane: str, password: str) -> None:
    """Create a lane account (nologin shell, home = lane directory) and set its password."""
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
    set_password(user, password)
    log.info("created account %s (uid %d) for lane %s", user, uid, lane)


def set_password(user: str, password: str) -> None:
    """Set the account's password (through chpasswd's standard input, never argv)."""
    _run(["chpasswd"], stdin=f"{user}:{password}\n")


def remove(user: str) -> None:
    _run(["userdel", user])
    log.info("removed account %s", user)
