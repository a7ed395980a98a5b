"""uWSGI's websockets: the handshake and the frames (RFC 6455) behind
uwsgi.websocket_handshake(), websocket_recv(), websocket_recv_nb(),
websocket_send() and websocket_send_binary().

The app calls them in its request: the handshake answers the request
with 101 on the request's own connection, and from then on the
connection carries frames, which the worker reads and writes itself
(through a raw transport: the bytes go as they are, and the connection
closes when the request ends).  As uWSGI's:

- a ping from the client gets an empty pong, and a close gets an empty
  close back and ends the websocket (the receive fails);
- while a receive waits, the server pings every `websocket-ping-freq`
  seconds, and ends the websocket when no pong came within
  `websocket-pong-tolerance` seconds of a ping (clock in whole seconds);
- a frame over `websocket-max-size` KiB ends it, unanswered;
- the frames of a fragmented message are joined, and each frame before
  the last gives the app b"\\0" (uWSGI's "wait for the rest" answer);
  each websocket joins its own (uWSGI's one buffer per process mixes
  two websockets' fragments: README, differences);
- a fragmented message joined past `websocket-max-size` ends it, with a
  close frame of status 1009 (Message Too Big); uWSGI joins without a
  bound, as long as the client sends (README, differences);
- once ended, every receive and send fails.

The frame codec (`parse_frame`, `frame`) is pure; `WebSocket` holds one
request's connection and state.
"""

import base64
import select
import struct
import time

from ugu import log
from ugu.vassal.request import ClientWriteError
from ugu.vassal.transport import RawTransport

# RFC 6455 1.3: appended to the client's key before hashing it.
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STATUS = "101 Web Socket Protocol Handshake"
# Opcodes (RFC 6455 5.2).
CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
# The close frame's status for a message past the limit (RFC 6455 7.4.1).
MESSAGE_TOO_BIG = struct.pack("!H", 1009)
FIN = 0x80
MASKED = 0x80
LENGTH_BITS = 0x7F
OPCODE_BITS = 0x0F
# A 7-bit length of 126 or 127 says a 16- or 64-bit one follows.
LENGTH_16, LENGTH_64 = 126, 127
_U16, _U64 = struct.Struct("!H"), struct.Struct("!Q")
MASK_SIZE = 4
READ_SIZE = 65536
# What a receive gives for a frame of a message that goes on.
MORE_TO_COME = b"\0"


class Ended(Exception):
    """The websocket ended (closed, gone, or in breach of a limit)."""


class TooLarge(Ended):
    def __init__(self, size):
        super().__init__(size)
        self.size = size


class JoinedTooLarge(TooLarge):
    """A fragmented message grew past the limit."""


def accept_key(key):
    """Sec-WebSocket-Accept for the client's Sec-WebSocket-Key."""
    import hashlib      # 3.5 MB of OpenSSL, for a handshake only
    digest = hashlib.sha1(key + ACCEPT_GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def handshake_headers(key, origin, proto):
    """The 101's headers, as uWSGI sends them: the origin and protocol
    given, else the request's (bytes; b"" when it has none), the origin
    "*" when neither has one."""
    headers = [("Upgrade", "WebSocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Origin", (origin or b"*").decode("latin-1"))]
    if proto:
        headers.append(("Sec-WebSocket-Protocol", proto.decode("latin-1")))
    headers.append(("Sec-WebSocket-Accept", accept_key(key)))
    return headers


def frame(opcode, payload):
    """One unmasked, final frame (a server's frames are never masked)."""
    size = len(payload)
    if size < LENGTH_16:
        head = bytes((FIN | opcode, size))
    elif size < 1 << 16:
        head = bytes((FIN | opcode, LENGTH_16)) + _U16.pack(size)
    else:
        head = bytes((FIN | opcode, LENGTH_64)) + _U64.pack(size)
    return head + payload


def parse_frame(buffer, max_size):
    """(fin, opcode, payload, frame size) of the frame `buffer` starts
    with, unmasked; None until it is all there.  TooLarge for an
    extended length past `max_size` bytes, as soon as it is read."""
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    size, at = second & LENGTH_BITS, 2
    if size in (LENGTH_16, LENGTH_64):
        wide = _U16 if size == LENGTH_16 else _U64
        if len(buffer) < at + wide.size:
            return None
        size = wide.unpack_from(buffer, at)[0]
        at += wide.size
        if size > max_size:
            raise TooLarge(size)
    mask = b""
    if second & MASKED:
        mask, at = bytes(buffer[at:at + MASK_SIZE]), at + MASK_SIZE
    end = at + size
    if len(buffer) < end:
        return None
    payload = bytes(buffer[at:end])
    if mask:
        payload = _unmask(payload, mask)
    return bool(first & FIN), first & OPCODE_BITS, payload, end


def _unmask(payload, mask):
    # XOR as two big integers: one pass in C, not a loop per byte.
    key = (mask * (len(payload) // MASK_SIZE + 1))[:len(payload)]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")
    return value.to_bytes(len(payload), "big")


def now():
    """uWSGI's clock for pings and pongs: whole seconds."""
    return int(time.monotonic())


class Settings:
    """websocket-ping-freq, websocket-pong-tolerance, websocket-max-size
    (in KiB), read once per worker."""

    def __init__(self, config):
        self.ping_freq = config["websocket-ping-freq"]
        self.pong_tolerance = config["websocket-pong-tolerance"]
        self.max_size = config["websocket-max-size"] * 1024


class WebSocket:
    """One request's websocket: its connection, the bytes read and not
    yet parsed, and the ping/pong clock."""

    def __init__(self, ex, settings):
        self.ex = ex
        self.settings = settings
        self.conn = ex.transport.conn
        # poll(), not select(): a connection's number may pass 1023.
        self.poller = select.poll()
        if self.conn is not None:
            self.poller.register(self.conn, select.POLLIN)
        self.buffer = bytearray(ex.input.unread())
        self.ended = False
        self.last_ping = 0
        self.last_pong = 0
        # The payloads of a fragmented message so far, or None, and
        # their size.
        self.fragments = None
        self.joined = 0

    def handshake(self, key, origin, proto):
        """Answer the request with 101; False (nothing sent) without a
        key or once a response has started."""
        ex = self.ex
        if not key or ex.headers_sent or self.conn is None:
            return False
        # The frames go as written, and the connection closes at the
        # end of the request: the head's transport's framing is done.
        ex.transport.close_after()
        ex.transport = RawTransport(self.conn)
        # As any head: the response routes see it, the log line counts
        # it.
        ex.start_response(STATUS, handshake_headers(key, origin, proto))
        try:
            ex.send_head()
        except ClientWriteError as e:
            e.log(ex)
            return False
        self.last_pong = now()
        return True

    def send(self, opcode, payload):
        """False once the websocket has ended or the write fails."""
        if self.ended:
            return False
        self.ended = not self._write(frame(opcode, payload))
        return not self.ended

    def receive(self, wait=True):
        """The next message; b"" from a receive that does not `wait`
        when none has come; None once the websocket has ended."""
        if self.ended:
            return None
        try:
            return self._receive(wait)
        except JoinedTooLarge as e:
            self._write(frame(CLOSE, MESSAGE_TOO_BIG))
            self._log(f"fragmented message too large: {e.size} bytes "
                      f"joined, max allowed: {self.settings.max_size}")
        except TooLarge as e:
            self._log(f"invalid packet size received: {e.size}, max "
                      f"allowed: {self.settings.max_size}")
        except Ended:
            pass
        self.ended = True
        self.fragments = None
        return None

    def _receive(self, wait):
        while True:
            found = parse_frame(self.buffer, self.settings.max_size)
            if found is None:
                if not self._read(wait):
                    return b""
                continue
            fin, opcode, payload, size = found
            del self.buffer[:size]
            message = self._control(fin, opcode, payload)
            if message is not None:
                return message

    def _control(self, fin, opcode, payload):
        """A message for the app, or None after a control frame."""
        if opcode in (CONTINUATION, TEXT, BINARY):
            return self._message(fin, opcode, payload)
        if opcode == CLOSE:
            self._write(frame(CLOSE, b""))
            raise Ended()
        if opcode == PING and not self._write(frame(PONG, b"")):
            raise Ended()
        if opcode == PONG:
            self.last_pong = now()
        # Other opcodes are reserved: skipped, as uWSGI skips them.
        return None

    def _message(self, fin, opcode, payload):
        if opcode == CONTINUATION:
            if self.fragments is None:
                # uWSGI's words, without its line end.
                log.log("Error continuation with empty previous buffer")
                raise Ended()
            self.fragments.append(payload)
            self.joined += len(payload)
            # A frame alone is bounded by parse_frame.
            if self.joined > self.settings.max_size:
                raise JoinedTooLarge(self.joined)
        else:
            self.fragments = [payload]
            self.joined = len(payload)
        if not fin:
            return MORE_TO_COME
        message, self.fragments = b"".join(self.fragments), None
        return message

    def _read(self, wait):
        """Read more into the buffer: True when some came; False when
        nothing is there for a receive that does not wait.  A waiting
        receive wakes every ping-freq seconds to ping."""
        while True:
            timeout = self.settings.ping_freq * 1000 if wait else 0
            if self.poller.poll(timeout):
                self._recv()
                return True
            self._ping_pong()
            if not wait:
                return False

    def _recv(self):
        try:
            data = self.conn.recv(READ_SIZE)
        except OSError as e:
            ex = self.ex
            log.verbose(f"uwsgi_websockets_recv_pkt(): {e.strerror or e} "
                        f"[core/websockets.c line 223] during {ex.method} "
                        f"{ex.uri} ({ex.remote_addr})")
            raise Ended() from None
        if not data:
            raise Ended()
        self.buffer += data

    def _ping_pong(self):
        """Ping when it is time; Ended when the last ping's pong is
        overdue."""
        current = now()
        if not self.last_ping:
            self._ping(current)
        elif self.last_pong < self.last_ping:
            tolerance = self.settings.pong_tolerance
            if current - self.last_ping > tolerance:
                self._log(f"no PONG received in {tolerance} seconds !!!")
                raise Ended()
        elif current - self.last_ping >= self.settings.ping_freq:
            self._ping(current)

    def _ping(self, current):
        if not self._write(frame(PING, b"")):
            raise Ended()
        self.last_ping = current

    def _write(self, data):
        """Write through the request (its log line counts the bytes);
        False when the write failed, as logged, or no head went before
        it (no handshake: a frame cannot be the response's start)."""
        if not self.ex.headers_sent:
            return False
        try:
            self.ex.write(data)
        except ClientWriteError as e:
            e.log(self.ex)
            return False
        return True

    def _log(self, what):
        ex = self.ex
        log.log(f'[uwsgi-websocket] "{ex.method} {ex.uri}" '
                f'({ex.remote_addr}) {what}')
