"""`http-websockets`: a websocket's request goes to a node as any request
does, and from then on the router relays raw bytes both ways (the
node's 101 and its frames to the client, the client's frames to the
node), as uWSGI's router puts such a session in raw mode.  With
`http-raw-body` every request is such a session, as in uWSGI: whatever
the client sends past its head (a body of any length, or none said, an
Icecast source's stream) goes to the node as it comes, the node's reply
to the client as it comes, and the connection closes after.

A request asks for a websocket by uWSGI's test (`asks_for_websocket`).
The session ends when either side closes, fails, or stays silent past
http-timeout; the client connection then closes (no keepalive after a
websocket).  Only such requests come here: every other request, and
every plain one (an Upgrade header is never plain), keeps its path.
"""

import gevent

from ugu.http.errors import BadGateway, GatewayTimeout
from ugu.router.exchange import packet

_WEBSOCKET = b"websocket"
_UPGRADE = b"upgrade"


def asks_for_websocket(head):
    """uWSGI's test, on a request's RequestVars: a Sec-WebSocket-Key, and
    two of `Upgrade: websocket`, `Connection: Upgrade` and a
    Sec-WebSocket-Version (a browser that sends `Connection: keep-alive,
    Upgrade` has the other two)."""
    headers = head.headers
    if not headers.get(b"HTTP_SEC_WEBSOCKET_KEY"):
        return False
    signs = (headers.get(b"HTTP_UPGRADE", b"").lower() == _WEBSOCKET,
             headers.get(b"HTTP_CONNECTION", b"").lower() == _UPGRADE,
             b"HTTP_SEC_WEBSOCKET_VERSION" in headers)
    return sum(signs) >= 2


class Tunnel:
    """One websocket session between a client connection and a node."""

    def __init__(self, client, cycle, head):
        self.client = client
        self.cycle = cycle
        self.head = head
        self.timeout = client.settings.timeout
        self.read_size = client.settings.read_size

    def run(self):
        """Relay until either side is done.  A node that cannot be
        reached, or takes no request, gets the usual 502 or 504 (no
        response has started then)."""
        node, backend = self.client.router.nodes.connect(self.head)
        try:
            self._send_request(node, backend)
            pipes = [gevent.spawn(self._pipe, self.client.channel, backend),
                     gevent.spawn(self._pipe, backend, self.client.channel)]
            try:
                gevent.wait(pipes, count=1)
            finally:
                gevent.killall(pipes)
        finally:
            backend.close()

    def _send_request(self, node, backend):
        """The vars, then what the client sent past its head: its first
        frames, if it did not wait for the 101."""
        h11_state = getattr(self.cycle, "h11", None)
        if h11_state is not None:
            early = h11_state.trailing_data[0]
        else:
            # A plain request's (http-raw-body): what the client's
            # buffer holds past its head.
            early = bytes(self.client.buffer)
            self.client.buffer.clear()
        data = packet(self.client, self.head)
        if node.retag is not None:
            data = node.retag(data, self.client.settings)
        try:
            backend.sendall(data + early, self.timeout)
        except TimeoutError:
            raise GatewayTimeout("backend stopped reading the request") \
                from None
        except OSError as e:
            raise BadGateway(f"backend closed the connection: "
                             f"{e.strerror or e}") from None

    def _pipe(self, source, sink):
        """Copy `source` to `sink` until one closes, fails or idles past
        the timeout: the session is over then."""
        try:
            while data := source.recv(self.read_size, self.timeout):
                sink.sendall(data, self.timeout)
        except OSError:
            # Reset, gone or silent: each ends the session, as the close
            # does; neither side is owed a word.
            return
