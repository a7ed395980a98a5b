"""The stats servers' common part: a listening socket whose clients each
get one JSON document, then the close.

The vassal's master (`stats`) and the Emperor (`emperor-stats`) each
build their own document (a master's in the frame `instance()` gives,
which the master keeping an Emperor serves empty); this module binds
the address, writes the document as uWSGI writes it (tab-indented, or
compact with `stats-minified`) and serves each client from the owner's
loop without holding it up.  With `stats-http` a client first sends a
request, which is awaited beside the loop's other files rather than in
it, and the document goes out under an HTTP response head.
"""

import dataclasses
import errno
import json
import os
import socket
import stat
import time

from ugu import UWSGI_VERSION, abstract, log
from ugu.options.errors import ConfigError
from ugu.vassal import sockets

# A client that does not read must not hold the loop up: what does not
# fit in its socket within this long is dropped.
SEND_TIMEOUT = 1.0
# With stats-http: the most clients waiting to send their request, and
# how much of a request is read (uWSGI reads it once, 4 KB).
MAX_WAITING = 16
REQUEST_SIZE = 4096
HTTP_HEAD = (b"HTTP/1.0 200 OK\r\n"
             b"Connection: close\r\n"
             b"Access-Control-Allow-Origin: *\r\n"
             b"Content-Type: application/json\r\n"
             b"\r\n")
# uWSGI's built-in locks, each free (no pid holding it), as its stats
# list them for an instance that has neither caches nor `locks`.
LOCKS = ("user 0", "signal", "filemon", "timer", "rbtimer", "cron", "rpc",
         "snmp")


def instance(listen_queue=0, sockets=(), workers=(), daemons=(), caches=(),
             spoolers=(), signal_queue=0, metrics=None,
             show_metrics=True, user_locks=0):
    """A master's document, in uWSGI's order, around its sockets and
    workers (and its external daemons, caches and spoolers, listed as
    uWSGI lists them only when there are some; a cache has its lock too).
    With metrics (a dict), their lock, and their values before the
    sockets unless not `show_metrics` (stats-no-metrics).  For what ugu
    has no part of (uWSGI's other locks) the keys keep the values uWSGI
    gives an instance that does not use it, so that uwsgitop and the
    monitoring plugins read it."""
    doc = {
        "version": UWSGI_VERSION, "listen_queue": listen_queue,
        "listen_queue_errors": 0, "signal_queue": signal_queue,
        # uWSGI's load is its longest listen queue too.
        "load": listen_queue,
        "pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(),
        "cwd": os.getcwd()}
    if daemons:
        doc["daemons"] = list(daemons)
    # `locks = N` adds user locks 1 to N after lock 0.
    names = (LOCKS[0], *(f"user {n}" for n in range(1, user_locks + 1)),
             *LOCKS[1:])
    doc["locks"] = [{name: 0} for name in names] + [
        {f"cache_{cache['name']}": 0} for cache in caches]
    if metrics is not None:
        doc["locks"].append({"metrics": 0})
    if caches:
        doc["caches"] = list(caches)
    if metrics is not None and show_metrics:
        doc["metrics"] = metrics
    doc.update({"sockets": list(sockets), "workers": list(workers)})
    if spoolers:
        doc["spoolers"] = list(spoolers)
    return doc


def encode(doc, minified=False):
    """`"key":value`, as uWSGI writes it, for scripts that grep the text."""
    if minified:
        return json.dumps(doc, separators=(",", ":")).encode()
    return json.dumps(doc, indent="\t", separators=(",", ":")).encode()


def is_tcp(address):
    """uWSGI's rule: an address with a colon is TCP, else a unix path."""
    return ":" in address


def listen(address, backlog, tuning):
    """A listening socket on `host:port` (`:port` for every address), a
    unix socket path or `@NAME`, with the options of `tuning`
    (sockets.Tuning)."""
    if is_tcp(address):
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise OSError(f"invalid port '{port}'")
        return _listen_tcp(host or "0.0.0.0", int(port), address, backlog,
                           tuning)
    return _listen_unix(address, backlog, tuning)


def read_from(address):
    """`connect-and-read`: what the socket at `address` sends (a stats
    server's document, as uWSGI's docs read one), to the log until it
    closes; the exit status."""
    try:
        sock = connect(address)
    except OSError as e:
        log.log(f"uwsgi_connect(): {e.strerror or e} [core/uwsgi.c line "
                f"4945]")
        return 1
    with sock:
        while data := sock.recv(8192):
            os.write(2, data)
    return 0


def connect(address, timeout=None):
    """A connected socket, or OSError: TCP for an address with a colon
    (an empty host is 127.0.0.1), else a unix path."""
    if is_tcp(address):
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return socket.create_connection((host or "127.0.0.1", int(port)),
                                        timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(abstract.sockaddr(address))
    except OSError:
        sock.close()
        raise
    return sock


def _listen_tcp(host, port, address, backlog, tuning):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sockets.set_buffers(sock, tuning)
        sockets.tune_tcp(sock, tuning, address)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _listen_unix(path, backlog, tuning):
    if abstract.bound_abstract(path):
        abstract.announce()
    elif os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        # A socket left by a process that died is in the way; a file is
        # not ours to remove.
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sockets.set_buffers(sock, tuning)
        sock.bind(abstract.bind_sockaddr(path))
        sock.listen(backlog)
        if tuning.mode is not None and not abstract.bound_abstract(path):
            sockets.chmod(sock, tuning.mode)
    except OSError:
        sock.close()
        raise
    return sock


def from_config(config, option, document):
    """The server on the address of `option` (`stats`, `emperor-stats`),
    written as the config's stats-http and stats-minified say."""
    address = config[option]
    # The options uWSGI sets on every socket it binds, and its listen
    # queue; but no deferred accept, as uWSGI's: a client sends nothing.
    tuning = dataclasses.replace(sockets.Tuning.from_config(config),
                                 defer_accept=0)
    try:
        listener = listen(address, config["listen"], tuning)
    except OSError as e:
        raise ConfigError(f"cannot bind {address}: {e.strerror or e}",
                          option=option) from None
    return StatsServer(listener, document, config["stats-http"],
                       config["stats-minified"], config["socket-timeout"])


class StatsServer:
    """Serves `document()` to each client of `listener`.  The owner's loop
    selects on `waiting()` and passes what became readable to
    `answer()`."""

    def __init__(self, listener, document, http=False, minified=False,
                 request_timeout=4):
        self.listener = listener
        self.document = document
        self.http, self.minified = http, minified
        self.request_timeout = request_timeout
        self._clients = {}      # client socket -> when it must have sent

    def fileno(self):
        return self.listener.fileno()

    def waiting(self):
        """The files to select on for reading: the listener, and the
        clients whose request has not come yet."""
        self._drop_late()
        return [self.listener, *self._clients]

    def deadline(self):
        """When (time.monotonic()) the first client still to send its
        request is dropped, or None."""
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
        self._clients[client] = time.monotonic() + self.request_timeout

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
        now = time.monotonic()
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
