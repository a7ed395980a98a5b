"""The HTTP router's cheap mode (`http-cheap`): its listeners accept no
connection while no node is subscribed, as uWSGI's takes their sockets
out of its event loop then (the clients wait in the backlog).

Imported only by a router with http-cheap; one without pays nothing,
per request or per announce.
"""

import os

from ugu.log import log


class Cheap:
    """Starts and stops the accepting of `acceptors` as `table` gains its
    first pool or loses its last; cheap (not accepting) at first."""

    def __init__(self, table, acceptors):
        self.table = table
        self.acceptors = acceptors
        self.cheap = True
        table.changed = self.changed

    def start(self):
        """Accept only if a node is already subscribed (never, at the
        first start)."""
        if self.table.pools:
            self.changed()

    def changed(self):
        pid = os.getpid()
        if self.table.pools and self.cheap:
            log(f"[uWSGI http pid {pid}] leaving cheap mode...")
            self.cheap = False
            for acceptor in self.acceptors:
                acceptor.start()
        elif not self.table.pools and not self.cheap:
            log(f"[uWSGI http pid {pid}] no more nodes available. Going "
                f"cheap...")
            self.cheap = True
            for acceptor in self.acceptors:
                acceptor.stop()
