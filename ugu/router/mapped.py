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

from ugu.http.errors import BadGateway, NotFound
from ugu.router.backends import (NameToLookUp, Node, Nodes,
                                 log_connect_failed, numeric_family)
from ugu.router.fastrouter import mapped_address
from ugu.router.subscriptions import _address

# The nodes kept, by address, so that a Host's node is made once; the
# clients choose the Hosts, so the memo is emptied when full.
_MEMO_LIMIT = 1024


class MappedNodes(Nodes):
    """Nodes' interface, for the fast path and the greenlet code; the
    node of each request is its Host's."""

    def __init__(self, settings):
        self.settings = settings
        self.connect_timeout = settings.connect_timeout
        self.quiet = settings.quiet
        self.nodes = []
        self._memo = {}

    def _node(self, head, look_up=True):
        """The node of the request's Host; without `look_up` (from the
        loop), NameToLookUp for one that is a name not looked up yet."""
        host = head.headers.get(b"HTTP_HOST")
        address = mapped_address(self.settings, host) if host else None
        if address is None:
            raise NotFound("no node for the request's Host (http-use-base, "
                           "http-use-pattern)")
        node = self._memo.get(address)
        if node is None:
            target = _address(address)
            if not look_up and _is_name(target):
                raise NameToLookUp()
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            node = self._memo[address] = Node(target)
        return node

    def start_connect(self, head):
        return self._first(head, (), Node.start_connect_in_loop,
                           look_up=False)

    def _first(self, head, tried, begin, look_up=True):
        node = self._node(head, look_up)
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


def _is_name(address):
    """Whether a node's address is a host name, which takes a lookup (not
    a numeric host, nor a unix socket's path)."""
    return isinstance(address, tuple) and numeric_family(address[0]) is None
