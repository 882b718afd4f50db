"""Names that become directory names and systemd instance names, and their escaping."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 100
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
# What EL's useradd accepts (shadow-utils): letters of either case, digits, '_', '.', '-'.
_UNIX_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SYSTEMD_KEEP = re.compile(r"[A-Za-z0-9:_.]")
_SYSTEMD_HEX = re.compile(r"\\x([0-9a-fA-F]{2})")


def name_problem(name: str) -> str | None:
    """Given a lane or subscriber name, return why it is not allowed, or None if it is.

    Allowed: 1 to 100 letters, digits, '_', '.', '+' and '-', not starting with
    '.', '+' or '-'. This keeps names safe as one directory name (no '/', no
    '..', no control characters) and as part of a systemd instance name, where
    ':' separates lane, subscriber and service instance.
    """
    if not name:
        return "name is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"name is longer than {MAX_NAME_LENGTH} characters"
    if not _SAFE_NAME.fullmatch(name):
        return (
            f"name {name!r} is not allowed: use letters, digits, '_', '.', '+', '-' "
            "(not first), no '/', ':', spaces or control characters"
        )
    return None


def unix_user_problem(user: str) -> str | None:
    """Given a Unix account name, return why it is not allowed, or None if it is."""
    if not _UNIX_USER.fullmatch(user) or len(user) > 32:
        return (
            f"user name {user!r} is not a valid account name "
            "(letters, digits, '_', '.', '-', at most 32, not starting with a digit, '.' or '-')"
        )
    return None


def safe_component(text: str) -> str:
    """Given any text (e.g. a Consul service instance ID), return an allowed name for it.

    Text that already is an allowed name is returned unchanged; otherwise the
    characters that are not allowed become '_' and a short digest of the
    original keeps different texts apart.
    """
    if name_problem(text) is None:
        return text
    import hashlib  # here: workers never need it, and it costs each of them memory

    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    cleaned = re.sub(r"[^A-Za-z0-9_.+-]", "_", text).lstrip(".+-")[: MAX_NAME_LENGTH - 9]
    return f"{cleaned or 'x'}_{digest}"


def systemd_escape(text: str) -> str:
    """Return text escaped as ``systemd-escape`` does for a unit instance name."""
    out = []
    for index, char in enumerate(text):
        if char == "/":
            out.append("-")
        elif _SYSTEMD_KEEP.fullmatch(char) and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(out)


def systemd_unescape(text: str) -> str:
    """Return the original text of a systemd-escaped instance name (``%i`` -> ``%I``)."""
    data = bytearray()
    position = 0
    for match in _SYSTEMD_HEX.finditer(text):
        data += text[position : match.start()].replace("-", "/").encode("utf-8")
        data.append(int(match.group(1), 16))
        position = match.end()
    data += text[position:].replace("-", "/").encode("utf-8")
    return data.decode("utf-8", "surrogateescape")
