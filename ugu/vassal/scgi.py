"""`scgi-socket` and `scgi-nph-socket`: SCGI into a worker, as uWSGI 2.0
speaks it.

A request is a netstring of vars (`LENGTH:NAME\\0VALUE\\0...,`), then its
body.  As uWSGI's parser: the head must come whole within buffer-size
bytes; the length is read digit by digit from what comes before the
first `:` (a length of 0 is malformed); the vars are NUL-terminated
names and values (a name with no value after it is dropped; SCGI's
CONTENT_LENGTH first and its SCGI=1 are not required); a netstring not
followed by its `,` is malformed.  The body is CONTENT_LENGTH bytes after
the comma.  The response is CGI's head (`Status: 200 OK`), or HTTP's
status line on scgi-nph, then the body; the close ends it.

uWSGI 2.0 looks at the comma's place as soon as the vars are in, before
the comma has come (it then reads a stale byte there); ugu waits for it.
"""

from ugu import log
from ugu.vassal import cgi_sockets
from ugu.vassal.wsgi import SocketBody

# What parse() answers while the netstring is not all there.
MORE = None
_MODULUS = 1 << 64


def netstring_length(text):
    """The length before the colon, as uWSGI computes it: each byte's
    value less that of "0", times its power of ten, in 64 bits (so
    `12` is 12, and a byte that is no digit counts all the same)."""
    total = 0
    for byte in text:
        total = total * 10 + byte - 48
    return total % _MODULUS


def parse(buffer, block):
    """Where the body starts in `buffer`, the vars added to `block`;
    MORE while the netstring is incomplete; False where it is
    malformed or its vars do not fit."""
    colon = buffer.find(b":")
    if colon < 0:
        return MORE
    size = netstring_length(buffer[:colon])
    if not size:
        return False
    start = colon + 1
    end = start + size
    if end >= len(buffer):
        return MORE
    if not _add_vars(buffer, start, end, block):
        return False
    if buffer[end] != ord(","):
        return False
    return end + 1


def _add_vars(buffer, start, end, block):
    """The NUL-terminated names and values of buffer[start:end], read
    as uWSGI reads them; False where one does not fit."""
    key, key_size, value = start, 0, None
    for at in range(start, end):
        if key is None:
            key = at
        elif key_size and value is None:
            value = at
        if buffer[at]:
            continue
        if value is None:
            key_size = at - key
            continue
        if not block.add(bytes(buffer[key:key + key_size]),
                         bytes(buffer[value:at])):
            return False
        key, key_size, value = None, 0, None
    return True


def serve(ctx, core, conn, nph, modifiers, buffer_size):
    limit = ctx.buffer_size
    buffer = b""
    block = cgi_sockets.VarsBlock(limit)
    while True:
        if len(buffer) >= limit:
            log.log(f"invalid SCGI request size (max {limit})...skip")
            return
        try:
            data = conn.recv(limit - len(buffer))
        except TimeoutError:
            # Stalled past socket-timeout: closed, unsaid, as by uWSGI.
            return
        if not data:
            if buffer:
                log.log("uwsgi_proto_scgi_parser(): Resource temporarily "
                        "unavailable [proto/scgi.c line 105]")
            return
        buffer += data
        found = parse(buffer, block)
        if found is False:
            return
        if found is not MORE:
            break
    transport = cgi_sockets.CgiTransport(conn, nph)
    cgi_sockets.serve(ctx, core, block.block(), transport,
                      SocketBody(conn, buffer[found:], buffer_size),
                      modifiers)
