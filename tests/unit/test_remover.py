"""The carrier's remover: delivered files deleted off the main loop, names kept apart meanwhile."""

from __future__ import annotations

import os
import select
import threading

from ftpdup.workers.remover import Remover


def wait_woken(remover: Remover) -> list[str]:
    """Wait for the remover's wake-up, then return what finished() says."""
    poll = select.poll()
    poll.register(remover.wake_read, select.POLLIN)
    assert poll.poll(5000), "the remover never woke the loop"
    os.read(remover.wake_read, 4096)
    return remover.finished()


def test_before_start_files_are_deleted_at_once(tmp_path):
    remover = Remover(str(tmp_path))
    (tmp_path / "a").write_bytes(b"x")
    remover.remove("a")
    assert os.listdir(tmp_path) == []
    assert remover.removing == set()
    remover.close(1)


def test_a_name_arriving_again_while_it_is_removed_is_handed_back_once_gone(tmp_path):
    remover = Remover(str(tmp_path))
    (tmp_path / "a").write_bytes(b"old")
    hold = threading.Lock()
    hold.acquire()
    unlink = remover._unlink
    remover._unlink = lambda name: (hold.acquire(), unlink(name))  # a journal that stalls
    remover.start()
    remover.remove("a")
    assert remover.seen("a")  # the delivered file: not to be queued again
    assert remover.finished() == []
    hold.release()
    assert wait_woken(remover) == ["a"]  # now a file named "a" would be a new one
    assert os.listdir(tmp_path) == []
    assert not remover.seen("a")
    remover.close(5)
    assert not remover.is_alive()


def test_close_finishes_the_removals_handed_over(tmp_path):
    remover = Remover(str(tmp_path))
    remover.start()
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"x")
        remover.remove(name)
    remover.close(5)
    assert os.listdir(tmp_path) == []
    assert not remover.is_alive()


def test_a_file_that_cannot_be_deleted_is_logged_and_left(tmp_path, caplog):
    remover = Remover(str(tmp_path))
    (tmp_path / "dir").mkdir()  # unlink() of a directory fails with EISDIR
    remover.remove("dir")
    assert os.listdir(tmp_path) == ["dir"]
    assert "cannot delete the delivered dir" in caplog.text
    remover.close(1)
