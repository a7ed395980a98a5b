"""The framing of a chunked request body, checked strictly before h11
decodes it (RFC 9112 7.1).

h11 is lenient where a request could be smuggled: it waits for ever for
the CRLF of a size line that ends in a bare LF, and takes a bare LF
where the trailer section ends.  A server and a proxy in front of it
that disagree on where a chunk ends disagree on where the next request
begins, so every byte h11 is fed for a chunked body goes through
`ChunkedFraming.check` first, and a bare LF anywhere in the framing
refuses the request at once (DEVIATIONS 3), as does a chunk size no
body can have (ugu.http.plain.MAX_BODY_SIZE).  Only the framing is
followed here; h11 still decodes the body and validates the trailer
fields.

Imported only for a chunked body, which few requests carry.
"""

import re

from ugu.http.errors import BadRequest
from ugu.http.plain import MAX_BODY_SIZE

# A size line: hex digits, then extensions (skipped, as h11 skips them)
# and optional whitespace, as h11's grammar has them; CRLF-ended.
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)(;[^\r\n]*)?[ \t]*\r\n")
CRLF = b"\r\n"


class ChunkedFraming:
    """Where a chunked body is in its framing, fed its bytes in order;
    whatever follows its end (a pipelined request) is not looked at."""

    def __init__(self, max_line):
        # The longest size or trailer line, as h11 buffers no more.
        self.max_line = max_line
        self._step = self._size_line
        self._line = bytearray()
        # Bytes of chunk data still to come.
        self._left = 0

    def check(self, data):
        """Follow `data`, the next bytes from the client; BadRequest
        where the framing is broken."""
        at = 0
        while at < len(data) and self._step is not None:
            at = self._step(data, at)

    def _take_line(self, data, at):
        """(the line, complete with its LF, or None; where data goes
        on).  A bare LF ends no line of the framing."""
        end = data.find(b"\n", at)
        line = self._line
        line += data[at:] if end < 0 else data[at:end + 1]
        if len(line) > self.max_line:
            raise BadRequest("invalid chunked body: a line of its "
                             f"framing is over {self.max_line} bytes")
        if end < 0:
            return None, len(data)
        if not line.endswith(CRLF):
            raise BadRequest("invalid chunked body: a bare LF ends a "
                             "line of its framing (CRLF needed)")
        self._line = bytearray()
        return line, end + 1

    def _size_line(self, data, at):
        line, at = self._take_line(data, at)
        if line is None:
            return at
        found = _SIZE_LINE.fullmatch(line)
        if found is None:
            raise BadRequest("invalid chunked body: illegal chunk size "
                             f"line {bytes(line[:40])!r}")
        size = int(found[1], 16)
        if size > MAX_BODY_SIZE:
            # h11 takes up to 20 hex digits, and would wait for them.
            raise BadRequest("invalid chunked body: a chunk size of "
                             f"{found[1][:40].decode()} is over "
                             f"{MAX_BODY_SIZE:x} (hex)")
        if size:
            self._left = size
            self._step = self._chunk_data
        else:
            self._step = self._trailer_line
        return at

    def _chunk_data(self, data, at):
        taken = min(self._left, len(data) - at)
        self._left -= taken
        if not self._left:
            self._step = self._chunk_end
        return at + taken

    def _chunk_end(self, data, at):
        taken = data[at:at + 2 - len(self._line)]
        self._line += taken
        if not CRLF.startswith(self._line):
            raise BadRequest("invalid chunked body: chunk data not "
                             "followed by CRLF")
        if len(self._line) == 2:
            self._line = bytearray()
            self._step = self._size_line
        return at + len(taken)

    def _trailer_line(self, data, at):
        """Trailer fields (h11 validates them), up to the empty line
        that ends the body."""
        line, at = self._take_line(data, at)
        if line == CRLF:
            self._step = None
        return at
