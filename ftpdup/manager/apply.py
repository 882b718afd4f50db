"""Adapter: carry out a Plan on this host, in an order that never loses a queued file."""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import shutil
import stat
import time

from ftpdup import deadletter
from ftpdup.deadletter import bury
from ftpdup.host import accounts, files
from ftpdup.host.units import (
    WATCH_UNIT,
    Systemctl,
    SystemctlError,
    parse_unit_name,
    unit_name,
)
from ftpdup.layout import Layout
from ftpdup.lease import no_writer
from ftpdup.manager.plan import Directory, Plan, Unfit
from ftpdup.manager.plan.model import RUNNING
from ftpdup.settings import Settings

log = logging.getLogger(__name__)


class Applier:
    """Apply one Plan; every failure is logged and counted, the rest still goes on."""

    def __init__(self, plan: Plan, host: Settings, systemctl: Systemctl) -> None:
        self.plan = plan
        self.host = host
        self.systemctl = systemctl
        self.layout = Layout(host.data_root)
        self.failures = 0

    def _try(self, what: str, function, *args) -> bool:
        try:
            function(*args)
            return True
        except (OSError, accounts.AccountError, SystemctlError, KeyError) as error:
            self.failures += 1
            log.error("%s failed: %s", what, error)
            return False

    def run(self) -> int:
        """Apply the plan; return the number of failed steps."""
        plan = self.plan
        for account in plan.create_accounts:
            self._try(
                f"creating account {account.user}",
                accounts.create,
                account.user,
                account.uid,
                self.host.service_group,
                account.home,
                account.lane,
                account.password,
            )
        for account in plan.set_passwords:
            if self._try(
                f"setting the password of {account.user}",
                accounts.set_password,
                account.user,
                account.lane,
                account.password,
            ):
                log.info("password of %s (lane %s) set", account.user, account.lane)
        if plan.hold:
            self._try(
                "stopping workers of instances not passing", self.systemctl.act, "stop", plan.hold
            )
        if plan.pause:
            self._try(
                "stopping paused workers",
                self.systemctl.act,
                "disable",
                plan.pause,
                "--now",
                "--no-reload",
            )
        if plan.stop:
            self._try(
                "stopping removed workers",
                self.systemctl.act,
                "disable",
                plan.stop,
                "--now",
                "--no-reload",
            )
        for path in plan.removes:
            if files.remove(path):
                log.info("removed %s", path)
                with contextlib.suppress(OSError):
                    os.rmdir(os.path.dirname(path))
        for directory in plan.directories:
            self._try(f"preparing {directory.path}", _ensure_directory, directory)
        for path, (content, mode) in plan.writes.items():
            if self._try(f"writing {path}", files.write_atomic, path, content, mode):
                log.info("wrote %s", path)
        if plan.enable:
            self._try(
                "enabling new workers", self.systemctl.act, "enable", plan.enable, "--no-reload"
            )
        if plan.daemon_reload:
            self._try("daemon-reload", self.systemctl.daemon_reload)
        self._vsftpd()
        if plan.restart_watch:
            self._try("restarting the watch", self.systemctl.act, "try-restart",
                      [WATCH_UNIT], "--no-block")  # fmt: skip
        for kind in ("sprinkler", "carrier"):
            self._units(kind)
        self._bury_left_behind()
        for lane, reason in plan.remove_lanes.items():
            if files.remove(os.path.join(self.host.etc_dir, "lanes", f"{lane}.json")):
                log.info("removed the record of lane %s: %s", lane, reason)
        for user, lane in plan.remove_accounts:
            self._try(f"removing account {user}", accounts.remove, user, lane)
        for lane, unfit in plan.fix_owners.items():
            self._fix_owners(lane, unfit)
        for lane, (minutes, names) in plan.expire.items():
            self._expire(lane, minutes, names)
        for folder, paths in plan.purge.items():
            self._purge(folder, paths)
        if plan.reload_collectd and self.systemctl.unit_exists("collectd.service"):
            self._try(
                "reloading collectd", self.systemctl.act, "reload-or-restart", ["collectd.service"]
            )
        return self.failures

    def _vsftpd(self) -> None:
        unit = self.host.vsftpd_unit
        verb = self.plan.vsftpd
        state = self.systemctl.active_states([unit]).get(unit)
        if state not in ("active", "activating", "reloading"):
            verb = "start"
        elif verb == "reload":
            verb = "reload-or-restart"
        if verb:
            self._try(f"{verb} {unit}", self.systemctl.act, verb, [unit])

    def _units(self, kind: str) -> None:
        def mine(units: set[str]) -> set[str]:
            return {u for u in units if (parse_unit_name(u) or ("", ""))[0] == kind}

        for verb, units in (("restart", self.plan.restart), ("start", self.plan.start)):
            if mine(units):
                self.failures += self.systemctl.act_in_batches(verb, mine(units))

    def _bury_left_behind(self) -> None:
        """Bury the queues and lane folders nothing wants, once their worker has stopped.

        What fails (or a crash) leaves the folder, and the next pass, which
        finds it on disk again, goes on with it.
        """
        plan = self.plan
        units = {unit_name("carrier", name): name for name in plan.bury_queues}
        units.update({unit_name("sprinkler", lane): lane for lane in plan.bury_lanes})
        running = {
            units[unit]
            for unit, state in self.systemctl.active_states(list(units)).items()
            if state in RUNNING
        }
        for instance, reason in plan.bury_queues.items():
            if instance in running:
                log.warning("queue %s left for the next pass: its carrier still runs", instance)
            else:
                self._try(f"burying the queue of {instance}", self._bury_queue, instance, reason)
        for lane, reason in plan.bury_lanes.items():
            if lane in running:
                log.warning("lane %s left for the next pass: its sprinkler still runs", lane)
            else:
                self._try(f"burying the files of lane {lane}", self._bury_lane, lane, reason)

    def _bury_queue(self, instance: str, reason: str) -> None:
        """Move every file of the queue instance to its dead letters, then remove its folders.
        Raise OSError."""
        layout = self.layout
        parts = instance.split(":")
        who = {"lane": parts[0], "subscriber": parts[1], "instance": (parts[2:] or [None])[0]}
        dead = layout.dead(instance)
        later = layout.later(instance)
        folders = [layout.spool(instance), layout.pending(instance)]
        folders += [os.path.join(later, name) for name in sorted(_listing(later))] + [later]
        count = self._empty_into_dead(folders, dead, reason, **who)
        shutil.rmtree(layout.state(instance), ignore_errors=True)
        level = logging.WARNING if count else logging.INFO
        log.log(level, "queue %s removed (%s): %d files moved to %s", instance, reason, count, dead)

    def _bury_lane(self, lane: str, reason: str) -> None:
        """Move every file left in a gone lane to its dead letters (an upload still being
        written waits for the next pass), then remove its folders. Raise OSError."""
        folders = (self.layout.incoming(lane), self.layout.staging(lane))
        count = self._empty_into_dead(folders, self.layout.dead(lane), reason, lane=lane)
        level = logging.WARNING if count else logging.INFO
        log.log(
            level, "lane %s removed: %d files left in it moved to %s",
            lane, count, self.layout.dead(lane),
        )  # fmt: skip

    def _empty_into_dead(self, folders, dead: str, reason: str, **who) -> int:
        """Bury every file of folders in dead, remove the folders; return how many files.
        Raise OSError (what is left stays for the next pass)."""
        count = 0
        try:
            for folder in folders:
                count += _bury_all(folder, dead, reason, **who)
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
        finally:
            if count:
                self._give_to_workers(dead)
        return count

    def _fix_owners(self, lane: str, unfit: Unfit) -> None:
        """Give the lane files its sprinkler may not link to the lane's account and group,
        group read-write."""
        try:
            gid = grp.getgrnam(unfit.group).gr_gid
        except KeyError:
            return
        fixed = 0
        for path in unfit.paths:
            try:
                _give(path, unfit.uid, gid)
                fixed += 1
            except FileNotFoundError:
                continue
            except OSError as error:
                self.failures += 1
                log.error("giving %s to lane %s failed: %s", path, lane, error)
        if fixed:
            log.info("%d files of lane %s given to its account (group read-write)", fixed, lane)

    def _give_to_workers(self, folder: str) -> None:
        """Hand a dead-letter directory the manager wrote to the workers' user and group."""
        try:
            uid = pwd.getpwnam(self.host.service_user).pw_uid
            gid = grp.getgrnam(self.host.service_group).gr_gid
        except KeyError:
            return
        for root, directories, names in os.walk(folder):
            for path in [root] + [os.path.join(root, n) for n in directories + names]:
                with contextlib.suppress(OSError):
                    os.lchown(path, uid, gid)

    def _purge(self, folder: str, paths: list[str]) -> None:
        """Delete the dead letters of folder kept past the retention (each one logged)."""
        why = f"kept more than dead_letter_retention_days={self.host.dead_letter_retention_days:g}"
        parts = folder.split(":")
        who = {"lane": parts[0], "subscriber": (parts[1:2] or [None])[0]}
        wanted = set(paths)
        for letter in deadletter.entries(self.layout.dead(folder)):
            if letter.path in wanted:
                self._try(f"purging {letter.path}", deadletter.purge, letter, why, **who)

    def _expire(self, lane: str, minutes: int, names: list[str]) -> None:
        folder = self.layout.incoming(lane)
        limit = time.time() - minutes * 60
        reason = f"expired: not forwarded within the lane's lifetime of {minutes} min"
        for name in names:
            path = os.path.join(folder, name)
            try:
                info = os.lstat(path)
                if max(info.st_mtime, info.st_ctime) >= limit:
                    continue
                with no_writer(path) as idle:
                    if idle is not None:
                        bury(path, self.layout.dead(lane), reason, "expired", lane=lane)
                        self._give_to_workers(self.layout.dead(lane))
            except FileNotFoundError:
                continue
            except OSError as error:
                self.failures += 1
                log.error("expiring %s in lane %s failed: %s", name, lane, error)


def _bury_all(folder: str, dead: str, reason: str, **who) -> int:
    """Move every regular file of folder to the dead letters; return how many.

    A file still open for writing (an upload in a lane) is left for the next
    pass. who (lane, subscriber, instance) goes into each file's trail.
    Raise OSError if a file cannot be moved.
    """
    count = 0
    for name in _listing(folder):
        path = os.path.join(folder, name)
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            with no_writer(path) as idle:
                if idle is None:
                    continue
                bury(path, dead, reason, **who)
            count += 1
        except FileNotFoundError:
            continue
    return count


def _listing(folder: str) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def _give(path: str, uid: int, gid: int) -> None:
    """Give the regular file at path (never a link) to uid:gid, group read-write and
    read-only to its owner, as an upload is (vsftpd's file_open_mode)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return
        os.fchown(descriptor, uid, gid)
        os.fchmod(descriptor, stat.S_IMODE(info.st_mode) & 0o577 | 0o460)
    finally:
        os.close(descriptor)


def _ensure_directory(directory: Directory) -> None:
    """Create directory if needed and give it its owner, group and mode."""
    os.makedirs(directory.path, exist_ok=True)
    uid = pwd.getpwnam(directory.owner).pw_uid
    gid = grp.getgrnam(directory.group).gr_gid
    info = os.lstat(directory.path)
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.chown(directory.path, uid, gid)
    if stat.S_IMODE(info.st_mode) != directory.mode:
        os.chmod(directory.path, directory.mode)
