"""The `http-to` nodes: round robin, with a back-off for failed nodes.

Each router process takes the nodes in turn, as uWSGI's does.  A node that
refuses a connection is tried last for a while, a delay that doubles with
each consecutive failure; when every node is in back-off, they are all
tried anyway, so that one that came back serves at once (DEVIATIONS 2:
uWSGI refuses every request for 30 s after one failed connect).
"""

import _socket
import errno
import os
import socket
import time

from gevent.monkey import get_original

from ugu.http.errors import BadGateway
from ugu.log import log
from ugu.router.channel import WRITE, Channel

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# The unpatched poll: a look that must not yield to the loop.
_poll = get_original("select", "poll")
_WRITABLE = get_original("select", "POLLOUT")
STILL_CONNECTING = (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY)


class Backend(Channel):
    """A connection to a node."""

    def __init__(self, family):
        # Non-blocking from the start: no ioctl to make it so.
        super().__init__(_socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))
        self.tcp = family != socket.AF_UNIX

    def set_nodelay(self):
        """For a request that goes out in several writes (packet, body)."""
        if self.tcp:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def start_connect(self, address, look=True):
        """0 once connected, an errno of STILL_CONNECTING while the
        handshake goes on (or may: without `look`), else the error."""
        # A loopback handshake is over by the time connect() returns: a
        # look at the socket saves a round of the loop on most requests.
        err = self.sock.connect_ex(address)
        if look and err == errno.EINPROGRESS and _writable_now(self.sock):
            err = self.pending_error()
        return err

    def connect(self, address, timeout):
        err = self.start_connect(address)
        deadline = time.monotonic() + timeout
        while err in STILL_CONNECTING:
            self.wait(WRITE, deadline - time.monotonic())
            err = self.pending_error() or self.sock.connect_ex(address)
            if err == errno.EISCONN:
                err = 0
        if err:
            raise OSError(err, os.strerror(err))

    def pending_error(self):
        return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def _writable_now(sock):
    poller = _poll()
    poller.register(sock.fileno(), _WRITABLE)
    return bool(poller.poll(0))


class Node:
    """One backend address: ("host", port) or a unix socket path."""

    def __init__(self, address):
        if isinstance(address, str):
            self.family, self.address = socket.AF_UNIX, address
            self.label = address
        else:
            host, port = address
            self.family, self.address = _resolve(host, port)
            self.label = f"{host}:{port}"
        self.retry_at = 0.0
        self.backoff = FIRST_BACKOFF

    def connect(self, timeout):
        backend = Backend(self.family)
        try:
            backend.set_nodelay()
            backend.connect(self.address, timeout)
        except BaseException:
            backend.close()
            raise
        return backend

    def start_connect(self, look):
        """(Backend, 0 or an errno of STILL_CONNECTING), without waiting;
        OSError when the node refuses at once.  The Backend's packet goes
        out in one write: no TCP_NODELAY (set_nodelay) unless it must be
        sent in parts."""
        backend = Backend(self.family)
        err = backend.start_connect(self.address, look)
        if err and err not in STILL_CONNECTING:
            backend.close()
            raise OSError(err, os.strerror(err))
        return backend, err

    def failed(self, now):
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF)

    def succeeded(self):
        self.retry_at = 0.0
        self.backoff = FIRST_BACKOFF


def _resolve(host, port):
    """Family and address, resolved once so that no request waits on a
    name lookup."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        # Left to connect(), which fails and logs it per request.
        return socket.AF_INET, (host, port)
    family, _, _, _, address = info[0]
    return family, address


class Nodes:
    """The nodes of one router process, taken in turn."""

    def __init__(self, addresses, connect_timeout):
        self.nodes = [Node(a) for a in addresses]
        self.connect_timeout = connect_timeout
        self._next = 0

    def connect(self, head):
        """A socket to the next node that accepts; the request's Host
        header (`head.host`) names it in the log, as in uWSGI's lines."""
        for retries, node in enumerate(self._order()):
            try:
                sock = node.connect(self.connect_timeout)
            except OSError as e:
                self.failed(node, retries, head.host, e)
                continue
            node.succeeded()
            return sock
        raise BadGateway("no backend node accepted the connection")

    def start_connect(self, head, look=True):
        """(node, Backend, whether it is known to be connected), taking
        the nodes as connect() does but without waiting for a handshake:
        the fast path (ugu.router.fastpath) waits for it on the loop.
        `look`: whether to check a handshake in progress at once."""
        for retries, node in enumerate(self._order()):
            try:
                backend, err = node.start_connect(look)
            except OSError as e:
                self.failed(node, retries, head.host, e)
                continue
            if not err:
                node.succeeded()
            return node, backend, not err
        raise BadGateway("no backend node accepted the connection")

    def _order(self):
        nodes = self.nodes
        if len(nodes) < 2:
            return nodes
        start = self._next
        self._next = (start + 1) % len(nodes)
        turn = nodes[start:] + nodes[:start]
        now = time.monotonic()
        return sorted(turn, key=lambda node: node.retry_at > now)

    def failed(self, node, retries, key, error):
        """Log a connect that failed (key: the request's Host header) and
        put the node in back-off."""
        key = key.decode("latin-1")
        reason = error.strerror or str(error) or type(error).__name__
        log(f'[uwsgi-http] unable to connect() to node "{node.label}" '
            f"({retries} retries): {reason}")
        log(f"[uwsgi-http] {key} => marking {node.label} as failed")
        node.failed(time.monotonic())
