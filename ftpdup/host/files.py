"""Write files atomically and only when their content changes."""

from __future__ import annotations

import contextlib
import os
import tempfile


def read_text(path: str) -> str | None:
    """Return the text of the file at path, or None if there is none."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path: str, content: str, mode: int = 0o644) -> bool:
    """Write content to path (temporary file + rename) unless it already holds it.

    Return True if the file was written. The directory is created if needed.
    """
    if read_text(path) == content:
        current = os.stat(path).st_mode & 0o7777
        if current != mode:
            os.chmod(path, mode)
        return False
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".ftpdup-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return True


def remove(path: str) -> bool:
    """Remove the file at path; return True if there was one."""
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False
