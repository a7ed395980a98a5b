"""The router's gevent loop: accept on every listener, one greenlet per
client connection, until a stop signal.

Imported only after gevent has patched the process (see process.run).
"""

import _socket
import signal
import socket

import gevent
import gevent.event
from gevent.server import StreamServer

from ugu.http.vars import ListenerVars
from ugu.router.backends import Nodes
from ugu.router.channel import Channel
from ugu.router.connection import ClientConnection

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


class Router:
    """What every connection of this router process shares."""

    def __init__(self, settings, backends):
        self.settings = settings
        self.nodes = Nodes(backends, settings.connect_timeout)


def serve(settings, listeners, backends):
    """Serve until SIGINT, SIGTERM or SIGQUIT."""
    router = Router(settings, backends)
    servers = [_server(sock, router) for sock in listeners]
    stopping = gevent.event.Event()
    for signum in STOP_SIGNALS:
        gevent.signal_handler(signum, stopping.set)
    for server in servers:
        server.start()
    stopping.wait()
    for server in servers:
        server.close()


def _server(sock, router):
    # The listener was made before gevent patched `socket`: rewrap its
    # descriptor so that accepting yields to the loop.
    listener = socket.socket(sock.family, sock.type, sock.proto,
                             fileno=sock.detach())
    unix = listener.family == socket.AF_UNIX
    port = "" if unix else listener.getsockname()[1]
    shared = ListenerVars(port, router.settings.extra_vars)

    def handle(client, address):
        # The C socket under gevent's, for a Channel (ugu.router.channel).
        sock = _socket.socket(client.family, client.type, client.proto,
                              client.detach())
        sock.setblocking(False)
        if not unix:
            # Responses may go out in several writes.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ClientConnection(Channel(sock), address, shared, router).serve()
    return StreamServer(listener, handle)
