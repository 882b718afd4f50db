"""Decode a Consul value written as JSON or as a Python-style literal, without eval."""

from __future__ import annotations

import ast
import json
from typing import Any


class ValueDecodeError(ValueError):
    """The value is neither JSON nor a Python literal dictionary."""


def decode_mapping(raw: bytes | None) -> dict[str, Any]:
    """Given the raw bytes of a Consul value, return the dictionary it holds.

    JSON is tried first, then a Python literal (``{'a': True}``) read with
    ``ast.literal_eval``, which evaluates no code. Raise ValueDecodeError naming
    the problem if the value is empty, not UTF-8, unparsable or not a dictionary
    with string keys.
    """
    if raw is None or not raw.strip():
        raise ValueDecodeError("value is empty")
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
    except ValueError as json_error:
        try:
            return ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueDecodeError(
                f"value is neither JSON nor a Python literal "
                f"(JSON: {json_error.msg} at line {json_error.lineno} column {json_error.colno})"
            ) from None
