"""The sslrouter's process (ugu.router.sslrouter): each session ends the
client's TLS, and then is a rawrouter's session over it (ugu.router.
rawserver); imported once gevent has patched the process.
"""

import functools
import os
import ssl

from ugu.log import log, verbose
from ugu.options.errors import ConfigError
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

    def __init__(self, settings, listeners, index, mesh=None):
        super().__init__(settings, listeners, index, mesh)
        # The contexts subscriptions added, by name (bytes).
        self.contexts = {}
        if self.table is not None:
            self.table.sni = self.add_context
        for listener in listeners:
            if listener.tls is not None:
                listener.tls.sni_callback = functools.partial(
                    self._sni, listener.tls.sni_callback)

    def _sni(self, by_options, tls, name, context):
        """A client asked for `name`: the certificate the `sni` options
        give it (`by_options`, their callback, where set), else the
        context a subscription added for it, serves it, as uWSGI's first
        context for a name wins (the options' are added at start-up);
        with sslrouter-sni the name is kept on the connection for its
        key."""
        if self.settings.sni:
            tls.sni = name
        if by_options is not None:
            by_options(tls, name, context)
            if tls.context is not context:
                return
        key = sni_key(name) if name else None
        # subscription-dotsplit: then the name after each of its dots
        # (.example.com, .com), five names at most, as uWSGI's.
        for _ in range(5 if self.settings.dotsplit else 1):
            if not key:
                return
            found = self.contexts.get(key)
            if found is not None:
                tls.context = found
                return
            dot = key.find(b".", 1)
            key = key[dot:] if dot > 0 else None

    def add_context(self, name, announce):
        """The context of an announce's sni_crt and sni_key files for
        clients asking for `name`, as uWSGI's adds it; whether it loaded
        (the first one added for a name stays).  One with sni_ca is
        refused (said in the log)."""
        from ugu.sslcontext import server_context
        text = name.decode("latin-1")
        if announce.sni_ca:
            # Python switches a connection's context without its verify
            # mode: the CA would ask no client for a certificate.
            log(f'[uwsgi-ssl] no SSL context added for "{text}": ugu '
                f'cannot ask clients for a certificate by name (sni_ca); '
                f'announce without sni_ca, or give the sslrouter line '
                f'the CA')
            return False
        try:
            context = server_context(
                text, announce.sni_crt.decode("latin-1"),
                announce.sni_key.decode("latin-1"), "")
        except ConfigError as e:
            log(e.reason)
            log(f'[uwsgi-ssl] DANGER unable to initialize context for '
                f'"{text}"')
            return False
        self.contexts.setdefault(name, context)
        verbose(f"[uwsgi-sni for pid {os.getpid()}] added SSL context for "
                f"{text}")
        return True
