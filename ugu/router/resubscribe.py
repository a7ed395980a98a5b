"""A router's resubscription (`http-resubscribe = SERVER`,
`fastrouter-resubscribe`, `fastrouter-resubscribe-bind`): each announce
its subscription server hears goes on to the servers named, for the
router's own address (its first socket), so that a router in front of
this one sends it the requests of those keys, as uWSGI's routers chain.

Imported by a router process only where the option is set.
"""

import socket

from ugu import subscription
from ugu.log import log
from ugu.subscription import Announce
from ugu.vassal.sockets import parse_address


class Resubscriber:
    def __init__(self, servers, address, bind=None, weight=1):
        """`servers`: the subscription servers' addresses; `address`: the
        router's, as the announces give it; `bind`: the UDP address they
        are sent from (else any)."""
        self.servers = [(server, parse_address(server, "resubscribe"))
                        for server in servers]
        self.address = address.encode()
        self.weight = weight
        self._sockets = {}
        self.bind = bind

    def send(self, announce):
        data = subscription.encode(Announce(
            announce.command, announce.key, self.address,
            announce.modifier1, announce.modifier2, 0, 0, self.weight))
        for text, where in self.servers:
            unix = isinstance(where, str)
            try:
                self._socket(unix).sendto(data, where)
            except OSError as e:
                log(f"send_subscription()/sendto(): {e.strerror or e} "
                    f"[{text}]")

    def _socket(self, unix):
        sock = self._sockets.get(unix)
        if sock is None:
            family = socket.AF_UNIX if unix else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            if self.bind and not unix:
                host, _, port = self.bind.rpartition(":")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host or "0.0.0.0", int(port)))
            self._sockets[unix] = sock
        return sock
