"""Checks on delivered files: does a folder hold these files, byte for byte."""

from __future__ import annotations

import hashlib
import os
from typing import Callable

from tests.harness.procs import wait_for


def holds(folder: str, expected: dict[str, str]) -> bool:
    """Return True if folder has every file of expected (name -> sha256) with that content."""
    for name, digest in expected.items():
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                if hashlib.sha256(handle.read()).hexdigest() != digest:
                    return False
        except FileNotFoundError:
            return False
    return True


def wait_until_held(
    folder: str, files: dict[str, bytes], timeout: float, context: Callable[[], str]
) -> None:
    """Wait until folder holds files (name -> bytes); on timeout fail with context()."""
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    try:
        wait_for(lambda: holds(folder, expected), timeout, f"{len(files)} files in {folder}", 0.1)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{context()}") from None
