"""Lane accounts and lane records: create, set passwords, refuse others' names, remove."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass

from ftpdup.config.model import Lane
from ftpdup.layout import Layout
from ftpdup.manager.plan.model import LaneAccount, Plan
from ftpdup.settings import Settings


@dataclass(frozen=True)
class LaneRecord:
    """What the manager applied for a lane, kept root-only in ETC_DIR/lanes/LANE.json."""

    lane: str
    user: str
    uid: int
    salt: str
    password_digest: str

    @staticmethod
    def for_lane(lane: Lane, salt: str | None = None) -> LaneRecord:
        salt = salt or secrets.token_hex(8)
        return LaneRecord(lane.name, lane.user, lane.uid, salt, _digest(salt, lane.password))

    def same_password(self, password: str) -> bool:
        return secrets.compare_digest(self.password_digest, _digest(self.salt, password))

    def to_json(self) -> str:
        return json.dumps(vars(self), sort_keys=True, indent=1) + "\n"

    @staticmethod
    def from_json(text: str) -> LaneRecord | None:
        try:
            return LaneRecord(**json.loads(text))
        except (ValueError, TypeError):
            return None


def _digest(salt: str, password: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10000).hex()


def lane_refusals(lanes, accounts: dict) -> dict[str, str]:
    """Given valid lanes and the host's accounts, return {lane: why apply leaves it alone}.

    A lane is refused when another lane claims the same user or uid first
    (by name order), when its user is an account ftpdup did not create for
    it, when its uid belongs to another account, or when its uid changed.
    ``ftpdup check`` reports the same refusals as ``apply``.
    """
    refused: dict[str, str] = {}
    claimed: dict[tuple[str, object], str] = {}
    by_uid = {entry.uid: entry for entry in accounts.values()}
    for lane in sorted(lanes, key=lambda lane: lane.name):
        problem = _claim_problem(lane, claimed) or _account_problem(lane, accounts, by_uid)
        if problem:
            refused[lane.name] = f"incoming_directories/{lane.name}/settings: {problem}"
    return refused


def _claim_problem(lane: Lane, claimed: dict[tuple[str, object], str]) -> str | None:
    """Return why lane may not have its user or uid (another lane has it), or None."""
    for what, value in (("user", lane.user), ("uid", lane.uid)):
        other = claimed.setdefault((what, value), lane.name)
        if other != lane.name:
            return f"{what} {value!r} is already lane {other}'s; lane not applied"
    return None


def _account_problem(lane: Lane, accounts: dict, by_uid: dict) -> str | None:
    """Return why the host's accounts forbid lane, or None."""
    account = accounts.get(lane.user)
    if account is None:
        other = by_uid.get(lane.uid)
        if other is not None:
            return f"uid {lane.uid} belongs to account {other.name!r}; lane not applied"
        return None
    if not account.is_lane_account(lane.name):
        return (
            f"account {lane.user!r} exists and is not ftpdup's account "
            f"of this lane ({account.comment!r}); lane not applied"
        )
    if account.uid != lane.uid:
        return (
            f"uid changed from {account.uid} to {lane.uid}; "
            "remove the lane and add it again; lane left as it is"
        )
    return None


def plan_account(plan: Plan, lane: Lane, record: LaneRecord | None, actual, layout: Layout):
    """Plan the creation of the lane's account, or a new password for it."""
    wanted = LaneAccount(lane.name, lane.user, lane.uid, layout.incoming(lane.name), lane.password)
    if lane.user not in actual.accounts:
        plan.create_accounts.append(wanted)
    elif record is None or record.user != lane.user or not record.same_password(lane.password):
        plan.set_passwords.append(wanted)


def plan_lane_records(plan: Plan, lanes, records: dict, host: Settings) -> None:
    """Plan the lane records of lanes (their account as applied, the password's digest)."""
    for lane in lanes:
        record = records.get(lane.name)
        same = record is not None and record.user == lane.user and record.uid == lane.uid
        if not (same and record.same_password(lane.password)):
            salt = record.salt if record is not None else None
            text = LaneRecord.for_lane(lane, salt).to_json()
            plan.writes[record_path(host, lane.name)] = (text, 0o600)


def record_path(host: Settings, lane: str) -> str:
    """Return where the manager keeps lane's record."""
    return os.path.join(host.etc_dir, "lanes", f"{lane}.json")


def plan_removed_lanes(plan: Plan, wanted: set[str], records: dict, actual,
                       configured: set[str] = frozenset()) -> None:  # fmt: skip
    """Plan the removal of the records and accounts of lanes not wanted any more (gone
    from Consul, or, of configured lanes, accepted by other hosts)."""
    for lane, record in records.items():
        if lane in wanted:
            continue
        gone = "is accepted by other hosts" if lane in configured else "removed from Consul"
        plan.remove_lanes[lane] = f"lane {lane} {gone}"
        if record is None:
            continue
        account = actual.accounts.get(record.user)
        if account is not None and account.is_lane_account(lane):
            plan.remove_accounts.append((record.user, lane))
