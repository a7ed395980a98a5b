"""uwsgi.chunked_read() and chunked_read_nb(): a request body the client
sends in HTTP/1.1 chunks (`Transfer-Encoding: chunked`), taken by the app
one chunk at a time, as uWSGI's core/chunked.c parses it.

Through a uwsgi socket the chunks come raw after the request's vars (a
router that passes the body as it came), and are parsed here from the
connection as the app asks for them.  An http-socket de-chunks a body
before the app runs (README, difference 5) and keeps where each chunk
ended: the app is given the same chunks from there.

A chunk and its CRLF must fit in `chunked-input-limit` bytes (1 MiB by
default), as uWSGI's buffer must hold them; a wait for more of the body
lasts `chunked-input-timeout` seconds, else socket-timeout, or the
timeout the app gives (-1: for ever).  A read that fails raises uWSGI's
OSError("unable to receive chunked part").
"""

import math
import select

from ugu import log

# The page uWSGI's buffer starts with and grows by.
PAGE_SIZE = 4096
FAILED = "unable to receive chunked part"
# What a chunk's size line may hold before its CR: uWSGI takes letters
# and digits, and reads the number as strtoul(, 16) does.
_SIZE_CHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyz"
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX = frozenset(b"0123456789abcdefABCDEF")
# strtoul's answer for a number too large, which uWSGI's signed length
# then takes for a failure.
_TOO_LARGE = 1 << 63


class Settings:
    """chunked-input-limit and the default wait, read once."""

    def __init__(self, config):
        # 0 sets no limit, as in uWSGI.
        self.limit = config["chunked-input-limit"] or math.inf
        self.timeout = (config["chunked-input-timeout"]
                        or config["socket-timeout"])


def reader(ex, settings):
    """The request's chunk reader, made at the app's first call."""
    dechunked = getattr(ex.transport, "dechunked", None)
    if dechunked is not None:
        return Dechunked(*dechunked, settings.limit)
    return RawChunks(ex, settings)


def size_of(line):
    """A size line's number (its letters and digits), as strtoul(, 16)
    reads it: an optional 0x, then the hex digits it starts with."""
    if line[:2] in (b"0x", b"0X") and line[2:3] and line[2] in _HEX:
        line = line[2:]
    end = 0
    while end < len(line) and line[end] in _HEX:
        end += 1
    number = int(line[:end], 16) if end else 0
    return -1 if number >= _TOO_LARGE else number


class RawChunks:
    """Chunks parsed from the connection as they come."""

    def __init__(self, ex, settings):
        self.ex = ex
        self.conn = ex.transport.conn
        self.limit = settings.limit
        self.timeout = settings.timeout
        self.buffer = bytearray()
        # Body bytes that came with the request's vars: read before the
        # connection, into the same buffer, as uWSGI reads them.
        self.early = ex.input.unread()
        # The chunk whose bytes are awaited (its size line is parsed).
        self.awaited = None
        self.complete = False
        # How far the size line has been checked, and whether a chunk
        # extension began there: each byte is looked at once, however
        # many reads the line takes to come.
        self.scanned = 0
        self.extension = False
        # The buffer's size in uWSGI: it grows up to the limit, never
        # shrinks, and a read fills at most what it has room for.
        self.room = PAGE_SIZE

    def read(self, timeout=0, wait=True):
        """The next chunk (b"" once the last one came), or None where
        nothing came for a read that does not wait."""
        if self.complete:
            return b""
        while True:
            chunk = self._parse()
            if chunk is not None:
                return chunk
            if not self._more(timeout, wait):
                return None

    def _parse(self):
        """The chunk the buffer holds whole, b"" for the last, None where
        more must come first."""
        if self.awaited is None:
            end = self._size_line_end()
            if end is None:
                return None
            size = size_of(bytes(self.buffer[:end - 1]).partition(b";")[0])
            if size < 0:
                raise OSError(FAILED)
            del self.buffer[:end + 1]
            self.scanned, self.extension = 0, False
            if size == 0:
                self.complete = True
                return b""
            self.awaited = size
        if len(self.buffer) < self.awaited + 2:
            return None
        size, self.awaited = self.awaited, None
        chunk = bytes(self.buffer[:size])
        # The two bytes after the chunk are its CRLF, taken unread.
        del self.buffer[:size + 2]
        return chunk

    def _size_line_end(self):
        """Where the size line's LF is, None till it came; a character
        uWSGI does not take there fails the read.  A chunk extension
        (`;name=value`, which HTTP/1.1 allows) is skipped: uWSGI fails
        on it (README's differences)."""
        buffer = self.buffer
        for at in range(self.scanned, len(buffer)):
            byte = buffer[at]
            if byte == 13:
                if at + 1 == len(buffer):
                    self.scanned = at
                    return None
                if buffer[at + 1] != 10:
                    raise OSError(FAILED)
                return at + 1
            if byte == 59:
                self.extension = True
            elif byte == 10 or not (self.extension or byte in _SIZE_CHARS):
                raise OSError(FAILED)
        self.scanned = len(buffer)
        return None

    def _more(self, timeout, wait):
        """Read what comes into the buffer: False where nothing came for
        a read that does not wait; a failure, a timeout or the client's
        end raise."""
        # uWSGI's buffer: room for a page, or for the rest of the
        # awaited chunk, grown up to the limit; full at the limit, the
        # read fails.
        pos = len(self.buffer)
        need = 1 if self.awaited is None else self.awaited + 2 - pos
        want = max(PAGE_SIZE, need)
        if self.room - pos < want:
            grown = min(self.limit, pos + want)
            if grown <= pos or grown == self.room:
                raise OSError(FAILED)
            self.room = grown
        if self.early:
            taken = self.room - pos
            self.buffer += self.early[:taken]
            self.early = self.early[taken:]
            return True
        if self.conn is None:
            raise OSError(FAILED)
        wait_for = timeout or self.timeout
        if not wait:
            wait_for = 0
        elif wait_for < 0:
            wait_for = -1
        # poll(), not select(): a connection's number may pass 1023.
        poller = select.poll()
        poller.register(self.conn, select.POLLIN)
        if not poller.poll(wait_for * 1000 if wait_for > 0 else wait_for):
            if not wait:
                return False
            raise OSError(FAILED)
        try:
            data = self.conn.recv(self.room - len(self.buffer))
        except BlockingIOError:
            if not wait:
                return False
            raise OSError(FAILED) from None
        except OSError as e:
            log.log(f"uwsgi_chunked_input_recv(): {e.strerror or e} "
                    f"[core/chunked.c line 37]")
            raise OSError(FAILED) from None
        if not data:
            raise OSError(FAILED)
        self.buffer += data
        return True


class Dechunked:
    """The chunks of a body an http-socket de-chunked: `sizes` say where
    each ended in the `spool`, read from its own place (wsgi.input reads
    the same file)."""

    def __init__(self, spool, sizes, limit):
        self.spool, self.sizes, self.limit = spool, sizes, limit
        self.next = 0
        self.offset = 0

    def read(self, timeout=0, wait=True):
        if self.next == len(self.sizes):
            return b""
        size = self.sizes[self.next]
        if size + 2 > self.limit:
            raise OSError(FAILED)
        self.next += 1
        here = self.spool.tell()
        try:
            self.spool.seek(self.offset)
            chunk = self.spool.read(size)
        finally:
            self.spool.seek(here)
        self.offset += size
        return chunk
