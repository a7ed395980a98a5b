"""W6's idle clients: `python -m bench.holder PORT COUNT`.

Opens COUNT keepalive connections, sends one request on each and reads its
answer, then leaves them idle.  Prints `ready N` (connections that got a
200) once all have answered, and, when stdin closes, `open N`: how many the
server still kept open, then exits.
"""

import sys

from gevent import monkey

monkey.patch_all()

import re  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
# Connecting a thousand sockets at once would overflow the listen backlog.
PARALLEL = 50


def hold(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(REQUEST)
    head = b""
    while b"\r\n\r\n" not in head:
        data = s.recv(4096)
        if not data:
            s.close()
            return None
        head += data
    head, _, body = head.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        s.close()
        return None
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    left = int(length.group(1)) - len(body) if length else 0
    while left > 0:
        data = s.recv(left)
        if not data:
            break
        left -= len(data)
    return s


def still_open(s):
    s.setblocking(False)
    try:
        return s.recv(1 << 16, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pool = Pool(PARALLEL)
    held = [s for s in pool.imap_unordered(_safe_hold(port), range(count))
            if s is not None]
    print(f"ready {len(held)}", flush=True)
    gevent.get_hub().threadpool.spawn(sys.stdin.read).get()
    print(f"open {sum(still_open(s) for s in held)}", flush=True)


def _safe_hold(port):
    def attempt(_):
        try:
            return hold(port)
        except OSError:
            return None
    return attempt


if __name__ == "__main__":
    main()
