"""Only a lane's uploader puts files in a lane, against the installed vsftpd under systemd.

A lane user is chrooted in its lane and sees nothing else of the host; root,
system accounts and ftpdup's own account are refused, anonymous too, and an
account whose lane is gone is refused at once.
"""

from __future__ import annotations

import ftplib

import pytest

from tests.harness.procs import wait_for

pytestmark = pytest.mark.system


def session(container, user: str, password: str) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", container.ftp_port, timeout=20)
    ftp.login(user, password)
    return ftp


def test_a_lane_user_stays_in_its_lane(world, container):
    mine = world.add_lane("iso")
    other = world.add_lane("their")
    world.wait_active(world.unit("sprinkler", other))
    world.upload(other, {"private.t": b"theirs"})  # excluded: it stays in their lane
    settings = world.lanes[mine]
    ftp = session(container, settings["user"], settings["password"])
    try:
        assert ftp.pwd() == "/"
        ftp.cwd("..")
        assert ftp.pwd() == "/"  # the chroot is the lane
        assert ftp.nlst() == []
        for folder in ("/var/lib/ftpdup/spool", "/etc", f"/var/lib/ftpdup/incoming/{other}",
                       f"../{other}", "/proc"):  # fmt: skip
            with pytest.raises(ftplib.error_perm):
                ftp.cwd(folder)
        for path in ("/etc/passwd", f"../{other}/private.t",
                     f"/var/lib/ftpdup/incoming/{other}/private.t", "/etc/shadow"):  # fmt: skip
            with pytest.raises(ftplib.error_perm):
                ftp.retrbinary(f"RETR {path}", lambda _: None)
        for folder in ("/var/lib/ftpdup/staging", f"/var/lib/ftpdup/incoming/{other}"):
            assert listed(ftp, folder) == []  # nothing outside the lane shows
    finally:
        ftp.quit()


def listed(ftp: ftplib.FTP, folder: str) -> list[str]:
    """Return the names the server lists in folder (none when it refuses to list it)."""
    try:
        return ftp.nlst(folder)
    except ftplib.error_perm:
        return []


def test_only_lane_accounts_may_log_in(world, container):
    passwords = {"root": "root-pw-1", "daemon": "daemon-pw-2", "ftpdup": "ftpdup-pw-3"}
    container.run("chpasswd", input="".join(f"{u}:{p}\n" for u, p in passwords.items()))
    for user, password in passwords.items():
        with pytest.raises(ftplib.error_perm, match="530"):
            session(container, user, password)
    with pytest.raises(ftplib.error_perm, match="530"):
        session(container, "anonymous", "guest@example.org")
    with pytest.raises(ftplib.error_perm, match="530"):
        session(container, "ftp", "guest@example.org")

    lane = world.add_lane("leaving")
    settings = world.lanes[lane]
    world.wait_active(world.unit("sprinkler", lane))
    session(container, settings["user"], settings["password"]).quit()
    world.agent.delete(world.key(lane, ""), recurse=True)
    world.lanes.pop(lane)
    wait_for(
        lambda: container.run("getent", "passwd", settings["user"], check=False).returncode != 0,
        60,
        "the lane's account to be removed",
    )
    with pytest.raises(ftplib.error_perm, match="530"):
        session(container, settings["user"], settings["password"])
