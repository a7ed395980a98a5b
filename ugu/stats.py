"""The stats servers' common part: a listening socket whose clients each
get one JSON document, then the close.

The vassal's master (`stats`) and the Emperor (`emperor-stats`) each
build their own document; this module binds the address, writes the
document as uWSGI writes it (tab-indented, or compact with
`stats-minified`) and serves each client from the owner's loop without
holding it up.  With `stats-http` a client first sends a request, which
is awaited beside the loop's other files rather than in it, and the
document goes out under an HTTP response head.
"""

import json
import os
import socket
import stat
import time

# A client that does not read must not hold the loop up: what does not
# fit in its socket within this long is dropped.
SEND_TIMEOUT = 1.0
BACKLOG = 16
# With stats-http: the most clients waiting to send their request, and
# how much of a request is read (uWSGI reads it once, 4 KB).
MAX_WAITING = 16
REQUEST_SIZE = 4096
HTTP_HEAD = (b"HTTP/1.0 200 OK\r\n"
             b"Connection: close\r\n"
             b"Access-Control-Allow-Origin: *\r\n"
             b"Content-Type: application/json\r\n"
             b"\r\n")


def encode(doc, minified=False):
    """`"key":value`, as uWSGI writes it, for scripts that grep the text."""
    if minified:
        return json.dumps(doc, separators=(",", ":")).encode()
    return json.dumps(doc, indent="\t", separators=(",", ":")).encode()


def is_tcp(address):
    """uWSGI's rule: an address with a colon is TCP, else a unix path."""
    return ":" in address


def listen(address):
    """A listening socket on `host:port` (`:port` for every address) or
    a unix socket path; OSError when it cannot be bound."""
    if is_tcp(address):
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise OSError(f"invalid port '{port}'")
        return _listen_tcp(host or "0.0.0.0", int(port))
    return _listen_unix(address)


def _listen_tcp(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def _listen_unix(path):
    # A socket left by a process that died is in the way; a file is not
    # ours to remove.
    if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(BACKLOG)
    return sock


def from_config(config, address, document):
    """The server on `address`, written as the config's stats-http and
    stats-minified say; OSError when it cannot be bound."""
    return StatsServer(listen(address), document, config["stats-http"],
                       config["stats-minified"], config["socket-timeout"])


class StatsServer:
    """Serves `document()` to each client of `listener`.  The owner's loop
    selects on `waiting()` and passes what became readable to
    `answer()`."""

    def __init__(self, listener, document, http=False, minified=False,
                 request_timeout=4, clock=time.monotonic):
        self.listener = listener
        self.document = document
        self.http, self.minified = http, minified
        self.request_timeout = request_timeout
        self.clock = clock
        self._clients = {}      # client socket -> when it must have sent

    def fileno(self):
        return self.listener.fileno()

    def waiting(self):
        """The files to select on for reading: the listener, and the
        clients whose request has not come yet."""
        self._drop_late()
        return [self.listener, *self._clients]

    def deadline(self):
        """When the first client still to send its request is dropped
        (the loop's clock), or None."""
        return min(self._clients.values(), default=None)

    def answer(self, source):
        if source is self.listener:
            self._accept()
        elif source in self._clients:
            del self._clients[source]
            self._answer_request(source)

    def close(self):
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.listener.close()

    def _accept(self):
        try:
            client, _ = self.listener.accept()
        except OSError:
            return      # it went away before we got to it
        if not self.http:
            self._send(client, b"")
            return
        if len(self._clients) >= MAX_WAITING:
            oldest = next(iter(self._clients))
            del self._clients[oldest]
            oldest.close()
        self._clients[client] = self.clock() + self.request_timeout

    def _answer_request(self, client):
        try:
            request = client.recv(REQUEST_SIZE, socket.MSG_DONTWAIT)
        except OSError:
            request = b""
        if not request:
            client.close()  # it left without asking: nothing to answer
            return
        self._send(client, HTTP_HEAD)

    def _drop_late(self):
        now = self.clock()
        for client, deadline in list(self._clients.items()):
            if deadline <= now:
                del self._clients[client]
                client.close()

    def _send(self, client, head):
        with client:
            client.settimeout(SEND_TIMEOUT)
            try:
                client.sendall(head + encode(self.document(), self.minified))
            except OSError:
                pass    # a client that does not read gets what fitted
