"""Several hosts: which applied lanes this host accepts, which leave, which it lets go.

Without ``cluster_service`` nothing here happens: every lane is this host's.
With it, ``cluster.place`` decides from the cluster's members in Consul:
an accepted lane has its account in vsftpd's user list; a leaving lane
loses its Consul tag at once (uploaders stop finding it here), keeps its
account in the list for ``cluster_drain_grace`` seconds (an uploader that
found it just before gets in), then is out of that list (new logins
refused, uploads in progress go on) while its workers deliver what it
holds; a lane that refused logins for a whole pass and holds no file here
any more is dropped from what this host wants (its account and empty
folders go). A host never lets a lane go while it holds files of it.

A draining host (``ftpdup drain``) counts itself out of the placement at
once (Consul has its service in maintenance, so uploaders stop finding it),
keeps taking logins for ``cluster_drain_grace`` seconds, then refuses them
all and delivers what it holds: drained once nothing is left.
"""

from __future__ import annotations

from ftpdup.cluster import place
from ftpdup.consul_source import Snapshot
from ftpdup.desired import Desired
from ftpdup.settings import Settings


def plan_placement(desired: Desired, snapshot: Snapshot, actual, host: Settings,
                   now: float) -> dict | None:  # fmt: skip
    """Keep in desired only the lanes this host accepts or lets leave; return what to say of
    it in the status (accepting, leaving and since when, refusing, drain), or None without
    a cluster."""
    if not host.cluster_service:
        return None
    drain = actual.drain
    grace = host.cluster_drain_grace
    refuse_all = drain is not None and now - drain.get("since", now) >= grace
    accepting_now = actual.accepting if actual.accepting is not None else set(actual.lanes)
    placement = place(
        desired.lanes.values(), host.host_id(), snapshot.members, accepting_now, drain is not None
    )
    accepting = set() if refuse_all else set(placement.accepting)
    leaving = set(placement.leaving) | (set(placement.accepting) if refuse_all else set())
    leaving |= {lane for lane in desired.lanes if lane in actual.busy_lanes} - accepting
    for lane in sorted(set(desired.lanes) - accepting):
        # A lane goes once it refused logins for a whole pass and holds nothing: an upload
        # that began before it refused has a file here by then.
        if lane in actual.refusing and lane not in actual.busy_lanes and not drain:
            leaving.discard(lane)
            _drop(desired, lane)
        elif lane not in leaving and lane not in (actual.accepting or ()):
            _drop(desired, lane)  # never this host's
    since = {lane: actual.leaving.get(lane) or now for lane in leaving}
    # Out of Consul's tags at once, logins refused after the grace (uploaders' DNS answers).
    refusing = {lane for lane in leaving if refuse_all or now - since[lane] >= grace}
    state = ""
    if drain is not None:
        busy = actual.busy_lanes & set(desired.lanes)
        state = "drained" if refuse_all and not busy else "draining"
    return {
        "host_id": host.host_id(),
        "accepting": sorted(accepting),
        "leaving": sorted(leaving),
        "leaving_since": {lane: round(since[lane], 3) for lane in sorted(leaving)},
        "refusing": sorted(refusing),
        "drain": state,
        "drain_since": drain.get("since") if drain is not None else None,
    }


def _drop(desired: Desired, lane: str) -> None:
    """Take lane and its workers out of what this host wants."""
    desired.lanes.pop(lane, None)
    desired.sprinklers.pop(lane, None)
    for instance in [name for name in desired.carriers if name.split(":", 1)[0] == lane]:
        del desired.carriers[instance]
