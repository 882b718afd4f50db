"""Run a pyftpdlib server that keeps file names as the client's bytes (a test subscriber).

pyftpdlib decodes commands as UTF-8 and by default replaces what is not;
with ``surrogateescape`` every byte of a name reaches the filesystem as sent,
as with vsftpd. With HISTORY, each file received is recorded there (its name and
SHA-256, one line each, in order), so a test sees every version a name had.
Usage: pyftpd.py HOST PORT ROOT USER PASSWORD PASV_FIRST PASV_LAST [PERMISSIONS [HISTORY]]
"""

from __future__ import annotations

import hashlib
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


class RecordingHandler(FTPHandler):
    """Records each file received: its name and digest (see HISTORY)."""

    history = ""

    def on_file_received(self, file: str) -> None:
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        with open(self.history, "a", encoding="utf-8", errors="surrogateescape") as log:
            log.write(f"{os.path.basename(file)}\t{digest.hexdigest()}\n")


def main(host: str, port: str, root: str, user: str, password: str, first: str, last: str,
         perm: str = "elradfmwMT", history: str = ""):  # fmt: skip
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm=perm)
    handler = FTPHandler
    if history:
        handler = RecordingHandler
        handler.history = history
    handler.authorizer = authorizer
    handler.unicode_errors = "surrogateescape"
    handler.passive_ports = range(int(first), int(last) + 1)
    server = FTPServer((host, int(port)), handler)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
