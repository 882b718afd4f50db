"""Faults under the real systemd: workers killed at random while files flow lose nothing.

FTPDUP_KILLS sets the number of SIGKILLs (default 50; bench/faults.py runs 500).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.harness.faults import kill_storm

pytestmark = pytest.mark.system


def test_a_kill_storm_loses_truncates_and_fails_nothing(world):
    kills = int(os.environ.get("FTPDUP_KILLS", "50"))
    seen = kill_storm(world, kills=kills)
    print("\nkill storm:", json.dumps(seen))
    # Kills that hit a running worker; one on a unit waiting to restart hits nothing.
    assert seen["kills_landed"] >= max(10, kills // 4) and seen["files"] > 50
    # Counted at the destinations: every file, byte-identical, at every subscriber.
    assert seen["delivered"] == seen["files"] * seen["subscribers"]
    assert seen["temporary_names_left"] == [] and seen["failed_units"] == []
    assert seen["dead_letters"] == 0
