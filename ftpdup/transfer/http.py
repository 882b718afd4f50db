"""HTTP transfer: PUT http://HOST:PORT/DIRECTORY/NAME over one keep-alive connection.

Built on the standard library's http.client: a carrier is one process per
subscriber, and requests with urllib3 would add about 11 MB to each. The body
is streamed from the file with a Content-Length, block by block. The name is
percent-encoded from the bytes the uploader sent.

A PUT cut short is not resumed (plain HTTP has no standard partial PUT): the
next attempt sends the whole file again.
"""

from __future__ import annotations

import base64
import http.client
import os
import urllib.parse
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
from ftpdup.transfer.pace import Pace

BLOCK_SIZE = 256 * 1024
CONNECT_TIMEOUT = 10.0
# Seconds to read an answer once it started (the wait for it is under the stall timeout).
ANSWER_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 64 * 1024
CONNECTION_ERRORS = (OSError, http.client.HTTPException)
# Answers about the file itself; every other failure is the subscriber's.
FILE_STATUSES = {400, 403, 405, 411, 412, 413, 414, 415, 422, 423}
PERMANENT_STATUSES = {414}


def target_path(target: Target, name: str) -> str:
    """Return the request path a file called name is PUT to for target."""
    segments = [part for part in target.directory.split("/") if part not in ("", ".")]
    quoted = [urllib.parse.quote(part.encode("utf-8"), safe="") for part in segments]
    quoted.append(urllib.parse.quote(wire_name(name), safe=""))
    return "/" + "/".join(quoted)


class HttpTransfer(Transfer):
    """Deliver files to one HTTP server with PUT; the body is streamed from the file."""

    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._headers = {"Content-Type": "application/octet-stream"}
        if target.user:
            token = f"{target.user}:{target.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")

    def send(self, source: BinaryIO, name: str, progress: Progress | None = None) -> int:
        """PUT source to the target under name; return its size. Any 2xx succeeds."""
        path = target_path(self.target, name)
        reused = self._connection is not None and self._connection.sock is not None
        try:
            status, reason = self._put(source, path, progress)
        except CONNECTION_ERRORS as error:
            self.close()
            if not reused:
                raise self._lost(error) from None
            # A kept-alive connection the server had closed: one fresh try.
            source.seek(0)
            try:
                status, reason = self._put(source, path, progress)
            except CONNECTION_ERRORS as error:
                self.close()
                raise self._lost(error) from None
        if status in FILE_STATUSES:
            raise TransferError(
                f"PUT {self._url(path)}: HTTP {status} {printable(reason)}",
                scope=FILE,
                permanent=status in PERMANENT_STATUSES,
            )
        if not 200 <= status < 300:
            raise TransferError(f"HTTP {self._where()}: {status} {printable(reason)}")
        return os.fstat(source.fileno()).st_size

    def _put(self, source: BinaryIO, path: str, progress: Progress | None) -> tuple[int, str]:
        """Send one PUT with the whole body; return (status, reason). Raise on a lost connection."""
        connection = self._open()
        size = os.fstat(source.fileno()).st_size
        connection.putrequest("PUT", path, skip_accept_encoding=True)
        for header, value in self._headers.items():
            connection.putheader(header, value)
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        pace = Pace(self.timeout, progress)
        assert connection.sock is not None
        try:
            while True:
                block = source.read(BLOCK_SIZE)
                if not block:
                    break
                pace.send_all(connection.sock, block)
            pace.wait_readable(connection.sock)
        except Interrupted:
            self.close()
            raise
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        if not response.isclosed():
            self.close()  # an answer too long to read through: start afresh
        return response.status, response.reason

    def _open(self) -> http.client.HTTPConnection:
        """Return the kept-alive connection, opening it if needed (or if the server closed it)."""
        if self._connection is None or self._connection.sock is None:
            self.close()
            connection = http.client.HTTPConnection(
                self.target.host, self.target.port, timeout=CONNECT_TIMEOUT
            )
            connection.connect()
            assert connection.sock is not None
            connection.sock.settimeout(ANSWER_TIMEOUT)
            self._connection = connection
        return self._connection

    def _lost(self, error: BaseException) -> TransferError:
        detail = str(error).strip() or type(error).__name__
        return TransferError(f"HTTP {self._where()}: {type(error).__name__}: {printable(detail)}")

    def _where(self) -> str:
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        return f"{host}:{self.target.port}"

    def _url(self, path: str) -> str:
        return f"http://{self._where()}{path}"

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
