"""http-socket's fast path: a plain HTTP/1.1 request (ugu.http.plain)
served without h11.

The vars go straight into the dict the app's environ is built from, with
the count and size the encoded block would have had (the request log line
reports both), and the response head the app shapes is framed as h11 would
frame it for the same request.  A response h11 must frame (a Connection
or Transfer-Encoding header from the app, a value h11 would refuse) goes
through an h11 connection that has read the same request head.
"""

import h11

from ugu import log
from ugu.http import plain
from ugu.http.errors import BodyCutShort, BodyStalled, Unsendable
from ugu.http.vars import UNPREFIXED, path_info
from ugu.protocol import decode_text
from ugu.vassal.offload import send_file
from ugu.vassal.transport import (head_bytes, send_all, send_more,
                                  send_with_head, size_line)

# Each var costs its two 2-byte lengths in the block.
_PAIR = 4
# The var names of headers seen so far, as str; bounded because clients
# choose the names.
_KEYS = {name: key.decode() for name, key in UNPREFIXED.items()}
_KEYS_LIMIT = 512
_TARGET_KEYS_SIZE = sum(map(len, ("REQUEST_METHOD", "REQUEST_URI",
                                  "PATH_INFO", "QUERY_STRING",
                                  "SERVER_PROTOCOL"))) + 5 * _PAIR


class Fixed:
    """Decoded vars every request on one connection shares (the
    listener's and the peer's), with their count and encoded size."""

    __slots__ = ("vars", "count", "size")

    def __init__(self, *blocks):
        block = b"".join(blocks)
        self.vars, self.count = decode_text(block)
        self.size = len(block)


def request_vars(request, fixed):
    """(vars, count, size) of a PlainRequest, as decoding the block of
    ugu.http.vars.RequestVars would give them."""
    method = request.method.decode("latin-1")
    uri = request.target.decode("latin-1")
    raw_path, question, query = request.target.partition(b"?")
    path = path_info(raw_path).decode("latin-1")
    found = {"REQUEST_METHOD": method}
    if question:
        found["PATH_INFO"], found["REQUEST_URI"] = path, uri
        query = query.decode("latin-1")
    else:
        found["REQUEST_URI"], found["PATH_INFO"] = uri, path
        query = ""
    found["QUERY_STRING"] = query
    found["SERVER_PROTOCOL"] = "HTTP/1.1"
    found.update(fixed.vars)
    size = (_TARGET_KEYS_SIZE + len(method) + len(uri) + len(path)
            + len(query) + 8 + fixed.size)
    count = 5 + fixed.count
    for name, value in request.headers:
        key = _KEYS.get(name) or _key(name)
        value = value.decode("latin-1")
        seen = found.get(key)
        if seen is None:
            found[key] = value
            size += _PAIR + len(key) + len(value)
            count += 1
        else:
            # Repeated headers are joined, as RequestVars joins them.
            found[key] = seen + ", " + value
            size += 2 + len(value)
    return found, count, size


def _key(name):
    key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_KEYS) < _KEYS_LIMIT:
        _KEYS[name] = key
    return key


class PlainBody:
    """A Content-Length body, from the connection's buffer and then its
    socket; reads are short only at the end of the body."""

    def __init__(self, client, length):
        self.client = client
        self.left = length

    def read(self, size):
        client = self.client
        while len(client.buffer) < min(size, self.left):
            self._more()
        return self._take(min(size, self.left))

    def read1(self, size):
        """What came, else one wait for more."""
        if not self.client.buffer:
            self._more()
        return self._take(min(size, self.left))

    def readline(self, size):
        buffer = self.client.buffer
        size = min(size, self.left)
        while buffer.find(b"\n", 0, size) < 0 and len(buffer) < size:
            self._more()
        return self._take(buffer.find(b"\n", 0, size) + 1 or size)

    def buffered(self):
        """Bytes of the body that came and were not read yet."""
        return min(len(self.client.buffer), self.left)

    def fileno(self):
        return self.client.conn.fileno()

    def unread(self):
        """Take the bytes that came past the body."""
        data = bytes(self.client.buffer[self.left:])
        del self.client.buffer[self.left:]
        return data

    def _more(self):
        try:
            data = self.client.recv()
        except TimeoutError:
            raise BodyStalled("request body stalled for "
                              f"{self.client.timeout} seconds") from None
        if not data:
            unsent = self.left - len(self.client.buffer)
            raise BodyCutShort(f"request body cut short: the client "
                               f"closed with {unsent} bytes unsent")
        self.client.buffer += data

    def _take(self, size):
        buffer = self.client.buffer
        data = bytes(buffer[:size])
        del buffer[:size]
        self.left -= len(data)
        return data


class PlainTransport:
    """The response to a plain request: its head framed by
    ugu.http.plain, its body counted against the length it declared."""

    # As RawTransport's.
    can_offload = True

    def __init__(self, conn, request, h11_transport):
        self.conn, self.request = conn, request
        self.keep_alive = request.keep_alive
        # ugu.vassal.http_socket's, for what the plain framing leaves.
        self.h11_transport = h11_transport
        self.head_only = False
        # Set once the whole response went out; failed, once the app sent
        # more than it declared.
        self.done = self.failed = False
        self._h11 = None
        # Body bytes still to send (None: chunked), once started.
        self._left = None
        self._chunked = False

    def start(self, protocol_, status_line, headers, first_chunk, head_only,
              more=False):
        # Again after an app's response that could not be sent: the
        # server's 500 starts afresh.
        self._h11, self.failed = None, False
        self.head_only = head_only
        head = head_bytes(protocol_, status_line, headers)
        sent = plain.sent_head(head)
        if sent is None:
            self._h11 = self.h11_transport(
                self.conn, plain.h11_after(self.request), self.request)
            if not self.keep_alive:
                self._h11.close_after()
            self._h11.start(protocol_, status_line, headers, first_chunk,
                            head_only, more)
            return len(head)
        status, length = sent
        no_body = (self.request.method == b"HEAD"
                   or status in plain.NO_BODY_STATUS)
        self._left = 0 if no_body else length
        self._chunked = self._left is None
        data = plain.framed(head, status, length is not None,
                            self.keep_alive)
        if first_chunk and not head_only:
            framed = self._frame(first_chunk)
            send_with_head(self.conn, data + framed,
                           len(data) + size_line(framed, first_chunk),
                           len(head))
        elif more and self._left:
            send_more(self.conn, data)
        else:
            send_all(self.conn, data)
        return len(head)

    def write(self, data):
        if self._h11 is not None:
            self._h11.write(data)
        elif not self.head_only and data:
            send_all(self.conn, self._frame(data))

    def _frame(self, data):
        if self._chunked:
            return b"%x\r\n%s\r\n" % (len(data), data)
        self._count(len(data))
        return data

    def _count(self, size):
        if size > self._left:
            # Refused as h11 refuses it; the connection then closes.
            self.failed = True
            raise Unsendable("Too much data for declared Content-Length")
        self._left -= size

    def send_file(self, fd, offset, count, on_wait=None):
        if self._h11 is not None:
            self._h11.send_file(fd, offset, count, on_wait)
            return
        if self._chunked:
            if not count:
                return
            send_all(self.conn, b"%x\r\n" % count)
            send_file(self.conn, fd, offset, count, on_wait)
            send_all(self.conn, b"\r\n")
            return
        self._count(count)
        send_file(self.conn, fd, offset, count, on_wait)

    def offloadable(self, count):
        """A body of the length the head declared goes out as it is: an
        offload thread may send it (and the connection then closes)."""
        if self._h11 is not None:
            return self._h11.offloadable(count)
        return not self._chunked and self._left == count

    def close_after(self):
        """The connection closes after this response: its head says so."""
        self.keep_alive = False

    def finish(self):
        if self._h11 is not None:
            self._h11.finish()
        elif self.conn is None or self.failed:
            return
        elif self._chunked:
            send_all(self.conn, plain.LAST_CHUNK)
            self.done = True
        elif self._left:
            # Only closing the connection tells the client the response
            # is incomplete.
            log.log("response cut short: Too little data for declared "
                    "Content-Length")
        else:
            self.done = True

    def detach(self):
        """Hand the connection to an offload thread; it closes when the
        transfer ends."""
        if self._h11 is not None:
            self.conn = None
            return self._h11.detach()
        conn, self.conn = self.conn, None
        return conn

    def reusable(self):
        """Whether the response went out whole and the client keeps the
        connection."""
        if self._h11 is not None:
            return self._h11.h.our_state is h11.DONE
        return self.done and self.keep_alive
