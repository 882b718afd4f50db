"""HTTP transfer: PUT http://HOST:PORT/DIRECTORY/NAME over one keep-alive connection.

Built on the standard library's http.client: a carrier is one process per
subscriber, and requests with urllib3 would add about 11 MB to each. The body
is streamed from the file with a Content-Length, block by block. The name is
percent-encoded from the bytes the uploader sent. With ``tls`` it is HTTPS.

A plain PUT writes the final name while the body arrives. For WebDAV servers,
``atomic`` PUTs under NAME+tmp_suff and then MOVEs it to NAME with
``Overwrite: T``, so a reader never sees a partial file; ``mkcol`` creates a
missing directory (MKCOL, level by level) when the server answers 409.

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
from ftpdup.transfer import FILE, Interrupted, Progress, Transfer, TransferError, wire_name
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
CONFLICT = 409


def directory_segments(target: Target) -> list[str]:
    """Return the percent-encoded segments of target's directory."""
    segments = [part for part in target.directory.split("/") if part not in ("", ".")]
    return [urllib.parse.quote(part.encode("utf-8"), safe="") for part in segments]


def target_path(target: Target, name: str, suffix: str = "") -> str:
    """Return the request path a file called name (plus suffix) is PUT to for target."""
    quoted = urllib.parse.quote(wire_name(name) + suffix.encode("utf-8"), safe="")
    return "/" + "/".join([*directory_segments(target), quoted])


class HttpTransfer(Transfer):
    """Deliver files to one HTTP server with PUT; the body is streamed from the file."""

    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self._connection: http.client.HTTPConnection | None = None
        self._headers = {}
        if target.user:
            token = f"{target.user}:{target.password or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")

    def send(
        self, source: BinaryIO, name: str, progress: Progress | None = None, more: bool = False
    ) -> int:
        """PUT source to the target under name (or under a temporary name, then MOVE).

        Return its size. Any 2xx succeeds.
        """
        final = target_path(self.target, name)
        if not (self.target.atomic and self.target.tmp_suff):
            self._put(source, final, progress)
        else:
            temporary = target_path(self.target, name, self.target.tmp_suff)
            self._put(source, temporary, progress)
            moved = {"Destination": self._url(final), "Overwrite": "T"}
            self._check("MOVE", final, self._request("MOVE", temporary, moved))
        return os.fstat(source.fileno()).st_size

    def temporary_of(self, name: str) -> str | None:
        suffix = self.target.tmp_suff
        if self.target.atomic and suffix and name.endswith(suffix):
            return name[: -len(suffix)]
        return None

    def _put(self, source: BinaryIO, path: str, progress: Progress | None) -> None:
        """PUT the whole file to path; create missing directories first if allowed."""
        status = self._request("PUT", path, {}, source, progress)
        if status[0] == CONFLICT and self.target.mkcol:
            self._make_directories()
            source.seek(0)
            status = self._request("PUT", path, {}, source, progress)
        self._check("PUT", path, status)

    def _make_directories(self) -> None:
        """MKCOL each level of the target's directory (an existing one answers 405)."""
        path = ""
        for segment in directory_segments(self.target):
            path += f"/{segment}"
            status = self._request("MKCOL", path + "/", {})
            if not (200 <= status[0] < 300 or status[0] == 405):
                self._check("MKCOL", path + "/", status)

    def _check(self, method: str, path: str, status: tuple[int, str]) -> None:
        """Raise TransferError unless status is a success."""
        code, reason = status
        if 200 <= code < 300:
            return
        if code in FILE_STATUSES:
            raise TransferError(
                f"{method} {self._url(path)}: HTTP {code} {printable(reason)}",
                scope=FILE,
                permanent=code in PERMANENT_STATUSES,
            )
        raise TransferError(f"HTTP {self._where()}: {method} answered {code} {printable(reason)}")

    def _request(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        source: BinaryIO | None = None,
        progress: Progress | None = None,
    ) -> tuple[int, str]:
        """Send one request (with source as its body); return (status, reason).

        A kept-alive connection the server had closed is retried once on a new
        one. Raise TransferError if the connection fails, Interrupted if
        progress asks to stop.
        """
        reused = self._connection is not None and self._connection.sock is not None
        try:
            return self._exchange(method, path, headers, source, progress)
        except CONNECTION_ERRORS as error:
            self.close()
            if not reused:
                raise self._lost(error) from None
        if source is not None:
            source.seek(0)
        try:
            return self._exchange(method, path, headers, source, progress)
        except CONNECTION_ERRORS as error:
            self.close()
            raise self._lost(error) from None

    def _exchange(self, method, path, headers, source, progress) -> tuple[int, str]:
        connection = self._open()
        size = os.fstat(source.fileno()).st_size if source is not None else 0
        connection.putrequest(method, path, skip_accept_encoding=True)
        for header, value in {**self._headers, **headers}.items():
            connection.putheader(header, value)
        if source is not None:
            connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        pace = Pace(self.timeout, progress)
        assert connection.sock is not None
        try:
            while source is not None:
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
            connection: http.client.HTTPConnection
            if self.target.tls:
                from ftpdup.transfer.tls import client_context

                connection = http.client.HTTPSConnection(
                    self.target.host,
                    self.target.port,
                    timeout=CONNECT_TIMEOUT,
                    context=client_context(self.target),
                )
            else:
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
        return f"{'https' if self.target.tls else 'http'}://{self._where()}{path}"

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
