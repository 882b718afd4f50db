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

Round trips are what count across a WAN, so commands do not wait for each
other where the protocol allows it. The STOR goes out with the data
connection already open and the first block sent (all of a small file)
before its go-ahead (150) is read; the rest goes after it. The rename sends
RNFR and RNTO in one write, and, when another file follows at once, the PASV
for that file too. A small file then takes three round trips (the data
connection's handshake, the STOR's answers, the rename's answers) instead of
five. A server that leaves a command sent early unanswered (it drops input
that arrives before its answer), or refuses data sent before its STOR was
answered, gets one command at a time from then on. FTPS and resumed uploads
wait for each answer (TLS on the data connection starts only after the
go-ahead).
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
        # Where the server listens for the next data connection, asked with the last rename.
        self._passive: tuple[str, int] | None = None

    def send(
        self, source: BinaryIO, name: str, progress: Progress | None = None, more: bool = False
    ) -> int:
        """Upload source as name + tmp_suff (resuming a cut upload), then rename it to name.

        With more, the next file's passive address is asked with the rename.
        Return the size of the file.
        """
        remote = wire_name(name)
        if any(byte in remote for byte in b"\r\n\0"):
            raise TransferError(
                f"file name {printable(name)!r} cannot be sent over FTP (CR or LF in it)",
                scope=FILE,
                permanent=True,
            )
        reused, pipelined = self._ftp is not None, self._pipeline
        try:
            return self._upload(source, remote, progress, more)
        except CONNECTION_ERRORS as error:
            self.close()
            if not reused and self._pipeline == pipelined:
                raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None
        # The reused session died under us (e.g. the server closed it), or this server
        # turned out to need one command at a time: one fresh try.
        source.seek(0)
        try:
            return self._upload(source, remote, progress, more)
        except CONNECTION_ERRORS as error:
            self.close()
            raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None

    def _upload(self, source: BinaryIO, remote: bytes, progress: Progress | None,
                more: bool) -> int:  # fmt: skip
        ftp = self._session()
        temporary = remote + self.target.tmp_suff.encode("utf-8")
        info = os.fstat(source.fileno())
        key = _file_key(remote, info)
        record = self._record_path(remote) if info.st_size >= RESUME_MIN_BYTES else ""
        try:
            offset = self._resume_offset(ftp, temporary, key, info.st_size, record)
            if offset < info.st_size or info.st_size == 0:
                self._remember(key, record)
                if offset == 0 and self._pipeline and not self.target.tls:
                    self._store_early(ftp, source, temporary, progress)
                else:
                    self._store(ftp, source, temporary, offset, progress)
            if offset or self.target.verify_size:
                self._check_size(ftp, temporary, info.st_size, record)
            if temporary != remote:  # tmp_suff "": written under its own name, no rename
                self._rename(ftp, temporary, remote, more)
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
        self._passive = None  # ftplib asks its own (the server drops the one asked before)
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

    def _store_early(self, ftp: ftplib.FTP, source: BinaryIO, temporary: bytes, progress) -> None:
        """STOR source into temporary without waiting for the go-ahead first: the data
        connection is open and the first block (all of a small file) is sent while the
        server reads the command. The rest goes after the go-ahead, block by block."""
        pace = Pace(self.timeout, progress)
        pace.start()
        connection = socket.create_connection(self._take_passive(ftp), ftp.timeout)
        with connection:
            ftp.sock.sendall(b"STOR %s\r\n" % temporary)
            connection.settimeout(0.0)
            failure = None
            try:
                block = pace.send_now(connection, source.read(BLOCK_SIZE))
                if not block:  # the first block went whole: anything after it goes later
                    block = source.read(BLOCK_SIZE)
            except OSError as error:  # e.g. reset: the server refused the STOR
                block, failure = b"", error
            if not block:
                connection.close()  # all sent: the server reads to the end
                self._go_ahead(ftp, failure)
                if progress is not None:
                    progress(pace.sent)
                # Its confirmation may be read already (ftplib buffers lines): no select.
                ftp.voidresp()
                return
            self._go_ahead(ftp)
            connection.settimeout(SLICE)
            while block:
                pace.send_all(connection, block)
                block = source.read(BLOCK_SIZE)
        pace.wait_readable(ftp.sock)  # the server may take a while to confirm a big file
        ftp.voidresp()

    def _take_passive(self, ftp: ftplib.FTP) -> tuple[str, int]:
        """Return where to open the data connection: the address asked with the last
        rename, or a new one (one round trip)."""
        address, self._passive = self._passive, None
        return address or ftp.makepasv()

    def _go_ahead(self, ftp: ftplib.FTP, failure: OSError | None = None) -> None:
        """Read the answer to an early STOR: return on a go-ahead (1xx), else raise the
        refusal; raise failure if the data connection broke although the server said yes."""
        try:
            answer = ftp.getresp()
            if answer.startswith("2"):  # some servers confirm a STOR before its 150
                answer = ftp.getresp()
        except ftplib.error_temp as error:
            if not str(error).startswith("425"):
                raise
            self._one_at_a_time("refused data sent before its STOR was answered")
            raise ftplib.error_reply(str(error)) from None
        if not answer.startswith("1"):
            raise ftplib.error_reply(answer)
        if failure is not None:
            raise failure

    def _rename(self, ftp: ftplib.FTP, temporary: bytes, remote: bytes, more: bool) -> None:
        """Rename temporary to remote: RNFR and RNTO in one write, with the PASV for the
        next file when more follow (plain sessions); one command at a time once this server
        has dropped a command sent early."""
        if not self._pipeline:
            ftp.rename(_wire(temporary), _wire(remote))
            return
        ask = more and not self.target.tls
        commands = b"RNFR %s\r\nRNTO %s\r\n" % (temporary, remote)
        if ask:
            commands += b"PASV\r\n" if ftp.af == socket.AF_INET else b"EPSV\r\n"
        try:
            ftp.sock.sendall(commands)
            answers = [ftp.getmultiline() for _ in range(3 if ask else 2)]
        except socket.timeout:
            self._one_at_a_time("left a command sent early unanswered")
            raise
        if ask:
            self._passive = _passive_address(ftp, answers[2])
        _expect(answers[0], "3")  # a refused RNFR: its RNTO was answered 503, and read
        _expect(answers[1], "2")

    def _one_at_a_time(self, why: str) -> None:
        """Stop sending commands early to this server, for good."""
        self._pipeline = False
        log.info("FTP %s %s: one command at a time from now on", self._where(), why)

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

    def temporary_of(self, name: str) -> str | None:
        suffix = self.target.tmp_suff
        return name[: -len(suffix)] if suffix and name.endswith(suffix) else None

    def holds_partial(self, name: str) -> bool:
        record = self._record_path(wire_name(name))
        remembered = _remembered(record) if record else None
        return bool(remembered) and remembered.get("name") == wire_name(name).hex()

    def _session(self) -> ftplib.FTP:
        """Return a live session: probe an idle one with NOOP, reconnect if it is dead."""
        if self._ftp is not None and time.monotonic() - self._last_used > IDLE_PROBE_SECONDS:
            try:
                self._ftp.voidcmd("NOOP")
            except (*CONNECTION_ERRORS, ftplib.Error):
                log.info("FTP session to %s was closed, reconnecting", self._where())
                self.close()
            self._passive = None  # a server may stop listening for it after a while
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
        self._passive = None
        if self._ftp is not None:
            _quietly_close(self._ftp, polite=True)
            self._ftp = None


def _remembered(record: str) -> dict | None:
    try:
        with open(record, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _expect(answer: str, first: str) -> None:
    """Return if answer's code starts with first; else raise the ftplib error it stands for."""
    if answer.startswith(first):
        return
    kind = {"4": ftplib.error_temp, "5": ftplib.error_perm}.get(answer[:1], ftplib.error_reply)
    raise kind(answer)


def _passive_address(ftp: ftplib.FTP, answer: str) -> tuple[str, int] | None:
    """Return the address in a PASV (227) or EPSV (229) answer, or None if it holds none.

    As ftplib does, the host is the control connection's peer, never the one announced.
    """
    try:
        if ftp.af == socket.AF_INET:
            return ftp.sock.getpeername()[0], ftplib.parse227(answer)[1]
        return ftplib.parse229(answer, ftp.sock.getpeername())
    except ftplib.Error:
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
