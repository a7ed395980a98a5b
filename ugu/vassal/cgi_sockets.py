"""What the FastCGI and SCGI sockets share: the vars a request brings,
checked as uWSGI checks a uwsgi packet's, and the request served from
them as a uwsgi socket serves its own.

uWSGI 2.0 turns each request of these protocols into the vars block of
a uwsgi packet (its buffer of `buffer-size` bytes), whose vars the
Python plugin then reads as those of any other socket; so do these
modules.  The response head is CGI's (`Status: 200 OK`), or HTTP's
status line on the `-nph` variants, and the connection closes after
each request, as uWSGI closes it (ugu.vassal.fastcgi, ugu.vassal.scgi).
"""

from ugu import log, protocol
from ugu.vassal import request
from ugu.vassal.wsgi import Input, content_length
from ugu.vassal.transport import RawTransport, head_bytes, send_all

# The modifier1 values the Python plugin serves.
SERVED_MODIFIERS = (protocol.MODIFIER_WSGI,
                    protocol.MODIFIER_WSGI_SCRIPT_NAME)
# Each var costs its two 2-byte lengths in a uwsgi block.
_PAIR = 4


class VarsBlock:
    """A uwsgi vars block filled var by var, as uWSGI fills the buffer
    of a request of these protocols: a var that would reach buffer-size
    is refused with uWSGI's warning."""

    def __init__(self, limit):
        self.limit = limit
        self.pieces = []
        self.size = 0

    def add(self, key, value):
        """False (after the warning) where the var does not fit."""
        if self.size + len(key) + len(value) + _PAIR >= self.limit:
            log.log(f"[WARNING] unable to add {key.decode('latin-1')}="
                    f"{value.decode('latin-1')} to uwsgi packet, consider "
                    f"increasing buffer size")
            return False
        self.pieces.append(protocol.encode_vars([(key, value)]))
        self.size += len(key) + len(value) + _PAIR
        return True

    def block(self):
        return b"".join(self.pieces)


def cgi_head(protocol_, status_line, headers):
    """The CGI response head uWSGI writes on a fastcgi or scgi socket:
    `Status:` in place of the status line's protocol."""
    head = f"Status: {status_line}\r\n"
    for name, value in headers:
        head += f"{name}: {value}\r\n"
    return (head + "\r\n").encode("latin-1")


class CgiTransport(RawTransport):
    """An scgi socket's response: the head (CGI's, or HTTP's for
    scgi-nph), then the body as written; the close ends it.  As uWSGI's
    scgi sockets, it does not offload: the core sends static files."""

    def __init__(self, conn, nph):
        super().__init__(conn)
        self.head = head_bytes if nph else cgi_head

    def start(self, protocol_, status_line, headers, first_chunk, head_only,
              more=False):
        # The head goes at once, `more` or not (RawTransport's).
        head = self.head(protocol_, status_line, headers)
        self.head_only = head_only
        if first_chunk and not head_only:
            head += first_chunk
        send_all(self.conn, head)
        return len(head) - (len(first_chunk) if first_chunk and
                            not head_only else 0)

    can_offload = False

    def offloadable(self, count):
        return False


def serve(ctx, core, block, transport, body, modifiers):
    """Serve the request of a vars block through `transport`, its body
    read from `body` (a stream for wsgi.Input); `modifiers` the
    socket's (modifier1, modifier2).  False where it was refused."""
    if not block:
        # uWSGI's Python plugin refuses an empty block; the line still
        # counts it.
        log.log("Empty python request. skip.")
        request.account(request.Exchange(ctx, core, None, {}, 0, 0, None))
        return False
    try:
        request_vars, count = protocol.decode_text(block)
        if count > ctx.max_vars:
            raise protocol.ProtocolError("max vec size reached",
                                         skip="skip this var")
    except protocol.ProtocolError as e:
        log.log(f"{e}. {e.skip}.")
        return False
    length = content_length(request_vars)
    ex = ctx.exchange(ctx, core, transport, request_vars, 2 * count,
                      len(block), Input(body, length))
    ex.modifier1, ex.modifier2 = modifiers
    if modifiers[0] in SERVED_MODIFIERS:
        request.handle(ex)
    else:
        request.handle_unserved(ex, modifiers[0])
    if transport.conn is not None:
        ex.input.drain()
    return True
