"""One client connection: requests read one after another, each by the
plain parser or, for anything unusual, by h11 (ugu.router.cycle).

With `http-keepalive` the connection serves requests until the client
closes it, sends `Connection: close` or idles past the timeout; pipelined
requests wait in the connection's buffer and are answered in order
(DEVIATIONS 4).  Without it the connection closes after the first
response and, as in uWSGI, nothing announces it.

Every failure of a request becomes the router's own error page when no
response has started, else the connection closes; either way it is one
log line naming the client, and the next connection is served as usual.
"""

import time

import h11

from ugu.http import plain, proxyline
from ugu.http.errors import (BadRequest, ClientClosed, ClientGone,
                             ClientReadFailed, ClientStalled,
                             ClientWriteFailed, HeadersTooLarge, HttpError,
                             NotImplementedHere, h11_reason)
from ugu.http.vars import DEFAULT_KEY, RequestVars
from ugu.log import log
from ugu.protocol import encode_vars
from ugu.router.cycle import H11Cycle, PlainCycle
from ugu.router.exchange import Exchange
from ugu.router.tunnel import Tunnel, asks_for_websocket

# The largest request head, as uWSGI's router accepts.
MAX_HEAD = 65536
# How long a closing connection keeps reading what the client still
# sends, so that its unread bytes do not reset the answer away.
LINGER_SECONDS = 2.0
HTTP_VERSIONS = (b"1.0", b"1.1")


class ClientConnection:
    max_head = MAX_HEAD
    # Whether it counts in the router's active_sessions (http-stats).
    _counted = False

    def __init__(self, channel, address, listener_vars, router):
        if router.counting:
            router.sessions += 1
            self._counted = True
        self.channel = channel
        self.listener_vars = listener_vars
        self.router = router
        self.settings = router.settings
        self.peer = listener_vars.peer(address)
        # What the client sent that no cycle has consumed yet.
        self.buffer = bytearray()
        self.cycle = None
        self._out = []
        self._who = _describe(address)

    def serve(self, wait, request=None, run=None):
        """Serve requests until the client is done, the first within
        `wait` seconds.  The fast path (ugu.router.fastpath) hands a
        connection over with the request it began, if any, and `run`,
        what is left of its exchange."""
        try:
            if request is None or self._handle(request, run):
                while self._serve_one(wait):
                    wait = self.settings.idle_timeout
        finally:
            self.close()

    def read_proxy_line(self, wait):
        """A PROXY line before the first request (enable-proxy-protocol)
        names the client for every request of the connection; False once
        the client left or stalled before its end (`wait` seconds at each
        read, as for a request head)."""
        buffer = self.buffer
        try:
            while (found := proxyline.parse(buffer, MAX_HEAD)) \
                    is proxyline.INCOMPLETE:
                data = self.recv(wait)
                if not data:
                    return not buffer
                buffer += data
        except ClientGone:
            return False
        if found is not None:
            size, source, port = found
            del buffer[:size]
            if source is not None:
                self.peer = encode_vars(proxyline.peer_pairs(source, port))
        return True

    def _serve_one(self, wait):
        """Serve one request; returns whether another may follow."""
        try:
            request = self._read_request(wait)
        except h11.RemoteProtocolError as e:
            if self.cycle.h11.trailing_data[1]:
                # h11 met the client's close before the head's end: as
                # uWSGI's router, that closes unsaid.
                return False
            error = (HeadersTooLarge if e.error_status_hint == 431
                     else BadRequest)(h11_reason(e))
            return self._fail(error, "")
        except ClientStalled:
            # Silent past the timeout, even halfway through a head:
            # closed unsaid, as by uWSGI's router.
            return False
        except ClientGone as e:
            # A reset: said as uWSGI's router says it, where a head had
            # begun.
            if self._unread():
                self.log_error("", str(e))
            return False
        if request is None:
            return False
        return self._handle(request)

    def _handle(self, request, run=None):
        try:
            if request.http_version not in HTTP_VERSIONS:
                # h11 parses any HTTP/d.d; the others are not HTTP/1.
                raise BadRequest(f"unsupported HTTP/"
                                 f"{request.http_version.decode()}")
            if request.method == b"CONNECT":
                # A tunnel after a 2xx answer: a forward proxy's job.
                raise NotImplementedHere("CONNECT is not supported")
            if run is not None:
                run()
            elif not self._through_node(request):
                # Nothing follows a websocket on its connection.
                return False
        except HttpError as e:
            return self._fail(e, request_key(request), request.method)
        except ClientClosed:
            # Before its body's end: closed unsaid, as by uWSGI's router
            # (the worker says the body it got cut short).
            return False
        except ClientStalled:
            # Closed unsaid past the timeout, as by uWSGI's router.
            return False
        except (ClientReadFailed, ClientWriteFailed) as e:
            self.log_error(request_key(request), str(e))
            return False
        return self._next_cycle()

    def _through_node(self, request):
        """Serve the request through a node; False after a raw session (a
        websocket's with http-websockets, any request's with
        http-raw-body, a SOURCE's with http-manage-source), which ends
        the connection."""
        head = RequestVars(request)
        if self.settings.raw_body or (
                self.settings.chunked_input and _chunked(head)) or (
                self.settings.manage_source
                and request.method == b"SOURCE") or (
                self.settings.websockets and type(self.cycle) is H11Cycle
                and asks_for_websocket(head)):
            Tunnel(self, self.cycle, head).run()
            return False
        Exchange(self, self.cycle, head).run()
        return True

    def _read_request(self, wait):
        """The next request (plain, else h11's), or None once the client
        is done.  Each read of its head waits up to `wait`, as uWSGI's
        router starts its timeout again at each read."""
        self.cycle = None
        buffer = self.buffer
        end = plain.complete_head_at(buffer)
        while end == -1 and len(buffer) < MAX_HEAD:
            data = self.recv(wait)
            if not data:
                if not buffer:
                    return None
                break
            buffer += data
            end = plain.complete_head_at(buffer)
        request = (plain.parse_request(bytes(buffer[:end]))
                   if end is not None and end > 0 else None)
        if request is None:
            return self._read_h11_request(wait)
        del buffer[:end + 4]
        self.cycle = PlainCycle(self, request)
        return request

    def _read_h11_request(self, wait):
        self.cycle = cycle = H11Cycle(self, bytes(self.buffer))
        self.buffer.clear()
        event = cycle.next_event(wait)
        if type(event) is h11.Request:
            cycle.request = event
            return event
        # ConnectionClosed: the client is done with the connection.
        return None

    def _next_cycle(self):
        cycle = self.cycle
        if not (self.settings.keepalive and cycle.reusable()):
            return False
        if type(cycle) is H11Cycle:
            self.buffer += cycle.leftover()
        return True

    def _unread(self):
        """Whether the client sent bytes the router has not read."""
        cycle = self.cycle
        return bool(self.buffer) or (cycle is not None
                                     and cycle.may_be_sending())

    # Reading and writing, for the cycles.

    def next_h11_event(self, conn, timeout, framing=None):
        """The next event of h11 connection `conn`, reading as needed:
        each read waits up to `timeout`, and what it reads passes the
        `framing` check first, if any (ugu.http.chunked)."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = self.recv(timeout)
            if framing is not None:
                framing.check(data)
            conn.receive_data(data)

    def recv(self, timeout):
        try:
            if timeout <= 0:
                raise TimeoutError("timed out")
            return self.channel.recv(self.settings.read_size, timeout)
        except TimeoutError as e:
            raise ClientStalled(reason(e)) from None
        except OSError as e:
            raise ClientReadFailed(read_failed(reason(e))) from None

    def write(self, data):
        """Queue bytes for the client, sent by the next flush."""
        self._out.append(data)

    def flush(self):
        if not self._out:
            return
        data = self._out[0] if len(self._out) == 1 else b"".join(self._out)
        self._out.clear()
        try:
            self.channel.sendall(data, self.settings.timeout)
        except TimeoutError as e:
            raise ClientStalled(reason(e)) from None
        except OSError as e:
            raise ClientWriteFailed(write_failed(reason(e))) from None

    # Errors and closing.

    def _fail(self, error, key, method=None):
        """Log the error and answer it if no response has started;
        returns whether the connection may serve another request."""
        cycle = self.cycle
        keep = self.settings.keepalive and cycle.request_read()
        if not cycle.respond_error(error.status, keep, method == b"HEAD"):
            self.log_error(key, f"response cut short: {error.reason}")
            # What the response queued still goes out: the client tells
            # a body cut short by its framing.
            try:
                self.flush()
            except ClientGone:
                pass
            return False
        self.log_error(key, f"{error.status} {error.reason}")
        try:
            self.flush()
        except ClientGone:
            return False
        return self._next_cycle()

    def log_error(self, key, reason):
        log(f"[uwsgi-http key: {key} {self._who}] {reason}")

    def close(self):
        if self._unread():
            self._drain()
        self.end()

    def end(self):
        """Close the client's socket, now."""
        self.channel.close()
        if self._counted:
            self._counted = False
            self.router.sessions -= 1

    def _drain(self):
        """Half-close, then read and drop until the client closes too."""
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            self.channel.shutdown_write()
            while (left := deadline - time.monotonic()) > 0:
                if not self.channel.recv(self.settings.read_size, left):
                    return
        except OSError:
            # Reset or timed out: there is nothing left to protect.
            return


def request_key(request):
    """The request's key in uWSGI's log lines: its Host header, else the
    machine's name."""
    for name, value in request.headers:
        if name == b"host":
            return value.decode("latin-1")
    return DEFAULT_KEY.decode("latin-1")


def _describe(address):
    if isinstance(address, tuple):
        return f"client_addr: {address[0]} client_port: {address[1]}"
    return "client_addr: unix"


def _chunked(head):
    """Whether a request's body comes in chunks, as uWSGI's router tells
    it for http-chunked-input."""
    return head.headers.get(b"HTTP_TRANSFER_ENCODING", b"").lower() == \
        b"chunked"


def reason(error):
    return error.strerror or str(error) or type(error).__name__


def read_failed(why):
    """uWSGI's router's words for a failed read of the client's."""
    return f"hr_read(): {why} [plugins/http/http.c line 918]"


def write_failed(why):
    """uWSGI's router's words for a failed write to the client."""
    return f"hr_write(): {why} [plugins/http/http.c line 565]"
