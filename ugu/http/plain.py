"""Plain HTTP/1.1 requests, parsed in one pass, and their responses framed.

Nearly every request a server sees is plain: `METHOD target HTTP/1.1`,
`Name: value` lines ended by CRLF, a Host, at most one Content-Length and
no other framing.  Those are parsed here, far faster than by h11; anything
else (HTTP/1.0 and its keepalive rules, bare LF, folded lines,
Transfer-Encoding, Expect, Upgrade, a duplicate or odd Content-Length or
Host, an unusual Connection, a character h11 would refuse) gives None, and
the caller hands the same bytes to h11, which knows the rest of HTTP/1.1
and answers its errors.  Responses to plain requests are framed here as
h11 frames them for an HTTP/1.1 client.
"""

import re

import h11

from ugu.http.response import END_OF_HEAD, FIELD

# RFC 9112 3: a token, a target of visible characters, HTTP/1.1.  Bytes
# over 0x7f in the target are not URI characters, but curl and scripts
# send UTF-8 queries unescaped and uWSGI passes them to the app as sent.
_REQUEST_LINE = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e\x80-\xff]+) HTTP/1\.1")
# Headers that change how the request is framed or answered: left to h11.
_NOT_PLAIN = frozenset((b"transfer-encoding", b"expect", b"upgrade",
                        b"te", b"http2-settings"))
# Headers a plain request carries at most once.
_ONCE = frozenset((b"content-length", b"host", b"connection"))
_CONNECTION = {b"keep-alive": True, b"close": False}
# The longest body a request may declare, by its Content-Length or by a
# chunk's size: 1 EiB, which no real body nears.  uWSGI keeps a body's
# length in a signed 64-bit size (a longer one is malformed there too),
# and wsgi.input.read() of a length near 2**63 fails in Python itself
# (OverflowError: no bytes object is that long); a length over this is
# refused with 400 before any app sees it.
MAX_BODY_SIZE = 1 << 60
# Its decimal digits: a longer Content-Length is over it whatever it says
# (and int() refuses one of thousands of digits; h11 refuses over 20).
_MAX_LENGTH_DIGITS = len(str(MAX_BODY_SIZE))
CHUNKED = b"Transfer-Encoding: chunked\r\n"
CLOSE = b"Connection: close\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class PlainRequest:
    """What h11.Request gives, for a plain request: names lowercased."""

    __slots__ = ("method", "target", "headers", "length", "keep_alive",
                 "head")

    # Any other version is left to h11.
    http_version = b"1.1"

    def __init__(self, method, target, headers, length, keep_alive, head):
        self.method = method
        self.target = target
        self.headers = headers
        # The Content-Length (0 when there is none).
        self.length = length
        # False when the client asked to close after this response.
        self.keep_alive = keep_alive
        # The raw head, without its blank line, for h11 when the response
        # needs it (see ugu.router.cycle).
        self.head = head


def parse_request(head):
    """A PlainRequest for the bytes before END_OF_HEAD, or None when the
    request is not plain (h11 then decides)."""
    lines = head.split(b"\r\n")
    line = _REQUEST_LINE.fullmatch(lines[0])
    if line is None:
        return None
    headers, length, keep_alive, seen = [], 0, True, set()
    for raw in lines[1:]:
        field = FIELD.fullmatch(raw)
        if field is None:
            return None
        name, value = field.groups()
        name = name.lower()
        if name in _ONCE:
            if name in seen:
                return None
            seen.add(name)
            if name == b"content-length":
                if (not value.isdigit()
                        or len(value) > _MAX_LENGTH_DIGITS):
                    return None
                length = int(value)
                if length > MAX_BODY_SIZE:
                    # h11 takes it; RequestVars refuses it.
                    return None
            elif name == b"connection":
                keep_alive = _CONNECTION.get(value.lower())
                if keep_alive is None:
                    return None
        elif name in _NOT_PLAIN:
            return None
        headers.append((name, value))
    if b"host" not in seen:
        # h11 refuses a request without one.
        return None
    return PlainRequest(line[1], line[2], headers, length, keep_alive,
                        head)


def h11_after(request):
    """An h11 server connection that has read a plain request's head, to
    frame a response the plain framing does not cover.  h11 refuses the
    raw bytes over 0x7f the plain parser lets through in a target: they
    are escaped for it, which frames the response alike."""
    head = request.head
    if not request.target.isascii():
        line, crlf, fields = head.partition(b"\r\n")
        head = _NON_ASCII.sub(_escaped, line) + crlf + fields
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head + END_OF_HEAD)
    conn.next_event()
    return conn


_NON_ASCII = re.compile(rb"[\x80-\xff]")


def _escaped(match):
    return b"%%%02X" % match[0][0]


def complete_head_at(buffer):
    """Where END_OF_HEAD starts in buffer, -1 while the head may still be
    plain and incomplete, or None once it cannot be plain (a bare LF)."""
    end = buffer.find(END_OF_HEAD)
    if end >= 0:
        return end
    if buffer.count(b"\n") != buffer.count(b"\r\n"):
        return None
    return -1


def response_head(status, reason, headers, sized, keep_alive):
    """The head of a response to a plain request, framed as h11 frames it
    for an HTTP/1.1 client: chunked unless sized (or 204/304), and a
    `Connection: close` when the client asked for it.  The headers come
    from ugu.http.response's plain parser: valid, no Connection, no
    Transfer-Encoding."""
    return framed(head_bytes(status, reason, headers), status, sized,
                  keep_alive)


def head_bytes(status, reason, headers):
    """A head as given, with no framing added: a response's before
    `framed`, or a 1xx relayed to a plain request's client."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    out += [b"%s: %s\r\n" % pair for pair in headers]
    out.append(b"\r\n")
    return b"".join(out)


def framed(head, status, sized, keep_alive):
    """A whole response head (blank line included) with the framing
    headers response_head adds."""
    chunked = not sized and status not in NO_BODY_STATUS
    if keep_alive and not chunked:
        return head
    return b"".join((head[:-2], CHUNKED if chunked else b"",
                     b"" if keep_alive else CLOSE, b"\r\n"))


# What an app's head must look like for `framed` to send it as h11 would:
# exactly `HTTP/1.1 NNN reason` and `Name: value` lines, values in ASCII
# (h11 encodes str so).  Spaces around a value are sent as the app gave
# them, as uWSGI sends them (Django starts every Set-Cookie value with
# one); HTTP allows them and a client strips them (RFC 9110 5.5).
_SENT_STATUS = re.compile(
    rb"HTTP/1\.1 ([2-9][0-9][0-9]) [\t \x21-\x7e\x80-\xff]*")
_SENT_FIELD = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): [ \t]*"
                         rb"((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)"
                         rb"[ \t]*")
_NOT_SENT_PLAIN = (b"transfer-encoding", b"connection")


# sent_head's answers by head: an app sends the same few heads again and
# again, and a look-up costs a hundredth of a parse.  Bounded: emptied
# when full, as heads with a date or a cookie in them never repeat.
_SENT_SEEN = {}
_SENT_SEEN_LIMIT = 512


def sent_head(head):
    """(status, Content-Length or None) of a response head encoded as
    ugu.vassal.transport.head_bytes does, when `framed` can send it as
    h11 would; None otherwise (h11 then frames the response)."""
    found = _SENT_SEEN.get(head, False)
    if found is False:
        if len(_SENT_SEEN) >= _SENT_SEEN_LIMIT:
            _SENT_SEEN.clear()
        found = _SENT_SEEN[head] = _parse_sent_head(head)
    return found


def _parse_sent_head(head):
    lines = head[:-4].split(b"\r\n")
    status = _SENT_STATUS.fullmatch(lines[0])
    if status is None:
        return None
    length = None
    for line in lines[1:]:
        field = _SENT_FIELD.fullmatch(line)
        if field is None:
            return None
        name = field[1].lower()
        if name == b"content-length":
            if length is not None or not field[2].isdigit():
                return None
            length = int(field[2])
        elif name in _NOT_SENT_PLAIN:
            return None
    return int(status[1]), length


NO_BODY_STATUS = (204, 304)
