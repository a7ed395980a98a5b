"""One request/response cycle of a client connection, on one of two paths.

A plain request (ugu.http.plain) is read and answered by `PlainCycle`
straight from the connection's buffer; any other goes to `H11Cycle`, a
fresh h11 connection fed with the same bytes.  Both give the Exchange one
interface: the request (method, target, http_version, lowercased
headers), its body's pieces, and the response's 1xx heads, head, data and
end, queued on the client connection.  Bytes the cycle did not consume (a
pipelined request) go back to the connection's buffer when it ends.
"""

import h11

from ugu.http import plain
from ugu.http.errors import (BadGateway, ClientClosed, error_bytes,
                             error_response)

_CONTINUE = h11.InformationalResponse(status_code=100, headers=[],
                                     reason=b"Continue")
_END = h11.EndOfMessage()
_CAN_RESPOND = (h11.IDLE, h11.SEND_RESPONSE)
# The client may still be sending what the router will not read.
_MAY_BE_SENDING = (h11.SEND_BODY, h11.ERROR)


class PlainCycle:
    """A plain request, answered with bytes framed here."""

    def __init__(self, client, request):
        self.client = client
        self.request = request
        self.body_left = request.length
        self.started = self.done = False
        self._chunked = False
        # h11, for a response the plain framing does not cover.
        self._h11 = None

    def body_pieces(self, timeout):
        client, buffer = self.client, self.client.buffer
        if buffer and self.body_left:
            data = bytes(buffer[:self.body_left])
            del buffer[:len(data)]
            self.body_left -= len(data)
            yield data
        while self.body_left:
            data = client.recv(timeout)
            if not data:
                raise ClientClosed("request body cut short: the client "
                                   f"closed {self.body_left} bytes early")
            if len(data) > self.body_left:
                buffer += data[self.body_left:]
                data = data[:self.body_left]
            self.body_left -= len(data)
            yield data

    def send_informational(self, status, reason, headers):
        self.client.write(plain.head_bytes(status, reason, headers))

    def start_response(self, status, reason, headers, sized, plain_head):
        self.started = True
        if not plain_head:
            self._h11 = plain.h11_after(self.request)
            _start_h11(self.client, self._h11, status, reason, headers)
            return
        self._chunked = (not sized and self.request.method != b"HEAD"
                         and status not in plain.NO_BODY_STATUS)
        self.client.write(plain.response_head(
            status, reason, headers, sized, self.request.keep_alive))

    def send_data(self, data):
        if self._h11 is not None:
            self.client.write(self._h11.send(h11.Data(data=data)))
        elif not self._chunked:
            self.client.write(data)
        elif data:
            self.client.write(b"%x\r\n" % len(data))
            self.client.write(data)
            self.client.write(b"\r\n")

    def end_response(self):
        if self._h11 is not None:
            self.client.write(self._h11.send(_END))
        elif self._chunked:
            self.client.write(plain.LAST_CHUNK)
        self.done = True

    def respond_error(self, status, keep, head_only):
        """The router's page for status; False when no response can be
        sent any more."""
        if self.started:
            return False
        close = not (keep and self.request.keep_alive)
        self.client.write(error_bytes(status, head_only, close))
        self.done = True
        return True

    def request_read(self):
        return not self.body_left

    def expects_continue(self):
        # An Expect header makes a request not plain.
        return False

    def body_arrived(self):
        """Whether body bytes came with the head (and wait in the
        buffer)."""
        return bool(self.client.buffer)

    def may_be_sending(self):
        return bool(self.body_left)

    def reusable(self):
        """Whether another request may follow on the connection."""
        return (self.done and not self.body_left and self.request.keep_alive
                and (self._h11 is None or self._h11.our_state is h11.DONE))


def _start_h11(client, conn, status, reason, headers):
    try:
        client.write(conn.send(h11.Response(status_code=status,
                                            reason=reason, headers=headers)))
    except h11.LocalProtocolError as e:
        raise BadGateway(f"invalid response from backend: {e}")


class H11Cycle:
    """Any other request: h11 reads it, then frames the response."""

    def __init__(self, client, data):
        self.client = client
        self.h11 = conn = h11.Connection(
            h11.SERVER, max_incomplete_event_size=client.max_head)
        conn.receive_data(data)
        self.request = None
        # A chunked body's framing check, while one is read.
        self._framing = None

    def next_event(self, timeout):
        """The next h11 event from the client, reading as needed: each
        read waits up to `timeout`."""
        return self.client.next_h11_event(self.h11, timeout, self._framing)

    def pending_head(self):
        return bool(self.h11.trailing_data[0])

    def body_arrived(self):
        return bool(self.h11.trailing_data[0])

    def body_pieces(self, timeout):
        if self.h11.they_are_waiting_for_100_continue:
            self.client.write(self.h11.send(_CONTINUE))
            self.client.flush()
        while True:
            event = self.next_event(timeout)
            if type(event) is not h11.Data:
                # EndOfMessage; h11 raises for a body cut short.
                return
            yield event.data

    def chunked_pieces(self, timeout):
        """body_pieces of a chunked body, whose framing is checked
        strictly as it comes (ugu.http.chunked): BadRequest at once
        where h11 would wait or go along."""
        from ugu.http.chunked import ChunkedFraming
        self._framing = ChunkedFraming(self.client.max_head)
        try:
            self._framing.check(self.h11.trailing_data[0])
            yield from self.body_pieces(timeout)
        finally:
            self._framing = None

    def send_informational(self, status, reason, headers):
        self.client.write(self.h11.send(h11.InformationalResponse(
            status_code=status, reason=reason, headers=headers)))

    def start_response(self, status, reason, headers, sized, plain_head):
        _start_h11(self.client, self.h11, status, reason, headers)

    def send_data(self, data):
        self.client.write(self.h11.send(h11.Data(data=data)))

    def end_response(self):
        self.client.write(self.h11.send(_END))

    def respond_error(self, status, keep, head_only):
        conn = self.h11
        if conn.our_state not in _CAN_RESPOND:
            return False
        response, body = error_response(
            status, close=not (keep and conn.their_state is h11.DONE))
        self.client.write(conn.send(response))
        if not head_only:
            self.client.write(conn.send(h11.Data(data=body)))
        self.client.write(conn.send(_END))
        return True

    def request_read(self):
        return self.h11.their_state is h11.DONE

    def expects_continue(self):
        return self.h11.they_are_waiting_for_100_continue

    def may_be_sending(self):
        return (self.h11.their_state in _MAY_BE_SENDING
                or self.pending_head())

    def reusable(self):
        conn = self.h11
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    def leftover(self):
        """The bytes after this request, once it is done."""
        self.h11.start_next_cycle()
        return self.h11.trailing_data[0]
