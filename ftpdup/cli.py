"""Command line: ``ftpdup COMMAND``, one argparse subcommand per action.

Workers (sprinkler, carrier), the manager (check, plan, apply, watch) and
the operator's commands (status, deadletter, pause, resume, trace, metrics).
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys

from ftpdup import __version__, logs, settings, specs
from ftpdup.config.names import systemd_unescape

log = logging.getLogger("ftpdup")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one subparser per action."""
    parser = argparse.ArgumentParser(
        prog="ftpdup",
        description="Duplicate the files uploaded into FTP lanes to all their subscribers.",
    )
    parser.add_argument("--version", action="version", version=f"ftpdup {__version__}")
    parser.add_argument("--config", help=f"settings file (default {settings.DEFAULT_PATH})")
    parser.add_argument(
        "--log-level", type=str.lower, choices=settings.LOG_LEVELS, metavar="LEVEL",
        help="debug, info, warning or error",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for kind, what in (("sprinkler", "LANE"), ("carrier", "LANE:SUBSCRIBER[:INSTANCE]")):
        worker = commands.add_parser(kind, help=f"run the {kind} of {what}")
        worker.add_argument(
            "instance", metavar=what, help="as in the unit name (systemd-escaped, e.g. %%i)"
        )
        worker.add_argument(
            "--spec",
            help="worker spec file (default: standard input when it is a file, as "
            "systemd gives it, else ETC_DIR/workers/KIND/INSTANCE.json)",
        )
    status = commands.add_parser(
        "status", help="each lane's and subscriber's state; exit 0 ok, 1 warning, 2 critical"
    )
    status.add_argument("selection", nargs="?", default="", metavar="LANE[:SUBSCRIBER]")
    status.add_argument("--json", action="store_true", help="one JSON document (stable fields)")
    status.add_argument(
        "--all-hosts", action="store_true",
        help="every host's rows, as each publishes them in Consul (several hosts)",
    )  # fmt: skip
    drain = commands.add_parser(
        "drain", help="take this host out of the cluster: no new login, deliver what it holds"
    )
    undrain = commands.add_parser("undrain", help="end this host's drain")
    for command, until in ((drain, "it holds nothing"), (undrain, "Consul says it passes")):
        command.add_argument("--wait", type=int, default=0, metavar="SECONDS",
                             help=f"wait up to SECONDS until {until} (exit 1 if not)")  # fmt: skip
    dead = commands.add_parser("deadletter", help="list, replay or purge dead letters")
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every dead letter: ID, name, size, age, reason")
    listing.add_argument("selection", nargs="?", default="", metavar="LANE[:SUBSCRIBER]")
    listing.add_argument("--json", action="store_true", help="one JSON document")
    replay = actions.add_parser("replay", help="put dead letters back in a queue")
    replay.add_argument("instance", metavar="FOLDER", help="LANE[:SUBSCRIBER[:INSTANCE]]")
    replay.add_argument("names", nargs="*", metavar="NAME", help="a name or an ID (list)")
    replay.add_argument("--all", action="store_true", help="every dead letter of it")
    replay.add_argument(
        "--to", default="", metavar="LANE[:SUBSCRIBER[:INSTANCE]]",
        help="another queue (default: the folder's own; a lane: through its sprinkler)",
    )  # fmt: skip
    purge = actions.add_parser("purge", help="delete old dead letters")
    purge.add_argument("selection", nargs="?", default="", metavar="LANE[:SUBSCRIBER]")
    purge.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    pause = commands.add_parser(
        "pause", help="stop delivering to a subscriber on this host; its files queue"
    )
    pause.add_argument("instance", metavar="LANE:SUBSCRIBER[:INSTANCE]")
    pause.add_argument("--reason", default="", help="shown by ftpdup status")
    resume = commands.add_parser("resume", help="deliver again to a paused subscriber")
    resume.add_argument("instance", metavar="LANE:SUBSCRIBER[:INSTANCE]")
    trace = commands.add_parser("trace", help="the whole life of one file, from the journal")
    trace.add_argument("name", metavar="NAME")
    trace.add_argument("--since", default="", help="as journalctl --since (e.g. today, -2h)")
    metric = commands.add_parser("metrics", help="write the Prometheus metrics file")
    metric.add_argument("--output", default="", help="file to write (default: metrics_file)")
    check_command = commands.add_parser(
        "check", help="read Consul and report every configuration problem"
    )
    check_command.add_argument(
        "--from-ftp-duplicator",
        action="store_true",
        help="also say what ftp-duplicator's variables and tree become, lane by lane",
    )
    check_command.add_argument(
        "--env-file",
        metavar="FILE",
        help="ftp-duplicator's variables (NAME=value lines; default: this environment)",
    )
    commands.add_parser("plan", help="print what apply would change on this host")
    commands.add_parser("apply", help="apply the configuration in Consul to this host")
    commands.add_parser("watch", help="run the manager unit whenever Consul changes")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    arguments = build_parser().parse_args(argv)
    try:
        host = settings.load(arguments.config)
    except settings.SettingsError as error:
        logs.setup("info")
        log.error("%s", error)
        return 2
    logs.setup(arguments.log_level or host.log_level, journal_too=arguments.command == "deadletter")
    if arguments.command in ("sprinkler", "carrier"):
        return run_worker(arguments.command, arguments.instance, arguments.spec, host)
    if arguments.command == "check":
        return check(host, arguments.from_ftp_duplicator, arguments.env_file)
    if arguments.command in ("status", "deadletter", "trace", "metrics", "pause", "resume",
                             "drain", "undrain"):  # fmt: skip
        return operate(arguments, host)
    from ftpdup.manager import run

    if arguments.command == "plan":
        return run.plan_command(host)
    if arguments.command == "apply":
        return run.apply_command(host)
    if arguments.command == "watch":
        return run.Watch(host).run()
    raise AssertionError(arguments.command)  # pragma: no cover - argparse refuses others


def operate(arguments: argparse.Namespace, host: settings.Settings) -> int:
    """Run one of the operator's commands (status, deadletter, trace, metrics)."""
    from ftpdup import operations

    if arguments.command == "status":
        return operations.status_command(
            host, arguments.selection, arguments.json, arguments.all_hosts
        )
    if arguments.command in ("drain", "undrain"):
        return operations.drain_command(host, arguments.command == "undrain", arguments.wait)
    if arguments.command == "trace":
        return operations.trace_command(arguments.name, arguments.since)
    if arguments.command == "metrics":
        return operations.metrics_command(host, arguments.output)
    if arguments.command in ("pause", "resume"):
        reason = getattr(arguments, "reason", "")
        return operations.pause_command(
            host, arguments.instance, reason, arguments.command == "resume"
        )
    if arguments.action == "list":
        return operations.deadletter_list(host, arguments.selection, arguments.json)
    if arguments.action == "replay":
        if not (arguments.names or arguments.all):
            log.error("name the dead letters to replay, or give --all")
            return 2
        return operations.deadletter_replay(
            host, arguments.instance, arguments.names, arguments.all, arguments.to
        )
    return operations.deadletter_purge(host, arguments.selection, arguments.older_than)


def read_spec(kind: str, instance: str, explicit: str | None, host: settings.Settings):
    """Return the worker's spec and where it came from. Raise OSError or ValueError.

    The spec comes from --spec, else from standard input when it is a regular
    file (the unit's ``StandardInput=file:``, opened by systemd as root), else
    from the manager's spec directory.
    """
    if explicit:
        return specs.load(explicit), explicit
    if stat.S_ISREG(os.fstat(0).st_mode):
        with os.fdopen(os.dup(0), encoding="utf-8") as handle:
            return specs.from_json(handle.read()), "standard input"
    path = host.spec_path(kind, systemd_unescape(instance))
    return specs.load(path), path


def run_worker(kind: str, instance: str, explicit: str | None, host: settings.Settings) -> int:
    """Load the worker's spec and run it until stopped; return the exit code."""
    from ftpdup.specs import CarrierSpec, SprinklerSpec

    try:
        spec, source = read_spec(kind, instance, explicit, host)
    except (OSError, ValueError) as error:
        log.error("cannot load the %s spec of %s: %s", kind, instance, error)
        return 2
    expected = SprinklerSpec if kind == "sprinkler" else CarrierSpec
    if not isinstance(spec, expected):
        log.error("the spec from %s is not a %s spec", source, kind)
        return 2
    _keep_ssl_out(spec)
    if kind == "sprinkler":
        from ftpdup.workers.sprinkler import Sprinkler

        worker = Sprinkler(spec)
    else:
        from ftpdup.workers.carrier import Carrier

        worker = Carrier(spec)
    log.info("%s %s starting", kind, systemd_unescape(instance))
    try:
        return worker.run()
    except OSError as error:
        log.error("%s %s: %s", kind, instance, error)
        return 1


def _keep_ssl_out(spec) -> None:
    """Keep the ssl module out of a worker process that never speaks TLS.

    ftplib and http.client import ssl whether or not it is used; that costs
    each worker about 1.2 MB, on hosts that run hundreds of workers
    (bench/imports.py). Without the module, they simply leave TLS out.
    """
    target = getattr(spec, "target", None)
    if "ssl" not in sys.modules and not getattr(target, "tls", False):
        sys.modules["ssl"] = None  # type: ignore[assignment]


def check(host: settings.Settings, migrating: bool = False, env_file: str | None = None) -> int:
    """Read Consul and print every problem, and every refusal apply would make on this host.

    migrating: first print the settings ftp-duplicator's variables (env_file,
    else this environment) make, and the tree lane by lane. Return 0 if there
    is no problem, 1 if there is an error, 2 if Consul or env_file cannot be read.
    """
    from ftpdup import consul_source
    from ftpdup.host.accounts import read_accounts
    from ftpdup.manager.plan import collectd_refusal, lane_refusals

    try:
        client = consul_source.connect(**host.consul_access())
        snapshot = consul_source.load(client, host.key_prefix, (host.collectd_service,))
    except (consul_source.ConsulError, settings.SettingsError) as error:
        log.error("%s", error)
        return 2
    refused = lane_refusals(snapshot.config.lanes, read_accounts())
    if migrating:
        try:
            _print_migration(snapshot.config, refused, env_file)
        except OSError as error:
            log.error("cannot read %s: %s", env_file, error.strerror)
            return 2
    problems = [*snapshot.config.problems, *snapshot.instance_problems]
    if migrating:  # the lanes' problems are listed with their lane already
        problems = [p for p in problems if not p.path.startswith("incoming_directories/")]
    for problem in problems:
        level = "warning" if problem.warning else "error"
        print(f"{level}: {problem}")
    collectd = collectd_refusal(snapshot, host)
    for refusal in [*([] if migrating else refused.values()), *([collectd] if collectd else [])]:
        print(f"error: {refusal}")
    for lane in [] if migrating else snapshot.config.lanes:
        state = "refused" if lane.name in refused else f"{len(lane.subscribers)} subscribers"
        print(f"lane {lane.name}: {state}")
    errors = snapshot.config.errors() or snapshot.instance_problems or refused or collectd
    return 1 if errors else 0


def _print_migration(config, refused: dict[str, str], env_file: str | None) -> None:
    """Print what ftp-duplicator's variables and tree become. Raise OSError."""
    from ftpdup import migration

    if env_file:
        with open(env_file, encoding="utf-8") as handle:
            environ = migration.read_environment(handle.read().splitlines())
    else:
        environ = dict(os.environ)
    translation = migration.translate(environ)
    print("# settings from ftp-duplicator's variables (for /etc/ftpdup/ftpdup.conf)")
    print(migration.settings_text(translation), end="")
    for note in translation.notes:
        print(f"# note: {note}")
    print()
    for line in migration.lane_report(config, refused, translation.lifetime_minutes):
        print(line)
    print()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
