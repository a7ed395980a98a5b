"""The HTTP router's stud prefix (`http-stud-prefix = IP`): a client
connecting from one of these IPv4 addresses (a TLS terminator such as
stud, run with --write-ip) sends five bytes before its first request,
the address family (2, AF_INET) and the IPv4 address of the client it
speaks for; its requests then reach the app with HTTPS on and that
address as REMOTE_ADDR.

Imported only by a router with http-stud-prefix: one without pays
nothing per connection.
"""

import _socket
import socket

import gevent

from ugu.http.errors import ClientGone
from ugu.http.vars import ListenerVars
from ugu.log import log
from ugu.protocol import encode_vars
from ugu.router.channel import Channel
from ugu.router.connection import ClientConnection
from ugu.router.fastpath import FastPath
from ugu.router.server import Acceptor, _serve_proxied

PREFIX = 5


class StudAcceptor(Acceptor):
    """Accepts the clients of an `http` listener; those from a stud
    address have a greenlet that reads their prefix first."""

    def __init__(self, sock, router):
        super().__init__(sock, router)
        settings = router.settings
        # uWSGI's router looks for a prefix from IPv4 clients only.
        self.studs = settings.stud_prefix \
            if sock.family == socket.AF_INET else frozenset()
        self.https_vars = ListenerVars(
            sock.getsockname()[1], settings.extra_vars, https=True,
            host_as_server_name=settings.host_as_server_name)

    def _serve(self, fd, address):
        if address[0] not in self.studs:
            return super()._serve(fd, address)
        sock = _socket.socket(*self._kind, 0, fd)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = ClientConnection(Channel(sock), address, self.https_vars,
                                  self.router)
        gevent.spawn(_serve_stud, client, address)


def _serve_stud(client, address):
    if not read_prefix(client, address, client.settings.headers_timeout):
        client.close()
    elif client.settings.proxy_protocol:
        _serve_proxied(client)
    else:
        FastPath(client).start()


def read_prefix(client, address, wait):
    """Read the prefix into the client's REMOTE_ADDR; False once the
    client left or stalled before its end, or sent another family's
    (`wait` seconds at each read, as for a request head)."""
    buffer = client.buffer
    try:
        while len(buffer) < PREFIX:
            data = client.recv(wait)
            if not data:
                return False
            buffer += data
    except ClientGone:
        return False
    if buffer[0] != socket.AF_INET:
        # uWSGI's wording, without a space after the bracket.
        log(f"[uwsgi-http key:  client_addr: {address[0]} client_port: "
            f"{address[1]}]invalid stud prefix for address family "
            f"{buffer[0]}")
        return False
    source = socket.inet_ntoa(bytes(buffer[1:PREFIX]))
    del buffer[:PREFIX]
    client.peer = encode_vars([(b"REMOTE_ADDR", source.encode()),
                               (b"REMOTE_PORT", str(address[1]).encode())])
    return True
