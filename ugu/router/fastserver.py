"""The fastrouter's process (ugu.router.fastrouter): accepting, the
sessions, the nodes, the stats server; imported once gevent has patched
the process.

Each connection is a greenlet over the HTTP router's Channel; the nodes
are taken as the HTTP router takes them (ugu.router.backends: round
robin, a failed node left aside for fastrouter-gracetime), and the
subscription pools are its own (ugu.router.subscriptions).
"""

import _socket
import json
import os
import socket
import tempfile
import time

import gevent
import gevent.event

from ugu import UWSGI_VERSION, protocol
from ugu.http.errors import HttpError, NotFound
from ugu.log import log
from ugu.options.expand import djb33x
from ugu.router.backends import Node, Nodes, _reason
from ugu.router.channel import READ, Channel
from ugu.router.fastrouter import (GATEWAY, NAME, mapped_address,
                                   request_key)
from ugu.router.server import STOP_SIGNALS
from ugu.router.subscriptions import (_HASH_SLOTS, SubscribedNodes,
                                      SubscriptionServer, Table, _address)
from ugu.vassal.sockets import parse_address

# How long accepting pauses after an error such as EMFILE.
ACCEPT_PAUSE = 0.1
# An accept's wait for a client has no deadline.
_FOREVER = 1e9


class Key:
    """What the nodes' log lines take a request's key from (`key`)."""

    def __init__(self, key):
        self.key = key


class Fastrouter:
    """What the connections of one fastrouter process share."""

    def __init__(self, settings, listeners, index):
        self.settings = settings
        self.listeners = listeners
        self.index = index
        self.sessions = 0
        self.subscribed = [l for l in listeners
                           if l.sock.type == socket.SOCK_DGRAM]
        self.table = None
        self.nodes = None
        if self.subscribed:
            self.table = Pools(settings.tolerance, gateway=GATEWAY)
            self.table.changed = self.pools_changed
            self.nodes = SubscribedNodes(self.table, settings.timeout,
                                         settings.fallback_key)
        elif settings.static:
            self.nodes = Nodes([parse_address(a, "fastrouter-to")
                                for a in settings.static], settings.timeout)
            for node in self.nodes.nodes:
                node.first_backoff = node.max_backoff = node.backoff = \
                    settings.gracetime
        if self.nodes is not None:
            self.nodes.name, self.nodes.quiet = NAME, settings.quiet
        self.fallback = [parse_address(a, "fastrouter-fallback")
                         for a in settings.fallback]

    def serve(self):
        stopping = gevent.event.Event()
        for signum in STOP_SIGNALS:
            gevent.signal_handler(signum, stopping.set)
        # Set while connections are accepted: always, but in cheap mode.
        self.accepting = gevent.event.Event()
        self.cheap = self.settings.cheap
        if not self.cheap:
            self.accepting.set()
        servers = [SubscriptionServer(l.sock, self.table)
                   for l in self.subscribed]
        for server in servers:
            server.start()
        greenlets = [gevent.spawn(self._accept, l.sock)
                     for l in self.listeners if l not in self.subscribed]
        stats = self._stats_server()
        stopping.wait()
        gevent.killall(greenlets + ([stats] if stats else []), block=False)
        for server in servers:
            server.close()

    def pools_changed(self):
        """fastrouter-cheap: no connection is accepted while no node is
        subscribed, as uWSGI's takes its sockets out of its loop then."""
        if not self.settings.cheap:
            return
        pid = os.getpid()
        if self.table.pools and self.cheap:
            log(f"[{GATEWAY} pid {pid}] leaving cheap mode...")
            self.cheap = False
            self.accepting.set()
        elif not self.table.pools and not self.cheap:
            log(f"[{GATEWAY} pid {pid}] no more nodes available. Going "
                f"cheap...")
            self.cheap = True
            self.accepting.clear()

    def _accept(self, sock):
        sock.setblocking(False)
        waiter = Channel(sock)
        kind = (int(sock.family), int(sock.type))
        while True:
            self.accepting.wait()
            try:
                fd, _ = sock._accept()
            except (BlockingIOError, InterruptedError,
                    ConnectionAbortedError):
                waiter.wait(READ, _FOREVER)
                continue
            except OSError as e:
                log(f"[uwsgi-{NAME}] accept(): {e.strerror or e}")
                # EMFILE and the like: a pause rather than a busy loop.
                self._pause()
                continue
            conn = _socket.socket(*kind, 0, fd)
            conn.setblocking(False)
            gevent.spawn(self._session, Channel(conn))

    @staticmethod
    def _pause():
        gevent.sleep(ACCEPT_PAUSE)

    def _session(self, client):
        self.sessions += 1
        try:
            Session(self, client).run()
        finally:
            self.sessions -= 1
            client.close()

    # The nodes.

    def connect(self, key):
        """(the node, a connected Backend) for the request of `key`, or
        None when no node takes it: each failure is logged, then the
        fastrouter-fallback nodes are tried, in order."""
        head = Key(key)
        retries = 1
        if self.nodes is not None:
            try:
                return self.nodes.connect(head)
            except NotFound:
                if not self.settings.fallback_on_no_key:
                    return None
            except HttpError:
                found = self._fallback_pool(head)
                if found:
                    return found
        elif (address := mapped_address(self.settings, key)) is not None:
            found = self._try(self._node(address), 0)
            if found:
                return found
        for address in self.fallback:
            found = self._try(self._node(address), retries)
            if found:
                return found
            retries += 1
        return None

    def _fallback_pool(self, head):
        """When the nodes of a key all failed (and left their pool), the
        request goes to the fallback key's, as uWSGI's retry finds it."""
        if self.table is None or self.settings.fallback_key is None \
                or head.key == self.settings.fallback_key:
            return None
        try:
            return self.nodes.connect(head)
        except HttpError:
            return None

    def _node(self, address):
        if isinstance(address, str):
            address = _address(address)
        return Node(address)

    def _try(self, node, retries):
        try:
            return node, node.connect(self.settings.timeout)
        except OSError as e:
            if not self.settings.quiet:
                log(f'[uwsgi-{NAME}] unable to connect() to node '
                    f'"{node.label}" ({retries} retries): {_reason(e)}')
            return None

    # The stats server.

    def _stats_server(self):
        """fastrouter-stats, served by the first fastrouter, as in
        uWSGI; the greenlet that serves it, or None."""
        address = self.settings.stats
        if not address or self.index != 1:
            return None
        where = parse_address(address, "fastrouter-stats")
        family = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_UNIX and os.path.exists(where):
            os.unlink(where)
        try:
            sock.bind(where)
        except OSError as e:
            log(f"[uwsgi-{NAME}] unable to bind the stats server on "
                f"{address}: {e.strerror or e}")
            sock.close()
            return None
        sock.listen(100)
        log(f"*** {NAME} stats server enabled on {address} fd: "
            f"{sock.fileno()} ***")
        return gevent.spawn(self._serve_stats, sock)

    def _serve_stats(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                conn.sendall(json.dumps(self.stats(), indent="\t").encode())
            except OSError:
                pass
            finally:
                conn.close()

    def stats(self):
        """The stats document, with uWSGI's fields."""
        doc = {"version": UWSGI_VERSION, "pid": os.getpid(),
               "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
               "active_sessions": self.sessions,
               NAME: [l.name.removeprefix("dgram:")
                      for l in self.listeners]}
        if self.table is not None:
            doc["subscriptions"] = [_pool_stats(pool)
                                    for pool in self.table.pools.values()]
        doc["cheap"] = int(bool(self.settings.cheap
                                and not (self.table and self.table.pools)))
        return doc


class Pools(Table):
    """The subscription pools, telling the fastrouter of each change
    (for fastrouter-cheap)."""

    changed = None

    def announce(self, announce):
        super().announce(announce)
        self.changed()

    def remove(self, pool, node):
        super().remove(pool, node)
        self.changed()


def _pool_stats(pool):
    return {"key": pool.key.decode("latin-1"),
            "hash": djb33x(pool.key) % _HASH_SLOTS,
            "nodes": [{"name": node.name, "modifier1": node.modifiers[0],
                       "modifier2": node.modifiers[1],
                       "weight": node.weight, "wrr": node.wrr}
                      for node in pool.nodes]}


class Session:
    """One client connection: its request passed to a node, the answer
    passed back."""

    def __init__(self, router, client):
        self.router = router
        self.settings = router.settings
        self.client = client
        # Either side's bytes keep both alive, as in uWSGI, whose every
        # event starts the session's timeout again.
        self.last = time.monotonic()

    def run(self):
        try:
            self._run()
        except (OSError, protocol.ProtocolError, ValueError):
            # A client or node gone, silent or garbled: the session ends
            # without a word, as uWSGI's does.
            return

    def _run(self):
        data = self._read_packet()
        if data is None:
            return
        size = protocol.decode_header(data)[1]
        block, rest = data[4:4 + size], data[4 + size:]
        key, length = request_key(block)
        if not key:
            return
        body = None
        if self.settings.post_buffering and length:
            body = self._buffer_body(rest, length)
            rest = b""
        found = self.router.connect(key)
        if found is None:
            return
        node, backend = found
        try:
            modifiers = getattr(node, "modifiers", (0, 0))
            packet = protocol.HEADER.pack(modifiers[0], size, modifiers[1])
            backend.sendall(packet + block + rest, self.settings.timeout)
            if body is not None:
                self._send_body(backend, body)
            self._relay(backend)
        finally:
            backend.close()
            if body is not None:
                body.close()

    def _read_packet(self):
        """The uwsgi header, its vars and what came with them; None if
        the client leaves before."""
        data = b""
        need = protocol.HEADER_SIZE
        while len(data) < need:
            more = self._recv(self.client)
            if not more:
                return None
            data += more
            if need == protocol.HEADER_SIZE and len(data) >= need:
                need += protocol.decode_header(data)[1]
        return data

    def _buffer_body(self, rest, length):
        """fastrouter-post-buffering: the whole body, read before any
        node is connected (in memory up to the setting, else a file)."""
        body = tempfile.SpooledTemporaryFile(self.settings.post_buffering)
        body.write(rest[:length])
        left = length - len(rest)
        while left > 0:
            data = self._recv(self.client)
            if not data:
                body.close()
                raise ConnectionError("request body cut short")
            body.write(data[:left])
            left -= len(data)
        body.seek(0)
        return body

    def _send_body(self, backend, body):
        while data := body.read(65536):
            backend.sendall(data, self.settings.timeout)
            self.last = time.monotonic()

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
            # answers (uWSGI's fastrouter ends the session there).
            backend.shutdown_write()
        except OSError:
            # The node's side ends the session: nothing to say here.
            return

    def _recv(self, channel):
        """The next bytes of `channel`; TimeoutError once neither side
        has sent anything for fastrouter-timeout seconds."""
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
