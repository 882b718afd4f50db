"""Decode a Consul value written as JSON or as a Python-style literal, without eval."""

from __future__ import annotations

import ast
import json
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
    return value


def _parse(text: str) -> Any:
    """Return the object in text, read as JSON or else as a Python literal."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueDecodeError("value is nested too deeply") from None
    except ValueError as json_error:
        try:
            return ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueDecodeError(
                f"value is neither JSON nor a Python literal (JSON: {_json_problem(json_error)})"
            ) from None


def _json_problem(error: ValueError) -> str:
    """Return what json.loads said, with the position when it gave one."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return str(error)
