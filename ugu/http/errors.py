"""The router's own error responses.

uWSGI's router closes the connection without a byte when a request cannot
be served; ugu answers instead (DEVIATIONS 1, 3, 9).  Each error says what
status the client gets and why, for the router's one log line.  Pages are
built once: a short HTML body with its Content-Length.
"""

import ast
import re

# h11 quotes the offending bytes as `bytearray(b'...')` or `b'...'`,
# Python's spellings.
_BYTES_REPR = re.compile(r"""bytearray\((b'(?:[^'\\]|\\.)*'"""
                         r"""|b"(?:[^"\\]|\\.)*")\)"""
                         r"""|(?<!\w)(b'(?:[^'\\]|\\.)*'"""
                         r"""|b"(?:[^"\\]|\\.)*")""")
# Characters of the offending bytes a log line quotes: a client's 60 KiB
# request line is cut, so that no client fills the log with its bytes
# (uWSGI's router closes on a malformed request and logs nothing).
MAX_QUOTED = 100


class ClientGone(Exception):
    """The client closed, reset or stalled the connection: nobody is left
    to answer."""


class ClientStalled(ClientGone):
    """The client sent nothing within its timeout."""


class ClientClosed(ClientGone):
    """The client closed its side before its request's end."""


class ClientReadFailed(ClientGone):
    """A read of the client's connection failed (a reset); the message
    is uWSGI's router's line for it."""


class ClientWriteFailed(ClientGone):
    """A write to the client's connection failed (a reset, a closed
    pipe); the message is uWSGI's router's line for it."""


class BodyCutShort(ConnectionError):
    """The client closed before sending the whole request body."""


class BodyStalled(BodyCutShort):
    """The client sent nothing of the request body for socket-timeout."""


class Unsendable(ValueError):
    """A response head or body HTTP/1.1 cannot carry (a 1xx final status,
    a header name with a space, more body than its Content-Length)."""


class HttpError(Exception):
    """A request that ends in the router's own response."""

    status = 500

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class BadRequest(HttpError):
    status = 400


class NotFound(HttpError):
    """No node for the request's Host (the router's subscriptions)."""

    status = 404


class BodyTooLarge(HttpError):
    status = 413


class HeadersTooLarge(HttpError):
    status = 431


class AppFailed(HttpError):
    """The backend closed before a byte of response: the app failed."""

    status = 500


class NotImplementedHere(HttpError):
    """A method the router cannot relay (CONNECT: it is no proxy)."""

    status = 501


class BadGateway(HttpError):
    status = 502


class GatewayTimeout(HttpError):
    status = 504


REASONS = {400: b"Bad Request", 404: b"Not Found", 413: b"Request Entity Too Large",
           431: b"Request Header Fields Too Large",
           500: b"Internal Server Error", 501: b"Not Implemented",
           502: b"Bad Gateway",
           504: b"Gateway Timeout"}
_CLOSE = [(b"Connection", b"close")]


def _page(status):
    reason = REASONS[status]
    body = b"<html><body><h1>%d %s</h1></body></html>\n" % (status, reason)
    headers = [(b"Content-Type", b"text/html"),
               (b"Content-Length", b"%d" % len(body))]
    return reason, headers, body


PAGES = {status: _page(status) for status in REASONS}


def error_response(status, close):
    """(h11.Response, body) of the page for status; `close` announces
    that the router closes the connection after it."""
    # Here, not above: a vassal's master imports these errors and never
    # answers with h11.
    import h11
    reason, headers, body = PAGES[status]
    if close:
        headers = headers + _CLOSE
    return h11.Response(status_code=status, reason=reason,
                        headers=headers), body


def error_bytes(status, head_only=False, close=True):
    """The page for status as raw HTTP/1.1 bytes, announcing the close
    unless told otherwise: for a connection without h11 state, or whose
    h11 state can no longer send."""
    reason, headers, body = PAGES[status]
    if close:
        headers = headers + _CLOSE
    lines = [b"HTTP/1.1 %d %s" % (status, reason)]
    lines += [b"%s: %s" % pair for pair in headers]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    return head if head_only else head + body


def h11_reason(error):
    """An h11 protocol error's message for a log line, the offending bytes
    quoted as text: `illegal header line: 'Bad Header'`, cut after
    MAX_QUOTED characters: `'GET /xxx'... (60016 bytes)`."""
    return _BYTES_REPR.sub(_quoted, str(error))


def _quoted(match):
    data = ast.literal_eval(match[1] or match[2])
    if len(data) <= MAX_QUOTED:
        return repr(data.decode("latin-1"))
    return (f"{data[:MAX_QUOTED].decode('latin-1')!r}... "
            f"({len(data)} bytes)")
