"""Command line: ``ftpdup sprinkler|carrier|check|plan|apply|watch`` (argparse)."""

from __future__ import annotations

import argparse
import logging
import os
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
    parser.add_argument("--log-level", help="debug, info, warning or error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for kind, what in (("sprinkler", "LANE"), ("carrier", "LANE:SUBSCRIBER[:INSTANCE]")):
        worker = commands.add_parser(kind, help=f"run the {kind} of {what}")
        worker.add_argument(
            "instance", metavar=what, help="as in the unit name (systemd-escaped, e.g. %%i)"
        )
        worker.add_argument(
            "--spec",
            help="worker spec file (default: the systemd credential 'spec', "
            "else ETC_DIR/workers/KIND/NAME.json)",
        )
    commands.add_parser("check", help="read Consul and report every configuration problem")
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
    logs.setup(arguments.log_level or host.log_level)
    if arguments.command in ("sprinkler", "carrier"):
        return run_worker(arguments.command, arguments.instance, arguments.spec, host)
    if arguments.command == "check":
        return check(host)
    from ftpdup.manager import run

    if arguments.command == "plan":
        return run.plan_command(host)
    if arguments.command == "apply":
        return run.apply_command(host)
    if arguments.command == "watch":
        return run.Watch(host).run()
    raise AssertionError(arguments.command)  # pragma: no cover - argparse refuses others


def spec_path(kind: str, instance: str, explicit: str | None, host: settings.Settings) -> str:
    """Return where the worker's spec is: explicit, the systemd credential, or the spec dir."""
    if explicit:
        return explicit
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and os.path.exists(os.path.join(credentials, "spec")):
        return os.path.join(credentials, "spec")
    return host.spec_path(kind, systemd_unescape(instance))


def run_worker(kind: str, instance: str, explicit: str | None, host: settings.Settings) -> int:
    """Load the worker's spec and run it until stopped; return the exit code."""
    from ftpdup.specs import CarrierSpec, SprinklerSpec
    from ftpdup.workers.carrier import Carrier
    from ftpdup.workers.sprinkler import Sprinkler

    path = spec_path(kind, instance, explicit, host)
    try:
        spec = specs.load(path)
    except (OSError, ValueError) as error:
        log.error("cannot load the %s spec of %s from %s: %s", kind, instance, path, error)
        return 2
    expected = SprinklerSpec if kind == "sprinkler" else CarrierSpec
    if not isinstance(spec, expected):
        log.error("%s is not a %s spec", path, kind)
        return 2
    worker = Sprinkler(spec) if kind == "sprinkler" else Carrier(spec)
    log.info("%s %s starting", kind, instance)
    try:
        return worker.run()
    except OSError as error:
        log.error("%s %s: %s", kind, instance, error)
        return 1


def check(host: settings.Settings) -> int:
    """Read the configuration from Consul and print every problem; return 1 if any error."""
    from ftpdup import consul_source

    try:
        client = consul_source.connect(host.consul_url, host.consul_token(), host.consul_timeout)
        snapshot = consul_source.load(client, host.key_prefix)
    except (consul_source.ConsulError, settings.SettingsError) as error:
        log.error("%s", error)
        return 2
    for problem in snapshot.config.problems:
        level = "warning" if problem.warning else "error"
        print(f"{level}: {problem}")
    for lane in snapshot.config.lanes:
        print(f"lane {lane.name}: {len(lane.subscribers)} subscribers")
    return 1 if snapshot.config.errors() else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
