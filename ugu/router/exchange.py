"""One request through a backend: uwsgi packet and body out, HTTP back.

The backend answers with raw HTTP and closes the connection when it is
done, one connection per request.  A plain response head (as workers
write them) is parsed by ugu.http.response; any other goes to a
client-role h11 connection that is first told about a request (so that it
knows what to expect: no body for HEAD, end of body at EOF when there is
no framing).  Either way the response is relayed piece by piece to the
client connection's cycle (ugu.router.cycle), which frames it for the
client: chunked when the length is unknown.

Bodies stream both ways; only a chunked request body is spooled first
(to a file past SPOOL_MEMORY), since the uwsgi packet must carry its
length (DEVIATIONS 5).
"""

import re

import h11

from ugu import protocol, staticanswer
from ugu.http import gzip
from ugu.http.errors import (AppFailed, BadGateway, BadRequest,
                             BodyTooLarge, ClientClosed, GatewayTimeout,
                             h11_reason)
from ugu.http.response import END_OF_HEAD, parse_head

SPOOL_MEMORY = 1 << 20
# The largest response head looked for before h11 takes over (and
# refuses it).
MAX_HEAD = 65536
# What the backend parser is told it asked for: only the method matters.
# Built once per method, bounded since clients choose methods.
_PROBES = {}
_PROBES_LIMIT = 64
_END = h11.EndOfMessage()
_NO_BODY_STATUS = (204, 304)
# A backend switching protocols: an app's websocket handshake, which
# only an http-websockets session (ugu.router.tunnel) can carry on.
_SWITCHING = re.compile(rb"HTTP/1\.[01] 101\b")
# A uwsgi worker's buffer-size unless its config says otherwise: it drops
# a request whose vars block is larger, without a word to the router.
WORKER_BUFFER_SIZE = 4096


class _Answered(Exception):
    """The backend answered while the client was still sending."""


class Exchange:
    def __init__(self, client, cycle, head):
        self.client = client
        self.cycle = cycle
        self.request = cycle.request
        self.head = head
        self.settings = client.settings
        self.received = 0
        self.packet_size = 0
        # The error of a backend connection reset after its answer began.
        self._reset = None
        # The request was offered to keep a static answer, and the
        # worker's marker is not yet out of its head (ugu.staticanswer).
        self.offered = False

    def run(self, tried=()):
        """The whole exchange; `tried`: nodes that already failed to
        connect for this request."""
        self._check_expected_body()
        body = self._spool() if self.head.chunked else None
        packet = self._packet(body)
        self.packet_size = len(packet)
        node, backend = self.client.router.nodes.connect(self.head, tried)
        if node.retag is not None:
            packet = node.retag(packet, self.settings)
        # `http-modifier2 = 117` offers without meaning to: an ugu worker
        # marks its static answers all the same.
        self.offered = packet[3] == staticanswer.OFFER
        try:
            self._send(backend, packet, body)
            self._relay(backend)
        finally:
            backend.close()
            if body is not None:
                body.close()

    def resume(self, backend, unsent=b"", buffered=b"", closed=False,
               reset=None):
        """Finish an exchange the fast path (ugu.router.fastpath) began on
        `backend`: the rest of the packet goes out, then the response is
        relayed, `buffered` being what the backend has sent so far and
        `closed` whether it has closed since (`reset`: the error of a
        connection reset, if that is how)."""
        self.received = len(buffered)
        self._reset = reset
        try:
            if unsent:
                self._send(backend, unsent, None)
            self._relay(backend, buffered, closed)
        finally:
            backend.close()

    def _check_expected_body(self):
        """With `http-manage-expect = N`, as in uWSGI: a request whose
        client waits for leave to send more than N bytes is refused
        before any node sees it."""
        limit = self.settings.expect_limit
        if limit and self.cycle.expects_continue():
            length = int(self.head.headers.get(b"CONTENT_LENGTH", 0))
            if length > limit:
                raise BodyTooLarge(f"a body of {length} bytes is over "
                                   f"http-manage-expect ({limit})")

    def _packet(self, body):
        length = None if body is None else body.tell()
        return packet(self.client, self.head, length)

    # Request: client -> backend.

    def _spool(self):
        import tempfile     # only for a body to spool (its modules cost)
        body = tempfile.SpooledTemporaryFile(SPOOL_MEMORY)
        try:
            # Only an H11Cycle carries a chunked body.
            for data in self.cycle.chunked_pieces(self.settings.timeout):
                body.write(data)
        except h11.RemoteProtocolError as e:
            body.close()
            if self.cycle.h11.trailing_data[1]:
                # h11 met the client's close before the body's end.
                raise ClientClosed("chunked body cut short") from None
            raise BadRequest(f"invalid chunked body: {h11_reason(e)}") \
                from None
        except BaseException:
            body.close()
            raise
        return body

    def _body_pieces(self):
        return self.cycle.body_pieces(self.settings.timeout)

    def _send(self, backend, packet, body):
        try:
            if body is None:
                self._send_streamed(backend, packet)
            else:
                self._send_spooled(backend, packet, body)
        except TimeoutError:
            raise GatewayTimeout("backend stopped reading the request")
        except OSError:
            # The backend stopped reading (it may answer without reading
            # the body); what it says is read next.  The rest of the
            # client's body stays unread and the connection closes.
            return

    def _send_streamed(self, backend, packet):
        """The packet, then the body as the client sends it, until the
        backend answers: an app that answers without reading an upload
        is heard at once, as through uWSGI's router, and the rest of the
        body is left unread (the client connection then closes)."""
        pending = packet
        if not self.cycle.body_arrived():
            # Sent with the body's first bytes when they came with the
            # head; otherwise now, as uWSGI's router sends it, so that an
            # app that answers without the body is not kept waiting for
            # a client that sends it late (or only after an answer).
            backend.sendall(packet, self.settings.timeout)
            pending = b""
        client = self.client.channel
        alarm = backend.on_readable(lambda: client.interrupt(_Answered()))
        try:
            for data in self._body_pieces():
                backend.sendall(pending + data, self.settings.timeout)
                pending = b""
        except _Answered:
            # The worker sees the body end: it need not wait for more.
            backend.shutdown_write()
            return
        except h11.RemoteProtocolError as e:
            # A body with a Content-Length only fails by ending early.
            raise ClientClosed(f"request body cut short: "
                               f"{h11_reason(e)}") from None
        finally:
            alarm.close()
            client.interrupt(None)
        if pending:
            backend.sendall(pending, self.settings.timeout)

    def _send_spooled(self, backend, packet, body):
        backend.sendall(packet, self.settings.timeout)
        body.seek(0)
        while data := body.read(self.settings.read_size):
            backend.sendall(data, self.settings.timeout)

    # Response: backend -> client.

    def _relay(self, backend, buffered=b"", closed=False):
        buffered, closed = self._read_head(backend, buffered, closed)
        if self.offered:
            buffered = staticanswer.take_marker(
                buffered, buffered.find(END_OF_HEAD))[0]
        if _SWITCHING.match(buffered):
            # uWSGI's router relays the 101 and then none of the frames:
            # the client waits for ever for its websocket.
            raise BadGateway("backend answered 101 Switching Protocols (a "
                             "websocket's handshake): the router relays "
                             "websockets with http-websockets = true")
        end = buffered.find(END_OF_HEAD)
        head = parse_head(buffered[:end]) if end >= 0 else None
        if head is None:
            compressor, pieces = self._parsed_by_h11(backend, buffered,
                                                     closed)
        else:
            compressor = self._start_response(head.status, head.reason,
                                              head.headers, head.length)
            pieces = self._body(backend, head, buffered[end + 4:], closed)
        self._relay_body(pieces, compressor)

    def _read_head(self, backend, buffered, closed):
        """(bytes up to the end of the head, or all the backend sent
        before closing; whether it closed)."""
        while (not closed and END_OF_HEAD not in buffered
               and len(buffered) < MAX_HEAD):
            data = self._recv(backend)
            closed = not data
            buffered += data
        return buffered, closed

    def _body(self, backend, head, data, closed):
        """The body's pieces, by the plain head's framing."""
        if (self.request.method == b"HEAD"
                or head.status in _NO_BODY_STATUS):
            return ()
        if head.length is None:
            return self._body_to_close(backend, data, closed)
        return self._sized_body(backend, data, head.length)

    def _sized_body(self, backend, data, length):
        while len(data) < length:
            if data:
                yield data
                length -= len(data)
            self.client.flush()
            data = self._recv(backend)
            if not data:
                raise BadGateway(f"backend closed the response {length} "
                                 "bytes short")
        if length:
            yield data[:length]

    def _body_to_close(self, backend, data, closed):
        if data:
            yield data
        while not closed:
            self.client.flush()
            data = self._recv(backend)
            closed = not data
            if data:
                yield data

    def _parsed_by_h11(self, backend, buffered, closed):
        """The response through h11, for what the plain parser left:
        (compressor, the body's pieces) once the head has started the
        client's response."""
        parser = h11.Connection(h11.CLIENT)
        parser.send(_probe(self.request.method))
        parser.send(_END)
        parser.receive_data(buffered)
        if closed:
            parser.receive_data(b"")
        response = self._response_head(backend, parser)
        compressor = self._start_response(
            response.status_code, response.reason,
            response.headers.raw_items(), plain_head=False)
        return compressor, self._h11_body(backend, parser)

    def _response_head(self, backend, parser):
        while True:
            event = self._backend_event(backend, parser)
            if type(event) is h11.Response:
                return event
            if type(event) is not h11.InformationalResponse:
                raise BadGateway(f"unexpected backend event {event!r}")
            self._relay_informational(event)

    def _relay_informational(self, event):
        """A 1xx (an Early Hints, a 100 Continue) goes to the client at
        once, as uWSGI's router relays it; never to an HTTP/1.0 client,
        which knows no 1xx (RFC 9110 15.2), though uWSGI's sends it."""
        if self.request.http_version != b"1.1":
            return
        self.cycle.send_informational(event.status_code, event.reason,
                                      event.headers.raw_items())
        self.client.flush()

    def _h11_body(self, backend, parser):
        while True:
            event = self._backend_event(backend, parser, self.client.flush)
            if type(event) is h11.Data:
                yield event.data
            elif type(event) is h11.EndOfMessage:
                return
            else:
                raise BadGateway(f"unexpected backend event {event!r}")

    def _start_response(self, status, reason, raw_headers, length=None,
                        plain_head=True):
        """Start the client's response; its compressor, or None.  A
        plain head (ugu.http.response) with a length keeps it, unless
        gzipped."""
        if self.settings.auto_gzip:
            may_gzip = (status not in _NO_BODY_STATUS
                        and gzip.accepts_gzip(self.head.accept_encoding))
            headers, compressor = gzip.prepare(raw_headers, may_gzip)
        else:
            # Without http-auto-gzip the marker is any header, as in uWSGI.
            headers, compressor = raw_headers, None
        self.cycle.start_response(status, reason, headers,
                                  length is not None and compressor is None,
                                  plain_head)
        return compressor

    def _relay_body(self, pieces, compressor):
        cycle = self.cycle
        for data in pieces:
            if compressor:
                data = compressor.compress(data)
            cycle.send_data(data)
        self._check_not_broken_off()
        if compressor and self.request.method != b"HEAD":
            cycle.send_data(compressor.finish())
        cycle.end_response()
        self.client.flush()

    def _check_not_broken_off(self):
        """A body framed by the close (a body of any other framing tells
        its own end) that ended with a reset: where the request had no
        body, which the worker could have left unread and reset over, the
        worker broke the response off (an ugu worker resets one it cannot
        finish), and the client must not take it for whole."""
        if self._reset is not None and not self._request_has_body():
            raise BadGateway(f"backend broke off the response: "
                             f"{self._reset.strerror or self._reset}")

    def _request_has_body(self):
        return self.head.chunked or \
            self.head.headers.get(b"CONTENT_LENGTH", b"0") not in (b"", b"0")

    def _backend_event(self, backend, parser, before_read=None):
        """The next event of the backend's response; before_read runs
        each time more bytes must be awaited."""
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError as e:
                raise BadGateway("invalid response from backend: "
                                 f"{h11_reason(e)}")
            if event is not h11.NEED_DATA:
                return event
            if before_read:
                before_read()
            parser.receive_data(self._recv(backend))

    def _recv(self, backend):
        try:
            data = backend.recv(self.settings.read_size,
                                self.settings.timeout)
        except TimeoutError:
            raise GatewayTimeout("backend did not answer within "
                                 f"{self.settings.timeout} seconds")
        except OSError as e:
            if not self.received:
                raise backend_failed(e, self.packet_size)
            # A worker that closes with the request body unread resets
            # rather than closes; the response has been read by then,
            # and h11 still tells a body cut short.  A body framed by the
            # close is told by _check_not_broken_off.
            self._reset = e
            data = b""
        if not data and not self.received:
            raise backend_closed(self.packet_size)
        self.received += len(data)
        return data


def backend_failed(error, packet_size):
    """The 502 for a backend whose connection failed before it answered."""
    return BadGateway(f"backend connection failed: {error}"
                      f"{_dropped_vars_hint(packet_size)}")


def backend_closed(packet_size):
    """The 500 for a backend that closed without answering."""
    return AppFailed("backend closed the connection without a response"
                     f"{_dropped_vars_hint(packet_size)}")


def _dropped_vars_hint(packet_size):
    """Why, most likely, when the vars were more than a worker takes by
    default: the worker logs it, but the router's log is where a user
    looks for the 502."""
    block = packet_size - protocol.HEADER_SIZE
    if block <= WORKER_BUFFER_SIZE:
        return ""
    return (f" (this request's uwsgi vars are {block} bytes: a worker "
            f"drops vars over its buffer-size, {WORKER_BUFFER_SIZE} by "
            f"default; raise buffer-size in the worker's config)")


def _probe(method):
    probe = _PROBES.get(method)
    if probe is None:
        probe = h11.Request(method=method, target=b"/",
                            headers=[(b"Host", b"backend")])
        if len(_PROBES) < _PROBES_LIMIT:
            _PROBES[method] = probe
    return probe


def packet(client, head, body_length=None, offer=False):
    """The uwsgi packet of a request: header and vars block; `offer`:
    with the offer to repeat a static file's answer (ugu.staticanswer),
    where the modifiers are left at 0."""
    settings = client.settings
    block = head.block(client.listener_vars, client.peer, body_length)
    modifier2 = settings.modifier2
    if offer and not (settings.modifier1 or modifier2):
        modifier2 = staticanswer.OFFER
    return protocol.HEADER.pack(settings.modifier1, len(block),
                                modifier2) + block
