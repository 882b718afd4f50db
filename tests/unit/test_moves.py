"""Moves that never replace a file, and a file's data written out before a move."""

from __future__ import annotations

import os

import pytest

from ftpdup import moves


def test_a_move_never_replaces_a_file(tmp_path):
    (tmp_path / "a").write_bytes(b"new")
    (tmp_path / "b").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        moves.move(str(tmp_path / "a"), str(tmp_path / "b"))
    assert (tmp_path / "b").read_bytes() == b"old" and (tmp_path / "a").read_bytes() == b"new"
    moves.move(str(tmp_path / "a"), str(tmp_path / "c"))
    assert (tmp_path / "c").read_bytes() == b"new" and not (tmp_path / "a").exists()


def test_write_out_writes_with_the_range_call_or_else_fdatasync(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fdatasync", lambda descriptor: synced.append(descriptor))
    with open(tmp_path / "data", "wb") as handle:
        handle.write(os.urandom(1 << 16))
        handle.flush()
        moves.write_out(handle.fileno())
        assert synced == []  # sync_file_range did it (glibc has it)
        monkeypatch.setattr(moves, "_sync_file_range", None)
        moves.write_out(handle.fileno())
        assert synced == [handle.fileno()]


def test_write_out_refuses_what_is_not_a_file():
    read, write = os.pipe()
    try:
        with pytest.raises(OSError):
            moves.write_out(read)
    finally:
        os.close(read)
        os.close(write)
