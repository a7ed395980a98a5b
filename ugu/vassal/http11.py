"""`http11-socket`: an http-socket whose connections stay open.

uWSGI's http11 protocol parses requests as its http-socket does; what
differs is the end of a response.  The connection stays open for the
client's next request, for up to `socket-timeout` seconds, unless the
request was HTTP/1.0, left part of its body unread, or had its response
offloaded, or a write failed.  ugu serves these sockets with the
http-socket's code (ugu.vassal.http_socket), which already ends the
connection in those cases; this module is the wait for the next request.

Where ugu differs from uWSGI, as its http-socket does:

1. a response without a Content-Length goes out chunked to an HTTP/1.1
   client; uWSGI sends it unframed on a connection it keeps open, so the
   client cannot tell where it ends and waits for socket-timeout;
2. a request's `Connection: close` is honoured (uWSGI's source notes that
   it is not);
3. pipelined requests are all answered (DEVIATIONS 4);
4. a thread gives up its idle connection when another connection has
   waited a moment to be accepted; uWSGI's core keeps it until
   socket-timeout while the new client waits.  A gevent worker keeps
   idle connections while it has greenlets to spare (GreenCores).
"""

import time

from ugu import fdwait

# How long a connection that came to the listen queue while this thread
# waits on an idle one is left for another core to accept: an idle core
# takes it at once, so one still waiting after this finds none free.
ACCEPT_GRACE = 0.05


def next_request_arrives(ctx, core, conn, listener):
    """Whether the client sends its next request within socket-timeout,
    for a thread (not a greenlet).  The core shows idle meanwhile, as
    uWSGI's waits between requests; a worker that stops ends the wait."""
    end = time.monotonic() + ctx.socket_timeout
    watched = [conn, listener.sock] + ([ctx.wake] if ctx.wake else [])
    ctx.scoreboard.end(ctx.wid, core)
    while (left := end - time.monotonic()) > 0:
        found = fdwait.readable(watched, left)
        if conn in found:
            break
        if not found or ctx.wake in found:
            return False
        if _still_waiting(conn, listener):
            return False
    else:
        # socket-timeout 0: uWSGI looks once, without waiting.
        if not fdwait.readable([conn], 0):
            return False
    ctx.scoreboard.begin(ctx.wid, core)
    return True


def _still_waiting(conn, listener):
    """Whether a connection in the listen queue is still there after a
    moment, unless our own client speaks first."""
    if fdwait.readable([conn], ACCEPT_GRACE):
        return False
    return bool(fdwait.readable([listener.sock], 0))
