"""`fastcgi-socket` and `fastcgi-nph-socket`: FastCGI into a worker, as
uWSGI 2.0 speaks it.

A FastCGI connection carries records: an 8-byte header (version, type,
request id, content length, padding length, a reserved byte), then the
content and the padding.  As uWSGI's parser: the request starts at the
first STDIN record's header; PARAMS records before it give the vars (each
record read alone: a name-value pair split across two records is
malformed), and every other record (BEGIN_REQUEST with its role and
FCGI_KEEP_CONN flag, management records) is skipped.  The request id is
that of the last header read before the request starts (later records'
ids change nothing), and the response echoes it.  The body is
the STDIN records' content, up to the empty STDIN record.

The response goes out in STDOUT records of up to 65535 bytes: the head
(CGI's `Status: 200 OK`, or HTTP's status line on fastcgi-nph) in records
of its own, then each write of the body.  At the end, the rest of the
request (up to its empty STDIN record) is read, then an empty STDOUT and
an END_REQUEST record (request complete, status 0) are sent, and the
connection closes whatever FCGI_KEEP_CONN asked, as uWSGI closes it.  A
request refused before it started is ended the same way, but for a
connection that stalls past socket-timeout, which just closes.
"""

import struct

from ugu import log
from ugu.vassal import cgi_sockets
from ugu.vassal.offload import send_file
from ugu.vassal.transport import RawTransport, head_bytes, send_all
from ugu.vassal.wsgi import SocketBody

# version, type, request id, content length, padding length (then a
# reserved byte).
RECORD = struct.Struct(">BBHHBx")
VERSION = 1
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
MAX_CONTENT = 0xFFFF
# END_REQUEST's body: application status 0, FCGI_REQUEST_COMPLETE.
_COMPLETE = bytes(8)
READ_SIZE = 65536
# Lengths of 128 and more take four bytes, their top bit set.
_LONG = 0x80
_LONG_LENGTH = struct.Struct(">I")
# uWSGI's line where the client closes mid-request head.
_CLOSED_LINE = ("uwsgi_proto_fastcgi_parser(): Success [proto/fastcgi.c "
                "line 100]")


def record(kind, request_id, content=b""):
    return RECORD.pack(VERSION, kind, request_id, len(content), 0) + content


def stdout_records(request_id, data):
    """`data` in STDOUT records (none for no data)."""
    return b"".join(record(STDOUT, request_id, data[at:at + MAX_CONTENT])
                    for at in range(0, len(data), MAX_CONTENT))


def end_of_request(request_id):
    """The empty STDOUT record that ends the output, and END_REQUEST."""
    return (record(STDOUT, request_id)
            + record(END_REQUEST, request_id, _COMPLETE))


def add_params(content, block):
    """Add the name-value pairs of one PARAMS record's content to the
    VarsBlock; False where they are malformed or do not fit.  As
    uWSGI reads them, a length must be followed by at least one byte of
    the record (so an empty pair cannot end it), and a name or value
    over 65535 bytes is malformed."""
    size, at = len(content), 0
    while at < size:
        lengths = []
        for _ in range(2):
            if content[at] >= _LONG:
                if at + 4 >= size:
                    return False
                lengths.append(_LONG_LENGTH.unpack_from(content, at)[0]
                               & 0x7FFFFFFF)
                at += 4
            else:
                if at + 1 >= size:
                    return False
                lengths.append(content[at])
                at += 1
        name_size, value_size = lengths
        if at + name_size + value_size > size or \
                name_size > MAX_CONTENT or value_size > MAX_CONTENT:
            return False
        value_at = at + name_size
        at = value_at + value_size
        if not block.add(content[value_at - name_size:value_at],
                         content[value_at:at]):
            return False
    return True


class Records:
    """The records of one connection, read as they are needed: the
    request head, then the STDIN content as a stream (recv_into, for
    ugu.vassal.wsgi.SocketBody)."""

    def __init__(self, conn):
        self.conn = conn
        self.buffer = bytearray()
        self.request_id = 0
        # The request started (its first STDIN header read): its id is
        # kept, whatever ids the records after it carry.
        self.started = False
        # The empty STDIN record came, or the client closed.
        self.ended = False
        # STDIN content read and not yet taken.
        self._pending = b""

    def fileno(self):
        return self.conn.fileno()

    def _header(self):
        """(type, content length, whole record length) of the record
        at the buffer's start, or None before its header is whole."""
        if len(self.buffer) < RECORD.size:
            return None
        _, kind, request_id, length, padding = \
            RECORD.unpack_from(self.buffer)
        if not self.started:
            self.request_id = request_id
        return kind, length, RECORD.size + length + padding

    def _more(self):
        """Read more; False once the client closed."""
        data = self.conn.recv(READ_SIZE)
        self.buffer += data
        return bool(data)

    def read_head(self, block):
        """Read up to the first STDIN record, its PARAMS into `block`:
        True; False where the client closed first or the PARAMS are
        malformed (the bad record left in the buffer, as uWSGI leaves
        it)."""
        while True:
            while (header := self._header()) is not None:
                kind, length, whole = header
                if kind == STDIN:
                    self.started = True
                    return True
                if len(self.buffer) < whole:
                    break
                if kind == PARAMS and not add_params(
                        bytes(self.buffer[RECORD.size:RECORD.size + length]),
                        block):
                    return False
                del self.buffer[:whole]
            if not self._more():
                if self.buffer:
                    log.log(_CLOSED_LINE)
                return False

    def recv_into(self, target):
        """The next STDIN content into `target`; 0 at its end."""
        if not self._pending:
            self._pending = self._next_stdin()
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _next_stdin(self):
        while not self.ended:
            header = self._header()
            if header is None or len(self.buffer) < header[2]:
                if not self._more():
                    # uWSGI takes a close for the body's end.
                    self.ended = True
                continue
            kind, length, whole = header
            content = bytes(self.buffer[RECORD.size:RECORD.size + length])
            del self.buffer[:whole]
            if kind == STDIN:
                if not length:
                    self.ended = True
                return content
        return b""

    def drain(self):
        """Read the rest of the request, as uWSGI does before it ends
        one; False where the client stalled or failed meanwhile."""
        try:
            while self._next_stdin():
                pass
        except OSError:
            return False
        return True


class FastCgiTransport(RawTransport):
    """The response in STDOUT records.  As uWSGI's fastcgi sockets, it
    does not offload: the core sends static files, in records."""

    def __init__(self, conn, request_id, nph):
        super().__init__(conn)
        self.request_id = request_id
        self.head = head_bytes if nph else cgi_sockets.cgi_head

    def start(self, protocol_, status_line, headers, first_chunk, head_only,
              more=False):
        # The head goes at once, `more` or not (RawTransport's).
        head = self.head(protocol_, status_line, headers)
        self.head_only = head_only
        data = stdout_records(self.request_id, head)
        if first_chunk and not head_only:
            data += stdout_records(self.request_id, first_chunk)
        send_all(self.conn, data)
        return len(head)

    def write(self, data):
        if not self.head_only and data:
            send_all(self.conn, stdout_records(self.request_id, data))

    def send_file(self, fd, offset, count, on_wait=None):
        while count > 0:
            size = min(count, MAX_CONTENT)
            send_all(self.conn, RECORD.pack(VERSION, STDOUT,
                                            self.request_id, size, 0))
            send_file(self.conn, fd, offset, size, on_wait)
            offset += size
            count -= size

    can_offload = False

    def offloadable(self, count):
        return False


def serve(ctx, core, conn, nph, modifiers, buffer_size):
    records = Records(conn)
    block = cgi_sockets.VarsBlock(ctx.buffer_size)
    try:
        if records.read_head(block):
            transport = FastCgiTransport(conn, records.request_id, nph)
            cgi_sockets.serve(ctx, core, block.block(), transport,
                              SocketBody(records, b"", buffer_size),
                              modifiers)
            if transport.conn is None:
                return
    except TimeoutError:
        # Stalled past socket-timeout: closed, unsaid, as by uWSGI.
        return
    if records.drain():
        try:
            send_all(conn, end_of_request(records.request_id))
        except OSError:
            # The client is gone: uWSGI ignores this write's failure too,
            # and there is nobody to tell.
            return
