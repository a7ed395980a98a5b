"""The HTTP router's fallback nodes (`http-fallback = ADDR`, repeatable):
a request that its node refuses, or that has no node (no subscribed
node for its Host, a Host out of http-use-base), goes to them in turn,
as uWSGI's router tries them once its node failed.

Imported by a router process only where the option is set.
"""

from ugu.http.errors import BadGateway, HttpError
from ugu.router.backends import Node, log_connect_failed, raise_if_local


class FallbackNodes:
    """Nodes' interface, for the fast path and the greenlet code: the
    `primary` nodes first, then the fallback ones."""

    def __init__(self, primary, addresses, connect_timeout):
        self.primary = primary
        self.fallback = [Node(address) for address in addresses]
        self.connect_timeout = connect_timeout
        self.quiet = primary.quiet

    @property
    def nodes(self):
        """The primary's static nodes, for the stats server."""
        return self.primary.nodes

    def start_connect(self, head):
        try:
            return self.primary.start_connect(head)
        except HttpError:
            return self._fallback(head, (), Node.start_connect_in_loop)

    def connect(self, head, tried=(), most=None):
        if not any(node in self.fallback for node in tried):
            try:
                return self.primary.connect(head, tried, most)
            except HttpError:
                pass
        node, backend = self._fallback(head, tried, lambda node: node.connect(
            self.connect_timeout))
        node.succeeded()
        return node, backend

    def _fallback(self, head, tried, begin):
        retries = len(tried)
        for node in self.fallback:
            if node in tried:
                continue
            try:
                return node, begin(node)
            except OSError as e:
                raise_if_local(e)
                self.failed(node, retries, head.key, e)
                retries += 1
        raise BadGateway("neither the request's node nor a fallback node "
                         "accepted the connection")

    def failed(self, node, retries, key, error):
        if node not in self.fallback:
            self.primary.failed(node, retries, key, error)
        elif not self.quiet:
            log_connect_failed("http", node, retries, error)
