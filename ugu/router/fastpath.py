"""The router's fast path: plain requests and their plain answers relayed
by callbacks on gevent's loop, without a greenlet.

Nearly every request a router relays is plain (ugu.http.plain) and has no
body, and nearly every answer is a plain head (ugu.http.response) with a
Content-Length, whole after a read or two.  For those a greenlet per
connection was the largest cost left: before the same uWSGI worker, a bare
relay with a greenlet per connection spent 20 us of Python per request,
one with callbacks on io watchers 9 us, and fewer system calls (a socket
is read when the loop says it is readable, not tried first).

Anything else is handed over where it is met, with all that has been read,
to the greenlet code (ClientConnection.serve), which knows the rest of
HTTP: a request that is not plain or has a body, an answer that is not
plain, has no Content-Length, is for HEAD, is gzipped by http-auto-gzip or
is over FAST_ANSWER bytes, and every error, which that code answers and
logs as it always does.  Timeouts are deadlines swept by one timer, as in
ugu.router.channel.
"""

import functools
import os
import time
import traceback

import gevent
from gevent import get_hub

from ugu import log as logs
from ugu import staticanswer
from ugu.http import gzip, plain
from ugu.http.errors import GatewayTimeout, HttpError
from ugu.http.response import END_OF_HEAD, parse_head
from ugu.http.vars import RequestVars
from ugu.log import log
from ugu.router.backends import NameToLookUp
from ugu.router.channel import READ, SWEEP_INTERVAL, WRITE
from ugu.router.connection import (MAX_HEAD, read_failed, reason,
                                   request_key, write_failed)
from ugu.router.cycle import PlainCycle
from ugu.router.exchange import (Exchange, backend_closed, backend_failed,
                                 packet)

# The largest answer (head and body) held whole here; a larger one
# streams through the greenlet code instead.  The static answers keep
# none larger, as they keep only what this path sent.
FAST_ANSWER = staticanswer.LARGEST


def _callback(method):
    """A loop callback: an exception is a bug, logged with the connection
    closed, rather than left to the hub."""
    @functools.wraps(method)
    def guarded(self, *args):
        try:
            method(self, *args)
        except Exception:
            log(f"[uwsgi-http] router fast path failed:\n"
                f"{traceback.format_exc()}")
            self.close()
    return guarded


class FastPath:
    """A client connection (ugu.router.connection) while its requests and
    answers are plain."""

    def __init__(self, conn):
        self.conn = conn
        self.settings = conn.settings
        self.sock = conn.channel.sock
        self._loop = get_hub().loop
        self._reader = self._loop.io(self.sock.fileno(), READ)
        self._writer = None
        self.request = self.head = None
        self.node = self.backend = self._backend_watcher = None
        self._packet = self._answer = self._out = b""
        # The request's head, under which its answer may be kept, and
        # the worker's marker that lets it be (ugu.staticanswer).
        self._head_bytes = self._marker = None
        self._head_seen = self._offered = False
        self._on_timeout = None
        # Seconds each read of a request head may wait.
        self._head_wait = 0

    def start(self):
        self._wait_request(self.settings.headers_timeout)

    # The request.

    def _wait_request(self, wait):
        """The next request, each read of its head within `wait`
        seconds."""
        self.request = None
        self._head_wait = wait
        self._until(wait, self._head_timed_out)
        if not (self.conn.buffer and self._take_request()) and \
                not self._reader.active:
            self._reader.start(self._on_client_readable)

    @_callback
    def _on_client_readable(self):
        if self.request is not None:
            # The client sent more (or left) while its request is out: it
            # is read once the answer has gone.  The reader stays started
            # until then, as restarting it costs libev a system call (an
            # epoll_ctl that finds the socket still registered) on every
            # request of a keepalive connection.
            self._reader.stop()
            return
        try:
            data = self.sock.recv(self.settings.read_size)
        except BlockingIOError:
            return
        except OSError as e:
            self._client_left(reason(e))
            return
        if not data:
            # A head cut short, or none begun: closed unsaid, as by
            # uWSGI's router.
            self.close()
            return
        self.conn.buffer += data
        if not self._take_request():
            # As uWSGI's router: the timeout starts again at each read.
            _sweeper.set(self, self._head_wait)

    def _take_request(self):
        """Begin the exchange of a plain request without a body, or hand
        any other over; False while the head is incomplete."""
        buffer = self.conn.buffer
        end = plain.complete_head_at(buffer)
        if end == -1 and len(buffer) < MAX_HEAD:
            return False
        # A head too long, or not plain (None), or empty (0): h11's.
        head = bytes(buffer[:end]) if end is not None and end > 0 else None
        # A static answer is offered for a head met before: one that never
        # comes again is not worth the worker's marker.
        self._head_seen = head in _REQUESTS
        parsed = _bodiless_request(head) if head is not None else None
        if parsed is None:
            # Just read (or just waited for): its reads wait in full.
            self._hand_over(self._head_wait)
            return True
        del buffer[:end + 4]
        kept = self.conn.router.answers.get(self.conn.listener_vars,
                                            head)
        if kept is not None:
            self._repeat(parsed[0], kept)
        else:
            self._head_bytes = head
            self._begin(*parsed)
        return True

    def _head_timed_out(self):
        # Silent past the timeout, even halfway through a head: closed
        # unsaid, as by uWSGI's router.
        self.close()

    def _client_left(self, why):
        """The client's connection failed before a whole head: said as
        uWSGI's router says it, where a head had begun."""
        if self.conn.buffer:
            self.conn.log_error("", read_failed(why))
        self.close()

    def _repeat(self, request, kept):
        """Answer with what the worker answered to the same head, after
        the line it would have written."""
        conn = self.conn
        self.request = request
        conn.cycle = PlainCycle(conn, request)
        conn.cycle.started = conn.cycle.done = True
        if kept.line is not None:
            answers = conn.router.answers
            answers.count += 1
            logs.write_request_line(kept.line.format(
                pid=os.getpid(), count=answers.count,
                addr=staticanswer.client_address(conn.peer),
                size=kept.vars_size + len(conn.peer),
                date=logs.ctime(time.time()), msecs=0))
        self._out = kept.data
        if conn.buffer:
            # The next request is read already: it is taken from the loop,
            # not from deeper in this call, however many came at once.
            self._loop.run_callback(self._send_out)
        else:
            self._send_out()

    # The exchange with a backend.

    def _begin(self, request, request_vars):
        conn = self.conn
        self.request = request
        conn.cycle = PlainCycle(conn, request)
        self._marker = None
        self._offered = self._head_seen and request.method == b"GET"
        try:
            self.head = request_vars or RequestVars(request)
            self._packet = packet(conn, self.head, offer=self._offered)
            self.node, self.backend = (
                conn.router.nodes.start_connect(self.head))
            if self.node.retag is not None:
                self._packet = self.node.retag(self._packet, self.settings)
        except HttpError as e:
            self._fail(e)
            return
        except NameToLookUp:
            self._hand_over(self.settings.idle_timeout,
                            run=Exchange(conn, conn.cycle, self.head).run)
            return
        # Even when the handshake is over, as on loopback: see
        # Backend.wait_connected for why the packet waits a round of the
        # loop.
        self._watch_backend(WRITE, self._on_connected)
        self._until(self.settings.connect_timeout, self._connect_timed_out)

    @_callback
    def _on_connected(self):
        self._unwatch_backend()
        err = self.backend.pending_error()
        if err:
            self._connect_failed(OSError(err, os.strerror(err)))
            return
        self.node.succeeded()
        self._send_packet()

    def _connect_timed_out(self):
        self._unwatch_backend()
        self._connect_failed(TimeoutError("timed out"))

    def _connect_failed(self, error):
        """Log the node's failure; the greenlet code tries the others."""
        self.conn.router.nodes.failed(self.node, 0, self.head.key, error)
        exchange = Exchange(self.conn, self.conn.cycle, self.head)
        run = functools.partial(exchange.run, tried=(self.node,))
        self._close_backend()
        self._hand_over(self.settings.idle_timeout, run=run)

    def _send_packet(self):
        data = self._packet
        try:
            sent = self.backend.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            # The backend may answer without reading: its answer is
            # read next, as in Exchange._send.
            sent = len(data)
        if sent < len(data):
            self._resume(unsent=data[sent:])
            return
        self._watch_backend(READ, self._on_backend_readable)
        self._until(self.settings.timeout, self._backend_timed_out)

    @_callback
    def _on_backend_readable(self):
        try:
            data = self.backend.sock.recv(self.settings.read_size)
        except BlockingIOError:
            return
        except OSError as e:
            if not self._answer:
                self._fail(backend_failed(e, len(self._packet)))
                return
            # The greenlet code tells whether it cut the answer short.
            self._resume(closed=True, reset=e)
            return
        if not data and not self._answer:
            self._fail(backend_closed(len(self._packet)))
            return
        self._answer += data
        self._take_answer(closed=not data)

    def _backend_timed_out(self):
        self._fail(GatewayTimeout("backend did not answer within "
                                  f"{self.settings.timeout} seconds"))

    def _take_answer(self, closed):
        """Relay a whole plain answer, or hand it over; nothing while it
        is incomplete."""
        answer = self._answer
        end = answer.find(END_OF_HEAD)
        if end == -1:
            if closed or len(answer) >= FAST_ANSWER:
                self._resume(closed=closed)
            else:
                self._more_answer()
            return
        if self._offered:
            # Out of the head before anything reads it: no client sees it.
            self._offered = False
            answer, self._marker = staticanswer.take_marker(answer, end)
            if self._marker is not None:
                self._answer = answer
                end = answer.find(END_OF_HEAD)
        relayed = (None if self.request.method == b"HEAD"
                   else self._relayed_head(answer[:end]))
        if relayed is None or end + 4 + relayed[0] > FAST_ANSWER:
            self._resume(closed=closed)
            return
        length, client_head = relayed
        size = end + 4 + length
        if len(answer) < size:
            if closed:
                self._resume(closed=closed)
            else:
                self._more_answer()
            return
        self._close_backend()
        # An idle connection holds no answer: up to FAST_ANSWER each.
        self._answer = self._packet = b""
        cycle = self.conn.cycle
        cycle.started = cycle.done = True
        data = client_head + answer[end + 4:size]
        if self._marker is not None:
            self._keep(data)
        self._respond(data)

    def _keep(self, data):
        """Keep the answer for its head, as the worker's marker allows."""
        found = staticanswer.parse(self._marker, logs.plain_request_sink())
        self._marker = None
        if found is not None:
            self.conn.router.answers.keep(self.conn.listener_vars,
                                          self._head_bytes, data, *found)

    def _more_answer(self):
        """The backend's silence is timed from its last bytes."""
        self._until(self.settings.timeout, self._backend_timed_out)

    def _relayed_head(self, raw):
        """(Content-Length, the head for the client) of a backend's head
        this path relays with its body as it is, else None; parsed once
        for each framing and Accept-Encoding of the client's."""
        encodings = (self.head.accept_encoding if self.settings.auto_gzip
                     else None)
        key = (raw, encodings, self.request.keep_alive)
        found = _RELAYED.get(key, False)
        if found is False:
            found = _parse_relayed(*key)
            _remember(_RELAYED, key, len(raw) + len(encodings or b""), found)
        return found

    # The answer to the client.

    def _respond(self, data):
        self._out = data
        self._send_out()

    @_callback
    def _send_out(self):
        try:
            sent = self.sock.send(self._out)
        except BlockingIOError:
            sent = 0
        except OSError as e:
            self.conn.log_error(request_key(self.request),
                                write_failed(reason(e)))
            self.close()
            return
        self._out = self._out[sent:]
        if self._out:
            if self._writer is None:
                self._writer = self._loop.io(self.sock.fileno(), WRITE)
            if not self._writer.active:
                self._writer.start(self._send_out)
            self._until(self.settings.timeout, self._send_timed_out)
            return
        if self._writer is not None:
            self._writer.stop()
        self._next()

    def _send_timed_out(self):
        # Closed unsaid, as by uWSGI's router.
        self.close()

    def _next(self):
        conn = self.conn
        if self.settings.keepalive and conn.cycle.reusable():
            self._wait_request(self.settings.idle_timeout)
        elif conn.buffer:
            # Bytes the client sent after a last request: the greenlet
            # code drains them before closing, which takes waiting.
            self._stop()
            gevent.spawn(conn.close)
        else:
            self.close()

    # Handing over, timeouts, closing.

    def _fail(self, error):
        """The greenlet code answers and logs the error."""
        self._close_backend()

        def fail():
            raise error
        self._hand_over(self.settings.idle_timeout, run=fail)

    def _resume(self, unsent=b"", closed=False, reset=None):
        """The greenlet code finishes the exchange with the backend."""
        exchange = Exchange(self.conn, self.conn.cycle, self.head)
        exchange.offered = self._offered
        if unsent:
            self.backend.set_nodelay()
        run = functools.partial(exchange.resume, self.backend, unsent,
                                self._answer, closed, reset)
        self._unwatch_backend()
        self.backend = None
        self._hand_over(self.settings.idle_timeout, run=run)

    def _hand_over(self, wait, run=None):
        """From here on a greenlet serves the connection: the request
        begun, if any, then the rest as ClientConnection.serve does;
        `run` is what is left of the request's exchange (None: all of
        it)."""
        self._stop()
        gevent.spawn(self.conn.serve, wait, self.request, run)

    def _until(self, seconds, on_timeout):
        self._on_timeout = on_timeout
        _sweeper.set(self, seconds)

    @_callback
    def timed_out(self):
        self._on_timeout()

    def _watch_backend(self, events, callback):
        fd = self.backend.sock.fileno()
        watcher = self._backend_watcher
        if watcher is None:
            watcher = self._backend_watcher = self._loop.io(fd, events)
        else:
            # One watcher for the connection's backends, one after the
            # other: making one per backend costs a system call too.
            watcher.fd, watcher.events = fd, events
        watcher.start(callback)

    def _unwatch_backend(self):
        if self._backend_watcher is not None:
            self._backend_watcher.stop()

    def _close_backend(self):
        self._unwatch_backend()
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def _stop(self):
        """Let go of the connection's watchers and deadline."""
        _sweeper.clear(self)
        for watcher in (self._reader, self._writer, self._backend_watcher):
            if watcher is not None:
                watcher.close()

    def close(self):
        self._close_backend()
        self._stop()
        self.conn.end()


# Heads seen before, the client's and the worker's, and what they gave:
# clients send the same heads again and again (the same page, the same
# cookies) and a worker answers with the same few.  Each memo holds up to
# 512 heads of up to 4 KiB (a few MB with what they gave), and is emptied
# when full, as heads with a date in them never repeat.
_MEMO_LIMIT = 512
_MEMO_HEAD_MAX = 4096
_REQUESTS = {}
_RELAYED = {}


# Methods served by a greenlet even without a body: CONNECT, refused
# there, and SOURCE, a raw session with http-manage-source (its body
# streams without a length).
_GREENLET = (b"CONNECT", b"SOURCE")


def _bodiless_request(head):
    """(PlainRequest, its RequestVars or None) for a plain request
    without a body that is not CONNECT, else None."""
    found = _REQUESTS.get(head, False)
    if found is False:
        found = _parse_bodiless(head)
        if found is not None and found[1] is not None:
            _remember(_REQUESTS, head, len(head), found)
    return found


def _parse_bodiless(head):
    request = plain.parse_request(head)
    if request is None or request.length or request.method in _GREENLET:
        return None
    try:
        return request, RequestVars(request)
    except HttpError:
        # Met again in _begin, which answers it.
        return request, None


def _remember(memo, key, size, value):
    if size <= _MEMO_HEAD_MAX:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[key] = value


def _parse_relayed(raw, encodings, keep_alive):
    head = parse_head(raw)
    if (head is None or head.length is None
            or head.status in plain.NO_BODY_STATUS):
        return None
    headers = head.headers
    if encodings is not None:
        # http-auto-gzip: the marker goes; without it, it is any header.
        headers, compressor = gzip.prepare(headers,
                                           gzip.accepts_gzip(encodings))
        if compressor:
            return None
    return head.length, plain.response_head(head.status, head.reason,
                                            headers, True, keep_alive)


class Sweeper:
    """The deadlines of the fast path's connections, checked every
    SWEEP_INTERVAL by one timer: a timeout fires up to that late."""

    def __init__(self):
        self._due = {}
        self._timer = None

    def set(self, path, seconds):
        loop = get_hub().loop
        if self._timer is None:
            self._timer = loop.timer(SWEEP_INTERVAL, SWEEP_INTERVAL)
            # Unreferenced: the sweep alone does not keep the loop going.
            self._timer.ref = False
            self._timer.start(self._sweep)
        self._due[path] = loop.now() + seconds

    def clear(self, path):
        self._due.pop(path, None)

    def _sweep(self):
        now = get_hub().loop.now()
        expired = [path for path, due in self._due.items() if due <= now]
        for path in expired:
            del self._due[path]
            path.timed_out()


_sweeper = Sweeper()
