"""One client connection: requests read with h11, one after another.

With `http-keepalive` the connection serves requests until the client
closes it, sends `Connection: close` or idles past the timeout; pipelined
requests wait in h11's buffer and are answered in order (DEVIATIONS 4).
Without it the connection closes after the first response and, as in
uWSGI, nothing announces it.

Every failure of a request becomes the router's own error page when no
response has started, else the connection closes; either way it is one
log line naming the client, and the next connection is served as usual.
"""

import socket
import time

import h11

from ugu.http.errors import (BadRequest, ClientGone, HeadersTooLarge,
                             HttpError, error_response)
from ugu.http.vars import RequestVars
from ugu.log import log
from ugu.router.exchange import Exchange

# The largest request head, as uWSGI's router accepts.
MAX_HEAD = 65536
# How long a closing connection keeps reading what the client still
# sends, so that its unread bytes do not reset the answer away.
LINGER_SECONDS = 2.0
HTTP_VERSIONS = (b"1.0", b"1.1")
_CAN_RESPOND = (h11.IDLE, h11.SEND_RESPONSE)
_CONTINUE = h11.InformationalResponse(status_code=100, headers=[],
                                     reason=b"Continue")
# The client may still be sending what the router will not read.
_MAY_BE_SENDING = (h11.SEND_BODY, h11.ERROR)


class ClientConnection:
    def __init__(self, sock, address, listener_vars, router):
        self.sock = sock
        self.listener_vars = listener_vars
        self.router = router
        self.settings = router.settings
        self.peer = listener_vars.peer(address)
        self.h11 = h11.Connection(h11.SERVER,
                                  max_incomplete_event_size=MAX_HEAD)
        self._out = []
        self._who = _describe(address)

    def serve(self):
        try:
            wait = self.settings.headers_timeout
            while self._serve_one(wait):
                wait = self.settings.idle_timeout
        finally:
            self._close()

    def _serve_one(self, wait):
        """Serve one request; returns whether another may follow."""
        try:
            request = self._read_request(wait)
        except h11.RemoteProtocolError as e:
            error = (HeadersTooLarge if e.error_status_hint == 431
                     else BadRequest)(str(e))
            return self._fail(error, "")
        except ClientGone as e:
            # An idle or silent client leaving is no error; one that
            # left (or stalled) halfway through a request head is.
            if self.h11.trailing_data[0]:
                self._log("", f"incomplete request head: {e}")
            return False
        if request is None:
            return False
        return self._handle(request)

    def _handle(self, request):
        try:
            if request.http_version not in HTTP_VERSIONS:
                # h11 parses any HTTP/d.d; the others are not HTTP/1.
                raise BadRequest(f"unsupported HTTP/"
                                 f"{request.http_version.decode()}")
            Exchange(self, request, RequestVars(request)).run()
        except HttpError as e:
            return self._fail(e, _host(request), request.method)
        except ClientGone as e:
            self._log(_host(request), f"client went away: {e}")
            return False
        return self._next_cycle()

    def _read_request(self, wait):
        # The whole head within `wait`, not each read: a client trickling
        # a byte at a time (slowloris) must not hold its connection.
        event = self.next_event(wait, time.monotonic() + wait)
        if type(event) is h11.Request:
            return event
        # ConnectionClosed: the client is done with the connection.
        return None

    def _next_cycle(self):
        conn = self.h11
        if (self.settings.keepalive and conn.our_state is h11.DONE
                and conn.their_state is h11.DONE):
            conn.start_next_cycle()
            return True
        return False

    # Reading and writing, for the Exchange too.

    def next_event(self, timeout, deadline=None):
        """The next h11 event from the client, reading as needed: each
        read waits up to `timeout`, all of them end by `deadline`."""
        conn = self.h11
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if deadline is not None:
                timeout = deadline - time.monotonic()
            conn.receive_data(self._recv(timeout))

    def _recv(self, timeout):
        try:
            if timeout <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(timeout)
            return self.sock.recv(self.settings.read_size)
        except OSError as e:
            raise ClientGone(_reason(e)) from None

    def queue(self, event):
        self._out.append(self.h11.send(event))

    def flush(self):
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        self.sock.settimeout(self.settings.timeout)
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ClientGone(_reason(e)) from None

    def continue_if_expected(self):
        """Answer `Expect: 100-continue` before reading the body, so that
        the client does not wait for a 100 that never comes."""
        if self.h11.they_are_waiting_for_100_continue:
            self.queue(_CONTINUE)
            self.flush()

    # Errors and closing.

    def _fail(self, error, key, method=None):
        """Log the error and answer it if no response has started;
        returns whether the connection may serve another request."""
        if self.h11.our_state not in _CAN_RESPOND:
            self._log(key, f"response cut short: {error.reason}")
            return False
        self._log(key, f"{error.status} {error.reason}")
        keep = (self.settings.keepalive
                and self.h11.their_state is h11.DONE)
        response, body = error_response(error.status, close=not keep)
        try:
            self.queue(response)
            if method != b"HEAD":
                self.queue(h11.Data(data=body))
            self.queue(h11.EndOfMessage())
            self.flush()
        except ClientGone:
            return False
        return self._next_cycle()

    def _log(self, key, reason):
        log(f"[uwsgi-http key: {key} {self._who}] {reason}")

    def _close(self):
        conn = self.h11
        if conn.their_state in _MAY_BE_SENDING or conn.trailing_data[0]:
            self._drain()
        self.sock.close()

    def _drain(self):
        """Half-close, then read and drop until the client closes too."""
        deadline = time.monotonic() + LINGER_SECONDS
        try:
            self.sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                if not self.sock.recv(self.settings.read_size):
                    return
        except OSError:
            # Reset or timed out: there is nothing left to protect.
            return


def _host(request):
    """The Host header, the request's key in uWSGI's log lines."""
    for name, value in request.headers:
        if name == b"host":
            return value.decode("latin-1")
    return ""


def _describe(address):
    if isinstance(address, tuple):
        return f"client_addr: {address[0]} client_port: {address[1]}"
    return "client_addr: unix"


def _reason(error):
    return error.strerror or str(error) or type(error).__name__
