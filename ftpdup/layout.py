"""Where a lane's and a carrier's files live under the data root (one filesystem)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Paths under one data root; every directory is on the same filesystem.

    - ``incoming/LANE``: the lane's FTP home, where files are uploaded;
    - ``staging/LANE``: files the sprinkler has taken out of the lane;
    - ``pending/INSTANCE``: the next version of a name for a carrier, not yet visible to it;
    - ``later/INSTANCE/SEQ``: the versions after it, oldest SEQ first;
    - ``spool/INSTANCE``: the carrier's queue;
    - ``dead/INSTANCE``: files that could not be delivered, with their reasons;
    - ``state/INSTANCE``: what a carrier keeps between runs (e.g. to resume an upload).
    INSTANCE is ``LANE:SUBSCRIBER`` or ``LANE:SUBSCRIBER:SERVICE_INSTANCE``; a
    subscriber with no worker now (a Consul service with no passing instance,
    a refused value) has a parked queue ``LANE:SUBSCRIBER`` that no carrier reads.
    """

    root: str

    def incoming(self, lane: str) -> str:
        return os.path.join(self.root, "incoming", lane)

    def staging(self, lane: str) -> str:
        return os.path.join(self.root, "staging", lane)

    def pending(self, instance: str) -> str:
        return os.path.join(self.root, "pending", instance)

    def later(self, instance: str) -> str:
        return os.path.join(self.root, "later", instance)

    def spool(self, instance: str) -> str:
        return os.path.join(self.root, "spool", instance)

    def dead(self, instance: str) -> str:
        return os.path.join(self.root, "dead", instance)

    def state(self, instance: str) -> str:
        return os.path.join(self.root, "state", instance)


def carrier_instance(lane: str, subscriber: str, service_instance: str = "") -> str:
    """Return the carrier instance name ``LANE:SUB`` or ``LANE:SUB:INSTANCE``."""
    return ":".join(part for part in (lane, subscriber, service_instance) if part)


QUEUE_KINDS = ("pending", "later", "spool")
