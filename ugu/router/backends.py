"""The `http-to` nodes: round robin, with a back-off for failed nodes.

Each router process takes the nodes in turn, as uWSGI's does: the turn
passes to the node after the one that took the request, so that the live
nodes share the requests evenly while one is down.  A node that refuses a
connection is tried last for a while, a delay that doubles with each
consecutive failure; when every node is in back-off, they are all
tried anyway, so that one that came back serves at once (DEVIATIONS 2:
uWSGI refuses every request for 30 s after one failed connect).
"""

import _socket
import errno
import os
import socket
import time

from ugu import abstract
from ugu.http.errors import BadGateway
from ugu.log import log
from ugu.router.channel import WRITE, Channel

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
# A unix socket's full backlog (EAGAIN) is a refusal: waiting for it to
# become writable would spin, since such a socket always polls writable.
_STILL_CONNECTING = (errno.EINPROGRESS, errno.EALREADY)
# Errors of this process, not of the node: no reason for its back-off.
_LOCAL_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def use_fast_open():
    """tcp-fast-open-client: this process's connects to IPv4 nodes are
    sendto(MSG_FASTOPEN) with no data, as uWSGI's (a SYN asking for a
    TCP Fast Open cookie); a process without it pays nothing."""
    Node.start_connect = _start_connect_fast_open


def _start_connect_fast_open(node):
    if node._name is not None:
        node.family, node.address = _resolve(*node._name)
        node._name = None
    if node.family != socket.AF_INET:
        return _start_connect(node)
    backend = Backend(node.family)
    try:
        backend.sock.sendto(b"", socket.MSG_FASTOPEN, node.address)
    except OSError as e:
        if e.errno not in _STILL_CONNECTING:
            backend.close()
            raise OSError(e.errno, os.strerror(e.errno)) from None
    return backend


class Backend(Channel):
    """A connection to a node."""

    # Called once when the connection closes (a subscribed node counts
    # its connections open), or None.
    release = None

    def __init__(self, family):
        # Non-blocking from the start: no ioctl to make it so.
        super().__init__(_socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))
        self.tcp = family != socket.AF_UNIX

    def close(self):
        if self.release is not None:
            release, self.release = self.release, None
            release()
        super().close()

    def set_nodelay(self):
        """For a request that goes out in several writes (packet, body)."""
        if self.tcp:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def wait_connected(self, timeout):
        """Until the handshake Node.start_connect began is over: the
        socket turns writable, the outcome is in SO_ERROR.  Even when it
        is over already, as on loopback: a round of the loop before the
        packet goes out costs less than none, for sent at once it reaches
        the node before the worker has accepted, and router and worker
        spent a third more system time a request (measured before the
        same uWSGI worker)."""
        self.wait(WRITE, timeout)
        err = self.pending_error()
        if err:
            raise OSError(err, os.strerror(err))

    def pending_error(self):
        return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


class Node:
    """One backend address: ("host", port), a unix socket path or
    `@NAME`."""

    # A node whose requests go with modifiers of their own sets a method
    # that puts them in the packet (a subscribed one does).
    retag = None
    # The delay before a failed node is tried again, doubling up to the
    # most; a fastrouter's fastrouter-gracetime makes both that many
    # seconds, as uWSGI's static nodes wait.
    first_backoff = FIRST_BACKOFF
    max_backoff = MAX_BACKOFF

    def __init__(self, address):
        # (host, port) of a name still to resolve, at the next connect.
        self._name = None
        if isinstance(address, str):
            self.family = socket.AF_UNIX
            self.address = abstract.sockaddr(address)
            self.label = address
        else:
            host, port = address
            self.label = f"{host}:{port}"
            self._set_address(host, port)
        self.retry_at = 0.0
        self.backoff = self.first_backoff
        # For the stats server: the requests it took, and the time it
        # last failed.
        self.hits = 0
        self.failed_at = 0.0

    def _set_address(self, host, port):
        """A numeric host is taken as it is; a name is resolved now, and
        if that fails, again at each connect until it succeeds."""
        family = numeric_family(host)
        if family is not None:
            self.family, self.address = family, (host.strip("[]"), port)
            return
        try:
            self.family, self.address = _resolve(host, port)
        except OSError:
            self.family, self.address = socket.AF_INET, (host, port)
            self._name = (host, port)

    def connect(self, timeout):
        backend = self.start_connect()
        try:
            backend.set_nodelay()
            backend.wait_connected(timeout)
        except BaseException:
            backend.close()
            raise
        return backend

    def start_connect(self):
        """A Backend whose handshake has begun, without waiting for it;
        OSError when the node refuses at once.  Its packet goes out in
        one write: no TCP_NODELAY (set_nodelay) unless in parts."""
        if self._name is not None:
            self.family, self.address = _resolve(*self._name)
            self._name = None
        backend = Backend(self.family)
        err = backend.sock.connect_ex(self.address)
        if err and err not in _STILL_CONNECTING:
            backend.close()
            raise OSError(err, os.strerror(err))
        return backend

    def start_connect_in_loop(self):
        """start_connect() from a callback of the loop, which cannot wait
        for a name's lookup: NameToLookUp while the name is not looked
        up."""
        if self._name is not None:
            raise NameToLookUp()
        return self.start_connect()

    def failed(self, now):
        self.retry_at = now + self.backoff
        self.backoff = min(self.backoff * 2, self.max_backoff)
        self.failed_at = time.time()

    def succeeded(self):
        self.hits += 1
        self.retry_at = 0.0
        self.backoff = self.first_backoff


def _reason(error):
    """Why a connect failed, in uWSGI's words: the system's strerror,
    and `timeout` for a handshake that outlasted http-connect-timeout
    (the router's own deadline: no errno, unlike the kernel's
    ETIMEDOUT)."""
    if isinstance(error, TimeoutError) and error.errno is None:
        return "timeout"
    return error.strerror or str(error) or type(error).__name__


def raise_if_local(error):
    """A connect that failed for want of this process's resources (a
    descriptor, buffers) ends the request with a 502 at once: another
    node would fail alike, and the node is not to blame."""
    if error.errno in _LOCAL_ERRORS:
        raise BadGateway(f"no socket for a backend connection: "
                         f"{error.strerror}") from None


def log_connect_failed(name, node, retries, error):
    """uWSGI's line for a connect to `node` that failed, in the log of
    the router `name` (http, fastrouter...)."""
    log(f'[uwsgi-{name}] unable to connect() to node "{node.label}" '
        f'({retries} retries): {_reason(error)}')


def numeric_family(host):
    """The family of a numeric host (IPv4, or IPv6 in brackets or not),
    None for a name."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip("[]") if
                             family == socket.AF_INET6 else host)
        except (OSError, ValueError):
            continue
        return family
    return None


class NameToLookUp(Exception):
    """The node is a name not looked up yet, and the fast path, a
    callback of the loop, cannot wait for the lookup: the greenlet code
    takes the request, whose lookup holds up none of the router's other
    connections."""


def _resolve(host, port):
    """Family and address of a name, so that no request waits on a name
    lookup once it succeeded; gaierror when it does not.  In a greenlet
    through the patched socket module, gevent's resolver: the request
    waits, the router's other connections do not; in the loop itself (a
    router starting), by the system's lookup."""
    try:
        # A host idna cannot encode (a label over 63 bytes) is no name
        # either: checked here, as gevent's resolver thread would print
        # its UnicodeError's traceback.
        host.encode("idna")
    except UnicodeError:
        raise _unknown_name() from None
    from gevent import get_hub, getcurrent
    lookup = (_socket.getaddrinfo if getcurrent() is get_hub()
              else socket.getaddrinfo)
    info = lookup(host, port, 0, socket.SOCK_STREAM)
    family, _, _, _, address = info[0]
    return family, address


def _unknown_name():
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class Nodes:
    """The nodes of one router process, taken in turn.  `name`: the
    router's short name in the log lines (uwsgi-http, uwsgi-fastrouter);
    `quiet`: no line for a failed connect (fastrouter-quiet)."""

    name = "http"
    quiet = False

    def __init__(self, addresses, connect_timeout, node=Node):
        self.nodes = nodes = [node(a) for a in addresses]
        self.connect_timeout = connect_timeout
        # Where the turn goes once a node has taken a request.
        self._after = {node: (i + 1) % len(nodes)
                       for i, node in enumerate(nodes)}
        self._next = 0

    def connect(self, head, tried=(), most=None):
        """(node, a socket to it) for the next node that accepts, of those
        not `tried` yet, trying `most` of them at most; the request's key
        (`head.key`) names it in the log, as in uWSGI's lines."""
        attempts = 0

        def begin(node):
            nonlocal attempts
            if most is not None and attempts >= most:
                raise BadGateway(f"{most} nodes tried, none accepted")
            attempts += 1
            return node.connect(self.connect_timeout)
        node, backend = self._first(head, tried, begin)
        node.succeeded()
        return node, backend

    def start_connect(self, head):
        """(node, Backend), taking the nodes as connect() does but without
        waiting for the handshake: the fast path (ugu.router.fastpath)
        waits for it on the loop (NameToLookUp: see Node's
        start_connect_in_loop)."""
        return self._first(head, (), Node.start_connect_in_loop)

    def _first(self, head, tried, begin):
        """(node, begin(node)) for the first node, of those not `tried`,
        that begin() does not fail on; each failure is logged."""
        order = [node for node in self._order() if node not in tried]
        for retries, node in enumerate(order, start=len(tried)):
            try:
                begun = begin(node)
            except OSError as e:
                self._failed(node, retries, head.key, e)
                continue
            self._next = self._after[node]
            return node, begun
        raise BadGateway("no backend node accepted the connection")

    def _failed(self, node, retries, key, error):
        raise_if_local(error)
        self.failed(node, retries, key, error)

    def _order(self):
        nodes = self.nodes
        if len(nodes) < 2:
            return nodes
        start = self._next
        turn = nodes[start:] + nodes[:start]
        now = time.monotonic()
        return sorted(turn, key=lambda node: node.retry_at > now)

    def failed(self, node, retries, key, error):
        """Log a connect that failed (key: the request's, RequestVars.key)
        and put the node in back-off."""
        key = key.decode("latin-1")
        if not self.quiet:
            log_connect_failed(self.name, node, retries, error)
        log(f"[uwsgi-{self.name}] {key} => marking {node.label} as failed")
        node.failed(time.monotonic())


_start_connect = Node.start_connect
