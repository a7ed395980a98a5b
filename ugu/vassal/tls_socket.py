"""`https-socket` and `ssl-socket`: HTTP, or the uwsgi protocol, over TLS
straight into a worker.

The core that accepts a connection does the TLS handshake (within
socket-timeout), then serves the connection as it serves an http-socket's
or a uwsgi socket's, on one end of a socketpair; a relay thread carries
the bytes between the other end and the client, through OpenSSL's memory
buffers.  Every path of the plain sockets (their fast reads and writes on
the descriptor, sendfile(), the offload threads) thus works unchanged on
a TLS connection, at the cost of one more copy of each byte.

As in uWSGI, a handshake that fails (a plain HTTP client among them)
closes the connection without a word, unless ssl-verbose says why a
client certificate failed.  The relay says close_notify once the core has
closed its end and everything it wrote has gone, and ends when the core
has closed its end for good (after a refused request the core still
reads for a moment what the client sends).
"""

import select
import socket
import ssl
import threading
import time

from ugu import sslcontext

READ_SIZE = 65536
# Bytes held in either direction before the relay stops reading that
# side: a slow reader slows its writer, as on a plain socket.
HELD = 4 * READ_SIZE
# How long the relay waits for a client to take what is left of a
# response once the core has closed its end, without socket-timeout.
FLUSH_WAIT = 4.0

_IN = select.POLLIN
_OUT = select.POLLOUT
_GONE = select.POLLHUP | select.POLLERR | select.POLLNVAL


def accept(conn, context, timeout):
    """The Relay of a TLS connection, the handshake done, its
    `core_end` the socket the core serves it on; None (the connection
    closed) where the handshake failed."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if outgoing.pending:
                    conn.sendall(outgoing.read(), socket.MSG_NOSIGNAL)
                data = conn.recv(READ_SIZE)
                if data:
                    incoming.write(data)
                else:
                    incoming.write_eof()
        if outgoing.pending:
            conn.sendall(outgoing.read(), socket.MSG_NOSIGNAL)
    except ssl.SSLError as e:
        sslcontext.verify_failure(e)
        # The alert OpenSSL has for the client, if the socket takes it.
        _send_now(conn, outgoing.read())
        conn.close()
        return None
    except OSError:
        # A reset or socket-timeout during the handshake.
        conn.close()
        return None
    ours, theirs = socket.socketpair()
    ours.settimeout(timeout)
    relay = Relay(conn, tls, incoming, outgoing, theirs, timeout)
    relay.core_end = ours
    relay.thread = threading.Thread(target=relay.run, name="uWSGITlsRelay",
                                    daemon=True)
    relay.thread.start()
    return relay


class Relay:
    """The bytes between a TLS client (`raw`, through `tls`) and the end
    `inner` of the core's socketpair."""

    def __init__(self, raw, tls, incoming, outgoing, inner, timeout):
        self.raw, self.tls, self.inner = raw, tls, inner
        self.incoming, self.outgoing = incoming, outgoing
        self.timeout = timeout or FLUSH_WAIT
        self.to_client = bytearray()
        self.to_core = bytearray()
        self.client_done = False     # the client will send no more
        self.core_done = False       # the core will write no more
        self.core_closed = False     # the core's end is closed for good
        self.inner_shut = False      # the core was told the client's end
        self.raw_shut = False        # close_notify said, writing shut

    def finish(self):
        """Close the core's end, then wait for what the core wrote to go
        to the client (bounded by socket-timeout), as a plain socket's
        last write has gone when the core is done."""
        self.core_end.close()
        self.thread.join()

    def run(self):
        try:
            self._loop()
        except OSError:
            # A reset, or a client gone mid-write: nothing to save.
            pass
        finally:
            self.raw.close()
            self.inner.close()

    def _loop(self):
        raw, inner = self.raw, self.inner
        raw.setblocking(False)
        inner.setblocking(False)
        # The request may have come with the end of the handshake.
        self._decrypt()
        poller = select.poll()
        raw_fd, inner_fd = raw.fileno(), inner.fileno()
        poller.register(raw_fd, 0)
        poller.register(inner_fd, 0)
        give_up = None
        raw_gone = False
        while True:
            if self.core_closed and not self.to_client:
                return
            raw_mask = 0
            if not self.client_done and len(self.to_core) < HELD:
                raw_mask |= _IN
            if self.to_client:
                raw_mask |= _OUT
            inner_mask = 0
            if not self.core_done and len(self.to_client) < HELD:
                inner_mask |= _IN
            if self.to_core and not self.core_closed:
                inner_mask |= _OUT
            if not raw_gone:
                poller.modify(raw_fd, raw_mask)
            if not self.core_closed:
                poller.modify(inner_fd, inner_mask)
            wait = None
            if self.core_closed:
                # What is left goes to the client within a bound.
                give_up = give_up or time.monotonic() + self.timeout
                wait = max(0, give_up - time.monotonic())
            ready = dict(poller.poll(None if wait is None
                                     else int(wait * 1000) + 1))
            if not ready and wait is not None:
                return
            raw_events = ready.get(raw_fd, 0)
            inner_events = ready.get(inner_fd, 0)
            if raw_events & _OUT or raw_events & _GONE and self.to_client:
                self._to_client()
            if raw_events & (_IN | _GONE) and not self.client_done:
                self._from_client()
            if inner_events & (_IN | _GONE) and not self.core_done:
                self._from_core()
            elif inner_events & _GONE and self.core_done:
                self.core_closed = True
                poller.unregister(inner_fd)
            if raw_events & _GONE and self.client_done \
                    and not self.to_client and not raw_gone:
                # Both ways shut: only the core's end is awaited.
                raw_gone = True
                poller.unregister(raw_fd)
            if self.to_core and inner_events & (_OUT | _GONE):
                self._to_core()
            if self.client_done and not self.to_core \
                    and not self.inner_shut:
                self.inner_shut = True
                _shutdown(inner)
            if self.core_done and not self.to_client \
                    and not self.raw_shut:
                self.raw_shut = True
                _shutdown(raw)

    def _from_client(self):
        data = self.raw.recv(READ_SIZE)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()
        self._decrypt()

    def _decrypt(self):
        """What OpenSSL has of the client's records, to the core."""
        while not self.client_done:
            try:
                data = self.tls.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError:
                # An end without close_notify, or a broken record: the
                # client sends no more either way.
                data = b""
            # b"": close_notify.
            self.to_core += data
            self.client_done = not data
        self._pending()

    def _to_core(self):
        try:
            sent = self.inner.send(self.to_core, socket.MSG_NOSIGNAL)
        except BlockingIOError:
            return
        except OSError:
            # The core closed its end: what the client sent goes unread.
            self.to_core.clear()
            return
        del self.to_core[:sent]

    def _from_core(self):
        try:
            data = self.inner.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.tls.write(data)
        else:
            self.core_done = True
            self._close_notify()
        self._pending()

    def _to_client(self):
        try:
            sent = self.raw.send(self.to_client, socket.MSG_NOSIGNAL)
        except BlockingIOError:
            return
        del self.to_client[:sent]

    def _close_notify(self):
        try:
            self.tls.unwrap()
        except ssl.SSLError:
            # SSLWantReadError: the client's close_notify is not awaited.
            pass

    def _pending(self):
        if self.outgoing.pending:
            self.to_client += self.outgoing.read()


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _send_now(conn, data):
    if not data:
        return
    try:
        conn.setblocking(False)
        conn.send(data, socket.MSG_NOSIGNAL)
    except OSError:
        pass
