"""FTP transfer: one logged-in passive binary session, reused; upload to NAME+tmp_suff, rename."""

from __future__ import annotations

import ftplib
import logging
import time
from typing import BinaryIO

from ftpdup.specs import Target
from ftpdup.transfer import Transfer, TransferError

log = logging.getLogger(__name__)

BLOCK_SIZE = 256 * 1024
IDLE_PROBE_SECONDS = 2.0
CONNECTION_ERRORS = (OSError, EOFError, ftplib.error_temp, ftplib.error_reply, ftplib.error_proto)


class FtpTransfer(Transfer):
    """Deliver files to one FTP server, keeping the session open between files."""

    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self._ftp: ftplib.FTP | None = None
        self._last_used = 0.0

    def send(self, source: BinaryIO, name: str) -> int:
        """Upload source as name + tmp_suff, then rename it to name. Return the bytes sent."""
        if any(char in name for char in "\r\n\0"):
            raise TransferError(f"file name {name!r} cannot be sent over FTP", permanent=True)
        reused = self._ftp is not None
        try:
            return self._upload(source, name)
        except CONNECTION_ERRORS as error:
            self.close()
            if not reused:
                raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None
        # The reused session died under us (e.g. the server closed it): one fresh try.
        source.seek(0)
        try:
            return self._upload(source, name)
        except CONNECTION_ERRORS as error:
            self.close()
            raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None

    def _upload(self, source: BinaryIO, name: str) -> int:
        ftp = self._session()
        temporary = name + self.target.tmp_suff
        try:
            ftp.storbinary(f"STOR {temporary}", source, blocksize=BLOCK_SIZE)
            size = source.tell()
            ftp.rename(temporary, name)
        except ftplib.error_perm as error:
            self._forget(temporary)
            raise TransferError(
                f"FTP {self._where()} refused {name!r}: {_describe(error)}"
            ) from None
        self._last_used = time.monotonic()
        return size

    def _session(self) -> ftplib.FTP:
        """Return a live session: probe an idle one with NOOP, reconnect if it is dead."""
        if self._ftp is not None and time.monotonic() - self._last_used > IDLE_PROBE_SECONDS:
            try:
                self._ftp.voidcmd("NOOP")
            except (*CONNECTION_ERRORS, ftplib.error_perm):
                log.info("FTP session to %s was closed, reconnecting", self._where())
                self.close()
        if self._ftp is None:
            self._ftp = self._connect()
        return self._ftp

    def _connect(self) -> ftplib.FTP:
        target = self.target
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(target.host, target.port)
            ftp.login(target.user or "anonymous", target.password or "")
            ftp.set_pasv(True)
            ftp.voidcmd("TYPE I")
            if target.directory not in ("", "."):
                ftp.cwd(target.directory)
        except ftplib.error_perm as error:
            _quietly_close(ftp)
            raise TransferError(f"FTP {self._where()}: {_describe(error)}") from None
        except BaseException:
            _quietly_close(ftp)
            raise
        self._last_used = time.monotonic()
        log.debug("FTP session to %s open", self._where())
        return ftp

    def _forget(self, temporary: str) -> None:
        """Remove a half-uploaded temporary file, if the server still has it."""
        try:
            if self._ftp is not None:
                self._ftp.delete(temporary)
        except (ftplib.Error, OSError, EOFError):
            pass

    def _where(self) -> str:
        return f"{self.target.host}:{self.target.port}"

    def close(self) -> None:
        if self._ftp is not None:
            _quietly_close(self._ftp, polite=True)
            self._ftp = None


def _quietly_close(ftp: ftplib.FTP, polite: bool = False) -> None:
    try:
        if polite:
            ftp.quit()
    except (ftplib.Error, OSError, EOFError):
        pass
    finally:
        ftp.close()


def _describe(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__
