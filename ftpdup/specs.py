"""What one worker needs to run (its spec), and how a spec is stored as JSON.

A spec is written by whoever starts the worker (the manager, or a test) and
read by the worker at start. Carrier specs hold the subscriber's password, so
the file is root-only; under systemd it reaches the worker as a credential.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Output:
    """One carrier fed by a sprinkler: where links wait, and the spool they are moved into."""

    instance: str
    pending: str
    spool: str


@dataclass(frozen=True)
class SprinklerSpec:
    """A lane's sprinkler: the incoming directory, its staging directory and its outputs."""

    lane: str
    incoming: str
    staging: str
    outputs: tuple[Output, ...] = ()
    exclude: tuple[str, ...] = ()
    status: str = ""


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
            body["outputs"] = tuple(Output(**output) for output in body["outputs"])
            body["exclude"] = tuple(body["exclude"])
            return SprinklerSpec(**body)
        if kind == "carrier":
            body["target"] = Target(**body["target"])
            return CarrierSpec(**body)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"worker spec is not valid: {error}") from None
    raise ValueError(f"worker spec has unknown kind {kind!r}")


def load(path: str):
    """Return the spec stored in the file at path. Raise ValueError or OSError."""
    with open(path, encoding="utf-8") as handle:
        return from_json(handle.read())
