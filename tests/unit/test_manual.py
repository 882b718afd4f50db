"""The manual pages say every command, option, exit status and setting there is."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess

from ftpdup.cli import build_parser
from ftpdup.settings import Settings
from tests.harness.consul_agent import REPOSITORY

PAGES = {section: os.path.join(REPOSITORY, "docs", name)
         for section, name in ((1, "ftpdup.1"), (5, "ftpdup.conf.5"))}  # fmt: skip


def text(section: int) -> str:
    """Return a page's text with roff's escapes and fonts taken out."""
    with open(PAGES[section]) as handle:
        page = handle.read()
    return re.sub(r"\\f[BIRP]", "", page).replace("\\-", "-")


def commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """Yield (command words, its parser) for every subcommand, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from commands(sub, f"{prefix}{name} ")


def test_ftpdup_1_names_every_command_and_option_and_their_exit_statuses():
    page = text(1)
    found = list(commands(build_parser()))
    assert len(found) >= 15
    for words, parser in found:
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # "deadletter": its actions are the commands
        entry = re.search(rf"^\.(?:B|TQ\n\.B) {re.escape(words)}\b(.*?)(?=^\.TP|^\.SH)", page,
                          re.M | re.S)  # fmt: skip
        assert entry, words
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert flag in entry.group(0), (words, flag)
        if words not in ("sprinkler",):  # its statuses are said with the carrier's
            assert "Exit" in entry.group(0) or "exit" in entry.group(0), words
    for flag in ("--config", "--log-level", "--version"):
        assert flag in page


def test_ftpdup_conf_5_names_every_setting():
    page = text(5)
    for field in dataclasses.fields(Settings):
        key = field.name
        if key.startswith("vsftpd_") and key != "vsftpd_unit":
            section = page[page.index("SECTION [vsftpd]") :]
            assert re.search(rf"^\.B .*\b{key[len('vsftpd_') :]}\b", section, re.M), key
        else:
            assert re.search(rf"^\.B .*\b{key}\b", page, re.M), key


def test_the_pages_format_without_a_warning():
    for path in PAGES.values():
        done = subprocess.run(["groff", "-man", "-ww", "-z", path], capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", (path, done.stderr)


def test_the_shipped_settings_file_shows_every_key_with_its_default():
    with open(os.path.join(REPOSITORY, "packaging", "ftpdup.conf")) as handle:
        lines = handle.read().splitlines()
    shown = {}
    section = ""
    for line in lines:
        if line.startswith("["):
            section = line.strip("[]")
        elif line.startswith("#") and " =" in line and " " not in line.split(" =")[0]:
            key, _, value = line[1:].partition(" =")
            shown[key if section == "ftpdup" else f"{section}_{key}"] = value.strip()
    defaults = Settings()
    for field in dataclasses.fields(Settings):
        assert field.name in shown, field.name
        default = getattr(defaults, field.name)
        if isinstance(default, bool):
            assert shown[field.name] == ("yes" if default else "no"), field.name
        else:
            assert shown[field.name] == (f"{default:g}" if isinstance(default, float)
                                         else str(default)), field.name  # fmt: skip
