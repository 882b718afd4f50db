"""Decode a Consul value written as JSON or as a Python-style literal, without eval."""

from __future__ import annotations

import ast
import io
import json
import tokenize
from typing import Any

from ftpdup.config.values import MAX_VALUE_BYTES


class ValueDecodeError(ValueError):
    """The value is neither JSON nor a Python literal dictionary."""


def decode_mapping(raw: bytes | None) -> dict[str, Any]:
    """Given the raw bytes of a Consul value, return the dictionary it holds.

    JSON is tried first, then a Python literal (``{'a': True}``) read with
    ``ast.literal_eval``, which evaluates no code. Raise ValueDecodeError naming
    the problem if the value is empty, too large, not UTF-8, unparsable, nested
    too deeply or not a dictionary with string keys.
    """
    return decode_with_warnings(raw)[0]


def decode_with_warnings(raw: bytes | None) -> tuple[dict[str, Any], list[str]]:
    """As decode_mapping; also return what is worth a warning in how the value is written
    (two strings side by side with no comma between them, which Python reads as one)."""
    if raw is None or not raw.strip():
        raise ValueDecodeError("value is empty")
    if len(raw) > MAX_VALUE_BYTES:
        raise ValueDecodeError(f"value is larger than {MAX_VALUE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueDecodeError(f"value is not UTF-8 text ({error.reason})") from None
    value = _parse(text)
    if not isinstance(value, dict):
        raise ValueDecodeError(f"value must be a dictionary, not {type(value).__name__}")
    bad_keys = [key for key in value if not isinstance(key, str)]
    if bad_keys:
        raise ValueDecodeError(f"dictionary keys must be strings, got {bad_keys[0]!r}")
    return value, _joined_strings(text)


def _parse(text: str) -> Any:
    """Return the object in text, read as JSON or else as a Python literal."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueDecodeError("value is nested too deeply") from None
    except ValueError as json_error:
        try:
            return ast.literal_eval(text.strip())
        except SyntaxError as error:
            raise ValueDecodeError(_both_problems(text, json_error, error)) from None
        except (ValueError, TypeError, MemoryError, RecursionError):
            raise ValueDecodeError(
                f"value is neither JSON nor a Python literal (JSON: {_json_problem(json_error)})"
            ) from None


def _both_problems(text: str, json_error: ValueError, error: SyntaxError) -> str:
    """Return why text is neither JSON nor a Python literal; the Python literal's reason
    first when the text is written like one (single quotes, True, False, None)."""
    column = (error.offset or 1) - (len(text) - len(text.lstrip()) if error.lineno == 1 else 0)
    python = f"{error.msg} at line {error.lineno or 1} column {max(1, column)}"
    if "'" in text or any(word in text for word in ("True", "False", "None")):
        return f"value is not a valid Python literal: {python} (nor JSON)"
    return f"value is neither JSON nor a Python literal (JSON: {_json_problem(json_error)})"


def _joined_strings(text: str) -> list[str]:
    """Return a warning for each pair of strings written side by side with no comma between
    them (Python joins them into one: ['*.t' '*.f'] is ['*.t*.f'])."""
    found = []
    try:
        tokens = [
            token
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
        ]
    except (tokenize.TokenError, SyntaxError):
        return []
    for first, second in zip(tokens, tokens[1:]):
        if first.type == tokenize.STRING and second.type == tokenize.STRING:
            line, column = second.start
            found.append(
                f"{first.string} and {second.string} have no comma between them (line "
                f"{line} column {column + 1}): they are read as one string"
            )
    return found


def _json_problem(error: ValueError) -> str:
    """Return what json.loads said, with the position when it gave one."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return str(error)
