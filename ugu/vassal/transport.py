"""Putting a response on the wire of a worker's connection.

`RawTransport` is the uwsgi protocol's response side: a status line built
from the request's SERVER_PROTOCOL, the headers exactly as the app and the
routes left them, the body, and the end of the response is the close of the
connection, as in uWSGI.
"""

import os
import socket
import struct

from ugu.vassal.offload import send_file

DEFAULT_PROTOCOL = "HTTP/1.0"
# SO_LINGER's values: on, with no time to linger (the close resets the
# connection), and off (the close ends it as usual).
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
_CLOSE = struct.pack("ii", 0, 0)


def head_bytes(protocol, status_line, headers):
    # Appending to one str beats a generator and a join for the few
    # headers of a typical response (0.6 us against 0.9 us for two).
    head = f"{protocol or DEFAULT_PROTOCOL} {status_line}\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    return (head + "\r\n").encode("latin-1")


class RawTransport:
    # Whether an offload thread may send a static file's body (uWSGI's
    # can_offload of the socket, set where offload-threads are).
    can_offload = True
    # A static file's answer the router may repeat: a function of the
    # head's size (which the log line counts without it) giving the
    # marker that goes first in the head, or None (ugu.staticanswer).
    offer = None

    def __init__(self, conn):
        self.conn = conn
        self.head_only = False
        # Whether the connection resets if it closes now (_reset_until_end).
        self._resets = False

    def start(self, protocol, status_line, headers, first_chunk, head_only,
              more=False):
        """Send the head (with the first body chunk, in one write);
        returns the head's size for the log line.  `more`: a file's
        sendfile() follows at once (send_more)."""
        head = wire = head_bytes(protocol, status_line, headers)
        if self.offer is not None:
            marker = self.offer(len(head))
            if marker is not None:
                wire = _with_marker(head, marker)
        self.head_only = head_only
        if not head_only and not _sized(status_line, headers):
            self._reset_until_end()
        if first_chunk and not head_only:
            send_with_head(self.conn, wire + first_chunk, len(wire),
                           len(head))
        elif more:
            send_more(self.conn, wire)
        else:
            send_all(self.conn, wire)
        return len(head)

    def write(self, data):
        if not self.head_only:
            send_all(self.conn, data)

    def send_file(self, fd, offset, count, on_wait=None):
        send_file(self.conn, fd, offset, count, on_wait)

    def offloadable(self, count):
        """The body goes out as written and the close ends it: a body of
        any length can be handed to an offload thread."""
        return True

    def close_after(self):
        """Every response of the uwsgi protocol ends with the close."""

    def finish(self):
        """Nothing to frame: closing the connection ends the response."""
        if self._resets:
            self._close_as_usual()

    def detach(self):
        """Hand the connection over to the offload engine."""
        if self._resets:
            self._close_as_usual()
        conn, self.conn = self.conn, None
        return conn

    def _reset_until_end(self):
        """A body of unknown length ends with the close, so a close
        before its end (the app failed halfway, the worker exited or was
        killed, by harakiri say) would pass for its end: until finish(),
        the close resets the connection, which ugu's router and nginx
        take for a response cut short, and tell their client so.  uWSGI's
        worker closes as usual either way."""
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             _RESET_ON_CLOSE)
        self._resets = True

    def _close_as_usual(self):
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _CLOSE)
        self._resets = False


def _sized(status_line, headers):
    """Whether the body's length is known: none for a status that has no
    body (a websocket's 101 among them, whose app ends, as uWSGI's, by
    the exception its closed connection raises), or the app's headers
    give it."""
    if status_line[:1] == "1" or status_line[:3] in ("204", "304"):
        return True
    for name, _ in headers:
        if len(name) == 14 and name.lower() == "content-length":
            return True
    return False


def _with_marker(head, marker):
    """The head with the marker line after its status line."""
    at = head.index(b"\r\n") + 2
    return head[:at] + marker + head[at:]


def send_all(conn, data):
    """conn.sendall(data), trying a plain write first.  A socket with a
    timeout polls before each send (CPython does), a system call and a
    release of the GIL that a connection with room in its buffer (nearly
    every response) does not need."""
    try:
        sent = os.write(conn.fileno(), data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        conn.sendall(memoryview(data)[sent:])


class HeadSent(OSError):
    """A response's head and first body chunk, written together, failed
    after the head had gone whole.  uWSGI writes the two with writev()
    until the head has gone, then the rest of the chunk with write(): its
    log line counts the head, and the body bytes that went with it (not
    those written after), and names write()'s caller for the failure."""

    def __init__(self, error, head_size, body_sent):
        super().__init__(error.errno, error.strerror or str(error))
        self.error = error
        self.head_size, self.body_sent = head_size, body_sent


def send_more(conn, data):
    """conn.sendall(data) for a head whose file's sendfile() follows at
    once: MSG_MORE has the kernel hold the head for the file's first
    bytes, so that both go in one segment, one wake-up of the reader (on
    loopback, where the sender's CPU also receives it, 3.7 us less of
    it per 10 KB file).  Only where the file surely follows: nothing
    else would push the head out before the close."""
    sent = conn.send(data, socket.MSG_MORE)
    if sent < len(data):
        conn.sendall(memoryview(data)[sent:], socket.MSG_MORE)


def send_with_head(conn, data, body_at, head_size):
    """send_all() of a head and the first body chunk, the app's bytes
    starting at `body_at` in `data`; HeadSent (for a head of `head_size`
    bytes in the log line) if a write after the first fails once the
    head has gone."""
    try:
        sent = os.write(conn.fileno(), data)
    except BlockingIOError:
        sent = 0
    if sent < len(data):
        try:
            conn.sendall(memoryview(data)[sent:])
        except OSError as e:
            if sent < body_at:
                raise
            raise HeadSent(e, head_size, sent - body_at) from None


def size_line(framed, chunk):
    """The length of the size line before `chunk` in `framed`: the
    chunk in HTTP's chunked framing (size line, chunk, CRLF), or as it
    is (0)."""
    return len(framed) - len(chunk) - 2 if len(framed) > len(chunk) else 0


def recv_some(conn, size):
    """conn.recv(size), trying a plain read first, for the same reason."""
    try:
        return os.read(conn.fileno(), size)
    except BlockingIOError:
        return conn.recv(size)
