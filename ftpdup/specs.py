"""What one worker needs to run (its spec), and how a spec is stored as JSON.

A spec is written by whoever starts the worker (the manager, or a test) and
read by the worker at start. Carrier specs hold the subscriber's password, so
the file is root-only; under systemd it reaches the worker as a credential.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Output:
    """One queue fed by a sprinkler: a carrier's, or a subscriber's with no worker now.

    ``pending`` holds the next version of a name, ``later`` the versions after
    it (``later/SEQ/NAME``), ``spool`` what the carrier sees. ``parked`` says
    why no carrier reads this queue now ("" when one does): its files wait
    and go to ``dead`` past the sprinkler's ``max_age``.
    """

    instance: str
    pending: str
    spool: str
    later: str = ""
    dead: str = ""
    parked: str = ""


@dataclass(frozen=True)
class Drain:
    """A subscriber's parked queue to hand over, at start, to the outputs named in ``into``
    (the instances its Consul service has now)."""

    instance: str
    pending: str
    spool: str
    later: str
    into: tuple[str, ...] = ()


@dataclass(frozen=True)
class SprinklerSpec:
    """A lane's sprinkler: the incoming directory, its staging directory, its outputs, the
    parked queues to drain, how long a parked file may wait, and whether to sync each file
    before taking it."""

    lane: str
    incoming: str
    staging: str
    outputs: tuple[Output, ...] = ()
    exclude: tuple[str, ...] = ()
    status: str = ""
    drains: tuple[Drain, ...] = ()
    max_age: int = 86400
    sync: bool = True


@dataclass(frozen=True)
class Target:
    """Where and how a carrier delivers: one host and port, FTP or HTTP, and how.

    Every field but host and port is the subscriber's field of the same name.
    """

    mode: str
    host: str
    port: int
    directory: str = "."
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    tmp_suff: str = ".t"
    verify_size: bool = False
    tls: bool = False
    tls_verify: bool = True
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    atomic: bool = False
    mkcol: bool = False
    connections: int = 1


@dataclass(frozen=True)
class CarrierSpec:
    """A carrier: its spool, dead-letter and state directories, its target and its limits.

    ``timeout`` is the stall timeout: a transfer in which no byte moves for
    that many seconds fails. ``stop_grace`` is how long a stopping carrier
    may go on with the file in flight before it cuts it (an FTP upload is
    resumed by the next run).
    """

    instance: str
    spool: str
    dead: str
    target: Target
    state: str = ""
    status: str = ""
    max_age: int = 86400
    retry_max_delay: float = 60.0
    timeout: float = 60.0
    stop_grace: float = 10.0


def to_json(spec: Any) -> str:
    """Return spec (a SprinklerSpec or CarrierSpec) as canonical JSON text."""
    body = dataclasses.asdict(spec)
    body["kind"] = "sprinkler" if isinstance(spec, SprinklerSpec) else "carrier"
    return json.dumps(body, sort_keys=True, indent=1) + "\n"


def from_json(text: str):
    """Given JSON written by to_json, return the SprinklerSpec or CarrierSpec. Raise ValueError."""
    try:
        body = json.loads(text)
        kind = body.pop("kind")
        if kind == "sprinkler":
            body["outputs"] = tuple(_output(output) for output in body["outputs"])
            body["drains"] = tuple(
                Drain(**{**drain, "into": tuple(drain["into"])}) for drain in body.get("drains", ())
            )
            body["exclude"] = tuple(body["exclude"])
            return SprinklerSpec(**body)
        if kind == "carrier":
            body["target"] = Target(**body["target"])
            return CarrierSpec(**body)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"worker spec is not valid: {error}") from None
    raise ValueError(f"worker spec has unknown kind {kind!r}")


def _output(fields: dict) -> Output:
    """Return the Output in fields; a spec written before later and dead existed gets them
    beside its pending folder (DATA_ROOT/pending/INSTANCE)."""
    root = os.path.dirname(os.path.dirname(fields["pending"]))
    fields.setdefault("later", os.path.join(root, "later", fields["instance"]))
    fields.setdefault("dead", os.path.join(root, "dead", fields["instance"]))
    return Output(**fields)


def load(path: str):
    """Return the spec stored in the file at path. Raise ValueError or OSError."""
    with open(path, encoding="utf-8") as handle:
        return from_json(handle.read())
