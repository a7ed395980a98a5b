"""An HTTP request as the uwsgi vars uWSGI's HTTP router sends for it.

Order, as observed from uWSGI 2.0.31's router: REQUEST_METHOD; then
REQUEST_URI, PATH_INFO and an empty QUERY_STRING, or, when the target has a
`?`, PATH_INFO, REQUEST_URI and QUERY_STRING; SERVER_PROTOCOL, SCRIPT_NAME,
SERVER_NAME (the machine's hostname), SERVER_PORT (the listener's port),
UWSGI_ROUTER, HTTPS (`on`, through an `https` listener only), REMOTE_ADDR,
REMOTE_PORT; one var per distinct header, in the
order each name first appears; then the `http-var` extras.  An http-socket
(uWSGI's own HTTP parser in the worker) gives neither UWSGI_ROUTER nor
REMOTE_PORT.

The constant vars are encoded once per listener and the peer's once per
connection, so a request costs one pass over its headers; a RequestVars
the router meets again (ugu.router.fastpath) is not encoded again.
"""

import socket
import struct
from urllib.parse import unquote_to_bytes

from ugu.options.errors import ConfigError

from ugu.http.errors import BadRequest, HeadersTooLarge
from ugu.http.plain import MAX_BODY_SIZE
from ugu.protocol import MAX_BLOCK, encode_vars

# Header names whose var has no HTTP_ prefix (CGI's names).
UNPREFIXED = {b"content-length": b"CONTENT_LENGTH",
              b"content-type": b"CONTENT_TYPE"}
# The var names of headers seen so far; bounded because clients choose
# the names.
_NAMES = dict(UNPREFIXED)
_NAMES_LIMIT = 512
JOIN = b", "
# A request's key in the router's log lines when it has no Host header:
# the machine's name, as uWSGI's router keys it.
DEFAULT_KEY = socket.gethostname().encode()


class ListenerVars:
    """The vars every request through one listener shares, pre-encoded;
    `router` False for an http-socket's, `https` True for the router's
    TLS listeners."""

    def __init__(self, port, extra=(), hostname=None, router=True,
                 https=False, host_as_server_name=False):
        name = (hostname or socket.gethostname()).encode()
        constants = [(b"SCRIPT_NAME", b""), (b"SERVER_NAME", name),
                     (b"SERVER_PORT", str(port).encode())]
        # How a request's headers are encoded: with
        # http-server-name-as-http-host, SERVER_NAME is the Host, just
        # before HTTP_HOST, as uWSGI's router puts it (and none without
        # a Host).
        self.encode = _encode_headers
        if host_as_server_name:
            del constants[1]
            self.encode = _encode_host_as_server_name
        if router:
            constants.append((b"UWSGI_ROUTER", b"http"))
        if https:
            # Where uWSGI's router puts it; the worker makes wsgi.url_scheme
            # https of it.
            constants.append((b"HTTPS", b"on"))
        self.constants = encode_vars(constants)
        self.extra = encode_vars(extra)
        self.router = router

    def peer(self, address):
        """REMOTE_ADDR (and, through the router, REMOTE_PORT) of one
        client connection."""
        # IPv6 addresses carry flow info and scope id after the port.
        host, port = address[:2] if isinstance(address, tuple) else ("", "")
        pairs = [(b"REMOTE_ADDR", host.encode())]
        if self.router:
            pairs.append((b"REMOTE_PORT", str(port).encode()))
        return encode_vars(pairs)


def parse_var(text):
    """(key, value) bytes from an `http-var = KEY=VALUE` line.  uWSGI
    skips a line without `=`; ugu refuses it rather than drop a var the
    user meant to send."""
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise ConfigError(f"expected KEY=VALUE, got '{text}'",
                          option="http-var")
    return key.encode(), value.encode()


class RequestVars:
    """The vars of one request, and the header facts the router acts on.
    Raises BadRequest for a request framed two ways."""

    __slots__ = ("target", "headers", "chunked", "_encoded")

    def __init__(self, request):
        self.target = _target_vars(request)
        self.headers = headers = {}
        self.chunked = False
        self._encoded = None
        for name, value in request.headers:
            if name == b"transfer-encoding":
                # h11 lets no transfer coding but `chunked` through.
                self.chunked = True
            key = _var_name(name)
            seen = headers.get(key)
            headers[key] = value if seen is None else seen + JOIN + value
        if b"CONTENT_LENGTH" in headers:
            self._check_length(headers[b"CONTENT_LENGTH"])

    def _check_length(self, length):
        if self.chunked:
            # h11 lets chunked framing win (RFC 9112 6.3); two framings are
            # how requests are smuggled past a proxy, so none is trusted.
            raise BadRequest("Content-Length with Transfer-Encoding")
        # The plain parser leaves such a length to h11, which takes it.
        if int(length) > MAX_BODY_SIZE:
            raise BadRequest(f"a Content-Length of {length[:40].decode()} "
                             f"is over {MAX_BODY_SIZE}")

    @property
    def key(self):
        """The request's key in the router's log lines: its Host, else
        DEFAULT_KEY."""
        return self.headers.get(b"HTTP_HOST", DEFAULT_KEY)

    @property
    def accept_encoding(self):
        return self.headers.get(b"HTTP_ACCEPT_ENCODING", b"")

    def block(self, listener, peer, body_length=None):
        """The vars block; body_length replaces the framing headers of a
        chunked body that the router has de-chunked."""
        if body_length is None:
            if self._encoded is None:
                self._encoded = listener.encode(self.headers)
            encoded = self._encoded
        else:
            headers = {k: v for k, v in self.headers.items()
                       if k not in _DECHUNKED_DROPS}
            headers[b"CONTENT_LENGTH"] = str(body_length).encode()
            encoded = listener.encode(headers)
        block = b"".join((self.target, listener.constants, peer, encoded,
                          listener.extra))
        if len(block) > MAX_BLOCK:
            raise HeadersTooLarge(f"uwsgi vars of {len(block)} bytes")
        return block


# The app gets a plain body of known length in place of the chunked one.
_DECHUNKED_DROPS = {b"HTTP_TRANSFER_ENCODING", b"CONTENT_LENGTH"}


def _encode_headers(headers):
    return _encode_items(headers.items())


def _encode_host_as_server_name(headers):
    host = headers.get(b"HTTP_HOST")
    if host is None:
        return _encode_headers(headers)
    items = []
    for name, value in headers.items():
        if name == b"HTTP_HOST":
            items.append((b"SERVER_NAME", value))
        items.append((name, value))
    return _encode_items(items)


def _encode_items(items):
    try:
        return encode_vars(items)
    except struct.error:
        raise HeadersTooLarge("a header exceeds the uwsgi protocol's "
                              "64 KiB") from None


def _var_name(name):
    key = _NAMES.get(name)
    if key is None:
        key = b"HTTP_" + name.upper().replace(b"-", b"_")
        if len(_NAMES) < _NAMES_LIMIT:
            _NAMES[name] = key
    return key


def _target_vars(request):
    """The encoded method, URI, path, query and protocol vars."""
    uri = request.target
    path, question, query = uri.partition(b"?")
    path = path_info(path)
    if question:
        middle = ((b"PATH_INFO", path), (b"REQUEST_URI", uri))
    else:
        middle = ((b"REQUEST_URI", uri), (b"PATH_INFO", path))
    try:
        return encode_vars(((b"REQUEST_METHOD", request.method), *middle,
                            (b"QUERY_STRING", query),
                            (b"SERVER_PROTOCOL",
                             b"HTTP/" + request.http_version)))
    except struct.error:
        raise HeadersTooLarge("the request target exceeds the uwsgi "
                              "protocol's 64 KiB") from None


def path_info(raw):
    """PATH_INFO from the raw path: cut at a `#`, dot segments removed,
    then decoded.

    uWSGI 2.0.31's router removes `.` and `..` segments before decoding,
    so `/a/%2e%2e/b` keeps its (decoded) dots while `/a/../b` becomes
    `/b`; it ends the path at a fragment (`/p#top` is `/p`, REQUEST_URI
    keeping it).  Malformed escapes (`%zz`) stay as they are: uWSGI
    turns them into NUL bytes, which no app should see.
    """
    if b"#" in raw:
        raw = raw.partition(b"#")[0]
    if b"/." in raw or raw.startswith(b"."):
        raw = remove_dot_segments(raw)
    if b"%" in raw:
        return unquote_to_bytes(raw)
    return raw


def remove_dot_segments(path):
    """RFC 3986 section 5.2.4, on bytes."""
    out = []
    while path:
        if path.startswith((b"../", b"./")):
            path = path[path.index(b"/") + 1:]
        elif path.startswith(b"/./") or path == b"/.":
            path = b"/" + path[3:]
        elif path.startswith(b"/../") or path == b"/..":
            path = b"/" + path[4:]
            if out:
                out.pop()
        elif path in (b".", b".."):
            path = b""
        else:
            end = path.find(b"/", 1)
            end = len(path) if end < 0 else end
            out.append(path[:end])
            path = path[end:]
    return b"".join(out)
