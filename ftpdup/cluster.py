"""Several hosts behind one Consul: which hosts accept a lane (pure logic).

A lane with ``replicas: N`` is accepted by the N hosts that rank highest
for it by rendezvous (highest random weight) hashing of (lane, host ID),
among the passing hosts (and, with ``hosts``, only among those named). A
host that joins or leaves moves only the lanes it ranks in the top N for;
every host computes the same answer from the same Consul view, and no table
is stored anywhere. ``replicas`` absent or "all" means every host, as with
one host or ftp-duplicator's containers.

A lane moves add-before-remove: a host that no longer owns a lane keeps
accepting it until each new owner is passing and tagged ``lane-NAME`` in
Consul; then it refuses new logins for it (the lane is "leaving") and
delivers what it holds, and only then lets its workers go.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

TAG_PREFIX = "lane-"


@dataclass(frozen=True)
class Member:
    """A host of the cluster as Consul sees it: its ID, whether it passes, its tags."""

    host_id: str
    passing: bool = True
    tags: frozenset[str] = field(default_factory=frozenset)


def weight(lane: str, host_id: str) -> int:
    """Return the rendezvous weight of host_id for lane (the same on every host)."""
    digest = hashlib.sha256(f"{lane}\0{host_id}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big")


def owners(lane: str, replicas: int | None, pinned: Iterable[str],
           hosts: Iterable[str]) -> list[str]:  # fmt: skip
    """Return the hosts that accept lane, given the hosts that may (passing ones).

    pinned, if not empty, limits the choice to those host IDs; replicas None
    means all of them.
    """
    allowed = set(pinned)
    candidates = sorted({host for host in hosts if not allowed or host in allowed})
    if replicas is None:
        return candidates
    ranked = sorted(candidates, key=lambda host: weight(lane, host), reverse=True)
    return sorted(ranked[:replicas])


def tag(lane: str) -> str:
    """Return the Consul tag that says a host accepts lane."""
    return f"{TAG_PREFIX}{lane}"


@dataclass(frozen=True)
class Placement:
    """What this host does with each lane: accept it, let it leave, or nothing."""

    accepting: frozenset[str]
    leaving: frozenset[str]


def place(lanes, me: str, members: Iterable[Member], accepting_now: Iterable[str],
          draining: bool) -> Placement:  # fmt: skip
    """Given the lanes (with their replicas and hosts), this host's ID, the members Consul
    knows, the lanes this host accepts now and whether it drains, return its placement.

    This host counts itself among the passing hosts unless it drains: a new
    host takes its lanes before Consul calls it passing (add), while the
    others keep them until it is (remove after).
    """
    members = list(members)
    passing = {member.host_id for member in members if member.passing}
    if not draining:
        passing.add(me)
    else:
        passing.discard(me)
    tagged = {member.host_id: member.tags for member in members if member.passing}
    accepting, leaving = set(), set()
    now = set(accepting_now)
    for lane in lanes:
        chosen = owners(lane.name, lane.replicas, lane.hosts, passing)
        if me in chosen:
            accepting.add(lane.name)
            continue
        if lane.name not in now:
            continue
        # Add before remove: keep it until every new owner passes and says it accepts it.
        ready = chosen and all(tag(lane.name) in tagged.get(host, ()) for host in chosen)
        (leaving if ready else accepting).add(lane.name)
    return Placement(frozenset(accepting), frozenset(leaving))
