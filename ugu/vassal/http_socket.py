"""`http-socket`: HTTP straight into a worker.

A plain HTTP/1.1 request (ugu.http.plain) is served on the fast path of
ugu.vassal.plain_http; any other, and every request when the environment
sets UGU_HTTP_SOCKET_PARSER=h11 (the tests run both paths), through h11.

The request becomes the same vars the HTTP router would send (ugu.http.vars),
so the app sees one environ whichever way a request came in.  A connection
is served for as long as the client has requests waiting on it
(pipelining, DEVIATIONS 4) or sends the next one within a moment while no
other connection waits; an idle connection is then closed, as uWSGI's
http-socket closes it, so a core never waits long on a silent client.
An http11-socket is served here too, and waits longer for the next
request (ugu.vassal.http11).

The request head must arrive whole within `socket-timeout` and fit in
`buffer-size`, as must its vars; a malformed head gets 400, an oversized
one 431, and the connection closes (DEVIATIONS 3, 18).
"""

import os
import socket
import time

import h11

from ugu import fdwait, log, protocol
from ugu.http import plain, proxyline
from ugu.http.errors import (BadRequest, BodyCutShort, BodyStalled,
                             HeadersTooLarge, HttpError, Unsendable,
                             error_bytes, h11_reason)
from ugu.http.response import END_OF_HEAD
from ugu.http.vars import ListenerVars, RequestVars
from ugu.vassal import http11, plain_http, request, sockets
from ugu.vassal.offload import send_file
from ugu.vassal.transport import head_bytes, send_with_head, size_line
from ugu.vassal.wsgi import Input

READ_SIZE = 65536
# A de-chunked request body stays in memory up to this size, then spills
# to a temporary file.
SPOOL_LIMIT = 1 << 20
HTTP_VERSIONS = (b"1.0", b"1.1")
# How long a refused connection reads what the client still sends, so
# that its unread bytes do not reset the error page away.
LINGER_SECONDS = 1.0
# How long a served connection waits for the client's next request: a
# client that sends it at once (a browser, a benchmark) keeps its
# connection instead of racing its close, and an idle one frees the core
# soon.  Never while another connection waits in the listen queue.
KEEPALIVE_WAIT = 0.05
# Read once, at start-up: the tests force every request through h11.
PLAIN = os.environ.get("UGU_HTTP_SOCKET_PARSER") != "h11"
_CAN_RESPOND = (h11.IDLE, h11.SEND_RESPONSE)
# The modifier1 values the Python plugin serves.
SERVED_MODIFIERS = (protocol.MODIFIER_WSGI,
                    protocol.MODIFIER_WSGI_SCRIPT_NAME)
_CONTINUE = h11.InformationalResponse(status_code=100, headers=[],
                                     reason=b"Continue")


class HeadTimeout(Exception):
    """The request head did not arrive within socket-timeout."""


class Client:
    """One client connection: its socket, the bytes read but not yet
    consumed, and the h11 state of a request that is not plain."""

    def __init__(self, conn, ctx, address):
        self.conn = conn
        self.buffer = bytearray()
        self.max_head = ctx.buffer_size
        self.h = None
        self.timeout = ctx.socket_timeout or None
        self.address = address[0] if isinstance(address, tuple) else "unix"
        self.closed = False
        # A chunked body's framing check, while one is read.
        self.framing = None

    def plain_request(self, deadline):
        """The next request if it is plain; else None, with h11 fed
        what was read (h11 then answers or refuses it)."""
        while not self.closed:
            end = plain.complete_head_at(self.buffer)
            if end is None or (end < 0 and len(self.buffer) > self.max_head):
                break
            if end >= 0:
                found = plain.parse_request(bytes(self.buffer[:end]))
                if found is not None:
                    del self.buffer[:end + len(END_OF_HEAD)]
                    return found
                break
            self.buffer += self._recv_by(deadline)
        self.start_h11()
        return None

    def start_h11(self):
        """An h11 connection for the next request, fed the buffer."""
        self.h = h11.Connection(h11.SERVER,
                                max_incomplete_event_size=self.max_head)
        if self.buffer:
            # b"" would tell h11 the connection closed.
            self.h.receive_data(bytes(self.buffer))
            self.buffer.clear()
        if self.closed:
            self.h.receive_data(b"")

    def end_h11(self):
        """Back to the plain path for the next request; False unless
        the h11 request and its response both ended cleanly."""
        h, self.h = self.h, None
        if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            return False
        h.start_next_cycle()
        self.buffer += h.trailing_data[0]
        self.closed = self.closed or h.trailing_data[1]
        return True

    def pending_head(self):
        return bool(self.buffer or self.h and self.h.trailing_data[0])

    def can_respond(self):
        return self.h is None or self.h.our_state in _CAN_RESPOND

    def next_event(self, deadline=None):
        h = self.h
        while True:
            event = h.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = self._recv_by(deadline)
            if self.framing is not None:
                self.framing.check(data)
            h.receive_data(data)

    def _recv_by(self, deadline):
        """Read more; with a deadline (the head's), a HeadTimeout once
        it has passed."""
        if deadline is None:
            return self.recv()
        if self.timeout is not None:
            # Non-blocking underneath: a plain read first spares the two
            # settimeout() calls and the poll of a timed recv when the
            # head is there already, as it nearly always is.
            try:
                data = os.read(self.conn.fileno(), READ_SIZE)
            except BlockingIOError:
                pass
            else:
                self.closed = not data
                return data
        left = deadline - time.monotonic()
        if left <= 0:
            raise HeadTimeout()
        self.conn.settimeout(left)
        try:
            return self.recv()
        except TimeoutError:
            raise HeadTimeout() from None
        finally:
            self.conn.settimeout(self.timeout)

    def recv(self):
        data = self.conn.recv(READ_SIZE)
        self.closed = not data
        return data

    def body_event(self):
        """The next event of the request body, after a `100 Continue`
        if the client waits for one."""
        if self.h.they_are_waiting_for_100_continue:
            self.conn.sendall(self.h.send(_CONTINUE))
        try:
            return self.next_event()
        except h11.RemoteProtocolError as e:
            if not self.closed:
                # Only a chunked body can be malformed, and it is read
                # whole before the app runs: this is still answerable.
                raise BadRequest(f"invalid chunked body: {h11_reason(e)}") \
                    from None
            raise BodyCutShort(f"request body cut short: {h11_reason(e)}") \
                from None
        except TimeoutError:
            raise BodyStalled("request body stalled for "
                              f"{self.timeout} seconds") from None

    def finish_request(self):
        """Read up to the end of the request (its unread body)."""
        while self.h.their_state is h11.SEND_BODY:
            self.body_event()


class BodyReader:
    """The request body, read through h11 as the app asks for it; reads
    return all that was asked for, short only at the end of the body, as
    a buffered file's do (wsgi.Input relies on it)."""

    def __init__(self, client):
        self.client = client
        self._pending = bytearray()
        self._ended = False

    def read(self, size):
        while len(self._pending) < size and self._more():
            pass
        return self._take(size)

    def read1(self, size):
        """What came, else one wait for more (b"" where the body ends)."""
        while not self._pending and self._more():
            pass
        return self._take(size)

    def readline(self, size):
        while (self._pending.find(b"\n", 0, size) < 0
               and len(self._pending) < size and self._more()):
            pass
        return self._take(self._pending.find(b"\n", 0, size) + 1 or size)

    def buffered(self):
        """Bytes of the body that came and were not read yet."""
        return len(self._pending)

    def fileno(self):
        return self.client.conn.fileno()

    def unread(self):
        """The bytes that came past the body (a websocket's first
        frames), which h11 holds once the body is read; the connection
        ends with this request, its next request never read."""
        self.client.finish_request()
        return self.client.h.trailing_data[0]

    def _more(self):
        if self._ended:
            return False
        event = self.client.body_event()
        if type(event) is h11.Data:
            self._pending += event.data
        else:
            self._ended = True
        return True

    def _take(self, size):
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data


class H11Transport:
    """A response framed by h11; or, when the app frames its body itself
    (a Transfer-Encoding of its own), sent as the app wrote it, as uWSGI
    sends it, and the connection closes after it."""

    # As RawTransport's.
    can_offload = True

    def __init__(self, conn, h, request):
        self.conn, self.h, self.request = conn, h, request
        self.head_only = False
        self.raw = False
        # The Content-Length the app declared, as text, if any.
        self.length = None
        self.closing = False

    def start(self, protocol_, status_line, headers, first_chunk, head_only,
              more=False):
        # The head goes at once, `more` or not (RawTransport's).
        self.head_only = head_only
        head = head_bytes(protocol_, status_line, headers)
        self.raw = any(name.lower() == "transfer-encoding"
                       for name, _ in headers)
        self.length = next((value.strip() for name, value in headers
                            if name.lower() == "content-length"), None)
        try:
            data = head if self.raw else self._h11_head(status_line,
                                                         headers)
            framed = b""
            if first_chunk and not head_only:
                framed = self._body(first_chunk)
        except Unsendable:
            self._restart_h11()
            raise
        send_with_head(self.conn, data + framed,
                       len(data) + size_line(framed, first_chunk), len(head))
        return len(head)

    def _h11_head(self, status_line, headers):
        code, _, reason = status_line.partition(" ")
        # PEP 3333 headers are latin-1 text; h11 would encode str as ASCII.
        # h11 refuses the spaces around a value that HTTP allows and a
        # client strips (Django starts every Set-Cookie value with one).
        encoded = [(name.encode("latin-1"),
                    value.strip(" \t").encode("latin-1"))
                   for name, value in headers]
        if self.closing:
            # h11 then frames the head for a close, and keeps to it; an
            # app's own Connection header would contradict it.
            encoded = [(name, value) for name, value in encoded
                       if name.lower() != b"connection"]
            encoded.append((b"Connection", b"close"))
        try:
            head = self.h.send(h11.Response(
                status_code=int(code), headers=encoded,
                reason=reason.encode("latin-1")))
        except h11.LocalProtocolError as e:
            raise Unsendable(h11_reason(e)) from None
        if self.request.http_version == b"1.0":
            # uWSGI answers in the request's protocol; h11 writes 1.1
            # (and frames the response for HTTP/1.0 all the same).
            head = b"HTTP/1.0" + head[8:]
        return head

    def _body(self, data):
        if self.raw:
            return data
        try:
            return self.h.send(h11.Data(data=data))
        except h11.LocalProtocolError as e:
            raise Unsendable(h11_reason(e)) from None

    def _restart_h11(self):
        """h11 refused the app's response before a byte of it went out
        and cannot take it back: a fresh h11 frames the server's 500
        instead, and the connection closes after it (the h11 that read
        the request stays in its error state)."""
        request = self.request
        self.h = h11.Connection(h11.SERVER)
        self.h.receive_data(b"%s / HTTP/%s\r\nHost: -\r\n"
                            b"Connection: close\r\n\r\n"
                            % (request.method, request.http_version))
        self.h.next_event()

    def write(self, data):
        if not self.head_only:
            self.conn.sendall(self._body(data))

    def send_file(self, fd, offset, count, on_wait=None):
        """sendfile() inside the framing h11 gives that many bytes: a
        chunk's size line before them and its CRLF after, or nothing for
        a body of declared length."""
        before, after = ([], []) if self.raw else self._framing(count)
        for piece in before:
            self.conn.sendall(piece)
        send_file(self.conn, fd, offset, count, on_wait)
        for piece in after:
            self.conn.sendall(piece)

    def offloadable(self, count):
        """A body of the declared length goes out unframed: an offload
        thread may send it (h11 counts it sent; the connection then
        closes).  A chunked one stays with the core."""
        if self.raw or self.length != str(count):
            return False
        self._framing(count)
        return True

    def close_after(self):
        """The connection closes after this response: its head says so."""
        self.closing = True

    def finish(self):
        if self.raw or self.conn is None or \
                self.h.our_state is not h11.SEND_BODY:
            return
        try:
            end = self.h.send(h11.EndOfMessage())
        except h11.LocalProtocolError as e:
            # The app sent less than its Content-Length: only closing the
            # connection tells the client the response is incomplete.
            log.log(f"response cut short: {e}")
            return
        # Empty for a body of declared length, whose client may have
        # read it all and gone: a send of nothing would fail then.
        if end:
            self.conn.sendall(end)

    def detach(self):
        """Hand the connection to an offload thread: h11 is told the body
        went out, and the connection closes when the transfer ends."""
        conn, self.conn = self.conn, None
        return conn

    def _framing(self, count):
        """h11 counts `count` body bytes as sent, which sendfile() sends
        past it; the framing pieces it gives before and after them."""
        try:
            pieces = list(self.h.send_with_data_passthrough(
                h11.Data(data=_Span(count))))
        except h11.LocalProtocolError as e:
            raise Unsendable(h11_reason(e)) from None
        spans = [i for i, piece in enumerate(pieces)
                 if isinstance(piece, _Span)]
        if not spans:
            return pieces, []
        return pieces[:spans[0]], pieces[spans[0] + 1:]


class _Span:
    """Stands for `count` body bytes that sendfile() sends past h11."""

    def __init__(self, count):
        self.count = count

    def __len__(self):
        return self.count


class Site:
    """What every request on one connection shares: the listener's and
    the peer's vars, encoded and, for the plain path, decoded."""

    def __init__(self, ctx, listener, address):
        self.constants = _listener_vars(ctx, listener)
        self.peer = self.constants.peer(address)
        self.fixed = None
        self.modifiers = (ctx.https_modifiers
                          if listener.proto == sockets.HTTPS
                          else ctx.http_modifiers)

    def fixed_vars(self):
        if self.fixed is None:
            self.fixed = plain_http.Fixed(self.constants.constants,
                                          self.peer)
        return self.fixed


def serve_http(ctx, core, listener, conn, address):
    client = Client(conn, ctx, address)
    site = Site(ctx, listener, address)
    if ctx.proxy_protocol and not _read_proxy_line(client, site, ctx):
        return
    while True:
        event = _read_request(client, ctx)
        if event is None:
            return
        try:
            if client.h is None:
                reusable = _serve_plain(ctx, core, site, event, client)
            else:
                reusable = _serve_one(ctx, core, site, event, client)
        except HttpError as e:
            _refuse(client, e, event.method == b"HEAD")
            return
        except BodyCutShort as e:
            _log(client, f"client went away: {e}")
            return
        if not (reusable and _next_cycle(client, listener, ctx, core)):
            return


def _read_proxy_line(client, site, ctx):
    """enable-proxy-protocol: a PROXY line before the first request names
    the client for every request of the connection; False once the
    client left or stalled before its end."""
    deadline = (time.monotonic() + ctx.socket_timeout
                if ctx.socket_timeout else None)
    try:
        while (found := proxyline.parse(client.buffer, client.max_head)) \
                is proxyline.INCOMPLETE and not client.closed:
            client.buffer += client._recv_by(deadline)
    except HeadTimeout:
        return False
    if found is proxyline.INCOMPLETE:
        return not client.buffer
    if found is not None:
        size, source, port = found
        del client.buffer[:size]
        if source is not None:
            site.peer = protocol.encode_vars(
                proxyline.peer_pairs(source, port))
    return True


def _read_request(client, ctx):
    """The next request (a plain.PlainRequest or an h11.Request), or None
    once the connection must end (after answering or logging why, when
    there is a reason)."""
    deadline = (time.monotonic() + ctx.socket_timeout
                if ctx.socket_timeout else None)
    try:
        if PLAIN and (found := client.plain_request(deadline)):
            return found
        if client.h is None:
            client.start_h11()
        event = client.next_event(deadline)
    except h11.RemoteProtocolError as e:
        if client.closed:
            # h11 met the close before the head's end: nobody to answer.
            log.log("uwsgi_proto_http_parser() -> client closed connection")
            return None
        if e.error_status_hint == 431:
            _say_too_large(client.max_head)
            _refuse(client, HeadersTooLarge(h11_reason(e)))
        else:
            _refuse(client, BadRequest(h11_reason(e)))
        return None
    except HeadTimeout:
        # A silent client is no error; one that stalls mid-head is.
        if client.pending_head():
            _log(client, f"request head incomplete after "
                         f"{ctx.socket_timeout} seconds")
        return None
    except ConnectionError as e:
        # A reset, said as uWSGI's parser says it where a head had begun
        # (uWSGI's http-socket keeps no idle connection to see one on).
        if client.pending_head():
            log.log(f"uwsgi_proto_http_parser(): {e.strerror} "
                    f"[proto/http.c line 463]")
        return None
    return event if type(event) is h11.Request else None


def _listener_vars(ctx, listener):
    key = listener.sock.fileno()
    if key not in ctx.listener_vars:
        ctx.listener_vars[key] = ListenerVars(
            listener.port, router=False,
            https=listener.proto == sockets.HTTPS)
    return ctx.listener_vars[key]


def _serve_plain(ctx, core, site, found, client):
    """Serve one plain request; False when the connection must end."""
    request_vars, count, size = plain_http.request_vars(
        found, site.fixed_vars())
    if size > ctx.buffer_size:
        # Refused with the words of the block's own checks.
        _checked_block(RequestVars(found), ctx, site)
    transport = plain_http.PlainTransport(client.conn, found, H11Transport)
    body = plain_http.PlainBody(client, found.length)
    ex = ctx.exchange(ctx, core, transport, request_vars, 2 * count,
                      size, Input(body, found.length))
    if site.modifiers is not None:
        if not _handle_modified(ex, site.modifiers):
            return False
    else:
        request.handle(ex)
    if transport.conn is None:
        return False
    if not ex.input.drain():
        _linger(client.conn)
        return False
    return transport.reusable()


def _serve_one(ctx, core, site, event, client):
    """Serve one request through h11; False when the connection must
    end."""
    if event.http_version not in HTTP_VERSIONS:
        # h11 parses any HTTP/d.d; the others are not HTTP/1.
        raise BadRequest(f"unsupported HTTP/{event.http_version.decode()}")
    rv = RequestVars(event)
    block = _checked_block(rv, ctx, site)
    body, length = _request_body(client, rv)
    if rv.chunked:
        block = _checked_block(rv, ctx, site, length)
    # A repeated var cannot occur: RequestVars joins repeated headers.
    request_vars, count = protocol.decode_text(block)
    if count > ctx.max_vars:
        # uWSGI closes the connection unanswered (DEVIATIONS 3).
        raise HeadersTooLarge(f"{count} uwsgi vars exceed max-vars "
                              f"({ctx.max_vars // 2}: {ctx.max_vars} vars)")
    transport = H11Transport(client.conn, client.h, event)
    if rv.chunked:
        # Where uwsgi.chunked_read finds the chunks (ugu.vassal.chunked).
        transport.dechunked = (body, body.chunk_sizes)
    ex = ctx.exchange(ctx, core, transport, request_vars, 2 * count,
                      len(block), Input(body, length))
    try:
        if site.modifiers is None:
            request.handle(ex)
        elif not _handle_modified(ex, site.modifiers):
            return False
        # Before the spool closes: a de-chunked body the app left unread
        # is drained from there.
        drained = transport.conn is not None and ex.input.drain()
    finally:
        if rv.chunked:
            body.close()
    if not drained:
        if transport.conn is not None:
            _linger(client.conn)
        return False
    client.finish_request()
    return client.end_h11()


def _handle_modified(ex, modifiers):
    """Serve a request under http-socket-modifier1/2; False once the
    connection must close: a modifier1 the Python plugin does not serve
    (0 and 30 it does) leaves the request unanswered, or answered by its
    routes alone, and uWSGI closes the connection then."""
    modifier1, modifier2 = modifiers
    ex.modifier1, ex.modifier2 = modifier1, modifier2
    if modifier1 in SERVED_MODIFIERS:
        request.handle(ex)
        return True
    request.handle_unserved(ex, modifier1)
    return False


def _checked_block(rv, ctx, site, length=None):
    """The vars block, which must fit in buffer-size as through a uwsgi
    socket."""
    block = rv.block(site.constants, site.peer, length)
    if len(block) > ctx.buffer_size:
        _say_too_large(ctx.buffer_size)
        raise HeadersTooLarge(f"uwsgi vars of {len(block)} bytes exceed "
                              f"buffer-size ({ctx.buffer_size})")
    return block


def _say_too_large(buffer_size):
    """uWSGI's line for a request over buffer-size, which log watchers
    know, before ugu's, which says what was too large."""
    log.log(f"invalid HTTP request size (max {buffer_size})...skip")


def _request_body(client, rv):
    """(stream, length) of the body; a chunked body is de-chunked first
    so that the app sees a CONTENT_LENGTH (DEVIATIONS 5)."""
    if not rv.chunked:
        length = rv.headers.get(b"CONTENT_LENGTH", b"0")
        return BodyReader(client), int(length) if length.isdigit() else 0
    import tempfile         # only for a chunked body (its modules cost)
    from ugu.http.chunked import ChunkedFraming
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_LIMIT)
    # The size of each chunk, for uwsgi.chunked_read.
    spool.chunk_sizes = sizes = []
    part = 0
    # Its framing is checked strictly as it comes: a bare LF in it is
    # refused at once, where h11 would wait or go along.
    client.framing = ChunkedFraming(client.max_head)
    try:
        client.framing.check(client.h.trailing_data[0])
        while type(event := client.body_event()) is h11.Data:
            spool.write(event.data)
            part += len(event.data)
            if event.chunk_end:
                sizes.append(part)
                part = 0
    except BaseException:
        spool.close()
        raise
    finally:
        client.framing = None
    length = spool.tell()
    spool.seek(0)
    return spool, length


def _next_cycle(client, listener, ctx, core):
    """Go on only if the client sends (part of) its next request soon:
    it is in the buffer, waiting on the socket, or arrives within
    KEEPALIVE_WAIT while no other connection waits to be accepted (with
    threads; a gevent worker waits longer, see GreenCores, and so does
    an http11-socket, see ugu.vassal.http11)."""
    if client.buffer:
        return True
    if ctx.green_cores is not None:
        return ctx.green_cores.next_request_arrives(client.conn,
                                                    client.timeout)
    if listener.proto == sockets.HTTP11:
        return http11.next_request_arrives(ctx, core, client.conn,
                                           listener)
    return client.conn in fdwait.readable([client.conn, listener.sock],
                                         KEEPALIVE_WAIT)


def _refuse(client, error, head_only=False):
    """Answer with the error page, if no response has started, and
    close; one log line either way."""
    _log(client, f"{error.status} {error.reason}")
    if not client.can_respond():
        return
    try:
        client.conn.sendall(error_bytes(error.status, head_only))
    except OSError:
        # Gone already: the line above said what went wrong.
        return
    _linger(client.conn)


def _linger(conn):
    """Half-close, then read and drop what the client still sends, for
    a moment: closing with unread bytes would reset the answer away (an
    error page, or a response given before the body was read: a 413 for
    a body over limit-post)."""
    deadline = time.monotonic() + LINGER_SECONDS
    try:
        conn.shutdown(socket.SHUT_WR)
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if not conn.recv(READ_SIZE):
                return
    except OSError:
        # Reset or timed out: there is nothing left to protect.
        return


def _log(client, reason):
    log.log(f"[http-socket client_addr: {client.address}] {reason}")
