"""The nodes of an HTTP router whose request's Host names its node:
`http-use-base = PREFIX` (the node is PREFIX followed by the Host) and
`http-use-pattern = PATTERN` (the node is PATTERN with %s replaced by
the Host), as the fastrouter's -use-base and -use-pattern map its key
(ugu.router.fastrouter.mapped_address, shared).

A Host with a "/" or a NUL, which would lead out of the folder the base
or pattern names, and a request without a Host, have no node: they are
answered 404 (uWSGI's router puts any Host there, so `../admin` reaches
another socket).  A node that refuses is answered 502, as every node
that refuses (README: differences).  Imported by a router process only
where one of those options is set.
"""

import _socket

from ugu.http.errors import BadGateway, NotFound
from ugu.router.backends import Node, Nodes, log_connect_failed
from ugu.router.fastrouter import mapped_address
from ugu.router.subscriptions import _address

# The nodes kept, by address, so that a Host's node is made once; the
# clients choose the Hosts, so the memo is emptied when full.
_MEMO_LIMIT = 1024


def _resolve_now(host, port):
    """Family and address of a mapped node, resolved in the loop (the
    fast path asks from a callback, where gevent's resolver cannot
    wait): once per node, as its memo keeps it."""
    try:
        host.encode("idna")
        info = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return _socket.AF_INET, (host, port)
    family, _, _, _, address = info[0]
    return family, address


class MappedNodes(Nodes):
    """Nodes' interface, for the fast path and the greenlet code; the
    node of each request is its Host's."""

    def __init__(self, settings):
        self.settings = settings
        self.connect_timeout = settings.connect_timeout
        self.quiet = settings.quiet
        self.nodes = []
        self._memo = {}

    def _node(self, head):
        host = head.headers.get(b"HTTP_HOST")
        address = mapped_address(self.settings, host) if host else None
        if address is None:
            raise NotFound("no node for the request's Host (http-use-base, "
                           "http-use-pattern)")
        node = self._memo.get(address)
        if node is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            node = Node(_address(address), resolve=_resolve_now)
            self._memo[address] = node
        return node

    def _first(self, head, tried, begin):
        node = self._node(head)
        if node in tried:
            raise BadGateway("the node of the request's Host refused it")
        try:
            return node, begin(node)
        except OSError as e:
            self._failed(node, len(tried), head.key, e)
        raise BadGateway("the node of the request's Host refused it")

    def connect(self, head, tried=(), most=None):
        node, backend = self._first(head, tried, lambda node: node.connect(
            self.connect_timeout))
        node.succeeded()
        return node, backend

    def failed(self, node, retries, key, error):
        """As uWSGI's, a mapped node that refuses is only logged: it is
        no static node to mark."""
        if not self.quiet:
            log_connect_failed("http", node, retries, error)
