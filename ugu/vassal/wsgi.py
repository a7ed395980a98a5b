"""The PEP 3333 side of a request: environ, start_response, wsgi.input.

The environ mirrors uWSGI's: every request var as a latin-1 `str`, plus the
`wsgi.*` keys and uWSGI's `uwsgi.version` / `uwsgi.node` (bytes, as uWSGI
gives them on Python 3).
"""

import io
import operator
import re
import socket
import sys
import time

from ugu import UWSGI_VERSION, log
from ugu.http.errors import BodyCutShort, BodyStalled
from ugu.http.status import reason
from ugu.options.errors import ConfigError

# How long drain() reads a body the app left unread, to keep the
# connection for the next request; past it, the connection closes.
DRAIN_SECONDS = 1.0
_VERSION = UWSGI_VERSION.encode()
_NODE = socket.gethostname().encode()


_LEADING_DIGITS = re.compile(r"[0-9]*")
# uWSGI keeps a body's length in a size_t.  As 10**64 is a multiple of
# 2**64, the last 64 digits give the length modulo 2**64 (and int() is
# not asked to read thousands of digits).
_SIZE_T = 2 ** 64
_SIZE_T_DIGITS = 64


def content_length(request_vars):
    """CONTENT_LENGTH as uWSGI reads it: the ASCII digits it starts with
    (`5x` is 5; `abc`, `-5` and ` 5` are 0), modulo 2**64.  ugu's router
    refuses a length over 2**60, but a front end of another make may
    pass on any."""
    text = request_vars.get("CONTENT_LENGTH")
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()):
        text = _LEADING_DIGITS.match(text)[0]
    return int(text[-_SIZE_T_DIGITS:] or 0) % _SIZE_T


# uWSGI's line for a read no memory could be given for.
_MALLOC = "uwsgi_request_body_read()/malloc()"
_NO_MEMORY = "Cannot allocate memory [core/reader.c line 371]"


class SocketBody:
    """A request body as a buffered stream: the bytes that came with the
    request's head first, then the socket, whose reader is made only when
    the body goes past them (never, for most requests)."""

    def __init__(self, conn, early, buffer_size):
        self._conn, self._early = conn, early
        self._buffer_size = buffer_size
        self._stream = None

    def read(self, size):
        data = self._take(size)
        if len(data) < size:
            data += self._from_socket(data, self._socket().read,
                                      size - len(data))
        return data

    def read1(self, size):
        """What came, else one wait for more (b"" where the body ends)."""
        if self._early:
            return self._take(size)
        return self._from_socket(b"", self._socket().read1, size)

    def readline(self, size):
        end = self._early.find(b"\n", 0, size) + 1
        data = self._take(end or size)
        if not end and len(data) < size:
            data += self._from_socket(data, self._socket().readline,
                                      size - len(data))
        return data

    def buffered(self):
        """Bytes that came and were not read yet."""
        return len(self._early)

    def fileno(self):
        return self._conn.fileno()

    def unread(self):
        """Take the bytes that came past the body (a websocket's first
        frames), short of a reader's buffer: the app read no body past
        the handshake's head, whose body is empty."""
        data, self._early = self._early, b""
        return data

    def _from_socket(self, taken, call, size):
        try:
            return call(size)
        except TimeoutError:
            # Put back, to be counted as come (the reader is spent).
            self._early = taken + self._early
            raise
        except (MemoryError, OverflowError):
            # A size no memory holds, refused before any read: put back
            # for a smaller read, as uWSGI's fails before it reads.
            self._early = taken + self._early
            raise

    def _take(self, size):
        data, self._early = self._early[:size], self._early[size:]
        return data

    def _socket(self):
        if self._stream is None:
            self._stream = io.BufferedReader(_SocketReader(self._conn),
                                             self._buffer_size)
        return self._stream


class _SocketReader(io.RawIOBase):
    """The connection as a raw stream.  Not makefile()'s: a socket does
    not close while a file made from it is open, and an app that keeps
    wsgi.input in a reference cycle (a framework's request object)
    would keep its client's connection open until the garbage collector
    came by; the worker closes this one when the request ends, as uWSGI
    does, whoever holds the stream."""

    def __init__(self, conn):
        self._conn = conn

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._conn.recv_into(buffer)

    def fileno(self):
        return self._conn.fileno()


class Input:
    """wsgi.input: at most CONTENT_LENGTH bytes of a buffered stream,
    whose reads are short only where the body ends.  A body that ends
    before CONTENT_LENGTH, or stalls, fails the read as uWSGI's does: its
    [uwsgi-body-read] line, and an OSError with its words for the app.
    As in uWSGI, a size of 0 or less means all that is left, readlines()
    ignores its hint, and close(), tell(), fileno() and seek() are there
    (seek() refuses: without post-buffering there is nothing to go back
    in)."""

    # Reads the socket failed (a reset), or that no memory could be
    # given for: the log line's rerr.  As in uWSGI, a body cut short or
    # stalled is not one.
    read_errors = 0
    # The request's vars, for the line of a read no memory could be
    # given for, which names the request (the Exchange sets them).
    request_vars = {}

    def __init__(self, stream, length):
        self._stream = stream
        self.length = self.remaining = length
        # The body ended early or stalled under a read of the app's.
        self._failed = False

    def read(self, size=None):
        # uWSGI names a read() without a size read(0).
        want = self._want(size)
        data = self._read(self._stream.read, "read", want, size or 0)
        if len(data) < want:
            raise self._cut_short("read", size or 0, want, len(data))
        self.remaining -= len(data)
        return data

    def read1(self, size):
        """Up to `size` bytes of those that came, waiting only while none
        has: post-buffering's read, one per arrival as uWSGI's."""
        want = min(size, self.remaining)
        data = self._read(self._stream.read1, "read", want, want)
        if not data:
            raise self._cut_short("read", want, want, 0)
        self.remaining -= len(data)
        return data

    def readline(self, size=None):
        # A line is read piece by piece, as uWSGI's: no size is too large
        # to ask for.
        want = min(self._want(size), sys.maxsize)
        data = self._read(self._stream.readline, "readline", want,
                          size or 0)
        if len(data) < want and not data.endswith(b"\n"):
            raise self._cut_short("readline", size or 0, want, len(data))
        self.remaining -= len(data)
        return data

    def _want(self, size):
        if size is None:
            return self.remaining
        # A float or a str fails as in uWSGI, which wants an integer.
        size = operator.index(size)
        if size <= 0 or size > self.remaining:
            return self.remaining
        return size

    def _read(self, call, name, want, asked):
        if not want:
            return b""
        try:
            return call(want)
        except (TimeoutError, BodyStalled):
            # What came of the body before it stalled counts as consumed,
            # as uWSGI counts it.
            self._failed = True
            got = min(want, self._stream.buffered())
            self._log("Timeout", want - got, got, "")
            raise OSError(f"timeout during {name}({asked}) on "
                          f"wsgi.input") from None
        except BodyCutShort:
            got = min(want, self._stream.buffered())
            raise self._cut_short(name, asked, want, got) from None
        except OSError:
            self.read_errors += 1
            raise
        except (MemoryError, OverflowError):
            raise self._no_memory(name, asked) from None

    def _no_memory(self, name, asked):
        """uWSGI allocates what a read asks for before it reads: a size
        no memory holds (a CONTENT_LENGTH of a front end other than
        ugu's router) fails there, with its malloc() line, and leaves
        the body unread.  The connection then closes."""
        self.read_errors += 1
        self._failed = True
        get = self.request_vars.get
        method, uri = get("REQUEST_METHOD"), get("REQUEST_URI")
        remote_addr = get("REMOTE_ADDR")
        if method and uri and remote_addr:
            log.verbose(f"{_MALLOC}: {_NO_MEMORY} during {method} {uri} "
                        f"({remote_addr})")
        else:
            # uWSGI's words where it has no request to name.
            log.verbose(f"{_MALLOC} {_NO_MEMORY} ")
        return OSError(f"error during {name}({asked}) on wsgi.input")

    def _cut_short(self, name, asked, want, got):
        """The client closed before CONTENT_LENGTH, which the app must not
        take for a whole body: logged, and the error to raise."""
        self._failed = True
        self._log("Error", want - got, got,
                  " message: Client closed connection")
        return OSError(f"error during {name}({asked}) on wsgi.input")

    def _log(self, what, missing, got, message):
        consumed = self.length - self.remaining + got
        log.log(f"[uwsgi-body-read] {what} reading {missing} bytes. "
                f"Content-Length: {self.length} consumed: {consumed} "
                f"left: {self.length - consumed}{message}")

    def readlines(self, hint=None):
        return list(self)

    def close(self):
        """Nothing to do: the worker ends the body with the request."""

    def tell(self):
        return self.length - self.remaining

    def fileno(self):
        return self._stream.fileno()

    def seek(self, *args):
        raise OSError("seeking wsgi.input without post_buffering is "
                      "IMPOSSIBLE !!!")

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def unread(self):
        """Take the bytes read from the connection past the body (a
        websocket's first frames, see ugu.vassal.websocket); none from
        a de-chunked body, read whole before the app ran, whose stream
        keeps no such bytes."""
        unread = getattr(self._stream, "unread", None)
        return unread() if unread is not None else b""

    def abandon(self):
        """The body is not to be read: drain() then ends the connection,
        unread, as after a failed read."""
        self._failed = True

    def drain(self):
        """Consume what the app left unread, so the connection stays in
        step with the peer; False where it cannot, and the connection
        must close (what is left of the body is no next request).  A
        body that ends early here (a router that heard the answer stops
        sending) is nobody's fault and not logged: the response has
        gone.  Nor is one whose stream already failed the app, which is
        not waited on again (a timeout leaves a socket's reader
        unusable).  Nor one still coming after DRAIN_SECONDS: a client
        that trickles a long body nobody reads must not hold the core
        (uWSGI's closes at once)."""
        if self._failed:
            return False
        deadline = time.monotonic() + DRAIN_SECONDS
        try:
            while self.remaining:
                if time.monotonic() > deadline:
                    return False
                # What came, not a whole 64 KiB: the deadline is looked
                # at between reads.
                data = self._stream.read1(min(self.remaining, 65536))
                if not data:
                    return False
                self.remaining -= len(data)
        except (OSError, ValueError):
            return False
        return True


class BufferedInput(Input):
    """wsgi.input under `post-buffering`: the whole body, read before the
    app ran, from memory or a temporary file; seek() moves in it as
    uWSGI's does.  fileno() is still the connection's, as in uWSGI, and
    so are the bytes past the body (a websocket's first frames)."""

    def __init__(self, store, length, source):
        super().__init__(store, length)
        self._source = source

    def fileno(self):
        return self._source.fileno()

    def unread(self):
        return self._source.unread()

    def seek(self, pos, whence=0):
        if whence == 1:
            pos += self.length - self.remaining
        elif whence == 2:
            pos += self.length
        if pos < 0 or pos > self.length:
            raise OSError("invalid seek position for wsgi.input")
        self._stream.seek(pos)
        self.remaining = self.length - pos


def buffer_body(wsgi_input, memory_limit, read_size, before_read=None):
    """post-buffering: the whole body read from the client before the app
    runs, in memory under `memory_limit` bytes, else in a temporary file,
    calling `before_read` (if any) before each read.  None if the client
    failed to send it (said as a read of the app's would have been)."""
    length = wsgi_input.length
    if length < memory_limit:
        store = io.BytesIO()
    else:
        import tempfile     # only for a body this large
        store = tempfile.TemporaryFile()
    try:
        while wsgi_input.remaining:
            if before_read is not None:
                before_read()
            store.write(wsgi_input.read1(read_size))
    except OSError:
        store.close()
        return None
    store.seek(0)
    return BufferedInput(store, length, wsgi_input)


class FileWrapper:
    """wsgi.file_wrapper: lets the worker send a real file with
    sendfile() instead of reading it through Python."""

    def __init__(self, filelike, blksize=65536):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def fileno(self):
        try:
            return self.filelike.fileno()
        except (AttributeError, OSError, ValueError):
            return None

    def __iter__(self):
        while True:
            data = self.filelike.read(self.blksize)
            if not data:
                return
            yield data


# The keys that are the same for every request, added in one update.
# No wsgi.input_terminated, as in uWSGI: every body comes with its
# CONTENT_LENGTH, a chunked one too (DEVIATIONS 5).
_CONSTANT_KEYS = {"wsgi.version": (1, 0), "wsgi.run_once": False,
                  "wsgi.file_wrapper": FileWrapper,
                  "uwsgi.version": _VERSION, "uwsgi.node": _NODE}


def constant_keys(config):
    """The keys every environ of the worker gets: wsgi.file_wrapper
    among them, but under wsgi-disable-file-wrapper, as in uWSGI."""
    if config["wsgi-disable-file-wrapper"]:
        return {key: value for key, value in _CONSTANT_KEYS.items()
                if key != "wsgi.file_wrapper"}
    return _CONSTANT_KEYS


# wsgi-env-behaviour: a new environ for each request, or (uWSGI's
# default) one per core, emptied when its request ends.
HOLY, CHEAT = "holy", "cheat"


def env_behaviour(config):
    """wsgi-env-behaviour's value, refused in uWSGI's words when it is
    neither holy nor cheat."""
    value = config["wsgi-env-behaviour"] or CHEAT
    if value not in (HOLY, CHEAT):
        raise ConfigError(f"invalid wsgi-env-behaviour value: {value} "
                          f"(write {HOLY} or {CHEAT})",
                          option="wsgi-env-behaviour")
    return value


def build_environ(environ, request_vars, wsgi_input, constants,
                  multithread, multiprocess, core=None):
    """Fill `environ`, an empty dict, for a request."""
    # No SCRIPT_NAME or PATH_INFO where the request has none (nginx's
    # uwsgi_params send no SCRIPT_NAME), as in uWSGI; PEP 3333 allows an
    # empty one to be left out.
    environ.update(request_vars)
    environ.update(constants)
    environ["wsgi.input"] = wsgi_input
    environ["wsgi.errors"] = sys.stderr
    environ["wsgi.multithread"] = multithread
    environ["wsgi.multiprocess"] = multiprocess
    environ["wsgi.url_scheme"] = _scheme(request_vars)
    if core is not None:
        environ["uwsgi.core"] = core
    return environ


def _scheme(request_vars):
    """wsgi.url_scheme as uWSGI picks it: UWSGI_SCHEME or the client's
    X-Forwarded-Proto, whichever comes later in the vars; without one
    (or with an empty one), https where HTTPS starts with "on" in any
    case, or with "1"."""
    scheme = request_vars.get("UWSGI_SCHEME")
    forwarded = request_vars.get("HTTP_X_FORWARDED_PROTO")
    if forwarded is not None and (scheme is None
                                  or _forwarded_last(request_vars)):
        scheme = forwarded
    if scheme:
        return scheme
    https = request_vars.get("HTTPS")
    if not https:
        return "http"
    on = https[:2].lower() == "on" or https[:1] == "1"
    return "https" if on else "http"


def _forwarded_last(request_vars):
    """Whether X-Forwarded-Proto comes after UWSGI_SCHEME (nginx sends
    its params before the client's headers)."""
    keys = list(request_vars)
    return (keys.index("HTTP_X_FORWARDED_PROTO")
            > keys.index("UWSGI_SCHEME"))


def check_status(status):
    """The status line text, checked in uWSGI's words; a status of up to
    four characters is its code and uWSGI's reason phrase for it."""
    if not isinstance(status, str):
        raise TypeError("http status must be a string")
    if not _latin_1(status):
        raise TypeError("http status string must be encodable in latin1")
    code = status[:3]
    if len(status) < 3 or not code.isdigit():
        raise ValueError(f"invalid http status: {status!r}")
    if len(status) <= 4:
        return f"{code} {reason(code)}"
    return status


# uWSGI lays a response head out in a buffer of a page, grown by a page
# at a time, or by just the piece where a page would pass the limit:
# response-headers-limit, 64 KiB unless set.
HEAD_LIMIT = 65535
PAGE_SIZE = 4096


def head_fits(protocol, status_line, headers, limit=HEAD_LIMIT):
    """Whether uWSGI's buffer takes the head: the status line, then a
    `name: value` line per header.  A head well under the limit always
    fits; one near it is laid out as uWSGI lays it out, which can refuse
    a head shorter than the `limit` (and take one longer than a limit
    under a page, which never grows)."""
    first = len(protocol or "HTTP/1.0") + len(status_line) + 3
    total = first
    for name, value in headers:
        total += len(name) + len(value) + 4
    if 2 * total <= limit:
        # No piece is larger than the whole: the usual head, at once.
        return True
    sizes = [first] + [len(name) + len(value) + 4 for name, value in headers]
    if total + max(sizes) <= limit:
        return True
    allocated, used = PAGE_SIZE, 0
    for size in sizes:
        if size > allocated - used:
            grow = max(size, PAGE_SIZE)
            if allocated + grow > limit:
                grow = size
            if allocated + grow > limit:
                return False
            allocated += grow
        used += size
    return True


def check_headers(headers):
    """The app's headers, checked in uWSGI's words (a tuple's items past
    the second are ignored, as there); a line break in a value or a colon
    in a name, which would let a header add others, is refused."""
    if not isinstance(headers, list):
        raise TypeError("http headers must be in a python list")
    for item in headers:
        # The usual header, in few steps; any other, in all of them.
        if type(item) is not tuple or len(item) != 2:
            return [_checked(item) for item in headers]
        name, value = item
        if type(name) is not str or type(value) is not str or \
                not (name + value).isascii():
            return [_checked(item) for item in headers]
        if "\r" in value or "\n" in value or ":" in name:
            raise ValueError(f"invalid http header {name!r}")
    return headers


def _checked(item):
    if not isinstance(item, tuple):
        raise TypeError("http header must be defined in a tuple")
    if len(item) < 2:
        raise TypeError("http header must be a 2-item tuple")
    name, value = item[:2]
    if not isinstance(name, str):
        raise TypeError("http header key must be a string")
    if not isinstance(value, str):
        raise TypeError("http header value must be a string")
    if not (_latin_1(name) and _latin_1(value)):
        raise TypeError("http header must be encodable in latin1")
    if "\r" in value or "\n" in value or ":" in name:
        raise ValueError(f"invalid http header {name!r}")
    return name, value


def _latin_1(text):
    if text.isascii():
        return True
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True
