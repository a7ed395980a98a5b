"""The router's gevent loop: accept on every listener, each client served
by the fast path (ugu.router.fastpath) and, for anything unusual, by a
greenlet of its own (ugu.router.connection), until a stop signal.  A
client of an `https` listener has a greenlet from the start
(ugu.router.tls), and so has one of an `http-to-https` listener, which
only redirects (ugu.router.redirect).

Imported only after gevent has patched the process (see process.run).
"""

import _socket
import signal
import socket

import gevent
import gevent.event
from gevent import get_hub

from ugu import staticanswer, subscription
from ugu.http.vars import ListenerVars
from ugu.log import log
from ugu.router.backends import Nodes
from ugu.router.channel import READ, Channel
from ugu.router.connection import ClientConnection
from ugu.router.fastpath import FastPath
from ugu.router.redirect import Redirect, answer
from ugu.router.subscriptions import (SubscribedNodes, SubscriptionServer,
                                      Table, WatchedTable)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
# Clients accepted per wake of the loop, so that a flood of connections
# does not starve the ones already open.
ACCEPT_BATCH = 64
# How long accepting pauses after an error such as EMFILE, which would
# otherwise wake the loop again at once.
ACCEPT_PAUSE = 0.1


class Router:
    """What every connection of this router process shares; with
    subscription servers, the nodes are those subscribed (`table`)."""

    def __init__(self, settings, backends, subscribed=False):
        self.settings = settings
        # Static files' answers repeated without the worker.
        self.answers = staticanswer.Answers()
        # The client connections open, counted for the stats server.
        self.counting = settings.stats is not None
        self.sessions = 0
        self.table = None
        # The cheap mode (ugu.router.cheap), with http-cheap.
        self.cheap = None
        if subscribed:
            # With http-cheap, the table tells the cheap mode its changes.
            table = WatchedTable if settings.cheap else Table
            self.table = table(settings.subscription_tolerance,
                               algo=settings.subscription_algo,
                               check_dirs=settings.credentials_check)
            self.table.signs = subscription.checker(settings.sign_check,
                                                    self.table.pid)
            self.nodes = SubscribedNodes(self.table,
                                         settings.connect_timeout,
                                         settings.fallback_key,
                                         settings.dotsplit)
        elif settings.pattern is not None or settings.base is not None:
            from ugu.router.mapped import MappedNodes
            self.nodes = MappedNodes(settings)
        else:
            self.nodes = Nodes(backends, settings.connect_timeout)
            if settings.gracetime:
                for node in self.nodes.nodes:
                    node.first_backoff = node.max_backoff = node.backoff = \
                        settings.gracetime
        self.nodes.quiet = settings.quiet
        if settings.fallback:
            from ugu.router.fallback import FallbackNodes
            from ugu.vassal.sockets import parse_address
            self.nodes = FallbackNodes(
                self.nodes, [parse_address(a, "http-fallback")
                             for a in settings.fallback],
                settings.connect_timeout)


def serve(settings, listeners, backends, index=1, mesh=None, names=(),
          ready=None):
    """Serve until SIGINT, SIGTERM or SIGQUIT, as router process `index`;
    `listeners`: (socket, its context) pairs, as _acceptor takes them,
    `names` their addresses as the config writes them; `mesh`: the links
    to the other processes (ugu.router.mesh), or None; `ready()` is
    called once all is set up."""
    subscribed = any(isinstance(context, subscription.Server)
                     for _, context in listeners)
    router = Router(settings, backends, subscribed)
    peers = mesh.peers(index) if mesh else ()
    resubscriber = None
    if settings.resubscribe:
        from ugu.router.resubscribe import Resubscriber
        own = [name for name, (_, context) in zip(names, listeners)
               if not isinstance(context, subscription.Server)]
        resubscriber = Resubscriber(settings.resubscribe, own[0])
    acceptors = [_acceptor(sock, router, context, peers, resubscriber)
                 for sock, context in listeners]
    if mesh:
        acceptors.append(SubscriptionServer(mesh.inbox(index), router.table,
                                            peer_inbox=True))
    stopping = gevent.event.Event()
    for signum in STOP_SIGNALS:
        gevent.signal_handler(signum, stopping.set)
    started = acceptors
    if settings.cheap and subscribed:
        from ugu.router.cheap import Cheap
        accepting = [a for a in acceptors if isinstance(a, Acceptor)]
        started = [a for a in acceptors if a not in accepting]
        router.cheap = Cheap(router.table, accepting)
    for acceptor in started:
        acceptor.start()
    if router.cheap is not None:
        router.cheap.start()
    stats = None
    if settings.stats and index == 1:
        # The first process's, as uWSGI's.
        stats = _stats_server(router, names)
    if ready is not None:
        ready()
    stopping.wait()
    if stats is not None:
        stats.kill(block=False)
    for acceptor in acceptors:
        acceptor.close()


def _stats_server(router, names):
    from ugu.router import statsserver

    def document():
        doc = statsserver.head("http", router.sessions, names)
        nodes = router.nodes
        if router.table is None and router.settings.static_nodes:
            doc["static_nodes"] = statsserver.static_nodes(nodes.nodes)
        if router.table is not None:
            doc["subscriptions"] = statsserver.subscriptions(router.table)
        doc["cheap"] = int(router.cheap is not None and router.cheap.cheap)
        return doc
    return statsserver.start(router.settings.stats, "http", document)


def _acceptor(sock, router, context, peers=(), resubscriber=None):
    """`context`: None for `http`, an ssl.SSLContext for `https`, a
    redirect.Redirect for `http-to-https`, a subscription.Server for
    `http-subscription-server` (read, not accepted on)."""
    if context is None:
        if router.settings.stud_prefix:
            from ugu.router.stud import StudAcceptor
            return StudAcceptor(sock, router)
        return Acceptor(sock, router)
    if isinstance(context, subscription.Server):
        return SubscriptionServer(
            sock, router.table, peers, resubscriber=resubscriber,
            credentials=router.settings.use_credentials)
    if isinstance(context, Redirect):
        return RedirectAcceptor(sock, router, context)
    return TlsAcceptor(sock, router, context)


class Acceptor:
    """Accepts the clients of one listener, from the loop."""

    https = False

    def __init__(self, sock, router):
        self.sock = sock
        sock.setblocking(False)
        self.router = router
        self.unix = sock.family == socket.AF_UNIX
        # Plain ints: the C socket takes them without enum conversions.
        self._kind = (int(sock.family), int(sock.type))
        port = "" if self.unix else sock.getsockname()[1]
        self.shared = ListenerVars(
            port, router.settings.extra_vars, https=self.https,
            host_as_server_name=router.settings.host_as_server_name)
        self._loop = get_hub().loop
        self._watcher = self._loop.io(sock.fileno(), READ)
        self._pause = None

    def start(self):
        self._watcher.start(self._accept)

    def stop(self):
        """Accept no more until `start` (cheap mode): the clients wait in
        the backlog."""
        if self._pause is not None:
            self._pause.close()
            self._pause = None
        self._watcher.stop()

    def close(self):
        if self._pause is not None:
            self._pause.close()
        self._watcher.close()
        self.sock.close()

    def _accept(self):
        for _ in range(ACCEPT_BATCH):
            try:
                fd, address = self.sock._accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as e:
                log(f"[uwsgi-http] accept(): {e.strerror or e}")
                self._watcher.stop()
                self._pause_accepting()
                return
            self._serve(fd, address)

    def _pause_accepting(self):
        # A new timer each time: libev leaves a one-shot timer that has
        # fired with nothing left of its delay, so starting it again
        # fires at once, and accept() failed in a tight loop (EMFILE:
        # all CPU, and the log filled at 100k lines a second).
        if self._pause is not None:
            self._pause.close()
        self._pause = self._loop.timer(ACCEPT_PAUSE)
        self._pause.start(self.start)

    def _serve(self, fd, address):
        sock = _socket.socket(*self._kind, 0, fd)
        sock.setblocking(False)
        if not self.unix:
            # Responses may go out in several writes.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = ClientConnection(Channel(sock), address, self.shared,
                                  self.router)
        if self.router.settings.proxy_protocol:
            gevent.spawn(_serve_proxied, client)
        else:
            FastPath(client).start()


def _serve_proxied(client):
    """A client whose PROXY line comes first: read in a greenlet, then the
    requests on the fast path as any other client's."""
    if client.read_proxy_line(client.settings.headers_timeout):
        FastPath(client).start()
    else:
        client.close()


class TlsAcceptor(Acceptor):
    """Accepts the clients of an `https` listener: each is served by a
    greenlet, from its TLS handshake on."""

    https = True

    def __init__(self, sock, router, context):
        super().__init__(sock, router)
        # Here, not at the top: ssl weighs some 5 MB in each process,
        # and a router without `https` has no use for it.
        from ugu.router import tls
        self.tls = tls
        self.context = context

    def _serve(self, fd, address):
        sock = _socket.socket(*self._kind, 0, fd)
        sock.setblocking(False)
        if not self.unix:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        channel = self.tls.TlsChannel(Channel(sock), self.context)
        self.tls.serve(channel, address, self.shared, self.router)


class RedirectAcceptor(Acceptor):
    """Accepts the clients of an `http-to-https` listener: each gets a
    greenlet that answers its request with the redirect, apart from the
    fast path and the backends."""

    def __init__(self, sock, router, redirect):
        super().__init__(sock, router)
        self.redirect = redirect

    def _serve(self, fd, address):
        settings = self.router.settings
        sock = socket.socket(*self._kind, 0, fd)
        gevent.spawn(answer, sock, self.redirect, settings.headers_timeout,
                     settings.read_size)
