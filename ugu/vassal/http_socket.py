"""`http-socket`: HTTP straight into a worker, parsed with h11.

The request becomes the same vars the HTTP router would send (ugu.http.vars),
so the app sees one environ whichever way a request came in.  A connection
is served for as long as the client has requests already waiting on it
(pipelining, DEVIATIONS 4); an idle connection is closed at once, as
uWSGI's http-socket does, so a core never waits on a silent client.
"""

import select
import tempfile

import h11

from ugu import log, protocol
from ugu.http.vars import ListenerVars, RequestVars
from ugu.vassal import request
from ugu.vassal.offload import send_file
from ugu.vassal.transport import head_bytes
from ugu.vassal.wsgi import Input

READ_SIZE = 65536
# A de-chunked request body stays in memory up to this size, then spills
# to a temporary file.
SPOOL_LIMIT = 1 << 20
BAD_REQUEST = (400, b"Bad Request")
TOO_LARGE = (431, b"Request Header Fields Too Large")


class BodyReader:
    """The request body, read through h11 as the app asks for it."""

    def __init__(self, conn, h):
        self.conn, self.h = conn, h
        self._pending = b""

    def read(self, size):
        while not self._pending:
            event = _next_event(self.conn, self.h)
            if not isinstance(event, h11.Data):
                return b""
            self._pending = bytes(event.data)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def readline(self, size):
        line = b""
        while len(line) < size and not line.endswith(b"\n"):
            chunk = self.read(1)
            if not chunk:
                break
            line += chunk
        return line


class H11Transport:
    can_offload = True

    def __init__(self, conn, h):
        self.conn, self.h = conn, h
        self.head_only = False

    def start(self, protocol_, status_line, headers, first_chunk, head_only):
        self.head_only = head_only
        code, _, reason = status_line.partition(" ")
        response = h11.Response(status_code=int(code), headers=headers,
                                reason=reason.encode("latin-1"))
        data = self.h.send(response)
        if first_chunk and not head_only:
            data += self.h.send(h11.Data(data=first_chunk))
        self.conn.sendall(data)
        return len(head_bytes(protocol_, status_line, headers))

    def write(self, data):
        if not self.head_only:
            self.conn.sendall(self.h.send(h11.Data(data=data)))

    def send_file(self, fd, offset, count):
        self._advance_body(count)
        send_file(self.conn, fd, offset, count)

    def finish(self):
        if self.conn is not None and self.h.our_state is h11.SEND_BODY:
            self.conn.sendall(self.h.send(h11.EndOfMessage()))

    def detach(self):
        """Hand the connection to an offload thread: h11 is told the body
        went out, and the connection closes when the transfer ends."""
        # A duplicate, so the caller's close of its own socket cannot cut
        # the transfer short.
        conn, self.conn = self.conn.dup(), None
        return conn

    def _advance_body(self, count):
        # Only a sized body is sent by sendfile; h11 must count it as sent.
        for piece in self.h.send_with_data_passthrough(
                h11.Data(data=_Span(count))):
            if not isinstance(piece, _Span):
                self.conn.sendall(piece)


class _Span:
    """Stands for `count` body bytes that sendfile() sends past h11."""

    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count


def serve_http(ctx, core, listener, conn):
    h = h11.Connection(h11.SERVER, max_incomplete_event_size=ctx.buffer_size
                       * 16)
    constants = _listener_vars(ctx, listener)
    peer = constants.peer(conn.getpeername())
    while True:
        try:
            event = _next_event(conn, h)
        except h11.RemoteProtocolError as e:
            _refuse(conn, e)
            return
        if not isinstance(event, h11.Request):
            return
        transport = H11Transport(conn, h)
        if not _serve_one(ctx, core, constants, peer, event, conn, h,
                          transport):
            return
        if not _next_cycle(conn, h):
            return


def _listener_vars(ctx, listener):
    key = listener.sock.fileno()
    if key not in ctx.listener_vars:
        ctx.listener_vars[key] = ListenerVars(listener.port)
    return ctx.listener_vars[key]


def _serve_one(ctx, core, constants, peer, event, conn, h, transport):
    """Serve one request; False when the connection must end."""
    rv = RequestVars(event)
    body, length = _request_body(conn, h, rv)
    block = rv.block(constants, peer, length if rv.chunked else None)
    pairs = protocol.decode_vars(block)
    request_vars = {k.decode("latin-1"): v.decode("latin-1")
                    for k, v in pairs}
    ex = request.Exchange(ctx, core, transport, request_vars, 2 * len(pairs),
                          len(block), Input(body, length))
    request.handle(ex)
    if transport.conn is None:
        return False
    ex.input.drain()
    return True


def _request_body(conn, h, rv):
    """(stream, length) of the body; a chunked body is de-chunked first
    so that the app sees a CONTENT_LENGTH (DEVIATIONS 5)."""
    reader = BodyReader(conn, h)
    if not rv.chunked:
        length = rv.headers.get(b"CONTENT_LENGTH", b"0")
        return reader, int(length) if length.isdigit() else 0
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)
    while chunk := reader.read(READ_SIZE):
        spool.write(chunk)
    length = spool.tell()
    spool.seek(0)
    return spool, length


def _next_event(conn, h):
    while True:
        event = h.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = conn.recv(READ_SIZE)
        h.receive_data(data)
        if not data and h.their_state is h11.CLOSED:
            return h11.ConnectionClosed()


def _next_cycle(conn, h):
    """Go on only if the client already sent (part of) its next request:
    it is in h11's buffer or waiting on the socket."""
    if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
        return False
    h.start_next_cycle()
    if h.trailing_data[0]:
        return True
    return bool(select.select([conn], [], [], 0)[0])


def _refuse(conn, error):
    status, text = TOO_LARGE if error.error_status_hint == 431 else \
        BAD_REQUEST
    log.log(f"invalid HTTP request from {conn.getpeername()[0]}: {error}")
    reply = (f"HTTP/1.1 {status} {text.decode()}\r\nContent-Type: "
             f"text/plain\r\nContent-Length: {len(text)}\r\nConnection: "
             f"close\r\n\r\n").encode() + text
    conn.sendall(reply)
