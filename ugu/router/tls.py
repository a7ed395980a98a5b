"""A client connection of an `https` listener (ugu.router.https): TLS
over the router's own Channel.

OpenSSL works on memory buffers (ssl.SSLObject) and the Channel carries
the bytes, so a TLS connection keeps the Channel's swept deadlines and
its interrupt (Exchange reads a backend's early answer that way) rather
than gevent's SSL socket, which keeps timeouts of its own.  TLS clients
are served by the greenlet code (ugu.router.connection) only: the fast
path reads and writes the socket itself.

As in uWSGI (without ssl-verbose), a handshake that fails, a plain HTTP
client among them, closes the connection without a word, and a closing
connection says close_notify first.  A client's verified certificate
(`https = ...,CA`) reaches the app as uWSGI passes it: DER in
HTTPS_CLIENT_CERTIFICATE, its subject in HTTPS_DN, and, with
`https-export-cert`, PEM in HTTPS_CC, between HTTPS and REMOTE_ADDR.
"""

import ssl

import gevent

from ugu.protocol import encode_vars
from ugu.router.connection import ClientConnection

# Bytes read from the socket at a time during the handshake.
HANDSHAKE_READ = 16384


class TlsChannel:
    """Channel's interface (recv, sendall, interrupt, shutdown_write,
    close) for a TLS server connection over `channel`."""

    def __init__(self, channel, context):
        self.channel = channel
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing,
                                    server_side=True)
        # Whether close_notify is still to be said.
        self._open = False

    def handshake(self, timeout):
        try:
            self._run(self.tls.do_handshake, timeout, HANDSHAKE_READ)
        except ssl.SSLError:
            # The alert OpenSSL has for the client, if any, as it would
            # write it on the socket itself.
            self._send_pending()
            raise
        self._open = True

    def recv(self, size, timeout):
        try:
            return self._run(self.tls.read, timeout, size, size)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            # close_notify, or a client that closed without it: either
            # way it is done sending.
            return b""

    def sendall(self, data, timeout):
        view = memoryview(data)
        while view:
            # OpenSSL may take a record at a time.
            view = view[self._run(self.tls.write, timeout, HANDSHAKE_READ,
                                  view):]

    def interrupt(self, error):
        self.channel.interrupt(error)

    def shutdown_write(self):
        self._close_notify()
        self.channel.shutdown_write()

    def close(self):
        if self._open:
            self._close_notify()
        self.channel.close()

    def _run(self, operation, timeout, read_size, *args):
        """operation(*args), feeding OpenSSL what it needs from the client
        and sending what it writes."""
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush(timeout)
                data = self.channel.recv(read_size, timeout)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._flush(timeout)
            return result

    def _flush(self, timeout):
        if self._outgoing.pending:
            self.channel.sendall(self._outgoing.read(), timeout)

    def _close_notify(self):
        """Say close_notify, without waiting for the client's: only if
        the socket takes it at once, as the connection is going."""
        self._open = False
        try:
            self.tls.unwrap()
        except ssl.SSLError:
            # SSLWantReadError: the client's close_notify is not awaited.
            pass
        self._send_pending()

    def _send_pending(self):
        """What OpenSSL wrote, if the socket takes it at once."""
        try:
            self.channel.sock.send(self._outgoing.read())
        except OSError:
            pass


def serve(channel, address, listener_vars, router):
    """Serve one TLS client from its handshake on, in a greenlet: the
    handshake, then each read of the first request head, within
    http-headers-timeout."""
    gevent.spawn(_serve, channel, address, listener_vars, router)


def _serve(channel, address, listener_vars, router):
    wait = router.settings.headers_timeout
    try:
        channel.handshake(wait)
    except OSError:
        # SSLError, a reset or a timeout: nothing to answer, as in uWSGI.
        channel.close()
        return
    client = ClientConnection(channel, address, listener_vars, router)
    # As uWSGI's router reads it: in the request's stream, inside TLS.
    if router.settings.proxy_protocol and not client.read_proxy_line(wait):
        client.close()
        return
    certificate = channel.tls.getpeercert(binary_form=True)
    if certificate:
        # The peer vars follow HTTPS, the last of the listener's.
        client.peer = _certificate_vars(
            channel.tls, certificate,
            router.settings.https_export_cert) + client.peer
    client.serve(wait)


def _certificate_vars(tls, certificate, export):
    pairs = [(b"HTTPS_CLIENT_CERTIFICATE", certificate),
             (b"HTTPS_DN", distinguished_name(tls.getpeercert()["subject"]))]
    if export:
        pairs.append((b"HTTPS_CC",
                      ssl.DER_cert_to_PEM_cert(certificate).encode()))
    return encode_vars(pairs)


def distinguished_name(subject):
    """A subject as ssl gives it, in OpenSSL's one-line form
    (`/C=IT/O=Acme/CN=name`, short names, bytes outside printable ASCII
    as \\xXX), as uWSGI's HTTPS_DN has it."""
    parts = []
    for rdn in subject:
        for name, value in rdn:
            parts += (b"/", _short_name(name).encode(), b"=",
                      _escaped(value))
    return b"".join(parts)


def _short_name(name):
    """OpenSSL's short name of an attribute ssl names by its long one
    (commonName: CN); the ssl module's own lookup, though private, is
    OpenSSL's table itself."""
    try:
        return ssl._ASN1Object.fromname(name).shortname or name
    except ValueError:
        # An attribute OpenSSL has no name for: ssl gives its OID.
        return name


def _escaped(value):
    return b"".join(bytes([c]) if 0x20 <= c <= 0x7e else b"\\x%02X" % c
                    for c in value.encode())
