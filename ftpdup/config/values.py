"""What text may safely reach an account, a generated file, a unit or a protocol command.

Pure checks, shared by the configuration parser (the boundary: every Consul
value is checked once, with its key path) and by the adapters that use the
values (defence in depth: they refuse what the parser would have refused).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

MAX_VALUE_BYTES = 64 * 1024
MAX_SECRET_LENGTH = 256
MAX_USER_LENGTH = 256
MAX_DIRECTORY_LENGTH = 1024
MAX_SUFFIX_LENGTH = 64
MAX_PATTERN_LENGTH = 255
MAX_PATTERNS = 100
MAX_HOST_LENGTH = 253
MAX_UID = 2**31 - 1
MAX_LIFETIME_MINUTES = 10 * 366 * 24 * 60

_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SHOWN_LENGTH = 60


def has_control(text: str) -> bool:
    """Return True if text holds a control character (C0, DEL or C1: NUL, CR, LF, TAB...)."""
    return any(unicodedata.category(char) == "Cc" for char in text)


def encodable(text: str) -> bool:
    """Return True if text can be written as UTF-8 (JSON may carry lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_problem(text: str, max_length: int, secret: bool = False) -> str | None:
    """Given a value that ends up in a command, header or file, return why it is unsafe, or None.

    Refused: control characters (a newline would start a new record or
    command), text that is not valid Unicode, and text longer than
    max_length characters. A secret is never quoted in the answer.
    """
    if len(text) > max_length:
        return f"is longer than {max_length} characters"
    if not encodable(text):
        return "is not valid Unicode text"
    if has_control(text):
        shown = "" if secret else f" ({shown_value(text)})"
        return f"must not contain control characters such as newline, CR, NUL or TAB{shown}"
    return None


def host_problem(host: str) -> str | None:
    """Given a host name or IP address, return why it is not one, or None if it is."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(candidate)
        return None
    except ValueError:
        pass
    if len(host) > MAX_HOST_LENGTH or not _HOST_NAME.fullmatch(host) or ".." in host:
        return (
            f"{shown_value(host)} is not a host name or IP address "
            "(letters, digits, '-', '_', '.'; no spaces, '/', '@' or ':')"
        )
    return None


def service_name_problem(name: str) -> str | None:
    """Given a Consul service name, return why ftpdup will not look it up, or None."""
    if not _SERVICE_NAME.fullmatch(name):
        return (
            f"{shown_value(name)} is not a Consul service name "
            "(letters, digits, '-', '_', '.', at most 128, starting with a letter or digit)"
        )
    return None


def shown_value(value: object) -> str:
    """Return value as a short, printable representation for a message."""
    text = repr(value)
    if len(text) > _SHOWN_LENGTH:
        text = text[: _SHOWN_LENGTH - 5] + "...'" if isinstance(value, str) else text[:55] + "..."
    return text


def printable(text: str, limit: int = 0) -> str:
    """Return text with control and unprintable characters escaped (for one log line).

    A byte that was not UTF-8 in a file name (kept by Python as a surrogate)
    shows as ``\\xNN``, the byte itself. With a limit, longer text is cut
    there and ends with "...".
    """
    if limit and len(text) > limit:
        text = text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(_escaped(char) for char in text)


def _escaped(char: str) -> str:
    if char.isprintable():
        return char
    if "\udc80" <= char <= "\udcff":
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")
