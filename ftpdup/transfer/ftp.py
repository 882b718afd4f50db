"""FTP transfer: one logged-in passive binary session, reused; upload to NAME+tmp_suff, rename.

With ``tls``, the session is explicit FTPS (AUTH TLS, then PROT P: the data
connections are encrypted too, and resume the control connection's TLS
session, as vsftpd requires).

Names go on the wire as the bytes the uploader sent: the session speaks
latin-1, which maps every byte to one character and back, and text from the
configuration (user, password, directory) is sent as its UTF-8 bytes.

An upload cut short (a stop, a restart, a broken link) leaves the temporary
file at the server. The next attempt at the same file asks its size (``SIZE``)
and goes on from there (``REST`` + ``STOR``); the final size is checked before
the rename. A small record in the carrier's state directory (one per file of
1 MiB or more; a smaller one is simply sent again) ties the temporary file
to the local file it came from, so a temporary file of another file of the
same name is never resumed.

The rename sends RNFR and RNTO in one write and then reads both answers: a
small file takes four round trips instead of five, which is what counts
across a WAN. A server that leaves the early RNTO unanswered (it drops input
that arrives before its answer) gets one command at a time from then on.
"""

from __future__ import annotations

import contextlib
import ftplib
import json
import logging
import os
import socket
import time
import zlib
from typing import BinaryIO

from ftpdup.config.values import printable
from ftpdup.specs import Target
from ftpdup.transfer import (
    FILE,
    Interrupted,
    Progress,
    Transfer,
    TransferError,
    wire_name,
)
from ftpdup.transfer.pace import SLICE, Pace

log = logging.getLogger(__name__)

BLOCK_SIZE = 256 * 1024
IDLE_PROBE_SECONDS = 2.0
# Seconds an FTP command may wait for its answer (data moves under the stall timeout).
COMMAND_TIMEOUT = 10.0
CONNECTION_ERRORS = (OSError, EOFError, ftplib.error_reply, ftplib.error_proto)
# Files smaller than this start again from the beginning when cut.
RESUME_MIN_BYTES = 1 << 20
# Replies that mean "this command is not implemented" rather than "no".
NOT_IMPLEMENTED = ("500", "502", "504")


class FtpTransfer(Transfer):
    """Deliver files to one FTP server, keeping the session open between files."""

    def __init__(self, target: Target, timeout: float = 60.0, state_dir: str = "") -> None:
        self.target = target
        self.timeout = timeout
        self.state_dir = state_dir
        self._ftp: ftplib.FTP | None = None
        self._last_used = 0.0
        self._pipeline = True

    def send(self, source: BinaryIO, name: str, progress: Progress | None = None) -> int:
        """Upload source as name + tmp_suff (resuming a cut upload), then rename it to name.

        Return the size of the file.
        """
        remote = wire_name(name)
        if any(byte in remote for byte in b"\r\n\0"):
            raise TransferError(
                f"file name {printable(name)!r} cannot be sent over FTP (CR or LF in it)",
                scope=FILE,
                permanent=True,
            )
        reused = self._ftp is not None
        try:
            return self._upload(source, remote, progress)
        except CONNECTION_ERRORS as error:
            self.close()
            if not reused:
                raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None
        # The reused session died under us (e.g. the server closed it): one fresh try.
        source.seek(0)
        try:
            return self._upload(source, remote, progress)
        except CONNECTION_ERRORS as error:
            self.close()
            raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None

    def _upload(self, source: BinaryIO, remote: bytes, progress: Progress | None) -> int:
        ftp = self._session()
        temporary = remote + self.target.tmp_suff.encode("utf-8")
        info = os.fstat(source.fileno())
        key = _file_key(remote, info)
        record = self._record_path(remote) if info.st_size >= RESUME_MIN_BYTES else ""
        try:
            offset = self._resume_offset(ftp, temporary, key, info.st_size, record)
            if offset < info.st_size or info.st_size == 0:
                self._remember(key, record)
                self._store(ftp, source, temporary, offset, progress)
            if offset or self.target.verify_size:
                self._check_size(ftp, temporary, info.st_size, record)
            self._rename(ftp, temporary, remote)
        except ftplib.error_temp as error:
            if str(error).startswith("421"):  # the server is closing the session
                self.close()
                raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None
            raise self._refused(remote, error) from None
        except ftplib.error_perm as error:
            raise self._refused(remote, error) from None
        except Interrupted:
            self.close()  # the server still expects to answer the cut STOR
            raise
        self._forget(record)
        self._last_used = time.monotonic()
        return info.st_size

    def _store(self, ftp, source: BinaryIO, temporary: bytes, offset: int, progress) -> None:
        """STOR source into temporary from offset, block by block, calling progress."""
        source.seek(offset)
        pace = Pace(self.timeout, progress)
        pace.start(offset)
        connection = ftp.transfercmd(f"STOR {_wire(temporary)}", offset or None)
        with connection:
            connection.settimeout(SLICE)  # for good: every send on it is sliced
            while True:
                block = source.read(BLOCK_SIZE)
                if not block:
                    break
                pace.send_all(connection, block)
            if hasattr(connection, "unwrap"):  # end TLS on the data connection cleanly
                connection.unwrap()
        pace.wait_readable(ftp.sock)  # the server may take a while to confirm a big file
        ftp.voidresp()

    def _rename(self, ftp: ftplib.FTP, temporary: bytes, remote: bytes) -> None:
        """Rename temporary to remote: RNFR and RNTO in one write (one round trip less per
        file), or one after the other once this server has dropped a command sent early."""
        if not self._pipeline:
            ftp.rename(_wire(temporary), _wire(remote))
            return
        try:
            ftp.sock.sendall(b"RNFR %s\r\nRNTO %s\r\n" % (temporary, remote))
            try:
                answer = ftp.getresp()
            except ftplib.Error:
                with contextlib.suppress(ftplib.Error):
                    ftp.getresp()  # the answer to RNTO after a refused RNFR (503)
                raise
            if not answer.startswith("3"):
                raise ftplib.error_reply(answer)
            ftp.voidresp()
        except socket.timeout:
            self._pipeline = False
            log.info("FTP %s left RNTO unanswered: renaming one command at a time", self._where())
            raise

    def _record_path(self, remote: bytes) -> str:
        """Return where the resume record of a file named remote is kept ("": nowhere)."""
        if not self.state_dir:
            return ""
        return os.path.join(self.state_dir, f"ftp-resume-{zlib.crc32(remote):08x}.json")

    def _resume_offset(self, ftp, temporary: bytes, key: dict, size: int, record: str) -> int:
        """Return where to go on with the upload: the remote size of a temporary file of ours."""
        if not record or _remembered(record) != key:
            return 0
        remote_size = self._remote_size(ftp, temporary)
        if remote_size is None or not 0 < remote_size <= size:
            return 0
        log.info(
            "resuming %s at byte %d of %d", printable(os.fsdecode(temporary)), remote_size, size
        )
        return remote_size

    def _check_size(self, ftp, temporary: bytes, size: int, record: str) -> None:
        """Raise error_perm if the server holds a temporary file of another size than size."""
        remote_size = self._remote_size(ftp, temporary)
        if remote_size is not None and remote_size != size:
            self._forget(record)
            with contextlib.suppress(ftplib.Error):
                ftp.delete(_wire(temporary))
            raise ftplib.error_perm(f"550 size check: the server holds {remote_size} of {size}")

    def _remote_size(self, ftp, temporary: bytes) -> int | None:
        """Return the server's size of temporary, or None if it has none or cannot say."""
        try:
            answer = ftp.sendcmd(f"SIZE {_wire(temporary)}")
            return int(answer.split()[1])
        except (ftplib.error_perm, ftplib.error_temp, IndexError, ValueError):
            return None

    def _refused(self, remote: bytes, error: ftplib.Error) -> TransferError:
        return TransferError(
            f"FTP {self._where()} refused {printable(os.fsdecode(remote))!r}: {_describe(error)}",
            scope=FILE,
        )

    def _remember(self, key: dict, record: str) -> None:
        """Record which local file the temporary file at the server belongs to."""
        if not record:
            return
        try:
            with open(record + ".new", "w", encoding="utf-8") as handle:
                json.dump(key, handle)
            os.replace(record + ".new", record)
        except OSError as error:
            log.warning("cannot keep the resume record %s: %s", record, error)

    def _forget(self, record: str) -> None:
        if record:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(record)

    def _session(self) -> ftplib.FTP:
        """Return a live session: probe an idle one with NOOP, reconnect if it is dead."""
        if self._ftp is not None and time.monotonic() - self._last_used > IDLE_PROBE_SECONDS:
            try:
                self._ftp.voidcmd("NOOP")
            except (*CONNECTION_ERRORS, ftplib.Error):
                log.info("FTP session to %s was closed, reconnecting", self._where())
                self.close()
        if self._ftp is None:
            self._ftp = self._connect()
        return self._ftp

    def _connect(self) -> ftplib.FTP:
        """Open, log in and enter the directory; raise TransferError (subscriber) if refused."""
        target = self.target
        timeout = min(self.timeout, COMMAND_TIMEOUT)
        if target.tls:
            from ftpdup.transfer.tls import FtpTlsSession, client_context

            ftp: ftplib.FTP = FtpTlsSession(
                context=client_context(target), timeout=timeout, encoding="latin-1"
            )
        else:
            ftp = ftplib.FTP(timeout=timeout, encoding="latin-1")
        try:
            ftp.connect(target.host, target.port)
            ftp.login(_config_text(target.user or "anonymous"), _config_text(target.password or ""))
            if target.tls:
                ftp.prot_p()  # type: ignore[attr-defined]
            ftp.voidcmd("TYPE I")
            if target.directory not in ("", "."):
                ftp.cwd(_config_text(target.directory))
        except (ftplib.error_perm, ftplib.error_temp) as error:
            _quietly_close(ftp)
            raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None
        except BaseException:
            _quietly_close(ftp)
            raise
        self._last_used = time.monotonic()
        log.debug("FTP session to %s open", self._where())
        return ftp

    def _where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def close(self) -> None:
        if self._ftp is not None:
            _quietly_close(self._ftp, polite=True)
            self._ftp = None


def _remembered(record: str) -> dict | None:
    try:
        with open(record, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _file_key(remote: bytes, info: os.stat_result) -> dict:
    """Return what identifies one local file: its name, inode, size and modification time."""
    return {
        "name": remote.hex(),
        "device": info.st_dev,
        "inode": info.st_ino,
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
    }


def _wire(name: bytes) -> str:
    """Return the argument that puts exactly the bytes of name on the latin-1 session."""
    return name.decode("latin-1")


def _config_text(text: str) -> str:
    """Return configuration text as its UTF-8 bytes on the session; refuse line breaks."""
    if any(char in text for char in "\r\n\0"):
        raise TransferError("a configured FTP value holds CR, LF or NUL: refused")
    return _wire(text.encode("utf-8"))


def _quietly_close(ftp: ftplib.FTP, polite: bool = False) -> None:
    try:
        if polite:
            ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        pass
    finally:
        ftp.close()


def _describe(error: BaseException) -> str:
    """Return an error's text as a printable line (server replies are read as latin-1)."""
    text = str(error).strip() or type(error).__name__
    with contextlib.suppress(UnicodeError):
        text = text.encode("latin-1").decode("utf-8")
    return printable(text)
