"""The operator's commands: status, dead letters (list, replay, purge), a file's trail, metrics."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import time

from ftpdup import deadletter, metrics, report
from ftpdup.config.values import printable
from ftpdup.host.units import Systemctl, SystemctlError
from ftpdup.layout import Layout
from ftpdup.settings import Settings

log = logging.getLogger(__name__)
EXIT = {report.OK: 0, report.WARNING: 1, report.CRITICAL: 2}


def status_command(host: Settings, selection: str, as_json: bool, all_hosts: bool = False) -> int:
    """Print the status of this host's lanes and subscribers (or every host's, as each
    published it in Consul); return 0, 1 or 2 (ok to critical)."""
    if all_hosts:
        from ftpdup import fleet

        return EXIT[fleet.status_command(host, selection, as_json)]
    found = report.collect(host, Systemctl(), selection)
    print(found.json() if as_json else report.table(found))
    return EXIT[found.level]


def drain_command(host: Settings, undrain: bool = False, wait: int = 0) -> int:
    """Drain this host (or end its drain): out of Consul's passing hosts at once, new logins
    refused after cluster_drain_grace, what it holds delivered. With wait, wait up to that
    many seconds until it is drained (undrain: until Consul says it passes). Return 0, 1 if
    the wait ran out, 2 if this host is not one of several or the drain cannot be recorded."""
    from ftpdup import consul_source, drains
    from ftpdup.membership import service_id

    if not host.cluster_service:
        log.error("drain is for a host among several: set cluster_service")
        return 2
    try:
        if undrain:
            drains.stop(host.data_root)
        else:
            drains.start(host.data_root)
    except OSError as error:
        log.error("cannot record the drain: %s", error.strerror)
        return 2
    try:  # at once; the watch keeps it so
        client = consul_source.connect(**host.consul_access())
        maintenance = client.agent.service.maintenance
        reason = None if undrain else "ftpdup drain"
        consul_source.call("setting maintenance", maintenance, service_id(host), not undrain,
                           reason)  # fmt: skip
    except consul_source.ConsulError as error:
        log.warning("%s: the watch sets it once Consul answers", error)
    subprocess.run(["systemctl", "start", "--no-block", "ftpdup-manager.service"],
                   capture_output=True, stdin=subprocess.DEVNULL)  # fmt: skip
    if undrain:
        print("undrained: this host takes lanes and logins again")
    else:
        print(f"draining: out of Consul's passing hosts now, new logins refused after "
              f"{host.cluster_drain_grace} s; 'ftpdup status' says drained once it holds "
              "nothing")  # fmt: skip
    if not wait:
        return 0
    done = functools.partial(_passing if undrain else _drained, host)
    return _wait_for(done, wait, "passing in Consul" if undrain else "drained")


def _drained(host: Settings) -> bool:
    """Return True once the manager's last pass found this host drained."""
    found = report.collect(host, Systemctl())
    return bool(found.cluster and found.cluster.get("drain") == "drained")


def _passing(host: Settings) -> bool:
    """Return True if every check of this host's service passes, by its Consul agent."""
    from ftpdup import consul_source
    from ftpdup.membership import service_id

    try:
        client = consul_source.connect(**host.consul_access())
        checks = consul_source.call("reading this host's checks", client.agent.checks)
    except consul_source.ConsulError as error:
        log.warning("%s", error)
        return False
    mine = [check for check in checks.values() if check.get("ServiceID") == service_id(host)]
    return bool(mine) and all(check.get("Status") == "passing" for check in mine)


def _wait_for(done, seconds: int, what: str) -> int:
    """Poll done() every 5 s for up to seconds; return 0 once it is true, 1 if it never was."""
    deadline = time.monotonic() + seconds
    while True:
        if done():
            print(what)
            return 0
        if time.monotonic() >= deadline:
            log.error("not %s after %d s", what, seconds)
            return 1
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))


def _folders(host: Settings, selection: str) -> list[str]:
    """Return the dead-letter folders of the selection (LANE, LANE:SUB, LANE:SUB:INSTANCE, all)."""
    return [
        folder
        for folder in deadletter.folders(host.data_root)
        if not selection or folder == selection or folder.startswith(selection + ":")
    ]


def deadletter_list(host: Settings, selection: str, as_json: bool = False) -> int:
    """Print every dead letter of the selection: folder, ID, name, size, age, reason (or one
    JSON document with the same fields)."""
    layout = Layout(host.data_root)
    now = time.time()
    found = [
        (folder, letter)
        for folder in _folders(host, selection)
        for letter in deadletter.entries(layout.dead(folder))
    ]
    if as_json:
        print(json.dumps([
            {"folder": folder, "id": letter.id, "name": letter.name, "size": letter.size,
             "arrived": round(letter.mtime, 3), "set_aside": round(letter.buried_at, 3),
             "reason": letter.reason}
            for folder, letter in found
        ], indent=1))  # fmt: skip
        return 0
    print(f"{'FOLDER':30} {'SIZE':>12} {'SET ASIDE':>10}  {'ID':30}  NAME / REASON")
    for folder, letter in found:
        age = f"{(now - letter.buried_at) / 3600:.1f} h"
        stored = printable(letter.id)
        print(f"{folder:30} {letter.size:>12} {age:>10}  {stored:30}  {printable(letter.name)}")
        print(f"{'':56}  {letter.reason}")
    return 0


def deadletter_replay(host: Settings, folder: str, names: list[str], everything: bool,
                      to: str = "") -> int:  # fmt: skip
    """Put the named dead letters (names or IDs, or all) of folder back in a queue: their
    own carrier's, or the queue of ``to`` (any subscriber of any lane; a lane: its files go
    through its sprinkler again). Return 0, 1 if any wait behind a queued file of that name,
    2 if a name or the destination is not found."""
    layout = Layout(host.data_root)
    letters = deadletter.entries(layout.dead(folder))
    if not everything:
        letters = [letter for letter in letters if letter.name in names or letter.id in names]
        missing = set(names) - {key for letter in letters for key in (letter.name, letter.id)}
        for name in sorted(missing):
            log.error("no dead letter %s in %s", printable(name), folder)
        if missing:
            return 2
    destination = to or folder
    parts = destination.split(":")
    who = {"lane": parts[0], "subscriber": (parts[1:2] or [None])[0],
           "instance": (parts[2:] or [None])[0]}  # fmt: skip
    if len(parts) == 1:
        incoming = layout.incoming(destination)
        if not os.path.isdir(incoming):
            log.error("lane %s has no folder on this host", destination)
            return 2
        replay = functools.partial(deadletter.replay_into_lane, incoming=incoming)
    else:
        if not os.path.isdir(layout.spool(destination)):
            log.error("%s has no queue on this host (is it still in Consul?)", destination)
            return 2
        queue = (layout.pending(destination), layout.later(destination),
                 layout.spool(destination))  # fmt: skip
        replay = functools.partial(deadletter.replay, queue=queue)
    busy = 0
    for letter in letters:
        if not replay(letter, **who):
            busy += 1
            log.warning("%s waits: a file of that name is queued", printable(letter.name))
    print(f"{len(letters) - busy} replayed into {destination}, {busy} waiting behind a queued "
          "file of the same name")  # fmt: skip
    return 1 if busy else 0


def deadletter_purge(host: Settings, selection: str, older_than_days: float) -> int:
    """Delete the dead letters of the selection set aside more than older_than_days ago."""
    layout = Layout(host.data_root)
    limit = time.time() - older_than_days * 86400
    purged = 0
    for folder in _folders(host, selection):
        parts = folder.split(":")
        who = {"lane": parts[0], "subscriber": (parts[1:2] or [None])[0]}
        for letter in deadletter.entries(layout.dead(folder)):
            if letter.buried_at < limit:
                deadletter.purge(letter, f"purged: older than {older_than_days:g} days", **who)
                purged += 1
    print(f"{purged} dead letters deleted")
    return 0


def pause_command(host: Settings, name: str, reason: str, resume: bool = False) -> int:
    """Pause (or resume) the carriers of name (LANE:SUB or LANE:SUB:INSTANCE) on this host:
    they are stopped and disabled (started and enabled again), their files queue. Return 0,
    or 2 if name names no carrier here or the pauses cannot be written."""
    from ftpdup import pauses
    from ftpdup.host import files
    from ftpdup.host.units import spec_name, unit_name

    if name.count(":") not in (1, 2):
        log.error("pause a subscriber: LANE:SUBSCRIBER[:INSTANCE], not %r", name)
        return 2
    try:
        specs = [spec_name(f) for f in os.listdir(os.path.join(host.etc_dir, "workers", "carrier"))]
    except OSError as error:
        log.error("cannot read the carriers of this host: %s", error.strerror)
        return 2
    carriers = sorted(c for c in specs if c and (c == name or c.startswith(name + ":")))
    where = pauses.path(host.data_root)
    current = pauses.parse(files.read_text(where))
    if not carriers and not (resume and name in current):
        log.error("%s names no carrier on this host", name)
        return 2
    if resume:
        current.pop(name, None)
        carriers = [c for c in carriers if not pauses.paused(c, current)]
    else:
        pauses.add(current, name, reason)
    try:
        files.write_atomic(where, pauses.render(current), 0o600)
    except OSError as error:
        log.error("cannot write %s: %s", where, error.strerror)
        return 2
    units = [unit_name("carrier", carrier) for carrier in carriers]
    verb = "resumed" if resume else "paused"
    try:
        Systemctl().act("enable" if resume else "disable", units, "--now")
    except (OSError, SystemctlError) as error:  # the pause is recorded: the manager applies it
        log.warning("systemctl: %s; the manager's next pass applies it", error)
    # The manager's status file (what ``ftpdup status`` reads) follows at once.
    subprocess.run(["systemctl", "start", "--no-block", "ftpdup-manager.service"],
                   capture_output=True, stdin=subprocess.DEVNULL)  # fmt: skip
    print(f"{name} {verb}: {', '.join(carriers) or 'no carrier now'}")
    return 0


def trace_command(name: str, since: str) -> int:
    """Print the journal's trail of one file: every event, in every unit."""
    argv = [b"journalctl", b"--no-pager", b"-o", b"json", b"FTPDUP_FILE=" + os.fsencode(name)]
    if since:
        argv += [b"--since", since.encode()]
    found = subprocess.run(argv, capture_output=True)
    if found.returncode != 0:
        sys.stderr.write(found.stderr.decode(errors="replace"))
        return 2
    lines = 0
    for raw in found.stdout.splitlines():
        entry = json.loads(raw)
        stamp = int(entry.get("__REALTIME_TIMESTAMP", 0)) / 1e6
        where = ":".join(
            str(entry[key])
            for key in ("FTPDUP_LANE", "FTPDUP_SUBSCRIBER", "FTPDUP_INSTANCE")
            if key in entry
        )
        size = f"{entry['FTPDUP_SIZE']} B" if "FTPDUP_SIZE" in entry else ""
        took = f"{entry['FTPDUP_DURATION_MS']} ms" if "FTPDUP_DURATION_MS" in entry else ""
        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
        event = entry.get("FTPDUP_EVENT", "")
        print(f"{clock}  {event:12} {where:30} {size:>12} {took:>9}  {entry.get('MESSAGE', '')}")
        lines += 1
    if not lines:
        print(f"no trail of {printable(name)} in the journal")
        return 1
    return 0


def metrics_command(host: Settings, output: str) -> int:
    """Write the Prometheus metrics file and the status summary; return 0."""
    found = report.collect(host, Systemctl())
    metrics.write_summary(host, found)
    path = output or host.metrics_file
    if not path:
        return 0
    if not os.path.isdir(os.path.dirname(path)):
        log.info("no folder %s: the metrics are not written", os.path.dirname(path))
        return 0
    metrics.write(path, metrics.render(found))
    return 0
