"""What each import costs a worker: the memory it writes (Private_Dirty) after the import.

A worker is one process per subscriber, so every module it imports is paid
hundreds of times on a busy host. For each line below a new interpreter
imports the modules, then reads its own /proc/self/smaps_rollup; the cost is
the growth of its dirty private memory (heap, module objects) over a bare
interpreter. Clean pages of the interpreter and of shared libraries are
shared by all workers (their PSS tends to zero with hundreds of them), so
they are not counted; how much of them one process alone holds depends on
what else runs, which made USS an unstable measure. The last rows are what
the workers really import. Run: ``.venv/bin/python bench/imports.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# What a worker that does not speak TLS does before its imports (ftpdup.cli).
NO_SSL = "sys.modules['ssl'] = None"
CASES = [
    ("bare interpreter", ""),
    ("logging", "import logging"),
    ("json, hashlib, dataclasses", "import json, hashlib, dataclasses"),
    ("configparser", "import configparser"),
    ("ctypes", "import ctypes"),
    ("ftplib", "import ftplib"),
    ("http.client", "import http.client"),
    ("ssl", "import ssl"),
    ("sdnotify", "import sdnotify"),
    ("pyinotify (not used)", "import pyinotify"),
    ("requests (not used by workers)", "import requests"),
    ("consul (not used by workers)", "import consul"),
    ("sprinkler worker", f"{NO_SSL}; import ftpdup.cli, ftpdup.workers.sprinkler"),
    ("FTP carrier", f"{NO_SSL}; import ftpdup.cli, ftpdup.workers.carrier, ftpdup.transfer.ftp"),
    ("HTTP carrier", f"{NO_SSL}; import ftpdup.cli, ftpdup.workers.carrier, ftpdup.transfer.http"),
    ("HTTP carrier if it imported ssl", "import ftpdup.cli, ftpdup.transfer.http"),
]
MEASURE = """
import sys
{imports}
fields = {{}}
with open("/proc/self/smaps_rollup") as handle:
    for line in handle:
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[key] = int(value.split()[0])
print(fields["Private_Dirty"], fields["Rss"])
"""


def private_kib(imports: str) -> tuple[int, int] | None:
    """Return (dirty private, RSS) in KiB of an interpreter that ran imports, or None."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE.format(imports=imports)],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    if done.returncode != 0:
        return None
    uss, rss = done.stdout.split()
    return int(uss), int(rss)


def main() -> list[dict]:
    rows = []
    base = None
    for label, imports in CASES:
        measured = min(
            (private_kib(imports) for _ in range(3)), key=lambda m: m[0] if m else 1 << 40
        )
        if measured is None:
            rows.append({"import": label, "dirty_kib": None, "added_kib": None})
            continue
        base = measured[0] if base is None else base
        rows.append({"import": label, "dirty_kib": measured[0], "added_kib": measured[0] - base})
    return rows


if __name__ == "__main__":
    results = main()
    version = sys.version.split()[0]
    print(f"{'import':40} {'dirty MiB':>9} {'added MiB':>10}   (Python {version})")
    for row in results:
        if row["dirty_kib"] is None:
            print(f"{row['import']:40} {'not installed':>20}")
            continue
        print(f"{row['import']:40} {row['dirty_kib'] / 1024:9.1f} {row['added_kib'] / 1024:10.1f}")
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "imports.json"), "w") as handle:
        json.dump(results, handle, indent=1)
