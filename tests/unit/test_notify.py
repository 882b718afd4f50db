"""sd_notify messages as systemd receives them, on a real AF_UNIX datagram socket."""

from __future__ import annotations

import socket
import threading

from ftpdup import notify
from ftpdup.notify import Notifier


def listening(tmp_path, monkeypatch) -> tuple[socket.socket, Notifier]:
    path = str(tmp_path / "notify")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.1)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "4000000")
    return server, Notifier()


def received(server: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(server.recv(4096).decode())
        except socket.timeout:
            return messages


def test_ready_then_a_status_made_only_when_it_is_sent(tmp_path, monkeypatch):
    server, notifier = listening(tmp_path, monkeypatch)
    notifier.ready("starting")
    assert received(server) == ["READY=1\nSTATUS=starting"]
    calls = []

    def status() -> str:
        calls.append(1)
        return "3 queued"

    for _ in range(100):  # the state changes often: nothing is built until a send is due
        notifier.status(status)
    assert 0 < notifier.flush() <= notify.STATUS_INTERVAL
    assert calls == []
    monkeypatch.setattr(notify, "STATUS_INTERVAL", 0.0)
    assert notifier.flush() is None
    assert calls == [1]
    assert received(server) == ["STATUS=3 queued"]
    notifier.status(status)  # the same text again: nothing sent
    notifier.flush()
    assert received(server) == []


def test_watchdog_pings_every_half_period_and_bounds_the_loop_wait(tmp_path, monkeypatch):
    server, notifier = listening(tmp_path, monkeypatch)
    notifier.ping()
    notifier.ping()
    assert received(server) == ["WATCHDOG=1"]
    assert 0 < notifier.loop_timeout(None) <= 2.0  # half of WATCHDOG_USEC
    assert notifier.loop_timeout(0.5) == 0.5


def test_outside_systemd_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    notifier.ready("x")
    notifier.status("y")
    assert notifier.flush() is None
    assert notifier.loop_timeout(None) is None


def test_a_ready_systemd_does_not_take_yet_is_sent_again_until_it_does(tmp_path, monkeypatch):
    """sdnotify raises on a failed send (debug=True): the notifier tries again, on a new
    connection, until PID 1's socket takes READY=1."""
    path = str(tmp_path / "late")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = Notifier()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.settimeout(5)
    later = threading.Timer(0.4, server.bind, args=(path,))
    later.start()
    notifier.ready("started, café ✓")  # not latin-1: goes as its UTF-8 bytes
    later.join()
    assert server.recv(4096).decode() == "READY=1\nSTATUS=started, café ✓"
