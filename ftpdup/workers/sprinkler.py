"""The sprinkler: take each complete file out of a lane and queue it for every subscriber.

For each file, crash-safe and without copying (all directories are on one
filesystem):

1. take: once nobody has it open for writing, rename ``incoming/LANE/NAME``
   to ``staging/LANE/NAME`` (first, so that the name is free again at once),
   write its data out (``sync``) and set its modification time to now: its
   age counts from when ftpdup took it, never from a time a client or a copy
   set. The uploader can no longer change it.
2. fan out: link it into every output's queue as that output's newest
   version of NAME, then unlink the staging name (the commit). An output's
   next version of a name waits in ``pending/OUTPUT/NAME``, the versions
   after it in ``later/OUTPUT/SEQ/NAME`` (oldest SEQ first): any number of
   versions of one name queue, none is overwritten, and a slow subscriber
   holds back nobody else.
3. publish: rename ``pending/OUTPUT/NAME`` into ``spool/OUTPUT/NAME`` as soon
   as the spool holds no file of that name (the carrier delivered the older
   one; the spool is watched for it), then move the oldest later version up
   into pending.

A restart finishes what an interrupted run left undone: a staging name is an
unfinished fan-out (a link to it already made is the output's newest
version); a pending link is published once committed. No carrier sees a file
twice, and no file is lost. Moves never replace a file (``moves``).

An output is a carrier's queue, or the parked queue ``LANE:SUB`` of a
subscriber that has no worker now (a Consul service with no passing
instance, a value Consul holds that is refused): its files wait, in order,
and go to the dead letters past ``max_age``. When the service gets
instances, the spec names the parked queue as a drain: at start, its files
are queued for each instance, oldest version first. Only a lane with no
subscriber configured at all deletes its files.

A file still open for writing (an upload in progress, found by the startup
scan) is left alone and looked at again until it is closed: after 2 ms, then
twice as long each time, up to every 0.25 s. A file the sprinkler may not
link (another owner, no group write: moved in by hand) stays in the lane,
is shown in the status, and is taken once the manager has given it to the
lane's account.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import logging
import os
import stat
import time

from ftpdup import deadletter, moves
from ftpdup.config.values import printable
from ftpdup.lease import (
    check_leases,
    ignore_lease_breaks,
    lease,
    no_writer,
    open_quietly,
    release,
    still_leased,
)
from ftpdup.logs import trail
from ftpdup.specs import Drain, Output, SprinklerSpec
from ftpdup.status import Counters
from ftpdup.status import read as read_status
from ftpdup.watcher import FolderWatch
from ftpdup.workers.loop import Worker, clock

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# The kernel reports IN_CLOSE_WRITE a moment before it drops the writer's
# count, so a file just closed can still refuse the lease: look again soon,
# then less and less often (an upload in progress).
FIRST_BUSY_RETRY_SECONDS = 0.002
BUSY_RETRY_SECONDS = 0.25
# How often parked queues are looked through for files past max_age, and the lane for
# entries that are not regular files: a parked file reaches the dead letters at most
# max_age / PARKED_SWEEPS_PER_AGE (1 to 60 s) past its age.
PARKED_SWEEP_SECONDS = 60.0
MIN_PARKED_SWEEP_SECONDS = 1.0
PARKED_SWEEPS_PER_AGE = 20


class Sprinkler(Worker):
    """Fan out the files of one lane to its outputs' queues."""

    def __init__(self, spec: SprinklerSpec) -> None:
        super().__init__(spec.status)
        self.spec = spec
        self.directory = spec.incoming
        self.outputs = {output.instance: output for output in spec.outputs}
        self.waiting: list[str] = []
        self.blocked_lane: set[str] = set()
        self.busy: set[str] = set()
        self.next_busy_retry = 0.0
        self.busy_delay = FIRST_BUSY_RETRY_SECONDS
        self.blocked_staging: set[str] = set()
        # Pending names waiting for their spool name to be free: output -> names.
        self.blocked_pending: dict[str, set[str]] = {name: set() for name in self.outputs}
        # Versions queued after the pending one: output -> name -> SEQ folders, oldest first.
        self.later: dict[str, dict[str, list[str]]] = {name: {} for name in self.outputs}
        self.queued_later = 0
        self.last_seq = 0
        # Lane files the sprinkler may not link (owner, mode): name -> why.
        self.unfit: dict[str, str] = {}
        # Lane entries that are not regular files: name -> what they are.
        self.odd: dict[str, str] = {}
        self.drains_left = bool(spec.drains)
        self.folders = FolderWatch()
        self.watch_fds.append(self.folders.fileno())
        self.counters = Counters(read_status(spec.status) if spec.status else None)
        self.last_forward = 0.0
        self.last_retry = 0.0
        self.next_sweep = 0.0
        self.trouble = ""

    def prepare(self) -> None:
        ignore_lease_breaks()
        folders = [self.spec.incoming, self.spec.staging]
        for output in self.spec.outputs:
            folders += [output.pending, output.spool] + ([output.later] if output.later else [])
        for directory in folders:
            os.makedirs(directory, exist_ok=True)
        check_leases(self.spec.staging)

    def rescan(self) -> None:
        for output in self.spec.outputs:
            self._index_later(output)
        self._drain_all()
        for output in self.spec.outputs:
            for name in _oldest_first(output.pending):
                self._publish(output, name)
            for name in [name for name in self.later[output.instance]
                         if not os.path.lexists(os.path.join(output.pending, name))]:  # fmt: skip
                self._promote(output, name)
        for name in _oldest_first(self.spec.staging):
            self._fan_out(name, check_writer=True)
        self.waiting.extend(_oldest_first(self.spec.incoming))
        self._look_for_odd_entries()

    def on_names(self, names: list[str]) -> None:
        self.waiting.extend(names)

    def step(self) -> float | None:
        now = time.monotonic()
        self._on_departures()
        if self._blocked() and now - self.last_retry >= RETRY_SECONDS:
            self._retry_blocked()
        if self.busy and now >= self.next_busy_retry:
            self.waiting.extend(sorted(self.busy))
            self.busy.clear()
        was_busy = bool(self.busy)
        waiting, self.waiting = self.waiting, []
        for name in waiting:
            if self.stopping:
                self.waiting.extend(waiting[waiting.index(name) :])
                break
            self._take(name)
        if now >= self.next_sweep:
            self.next_sweep = now + sweep_interval(self.spec.max_age)
            self._sweep_parked()
            self._look_for_odd_entries()
        timers = [self.next_sweep - now]
        if self.busy:
            timers.append(self._busy_wait(now, was_busy))
        else:
            self.busy_delay = FIRST_BUSY_RETRY_SECONDS
        if self._blocked():
            timers.append(RETRY_SECONDS)
        return max(0.0, min(timers))

    def _busy_wait(self, now: float, was_busy: bool) -> float:
        """Schedule the next look at files still open for writing; return the wait."""
        if not was_busy and now >= self.next_busy_retry:
            self.next_busy_retry = now + self.busy_delay
            self.busy_delay = min(BUSY_RETRY_SECONDS, self.busy_delay * 2)
        return max(0.0, self.next_busy_retry - now)

    def status(self) -> str:
        queued = self.queued_later
        parts = [f"{self.counters.totals['delivered_files']} forwarded"]
        if self._blocked():
            parts.append(f"{self._blocked()} waiting to go on")
        if queued:
            parts.append(f"{queued} versions queued behind a file of the same name")
        if self.unfit:
            parts.append(f"{len(self.unfit)} files it may not link (owner or mode)")
        if self.odd:
            parts.append(f"{len(self.odd)} entries in the lane that are not files")
        text = ", ".join(parts) + f", last {clock(self.last_forward)}"
        return text + (f"; {self.trouble}" if self.trouble else "")

    def signature(self) -> object:
        waiting = len(self.waiting) + len(self.busy) + self._blocked()
        counts = (waiting, self.queued_later, len(self.unfit), tuple(sorted(self.odd)))
        return counts, self.counters.totals["delivered_files"], self.trouble

    def snapshot(self) -> dict:
        waiting = len(self.waiting) + len(self.busy) + len(self.blocked_lane)
        waiting += len(self.blocked_staging)
        last_error = self.trouble
        if self.unfit and not last_error:
            name, why = sorted(self.unfit.items())[0]
            last_error = f"{len(self.unfit)} files it may not link, e.g. {printable(name)}: {why}"
        return {
            "kind": "sprinkler",
            "name": self.spec.lane,
            "lane": self.spec.lane,
            "pid": os.getpid(),
            "backlog_files": waiting + len(self.unfit),
            "last_success": self.last_forward or None,
            "last_error": last_error,
            "unfit_files": len(self.unfit),
            "odd_entries": [
                {"name": printable(name), "kind": kind}
                for name, kind in sorted(self.odd.items())[:5]
            ],
            "odd_entries_total": len(self.odd),
            "outputs": self._output_snapshot(),
            **self.counters.fields(),
        }

    def _output_snapshot(self) -> dict:
        """Return, per output, the versions queued before its spool, and for a parked
        output what it holds in all and why."""
        found = {}
        for instance, output in self.outputs.items():
            before_spool = len(self.blocked_pending[instance])
            before_spool += sum(len(seqs) for seqs in self.later[instance].values())
            entry: dict = {"queued_before_spool": before_spool}
            if output.parked:
                entry["parked"] = output.parked
                files = _oldest_first(output.spool, with_times=True)
                entry["files"] = len(files) + before_spool
                entry["oldest_mtime"] = files[0][0] if files else None
            found[instance] = entry
        return found

    # Taking files out of the lane.

    def _take(self, name: str) -> None:
        try:
            self.take(name)
        except OSError as error:
            self.blocked_lane.add(name)
            self._troubled(f"cannot take {printable(name)}", error)

    def excluded(self, name: str) -> bool:
        """Return True if name matches one of the lane's exclude patterns."""
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.spec.exclude)

    def take(self, name: str) -> None:
        """Move a complete lane file into staging and fan it out; skip excluded or odd entries.

        Raise OSError if it cannot be taken now (it is tried again later).
        """
        if self.excluded(name):
            log.info(
                "%s excluded: it stays in the lane",
                printable(name),
                extra=trail("excluded", lane=self.spec.lane, file=name),
            )
            return
        source = os.path.join(self.spec.incoming, name)
        try:
            info = os.lstat(source)
            if not stat.S_ISREG(info.st_mode):
                self._odd(name, info)
                return
            if not self._fit(name, source, info):
                return
            descriptor = open_quietly(source)
        except FileNotFoundError:
            self.unfit.pop(name, None)
            return
        try:
            taken = self._take_open(name, descriptor)
        finally:
            os.close(descriptor)
        if not taken:
            return
        size = info.st_size
        log.info(
            "arrived %s (%d bytes)",
            printable(name),
            size,
            extra=trail("arrival", lane=self.spec.lane, file=name, size=size),
        )
        self.busy.discard(name)
        self.blocked_lane.discard(name)
        self._fan_out(name)

    def _take_open(self, name: str, descriptor: int) -> bool:
        """Move the lane file open as descriptor into staging once nobody writes it, then
        write its data out; return False if it is left in the lane for now. Raise OSError.

        The rename comes first and alone under the read lease: the name is
        free for the uploader's next file of that name as soon as possible
        (until then vsftpd refuses that STOR, the file being read-only to its
        uploader). Its data is written out in staging, before any queue links
        it: a file reaches no queue before its data is on disk. A writer that
        began to open the file during the rename (only another account than
        the uploader's can) is handed back to the lane with its file.
        """
        source = os.path.join(self.spec.incoming, name)
        staged = os.path.join(self.spec.staging, name)
        if not lease(descriptor):
            log.debug("%s is still being written, looking again", printable(name))
            self.busy.add(name)
            return False
        try:
            try:
                moves.move(source, staged)
            except FileExistsError:
                self.blocked_lane.add(name)  # the older file of that name is being fanned out
                return False
            if not still_leased(descriptor):
                try:
                    moves.move(staged, source)
                except OSError:
                    self.blocked_staging.add(name)  # fanned out once its writer is done
                    return False
                log.info("%s is being written again: left in the lane", printable(name))
                self.busy.add(name)
                return False
        finally:
            release(descriptor)
        if self.spec.sync:
            try:
                moves.write_out(descriptor)
            except OSError:
                self.blocked_staging.add(name)  # written out and fanned out on a retry
                raise
        return True

    def _odd(self, name: str, info: os.stat_result) -> None:
        """Note a lane entry that is not a regular file (logged once while it is there)."""
        kind = _kind(info.st_mode)
        if self.odd.get(name) == kind:
            return
        self.odd[name] = kind
        log.warning(
            "%s in the lane is %s, not a regular file: ftpdup forwards regular files only, "
            "and leaves it where it is; remove it (a folder's files can be moved into the "
            "lane itself)",
            printable(name),
            kind,
            extra=trail("odd_entry", lane=self.spec.lane, file=name),
        )

    def _look_for_odd_entries(self) -> None:
        """Note the lane's entries that are not regular files; forget those gone."""
        found: dict[str, os.stat_result] = {}
        try:
            with os.scandir(self.spec.incoming) as scan:
                for entry in scan:
                    with contextlib.suppress(FileNotFoundError):
                        if not entry.is_file(follow_symlinks=False):
                            found[entry.name] = entry.stat(follow_symlinks=False)
        except OSError:
            return
        for name in [name for name in self.odd if name not in found]:
            log.info("%s is no longer in the lane", printable(name))
            del self.odd[name]
        for name, info in found.items():
            self._odd(name, info)

    def _fit(self, name: str, path: str, info: os.stat_result) -> bool:
        """Return True if this process may link and write path (protected hard links ask it).

        If not (a file moved in by hand, of another owner or mode), keep it
        among the unfit, logged once: the manager gives it to the lane's account.
        """
        if os.access(path, os.R_OK | os.W_OK, follow_symlinks=False):
            if self.unfit.pop(name, None) is not None:
                log.info("%s may be taken now", printable(name))
            return True
        mode = stat.S_IMODE(info.st_mode)
        why = f"owner uid {info.st_uid}, group gid {info.st_gid}, mode {mode:04o}"
        if name not in self.unfit:
            log.warning(
                "%s cannot be taken (%s): it waits in the lane until the manager gives it "
                "to the lane's account",
                printable(name),
                why,
                extra=trail("unfit", lane=self.spec.lane, file=name, size=info.st_size),
            )
        self.unfit[name] = why
        return False

    # Fanning out to the outputs.

    def _fan_out(self, name: str, check_writer: bool = False) -> None:
        try:
            self.fan_out(name, check_writer)
        except OSError as error:
            self.blocked_staging.add(name)
            self._troubled(f"cannot fan out {printable(name)}", error)

    def fan_out(self, name: str, check_writer: bool = False) -> None:
        """Queue a staged file for every output, commit, then publish it. Raise OSError.

        check_writer: first make sure nobody writes it (a staged file found
        at start, or one a writer reached while it was being taken).
        """
        staged = os.path.join(self.spec.staging, name)
        try:
            if check_writer:
                with no_writer(staged) as idle:
                    if idle is None:
                        raise BlockingIOError(errno.EBUSY, "it is still being written")
                    if self.spec.sync:
                        moves.write_out(idle)
            os.utime(staged)  # its age counts from when ftpdup took it
            info = os.lstat(staged)
        except FileNotFoundError:
            self.blocked_staging.discard(name)
            return
        for output in self.spec.outputs:
            self._queue(output, staged, name, info)
        os.unlink(staged)
        self.blocked_staging.discard(name)
        if not self.spec.outputs:
            log.info(
                "deleted %s (%d bytes): the lane has no subscriber",
                printable(name),
                info.st_size,
                extra=trail("deleted", lane=self.spec.lane, file=name, size=info.st_size),
            )
            return
        for output in self.spec.outputs:
            self._publish(output, name)
        self.last_forward = time.time()
        self.counters.delivered(info.st_size, 0.0, self.last_forward)
        if self.trouble:
            log.info("writing works again")
            self.trouble = ""
        log.info(
            "forwarded %s (%d bytes) to %d queues",
            printable(name),
            info.st_size,
            len(self.spec.outputs),
            extra=trail("fanout", lane=self.spec.lane, file=name, size=info.st_size),
        )

    def _queue(self, output: Output, source: str, name: str, info: os.stat_result) -> None:
        """Link source (whose stat is info) into output's queue as its newest version of name.

        A link to the same file already there (a fan-out a crash cut short)
        is kept as it is. Raise OSError.
        """
        versions = self.later[output.instance].setdefault(name, [])
        pending = os.path.join(output.pending, name)
        if versions:
            newest = os.path.join(output.later, versions[-1], name)
            if _same_file(info, newest):
                return
        else:
            try:
                os.link(source, pending)
                self._forget_if_empty(output, name)
                return
            except FileExistsError:
                if _same_file(info, pending):
                    self._forget_if_empty(output, name)
                    return
        folder = self._new_version_folder(output)
        os.link(source, os.path.join(output.later, folder, name))
        versions.append(folder)
        self.queued_later += 1

    def _new_version_folder(self, output: Output) -> str:
        """Create and return a new SEQ folder in output's later folder, after every other."""
        os.makedirs(output.later, exist_ok=True)
        while True:
            self.last_seq = max(self.last_seq + 1, time.time_ns())
            folder = f"{self.last_seq:020d}"
            try:
                os.mkdir(os.path.join(output.later, folder))
                return folder
            except FileExistsError:
                continue

    def _forget_if_empty(self, output: Output, name: str) -> None:
        if not self.later[output.instance].get(name):
            self.later[output.instance].pop(name, None)

    def _index_later(self, output: Output) -> None:
        """Read output's later folder: which versions of which names wait there, in order."""
        versions: dict[str, list[str]] = {}
        if output.later:
            for folder in sorted(_names(output.later)):
                if not folder.isdigit():
                    continue
                path = os.path.join(output.later, folder)
                names = _names(path)
                if not names:
                    with contextlib.suppress(OSError):
                        os.rmdir(path)  # a promotion a crash cut short
                    continue
                for name in names:
                    versions.setdefault(name, []).append(folder)
                self.last_seq = max(self.last_seq, int(folder))
        self.queued_later -= sum(len(seqs) for seqs in self.later[output.instance].values())
        self.queued_later += sum(len(seqs) for seqs in versions.values())
        self.later[output.instance] = versions

    # Publishing into the spools.

    def _publish(self, output: Output, name: str) -> None:
        try:
            self.publish(output, name)
        except OSError as error:
            self.blocked_pending[output.instance].add(name)
            self._troubled(f"cannot publish {printable(name)} to {output.instance}", error)

    def publish(self, output: Output, name: str) -> None:
        """Move output's pending name into its spool unless the spool holds that name; then
        move the next version up. Raise OSError."""
        pending = os.path.join(output.pending, name)
        blocked = self.blocked_pending[output.instance]
        try:
            link = os.lstat(pending)
        except FileNotFoundError:
            self._unblock(output, name)
            return
        if self._uncommitted(name, link):
            return
        spooled = os.path.join(output.spool, name)
        try:
            moves.move(pending, spooled)
        except FileNotFoundError:  # the spool folder was removed
            os.makedirs(output.spool, exist_ok=True)
            moves.move(pending, spooled)
        except FileExistsError:
            # Watch the spool, then try once more: a name that left in between is not missed.
            self.folders.add(output.spool)
            try:
                moves.move(pending, spooled)
            except FileExistsError:
                blocked.add(name)
                return
        self._unblock(output, name)
        self._promote(output, name)

    def _unblock(self, output: Output, name: str) -> None:
        """Forget that name waited in output's pending folder; stop watching a spool that
        nothing waits for."""
        blocked = self.blocked_pending[output.instance]
        blocked.discard(name)
        if not blocked:
            self.folders.remove(output.spool)

    def _promote(self, output: Output, name: str) -> None:
        """Move the oldest later version of name up into output's pending folder (free), and
        publish it if it can be."""
        versions = self.later[output.instance].get(name)
        if not versions:
            return
        while versions:
            folder = os.path.join(output.later, versions[0])
            try:
                moves.move(os.path.join(folder, name), os.path.join(output.pending, name))
            except FileNotFoundError:
                versions.pop(0)
                self.queued_later -= 1
                continue
            except FileExistsError:
                break  # the pending name is taken (a replay): this version waits behind it
            versions.pop(0)
            self.queued_later -= 1
            with contextlib.suppress(OSError):
                os.rmdir(folder)
            break
        self._forget_if_empty(output, name)
        self._publish(output, name)

    def _uncommitted(self, name: str, link: os.stat_result) -> bool:
        """Return True if a pending link belongs to a staged file whose step 2 is unfinished."""
        return _same_file(link, os.path.join(self.spec.staging, name))

    def _on_departures(self) -> None:
        """Publish what waited for a name that just left its spool."""
        left, overflow = self.folders.read()
        if overflow:
            self.last_retry = 0.0  # look at every waiting name now
            return
        spools = {output.spool: output for output in self.spec.outputs}
        for folder, name in left:
            output = spools.get(folder)
            if output is not None and name in self.blocked_pending[output.instance]:
                self._publish(output, name)

    def _blocked(self) -> int:
        return (
            len(self.blocked_lane)
            + len(self.blocked_staging)
            + sum(len(names) for names in self.blocked_pending.values())
            + len(self.unfit)
            + self.drains_left
        )

    def _retry_blocked(self) -> None:
        """Try again, oldest step first, what waited (a name taken, an error, a file unfit)."""
        self.last_retry = time.monotonic()
        if self.drains_left:
            self._drain_all()
        for instance, names in self.blocked_pending.items():
            for name in sorted(names):
                self._publish(self.outputs[instance], name)
        for name in sorted(self.blocked_staging):
            self._fan_out(name, check_writer=True)
        self.waiting.extend(sorted(self.blocked_lane | set(self.unfit)))
        self.blocked_lane.clear()

    def _troubled(self, what: str, error: OSError) -> None:
        """Log a filesystem failure (once while it lasts); the file is tried again later."""
        trouble = f"{what}: {error.strerror or error}"
        if not self.trouble:
            log.error("%s; trying again every %.0f s", trouble, RETRY_SECONDS)
        self.trouble = trouble

    # Parked queues: drained into a service's instances, swept past max_age.

    def _drain_all(self) -> None:
        """Queue every file of the parked queues named as drains for their outputs."""
        self.drains_left = False
        for drain in self.spec.drains:
            try:
                self._drain(drain)
            except OSError as error:
                self.drains_left = True
                self._troubled(f"cannot hand over the parked queue {drain.instance}", error)

    def _drain(self, drain: Drain) -> None:
        """Queue drain's files, oldest version first, for each of its outputs. Raise OSError."""
        targets = [self.outputs[name] for name in drain.into if name in self.outputs]
        if not targets:
            return
        moved = 0
        for path, name in _parked_files(drain.spool, drain.pending, drain.later):
            info = os.lstat(path)
            if not self._uncommitted(name, info):  # else the staged file's fan-out queues it
                for output in targets:
                    self._queue(output, path, name, info)
                moved += 1
            os.unlink(path)
            folder = os.path.dirname(path)
            if os.path.dirname(folder) == drain.later:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
            for output in targets:
                self._publish(output, name)
        for folder in (drain.later, drain.pending, drain.spool):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        if moved:
            log.info(
                "%d files that waited for %s handed over to %s",
                moved,
                drain.instance,
                ", ".join(output.instance for output in targets),
            )

    def _sweep_parked(self) -> None:
        """Set aside the files of parked queues that waited longer than max_age."""
        limit = time.time() - self.spec.max_age
        for output in self.spec.outputs:
            if not output.parked:
                continue
            for mtime, name in _oldest_first(output.spool, with_times=True):
                while mtime < limit:
                    if not self._set_aside(output, name):
                        break
                    self._publish(output, name)
                    try:
                        mtime = os.lstat(os.path.join(output.spool, name)).st_mtime
                    except FileNotFoundError:
                        break

    def _set_aside(self, output: Output, name: str) -> bool:
        """Move a parked spool file to the dead letters; return False if it could not be."""
        reason = f"not delivered within max_age={self.spec.max_age} s: {output.parked}"
        parts = output.instance.split(":")
        try:
            deadletter.bury(os.path.join(output.spool, name), output.dead, reason,
                            lane=parts[0], subscriber=parts[1])  # fmt: skip
            self.counters.totals["dead_letters_total"] += 1
            return True
        except FileNotFoundError:
            return True
        except OSError as error:
            self._troubled(f"cannot set {printable(name)} aside", error)
            return False


def _kind(mode: int) -> str:
    """Return what a non-regular lane entry is, in words."""
    for test, kind in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def sweep_interval(max_age: float) -> float:
    """Return the seconds between two sweeps of the parked queues for a max_age."""
    return min(PARKED_SWEEP_SECONDS, max(MIN_PARKED_SWEEP_SECONDS, max_age / PARKED_SWEEPS_PER_AGE))


def _same_file(info: os.stat_result, path: str) -> bool:
    """Return True if path is the file whose stat is info."""
    try:
        return os.path.samestat(info, os.lstat(path))
    except FileNotFoundError:
        return False


def _names(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _parked_files(spool: str, pending: str, later: str) -> list[tuple[str, str]]:
    """Return (path, name) of a parked queue's files, each name's oldest version first."""
    found = [(os.path.join(spool, name), name) for _, name in _oldest_first(spool, True)]
    found += [(os.path.join(pending, name), name) for _, name in _oldest_first(pending, True)]
    for folder in sorted(_names(later)):
        found += [(os.path.join(later, folder, name), name)
                  for name in _names(os.path.join(later, folder))]  # fmt: skip
    return found


def _oldest_first(directory: str, with_times: bool = False) -> list:
    """Return the names of the regular files in directory, oldest modification first
    (with_times: (mtime, name) pairs)."""
    entries = []
    try:
        with os.scandir(directory) as scan:
            for entry in scan:
                try:
                    if entry.is_file(follow_symlinks=False):
                        entries.append((entry.stat(follow_symlinks=False).st_mtime_ns, entry.name))
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return []
    entries.sort()
    if with_times:
        return [(mtime / 1e9, name) for mtime, name in entries]
    return [name for _, name in entries]
