"""HTTP transfer: PUT http://HOST:PORT/DIRECTORY/NAME through one keep-alive session."""

from __future__ import annotations

import os
import urllib.parse
from typing import BinaryIO

import requests

from ftpdup.specs import Target
from ftpdup.transfer import Transfer, TransferError

CONNECT_TIMEOUT = 10.0


def target_url(target: Target, name: str) -> str:
    """Return the URL a file called name is PUT to for target."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    segments = [part for part in target.directory.split("/") if part not in ("", ".")]
    path = "/".join(urllib.parse.quote(part, safe="") for part in [*segments, name])
    return f"http://{host}:{target.port}/{path}"


class HttpTransfer(Transfer):
    """Deliver files to one HTTP server with PUT; the body is streamed from the file."""

    def __init__(self, target: Target, timeout: float = 60.0) -> None:
        self.target = target
        self.timeout = timeout
        self._session = self._new_session()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        if self.target.user:
            session.auth = (self.target.user, self.target.password or "")
        return session

    def send(self, source: BinaryIO, name: str) -> int:
        """PUT source to the target under name; return its size. Any 2xx succeeds."""
        url = target_url(self.target, name)
        size = os.fstat(source.fileno()).st_size
        try:
            response = self._session.put(
                url,
                data=source if size else b"",
                headers={"Content-Type": "application/octet-stream"},
                timeout=(CONNECT_TIMEOUT, self.timeout),
            )
            response.content  # noqa: B018 - read the answer so the connection is reused
        except requests.RequestException as error:
            self.close()
            raise TransferError(f"PUT {url}: {type(error).__name__}: {error}") from None
        if not 200 <= response.status_code < 300:
            raise TransferError(f"PUT {url}: HTTP {response.status_code} {response.reason}")
        return size

    def close(self) -> None:
        self._session.close()
        self._session = self._new_session()
