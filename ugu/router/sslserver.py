"""The sslrouter's process (ugu.router.sslrouter): each session ends the
client's TLS, and then is a rawrouter's session over it (ugu.router.
rawserver); imported once gevent has patched the process.
"""

import ssl

from ugu.router.rawserver import Rawrouter, RawSession
from ugu.router.sslrouter import GATEWAY, NAME, sni_key
from ugu.router.tls import TlsChannel


class SslSession(RawSession):
    """One TLS client: its handshake, then, once its first bytes have
    come, the node of its key."""

    errors = RawSession.errors + (ssl.SSLError,)

    def _run(self):
        tls = TlsChannel(self.client, self.listener.tls)
        # Closed with the session: its close_notify, then the socket.
        self.client = tls
        tls.handshake(self.settings.timeout)
        # As uWSGI's, the node is connected for the client's first bytes
        # only: a client that says nothing costs no node a connection.
        first = self._recv(tls)
        if not first:
            return
        found = self.router.connect(self._key(tls))
        if found is None:
            return
        backend = found[1]
        try:
            backend.sendall(first, self.settings.timeout)
            self._relay(backend)
        finally:
            backend.close()

    def _key(self, tls):
        """sslrouter-sni: the name the client asked for (see sni_key);
        else the router's address."""
        return sni_key(getattr(tls.tls, "sni", None)) or \
            self.address.encode("latin-1")


class Sslrouter(Rawrouter):
    name, gateway, session = NAME, GATEWAY, SslSession

    def __init__(self, settings, listeners, index):
        super().__init__(settings, listeners, index)
        if settings.sni:
            for listener in listeners:
                # The `sni` options' callback keeps the name too.
                if listener.tls is not None and \
                        listener.tls.sni_callback is None:
                    listener.tls.sni_callback = _keep_name


def _keep_name(tls, name, context):
    """The SNI name, kept on the connection for its key."""
    tls.sni = name
