"""Fault injection inside the container: ftpdup's own code, made to die at a chosen step.

Run with the installed ftpdup's interpreter. A process killed at a precise
point cannot be had from outside (a signal lands anywhere): these wrappers
patch the one function before which the crash is wanted with ``os._exit``,
which ends the process at once, as SIGKILL does, and then run ftpdup's own
command line.

- ``crashes.py apply before-burial``: a manager pass that dies after it
  stopped the removed workers and removed their specs, before it buries any
  file;
- ``crashes.py apply after-files N``: one that dies after N files went to
  the dead letters;
- ``crashes.py carrier INSTANCE EVERY``: a carrier that dies after every
  EVERYth file its subscriber confirmed, before it deletes it (each file
  once: a marker in its state folder says it was crashed on already).
"""

from __future__ import annotations

import os
import sys

CRASHED = 99


def apply(point: str, count: str = "0") -> int:
    from ftpdup import cli
    from ftpdup.manager import apply as applying

    if point == "before-burial":
        applying.Applier._bury_left_behind = lambda self: os._exit(CRASHED)
    elif point == "after-files":
        real, buried = applying.bury, [0]

        def bury(*args, **kwargs):
            if buried[0] >= int(count):
                os._exit(CRASHED)
            buried[0] += 1
            return real(*args, **kwargs)

        applying.bury = bury
    else:
        raise SystemExit(f"unknown crash point {point!r}")
    return cli.main(["apply"])


def carrier(instance: str, every: str) -> int:
    from ftpdup import cli
    from ftpdup.workers import carrier as carrying

    real = carrying.Carrier._delivered

    def delivered(self, name, size, seconds):
        marker = os.path.join(self.spec.state, f"crashed-on-{name}")
        self.confirmed = getattr(self, "confirmed", 0) + 1
        if self.confirmed % int(every) == 0 and not os.path.exists(marker):
            with open(marker, "w"):
                pass
            os._exit(CRASHED)  # the server has the file; it is still in the spool
        return real(self, name, size, seconds)

    carrying.Carrier._delivered = delivered
    return cli.main(["carrier", instance])


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    sys.exit({"apply": apply, "carrier": carrier}[command](*arguments))
