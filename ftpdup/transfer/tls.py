"""TLS for the transfers: the context a target asks for, and FTPS that reuses its session.

Only imported by a carrier whose target uses TLS (the ssl module costs each
worker memory, see ftpdup.cli).
"""

from __future__ import annotations

import ftplib
import ssl

from ftpdup.specs import Target


def client_context(target: Target) -> ssl.SSLContext:
    """Return the TLS context for target: TLS 1.2 or later, the server's certificate
    checked against target.ca_file (else the system's CAs) unless target.tls_verify is
    False, and target's client certificate if it has one. Raise OSError or ssl.SSLError.
    """
    context = ssl.create_default_context(cafile=target.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not target.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if target.cert_file:
        context.load_cert_chain(target.cert_file, target.key_file or None)
    return context


class FtpTlsSession(ftplib.FTP_TLS):
    """Explicit FTPS (AUTH TLS, PROT P) whose data connections resume the control
    connection's TLS session.

    vsftpd refuses a data connection that starts a new TLS session
    (require_ssl_reuse=YES, its default); ftplib's FTP_TLS does not reuse it.
    """

    def ntransfercmd(self, cmd, rest=None):
        connection, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            connection = self.context.wrap_socket(
                connection, server_hostname=self.host, session=self.sock.session
            )
        return connection, size
