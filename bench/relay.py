"""The floor under ugu's router, for `--setups gevent-relay`.

`python -m bench.relay PORT WORKER_PORT`: keepalive HTTP clients in, one
uwsgi request per HTTP request out, the worker's answer passed back as it
wrote it (uWSGI's workers frame it with a Content-Length).  It parses only
the request line, sends the same few vars every time, logs nothing and has
no timeouts or error pages: what it costs per request is what gevent
itself costs, the bound a router built on a greenlet per connection cannot
go under.  GET only: the bench runs it on W1, W2 and W3.
"""

import _socket
import socket
import sys

from gevent import get_hub
from gevent.server import StreamServer
from gevent.socket import wait as wait_on_watcher

from ugu.protocol import encode

READ, WRITE = 1, 2
END_OF_HEAD = b"\r\n\r\n"


def packet(path):
    return encode([
        (b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", path),
        (b"PATH_INFO", path), (b"QUERY_STRING", b""),
        (b"SERVER_PROTOCOL", b"HTTP/1.1"), (b"SERVER_NAME", b"relay"),
        (b"SERVER_PORT", b"80"), (b"REMOTE_ADDR", b"127.0.0.1"),
        (b"REMOTE_PORT", b"1"), (b"HTTP_HOST", b"relay")])


def ask_worker(address, data):
    """The worker's whole answer, on a connection of its own."""
    sock = _socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    watchers = {}
    try:
        sock.connect_ex(address)
        _until(sock, watchers, WRITE, lambda: sock.send(data))
        answer = []
        while piece := _until(sock, watchers, READ,
                              lambda: sock.recv(65536)):
            answer.append(piece)
        return b"".join(answer)
    finally:
        for watcher in watchers.values():
            watcher.close()
        sock.close()


def _until(sock, watchers, events, call):
    while True:
        try:
            return call()
        except BlockingIOError:
            if events not in watchers:
                watchers[events] = get_hub().loop.io(sock.fileno(), events)
            wait_on_watcher(watchers[events])


def serve(port, worker_port):
    worker = ("127.0.0.1", worker_port)

    def handle(client, _):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffered = b""
        while True:
            while END_OF_HEAD not in buffered:
                data = client.recv(65536)
                if not data:
                    return
                buffered += data
            head, _, buffered = buffered.partition(END_OF_HEAD)
            path = head.split(b" ", 2)[1]
            client.sendall(ask_worker(worker, packet(path)))

    StreamServer(("127.0.0.1", port), handle).serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
