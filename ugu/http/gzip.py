"""`http-auto-gzip`: the router gzips responses the app marked for it.

An app (or a response route) marks a response with `uWSGI-Encoding: gzip`.
The router compresses it when the client accepts gzip and the body is not
encoded already, re-framing it (no Content-Length) and adding
`Vary: Accept-Encoding`.  With the option on, the marker is internal: it
never reaches the client, compressed or not (DEVIATIONS 8); with it off,
the router passes it on as any header, as uWSGI's does.
"""

import functools
import zlib

MARKER = b"uwsgi-encoding"
GZIP_WBITS = 31  # zlib's gzip container
_VARY = (b"Vary", b"Accept-Encoding")
_ENCODED = (b"Content-Encoding", b"gzip")


@functools.lru_cache(maxsize=64)
def accepts_gzip(accept_encoding):
    """Whether an Accept-Encoding value admits gzip (RFC 9110 12.5.3):
    codings are case-insensitive, `x-gzip` is gzip, `*` stands for any
    coding not listed, and q=0 means "not acceptable"."""
    weights = {}
    for item in accept_encoding.lower().split(b","):
        coding, _, params = item.partition(b";")
        weights.setdefault(coding.strip(), _quality(params))
    for coding in (b"gzip", b"x-gzip", b"*"):
        if coding in weights:
            return weights[coding] > 0
    return False


def _quality(params):
    for param in params.split(b";"):
        name, _, value = param.partition(b"=")
        if name.strip() == b"q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def prepare(raw_headers, may_gzip):
    """(headers for the client, a GzipStream or None) for a response's
    (name, value) pairs; may_gzip says that the client accepts gzip, the
    option is on and the response has a body."""
    marked = encoded = False
    kept = []
    for name, value in raw_headers:
        lower = name.lower()
        if lower == MARKER:
            marked = value.strip().lower() == b"gzip"
            continue
        if lower == b"content-encoding":
            encoded = True
        kept.append((name, value))
    if not (may_gzip and marked and not encoded):
        return kept, None
    return _gzipped_headers(kept), GzipStream()


def _gzipped_headers(headers):
    out, vary = [], False
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            continue
        if lower == b"vary":
            vary = vary or _covers_encoding(value)
        out.append((name, value))
    out.append(_ENCODED)
    if not vary:
        out.append(_VARY)
    return out


def _covers_encoding(vary):
    fields = {f.strip() for f in vary.lower().split(b",")}
    return b"*" in fields or b"accept-encoding" in fields


class GzipStream:
    """A streaming gzip body: each piece is flushed, so that the client
    sees what the app has sent so far."""

    def __init__(self):
        self._zlib = zlib.compressobj(wbits=GZIP_WBITS)

    def compress(self, data):
        return (self._zlib.compress(data)
                + self._zlib.flush(zlib.Z_SYNC_FLUSH))

    def finish(self):
        return self._zlib.flush(zlib.Z_FINISH)
