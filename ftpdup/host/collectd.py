"""collectd's filecount plugin on every lane and spool directory (rendered text, pure)."""

from __future__ import annotations

from collections.abc import Iterable

from ftpdup.config.values import has_control


def _quote(text: str) -> str:
    """Return text as one collectd string; raise ValueError if it holds a control character."""
    if has_control(text):
        raise ValueError(f"collectd configuration: refused {text!r} (control character)")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(
    directories: Iterable[tuple[str, str]], server: tuple[str, int], hostname: str = ""
) -> str:
    """Return a collectd config counting files in (instance name, path) directories.

    Values are sent to server (address, port) with the network plugin.
    """
    lines = ["# Managed by ftpdup: do not edit, it is rewritten by the manager."]
    if hostname:
        lines.append(f"Hostname {_quote(hostname)}")
    lines += ["LoadPlugin filecount", "<Plugin filecount>"]
    for instance, path in sorted(directories):
        lines += [
            f"  <Directory {_quote(path)}>",
            f"    Instance {_quote(instance)}",
            "    Recursive false",
            "  </Directory>",
        ]
    lines += [
        "</Plugin>",
        "LoadPlugin network",
        "<Plugin network>",
        f"  Server {_quote(server[0])} {_quote(str(server[1]))}",
        "</Plugin>",
    ]
    return "\n".join(lines) + "\n"
