"""Status files, the levels of the report, the metrics text and dead-letter replay."""

from __future__ import annotations

import json
import os
import time

from ftpdup import deadletter, metrics, report, status
from ftpdup.report import Report, Row
from ftpdup.settings import Settings

LATIN1 = os.fsdecode(b"caf\xe9.txt")


def test_a_status_file_is_written_when_it_changes_and_not_more_often(tmp_path):
    path = str(tmp_path / "status" / "carrier" / "l:s.json")
    writer = status.StatusFile(path)
    built = []

    def snapshot(count):
        return lambda: built.append(count) or {"backlog_files": count}

    writer.changed(1)
    assert writer.flush(snapshot(1)) is None and status.read(path)["backlog_files"] == 1
    writer.changed(2)
    due = writer.flush(snapshot(2))
    assert 0 < due <= status.WRITE_INTERVAL and status.read(path)["backlog_files"] == 1
    writer.flush(snapshot(2), force=True)
    assert status.read(path)["backlog_files"] == 2
    stamp = os.stat(path).st_mtime_ns
    writer.changed(2)  # nothing new: no status is built, nothing is written
    assert writer.flush(snapshot(2), force=True) is None and os.stat(path).st_mtime_ns == stamp
    assert built == [1, 2]
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"


def test_counters_survive_a_restart_and_keep_one_hour_of_minutes():
    counters = status.Counters(None)
    now = 1_000_000.0
    counters.delivered(100, 0.02, now - 3 * 3600)
    counters.delivered(200, 0.3, now)
    counters.delivered(300, 999.0, now)
    fields = counters.fields()
    assert (fields["delivered_files"], fields["delivered_bytes"]) == (3, 600)
    assert list(fields["minutes"]) == [str(int(now // 60))]  # older minutes dropped
    assert sum(fields["duration_buckets"]) == 3 and fields["duration_buckets"][-1] == 1
    again = status.Counters(json.loads(json.dumps(fields)))
    again.delivered(1, 0.001, now + 1)
    assert again.fields()["delivered_files"] == 4


def row(**fields) -> Row:
    defaults = {"lane": "l", "subscriber": "s", "instance": None, "kind": "carrier",
                "unit": "ftpdup-carrier@l:s.service", "state": "active"}  # fmt: skip
    return Row(**{**defaults, **fields})


def test_levels_follow_the_thresholds():
    host = Settings(status_warning_age=60, status_critical_age=600)
    cases = [
        (row(), {"wanted": True, "held": False}, "ok"),
        (row(oldest_age_s=61), {"wanted": True, "held": False}, "warning"),
        (row(oldest_age_s=601), {"wanted": True, "held": False}, "critical"),
        (row(state="failed"), {"wanted": True, "held": False}, "critical"),
        (row(retrying=True), {"wanted": True, "held": False}, "warning"),
        (row(dead_letters=2), {"wanted": True, "held": False}, "warning"),
        (row(), {"wanted": False, "held": False}, "warning"),
        (row(state="inactive"), {"wanted": True, "held": True}, "warning"),
    ]
    for case, where, level in cases:
        report._judge(case, host, time.time(), **where)
        assert case.level == level, (case, where)


def test_metrics_text_escapes_labels_and_accumulates_buckets():
    raw = {"duration_buckets": [1, 0, 2, 0, 0, 0, 0, 0, 0, 1], "duration_sum": 12.5}
    found = Report(
        rows=[row(lane='we"ird\\lane', backlog_files=3, delivered_files_total=4, raw=raw)],
        free_percent=42.0,
        consul_error="",
        level="ok",
        generated=0.0,
    )
    text = metrics.render(found)
    labels = 'lane="we\\"ird\\\\lane",subscriber="s",service_instance=""'
    assert f"ftpdup_backlog_files{{{labels}}} 3" in text
    assert f'ftpdup_transfer_duration_seconds_bucket{{{labels},le="0.1"}} 3' in text
    assert f'ftpdup_transfer_duration_seconds_bucket{{{labels},le="+Inf"}} 4' in text
    assert f"ftpdup_transfer_duration_seconds_count{{{labels}}} 4" in text
    assert "ftpdup_data_root_free_ratio 0.4200" in text
    assert text.count("# TYPE ftpdup_up gauge") == 1


def test_a_replayed_dead_letter_returns_under_its_own_name_and_its_age_starts_again(tmp_path):
    spool, pending, later, dead = (
        str(tmp_path / name) for name in ("spool", "pending", "later", "dead")
    )
    queue = (pending, later, spool)
    for folder in (spool, pending):
        os.makedirs(folder)
    for data in (b"first", b"second"):  # two dead letters of one (not UTF-8) name
        path = os.path.join(spool, LATIN1)
        with open(path, "wb") as handle:
            handle.write(data)
        os.utime(path, (1e9, 1e9))  # set aside long ago, for its age
        deadletter.bury(path, dead, "refused", lane="l", subscriber="s")
    letters = deadletter.entries(dead)
    assert [letter.name for letter in letters] == [LATIN1, LATIN1]
    assert sorted(os.listdir(os.path.join(dead, "files"))) == sorted([LATIN1, LATIN1 + ".1"])
    assert all(letter.reason == "refused" for letter in letters)

    assert deadletter.replay(letters[0], queue)
    assert os.listdir(spool) == [LATIN1] and os.listdir(pending) == []
    # Its age counts from the replay, so a carrier's max_age does not bury it at once.
    assert time.time() - os.stat(os.path.join(spool, LATIN1)).st_mtime < 60
    assert not deadletter.replay(letters[1], queue)  # that name is queued: it waits
    assert len(deadletter.entries(dead)) == 1 and os.listdir(pending) == []
    os.unlink(os.path.join(spool, LATIN1))  # delivered
    os.makedirs(os.path.join(later, "00000000000000000001"))
    with open(os.path.join(later, "00000000000000000001", LATIN1), "wb") as handle:
        handle.write(b"a newer version, queued behind a pending one")
    assert not deadletter.replay(deadletter.entries(dead)[0], queue)  # a version waits: so does it
    os.unlink(os.path.join(later, "00000000000000000001", LATIN1))
    assert deadletter.replay(deadletter.entries(dead)[0], queue)
    with open(os.path.join(spool, LATIN1), "rb") as handle:
        assert handle.read() == b"second"
    assert deadletter.entries(dead) == []
