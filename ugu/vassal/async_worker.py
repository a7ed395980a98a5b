"""`gevent = N`: uWSGI's async mode, one worker serving up to N requests at
once, each in its own greenlet.

The worker patches the standard library right after fork, before the app
is imported, so that the app's sockets, sleeps and locks yield to the other
requests instead of blocking the worker.  The request code itself is plain
blocking socket code and runs unchanged on the patched sockets.  Each
greenlet takes a free "core" number while it serves, so the scoreboard,
harakiri and the log line see N cores per worker, as in uWSGI.
"""

import importlib
import os
import sys
from select import POLLIN

from ugu import fdwait, log


def patch():
    """Monkey-patch the standard library in this (freshly forked)
    worker."""
    from gevent import monkey
    monkey.patch_all()


def unpatched(module, name):
    """The standard library's own `name`, even in a gevent worker: for
    the real threads (offload, tracebacker) that must block on their
    own, whatever the cores are."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


class GreenCores:
    """A gevent StreamServer per listening socket, sharing one pool of
    `size` greenlets, so the worker never serves more than `size`
    requests at once."""

    def __init__(self, worker, ctx, size, serve):
        import gevent.pool
        self.worker, self.ctx, self.serve = worker, ctx, serve
        self.pool = gevent.pool.Pool(size)
        # Taken from the end: the highest core first, as uWSGI's async
        # queue hands them out (a lone request runs on core N-1).
        self.free = list(range(size))
        self.servers = []
        # The greenlets waiting for a keepalive client's next request,
        # with their connections.
        self.idle = {}
        self.stopping = False

    def next_request_arrives(self, conn, timeout):
        """Whether the client sends its next request within timeout
        seconds.  Here an idle connection holds a greenlet, not a thread,
        so it is kept (as gevent servers keep them) while a greenlet is
        spare; once none is, the idle ones close, for whoever waits to be
        accepted.  A reload does not wait for idle connections either."""
        import gevent
        if self.stopping or not self.free:
            timeout = 0
        current = gevent.getcurrent()
        self.idle[current] = conn
        try:
            # gevent's poll() here, which yields to the other greenlets.
            return bool(fdwait.readable([conn], timeout))
        finally:
            del self.idle[current]

    def _close_idle(self):
        """End the idle waits whose client has sent nothing yet."""
        import gevent
        from gevent.monkey import get_original
        # The unpatched poll: a look that must not yield, or the waits
        # would change under it.
        poller = get_original("select", "poll")()
        waiting = {conn.fileno(): greenlet
                   for greenlet, conn in self.idle.items()}
        for fd in waiting:
            poller.register(fd, POLLIN)
        spoken = {fd for fd, _ in poller.poll(0)}
        gevent.killall([greenlet for fd, greenlet in waiting.items()
                        if fd not in spoken], block=False)

    def start(self):
        import gevent
        import gevent.socket
        from ugu.vassal import green_server
        from ugu.vassal.worker import ACCEPT_RETRY
        for listener in self.worker.listeners:
            # A duplicate of the inherited socket, as a gevent socket.
            sock = gevent.socket.socket(listener.sock.family,
                                        listener.sock.type,
                                        fileno=os.dup(listener.sock.fileno()))
            server = green_server.Server(
                sock, self._handler(listener), self.pool, self.worker,
                ACCEPT_RETRY)
            # One connection a wake-up, not gevent's 100: every worker is
            # woken by a connection, and the first would otherwise take
            # a whole burst (a client's 16 keepalive connections, say)
            # and serve them on one CPU while the others idle.
            server.max_accept = 1
            server.start()
            self.servers.append(server)
        if self.worker.wid == 1:
            # uWSGI announces its loop engine once, from the first worker.
            hub = gevent.get_hub()
            log.log(f"*** running gevent loop engine [addr:{id(hub):#x}] "
                    f"***")

    def watch_signals(self, uwsgi_signals):
        """A greenlet for each socket uWSGI signals come on, running their
        handlers in the worker's loop, as uWSGI's gevent loop does."""
        import gevent
        import gevent.socket

        def watch(end):
            while True:
                gevent.socket.wait_read(end.fileno())
                uwsgi_signals.receive(end)
        for end in uwsgi_signals.inbox:
            gevent.spawn(watch, end)

    def _handler(self, listener):
        def handle(conn, address):
            core = self.free.pop()
            if not self.free:
                # The last greenlet: make room for the next connection.
                self._close_idle()
            try:
                self.serve(self.ctx, core, listener, conn, address)
            finally:
                self.free.append(core)
        return handle

    def stop(self):
        """Stop accepting, close the idle keepalive connections, then let
        the requests in flight finish."""
        self.stopping = True
        for server in self.servers:
            server.close()
        self._close_idle()
        self.pool.join()
