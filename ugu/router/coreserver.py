"""What the corerouters' processes share (the fastrouter's,
ugu.router.fastserver, and the rawrouter's, ugu.router.rawserver), as
uWSGI's corerouter plugin is theirs: accepting, the sessions' relay and
timeout, the nodes, the subscription pools, cheap mode and the stats
server; imported once gevent has patched the process.

Each connection is a greenlet over the HTTP router's Channel; the nodes
are taken as the HTTP router takes them (ugu.router.backends: round
robin, a failed node left aside for the router's gracetime), and the
subscription pools are its own (ugu.router.subscriptions).  A router
names itself (`name`, `gateway`: "fastrouter", "uWSGI fastrouter"), says
which Session serves a connection, and how a key finds its node
(`connect`).
"""

import _socket
import os
import socket
import time

import gevent
import gevent.event

from ugu.log import log
from ugu.router.backends import Node, Nodes, log_connect_failed
from ugu.router.channel import READ, Channel
from ugu.router.server import STOP_SIGNALS
from ugu.router.subscriptions import (SubscribedNodes, SubscriptionServer,
                                      WatchedTable, _address)
from ugu.vassal.sockets import parse_address

# How long accepting pauses after an error such as EMFILE.
ACCEPT_PAUSE = 0.1
# An accept's wait for a client has no deadline.
_FOREVER = 1e9


class Key:
    """What the nodes' log lines take a request's key from (`key`)."""

    def __init__(self, key):
        self.key = key


class Corerouter:
    """What the connections of one corerouter process share."""

    name = gateway = None
    # The class serving one connection.
    session = None

    def __init__(self, settings, listeners, index, mesh=None):
        self.settings = settings
        self.mesh = mesh
        self.listeners = listeners
        self.index = index
        self.sessions = 0
        self.subscribed = [l for l in listeners
                           if l.sock.type == socket.SOCK_DGRAM]
        self.table = None
        self.nodes = None
        if self.subscribed:
            self.table = WatchedTable(
                settings.tolerance, gateway=self.gateway, algo=settings.algo,
                check_dirs=settings.credentials_check)
            from ugu.subscription import checker
            self.table.signs = checker(settings.sign_check, self.table.pid)
            self.table.changed = self.pools_changed
            self.nodes = SubscribedNodes(self.table, settings.timeout,
                                         settings.fallback_key,
                                         settings.dotsplit)
        elif settings.static:
            self.nodes = Nodes([parse_address(a, f"{self.name}-to")
                                for a in settings.static], settings.timeout)
            for node in self.nodes.nodes:
                node.first_backoff = node.max_backoff = node.backoff = \
                    settings.gracetime
        if self.nodes is not None:
            self.nodes.name, self.nodes.quiet = self.name, settings.quiet
        self.fallback = [parse_address(a, f"{self.name}-fallback")
                         for a in settings.fallback]

    def serve(self, ready=None):
        """Serve until a stop signal; `ready()` is called once all is
        set up."""
        stopping = gevent.event.Event()
        for signum in STOP_SIGNALS:
            gevent.signal_handler(signum, stopping.set)
        # Set while connections are accepted: always, but in cheap mode.
        self.accepting = gevent.event.Event()
        self.cheap = self.settings.cheap
        if not self.cheap:
            self.accepting.set()
        peers = self.mesh.peers(self.index) if self.mesh else ()
        resubscriber = None
        if self.settings.resubscribe:
            from ugu.router.resubscribe import Resubscriber
            own = [l.name for l in self.listeners
                   if l not in self.subscribed]
            resubscriber = Resubscriber(self.settings.resubscribe, own[0],
                                        self.settings.resubscribe_bind)
        servers = [SubscriptionServer(
            l.sock, self.table, peers, self.name, resubscriber,
            credentials=self.settings.use_credentials)
            for l in self.subscribed]
        if self.mesh:
            servers.append(SubscriptionServer(self.mesh.inbox(self.index),
                                              self.table, peer_inbox=True))
        for server in servers:
            server.start()
        greenlets = [gevent.spawn(self._accept, l)
                     for l in self.listeners if l not in self.subscribed]
        stats = self._stats_server()
        if ready is not None:
            ready()
        stopping.wait()
        gevent.killall(greenlets + ([stats] if stats else []), block=False)
        for server in servers:
            server.close()

    def pools_changed(self):
        """The router's -cheap: no connection is accepted while no node is
        subscribed, as uWSGI's takes its sockets out of its loop then."""
        if not self.settings.cheap:
            return
        pid = os.getpid()
        if self.table.pools and self.cheap:
            log(f"[{self.gateway} pid {pid}] leaving cheap mode...")
            self.cheap = False
            self.accepting.set()
        elif not self.table.pools and not self.cheap:
            log(f"[{self.gateway} pid {pid}] no more nodes available. Going "
                f"cheap...")
            self.cheap = True
            self.accepting.clear()

    def _accept(self, listener):
        sock = listener.sock
        sock.setblocking(False)
        waiter = Channel(sock)
        kind = (int(sock.family), int(sock.type))
        while True:
            self.accepting.wait()
            try:
                fd, peer = sock._accept()
            except (BlockingIOError, InterruptedError,
                    ConnectionAbortedError):
                waiter.wait(READ, _FOREVER)
                continue
            except OSError as e:
                log(f"[uwsgi-{self.name}] accept(): {e.strerror or e}")
                # EMFILE and the like: a pause rather than a busy loop.
                self._pause()
                continue
            conn = _socket.socket(*kind, 0, fd)
            conn.setblocking(False)
            gevent.spawn(self._session, Channel(conn), listener, peer)

    @staticmethod
    def _pause():
        gevent.sleep(ACCEPT_PAUSE)

    def _session(self, client, listener, peer):
        self.sessions += 1
        try:
            self.session(self, client, listener, peer).run()
        finally:
            self.sessions -= 1
            client.close()

    # The nodes.

    def connect(self, key):
        """(the node, a connected Backend) for a session of `key`, or
        None when no node takes it."""
        raise NotImplementedError

    def _node(self, address):
        if isinstance(address, str):
            address = _address(address)
        return Node(address)

    def _try(self, node, retries):
        try:
            return node, node.connect(self.settings.timeout)
        except OSError as e:
            if not self.settings.quiet:
                log_connect_failed(self.name, node, retries, e)
            return None

    # The stats server.

    def _stats_server(self):
        """The router's -stats, served by its first process, as in
        uWSGI; the greenlet that serves it, or None."""
        if not self.settings.stats or self.index != 1:
            return None
        from ugu.router import statsserver
        return statsserver.start(self.settings.stats, self.name,
                                 self.stats)

    def stats(self):
        """The stats document, with uWSGI's fields."""
        from ugu.router import statsserver
        doc = statsserver.head(self.name, self.sessions,
                               [l.name for l in self.listeners])
        if self.settings.static:
            doc["static_nodes"] = statsserver.static_nodes(self.nodes.nodes)
        if self.table is not None:
            doc["subscriptions"] = statsserver.subscriptions(self.table)
        doc["cheap"] = int(bool(self.settings.cheap
                                and not (self.table and self.table.pools)))
        return doc


class Session:
    """One client connection: its request passed to a node, the answer
    passed back; a router's Session says how (`_run`)."""

    # What ends a session without a word, as uWSGI's ends: a client or
    # node gone or silent (and, for a router that reads them, garbled).
    errors = (OSError, ValueError)

    def __init__(self, router, client, listener, peer):
        """listener: the router's that accepted it (its name: the address
        as the config writes it); peer: the client's address, as
        accept() gives it."""
        self.router = router
        self.listener = listener
        self.address = listener.name
        self.peer = peer
        self.settings = router.settings
        self.client = client
        # Either side's bytes keep both alive, as in uWSGI, whose every
        # event starts the session's timeout again.
        self.last = time.monotonic()

    def run(self):
        try:
            self._run()
        except self.errors:
            return

    def _run(self):
        raise NotImplementedError

    def _relay(self, backend):
        """The client's bytes to the node in a greenlet, the node's to the
        client here, until the node closes."""
        upstream = gevent.spawn(self._pipe_up, backend)
        try:
            while data := self._recv(backend):
                self.client.sendall(data, self.settings.timeout)
        finally:
            upstream.kill(block=False)

    def _pipe_up(self, backend):
        try:
            while data := self._recv(self.client):
                backend.sendall(data, self.settings.timeout)
            # The client is done sending; the node is told and still
            # answers (uWSGI's corerouters end the session there).
            backend.shutdown_write()
        except OSError:
            # The node's side ends the session: nothing to say here.
            return

    def _recv(self, channel):
        """The next bytes of `channel`; TimeoutError once neither side
        has sent anything for the router's -timeout seconds."""
        timeout = self.settings.timeout
        while True:
            left = self.last + timeout - time.monotonic()
            try:
                data = channel.recv(self.settings.read_size, left)
            except TimeoutError:
                if time.monotonic() - self.last >= timeout:
                    raise
                continue
            self.last = time.monotonic()
            return data
