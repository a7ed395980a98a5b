"""The `gzip` route action's transformation of a response body.

Each `gzip` action a request meets adds a layer, as uWSGI adds a
transformation: the app's body is gzipped as it is written, each piece
flushed so that a streamed response keeps streaming, and a second layer
gzips the first one's output.  The bytes are uWSGI's (zlib with its
settings, its 10-byte gzip header, the CRC and size after the last
block), so a client sees the same body from either server.

The exchange decides when a layer starts (request.py): with the first
piece of body the app writes, which then also puts `Content-Encoding:
gzip` in the head; a body that never comes, or one sent by sendfile()
(a static file, a wsgi.file_wrapper), is left alone, as in uWSGI.
"""

import zlib

# A gzip member's header as uWSGI writes it: deflate, no flags, no
# modification time, no extra flags, made on Unix.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
CONTENT_ENCODING = ("Content-Encoding", "gzip")
_FRAMING = frozenset({"content-length"})


class Gzip:
    """One layer: a gzip member written piece by piece."""

    def __init__(self):
        # uWSGI's deflate settings: raw deflate (the member's header and
        # trailer are written here), the default level, memLevel 9.
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION,
                                         zlib.DEFLATED, -zlib.MAX_WBITS, 9)
        self._crc = 0
        self._size = 0
        self._started = False

    def chunk(self, data):
        """What goes on the wire for `data` (the header first, once)."""
        out = b""
        if not self._started:
            self._started = True
            out = GZIP_HEADER
        if data:
            self._crc = zlib.crc32(data, self._crc)
            self._size += len(data)
            out += (self._deflate.compress(data)
                    + self._deflate.flush(zlib.Z_SYNC_FLUSH))
        return out

    def final(self):
        """The member's end: the last block, the CRC and the size (the
        header too, for a member that got no data)."""
        out = self.chunk(b"") + self._deflate.flush(zlib.Z_FINISH)
        return (out + self._crc.to_bytes(4, "little")
                + (self._size & 0xFFFFFFFF).to_bytes(4, "little"))


class Layers:
    """`count` gzip layers, the first one's output the second's input."""

    def __init__(self, count):
        self._layers = [Gzip() for _ in range(count)]

    def chunk(self, data):
        for layer in self._layers:
            data = layer.chunk(data)
        return data

    def final(self):
        data = b""
        for layer in self._layers:
            data = layer.chunk(data) + layer.final()
        return data

    def headers(self, headers, at):
        """The head for the compressed body: a `Content-Encoding: gzip`
        for each layer where uWSGI adds it (`at`: after the response's
        own headers, before add-header's and the routes'), and no
        Content-Length, which named the body before it was compressed
        (DEVIATIONS 14: uWSGI sends it on, and the client reads too
        little or waits for more)."""
        added = [CONTENT_ENCODING] * len(self._layers)
        headers = [*headers[:at], *added, *headers[at:]]
        return [h for h in headers if h[0].lower() not in _FRAMING]
