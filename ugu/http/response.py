"""A backend's response head, parsed in one pass when it is plain.

Workers (ugu's and uWSGI's) answer with `HTTP/1.x NNN reason`, then
`Name: value` lines, each ended by CRLF, framed by a Content-Length or by
the close of the connection.  That shape is parsed here, far faster than a
second h11 connection per request.  Anything else (a 1xx, bare LF, folded
lines, Transfer-Encoding, Connection, an odd Content-Length, a character
h11 would refuse) gives None, and the router hands the bytes to h11, which
knows the rest of HTTP/1.1.
"""

import re

END_OF_HEAD = b"\r\n\r\n"
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([2-5][0-9][0-9])(?: (.*))?")
# RFC 9110 5.1 and 5.5: a token, then a value of visible characters
# (obs-text included) with single spaces or tabs between them.
FIELD = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
    rb"((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*")
_NOT_PLAIN = (b"transfer-encoding", b"connection")
_REASON = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")


class ResponseHead:
    __slots__ = ("status", "reason", "headers", "length")

    def __init__(self, status, reason, headers, length):
        self.status = status
        self.reason = reason
        # (name, value) pairs, as the backend spelled them.
        self.headers = headers
        # The Content-Length, or None: the body ends with the connection.
        self.length = length


def parse_head(head):
    """A ResponseHead for the bytes before END_OF_HEAD, or None when the
    head is not of the plain shape (h11 then decides)."""
    lines = head.split(b"\r\n")
    status = _STATUS_LINE.fullmatch(lines[0])
    if status is None or not _REASON.fullmatch(status[2] or b""):
        return None
    headers, length = [], None
    for line in lines[1:]:
        field = FIELD.fullmatch(line)
        if field is None:
            return None
        name, value = field.groups()
        lower = name.lower()
        if lower == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif lower in _NOT_PLAIN:
            # Framing, or keepalive rules h11 applies for the client.
            return None
        headers.append((name, value))
    return ResponseHead(int(status[1]), status[2] or b"", headers, length)
