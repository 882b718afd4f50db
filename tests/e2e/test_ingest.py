"""The lanes' FTP ingest with ftpdup's own vsftpd configuration: TLS, and what it refuses.

A lane takes regular files only: a folder or a permission change, which
ftpdup would never forward, is refused at once (the uploader sees an error)
instead of sitting in the lane.
"""

from __future__ import annotations

import ftplib
import io
import os
import ssl
import uuid
import warnings

import pytest

from ftpdup.specs import Target
from ftpdup.transfer.tls import FtpTlsSession, client_context
from tests.harness.ingest import VsftpdIngest

pytestmark = pytest.mark.e2e


@pytest.fixture
def tls_ingest(base_dir, certificates):
    server = VsftpdIngest(
        base_dir, tls=(certificates["server"], certificates["server_key"]), tls_required=True
    )
    yield server.start()
    server.stop()


def test_a_lane_uploads_over_explicit_tls_and_plain_ftp_is_refused(
    tls_ingest, base_dir, certificates
):
    home = os.path.join(base_dir, f"tls-lane-{uuid.uuid4().hex[:6]}")
    password = uuid.uuid4().hex
    user, _ = tls_ingest.add_lane_user(home, password)
    context = client_context(Target("ftp", "127.0.0.1", 21, ca_file=certificates["ca"]))
    session = FtpTlsSession(context=context, timeout=10)
    session.connect("127.0.0.1", tls_ingest.port)
    session.login(user, password)
    session.prot_p()
    session.storbinary("STOR secured.bin", io.BytesIO(b"over TLS"))
    assert session.sock.version() in ("TLSv1.2", "TLSv1.3")
    session.quit()
    with open(os.path.join(home, "secured.bin"), "rb") as handle:
        assert handle.read() == b"over TLS"

    plain = ftplib.FTP()
    plain.connect("127.0.0.1", tls_ingest.port, timeout=10)
    with pytest.raises(ftplib.error_perm, match="530"):
        plain.login(user, password)
    plain.close()

    # A client that offers only TLS 1.0 and 1.1 (its own security level lowered so
    # that it does offer them): the server refuses it.
    old = client_context(Target("ftp", "127.0.0.1", 21, ca_file=certificates["ca"]))
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    legacy = FtpTlsSession(context=old, timeout=10)
    legacy.connect("127.0.0.1", tls_ingest.port)
    with pytest.raises(ssl.SSLError) as refused:
        legacy.login(user, password)
    assert "alert" in str(refused.value).lower() or "protocol" in str(refused.value).lower()
    legacy.close()


def test_a_lane_refuses_folders_and_permission_changes(world):
    world.add_lane("files")
    ftp = world.ingest.login(world.lane_users["files"])
    for command in ("MKD sub", "XMKD sub", "SITE CHMOD 000 x", "RMD x"):
        with pytest.raises(ftplib.error_perm, match="550"):
            ftp.sendcmd(command)
    with pytest.raises(ftplib.error_perm, match=r"55[03]"):
        ftp.storbinary("STOR sub/inside.bin", io.BytesIO(b"x"))
    ftp.storbinary("STOR plain.bin", io.BytesIO(b"fine"))  # a file is taken
    ftp.rename("plain.bin", "renamed.bin")  # rename after upload stays allowed
    ftp.quit()
    assert sorted(os.listdir(world.layout.incoming("files"))) == ["renamed.bin"]


def test_a_second_upload_of_a_name_not_yet_taken_is_refused_not_truncating_the_first(world):
    """No sprinkler runs here: the first file stays in the lane. Its uploader may not
    write it again (it is read-only to its owner), so the second STOR and an APPE get
    553 and the file that got its 226 keeps its bytes; once it is gone, the name is free."""
    world.add_lane("again")
    ftp = world.ingest.login(world.lane_users["again"])
    ftp.storbinary("STOR obs.xml", io.BytesIO(b"first version, acknowledged"))
    for command in ("STOR obs.xml", "APPE obs.xml"):
        with pytest.raises(ftplib.error_perm, match="553"):
            ftp.storbinary(command, io.BytesIO(b"second"))
    path = os.path.join(world.layout.incoming("again"), "obs.xml")
    with open(path, "rb") as handle:
        assert handle.read() == b"first version, acknowledged"
    assert oct(os.stat(path).st_mode & 0o777) == "0o460"
    os.rename(path, path + ".taken")  # what the sprinkler does
    ftp.storbinary("STOR obs.xml", io.BytesIO(b"second"))
    ftp.quit()
    with open(path, "rb") as handle:
        assert handle.read() == b"second"
