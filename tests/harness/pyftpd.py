"""Run a pyftpdlib server that keeps file names as the client's bytes (a test subscriber).

pyftpdlib decodes commands as UTF-8 and by default replaces what is not;
with ``surrogateescape`` every byte of a name reaches the filesystem as sent,
as with vsftpd. Usage: pyftpd.py HOST PORT ROOT USER PASSWORD PASV_FIRST PASV_LAST [PERMISSIONS]
"""

from __future__ import annotations

import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main(host: str, port: str, root: str, user: str, password: str, first: str, last: str,
         perm: str = "elradfmwMT"):  # fmt: skip
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, root, perm=perm)
    handler = FTPHandler
    handler.authorizer = authorizer
    handler.unicode_errors = "surrogateescape"
    handler.passive_ports = range(int(first), int(last) + 1)
    server = FTPServer((host, int(port)), handler)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
