"""A body of unknown length that the worker cannot finish (the app fails
halfway, exits, or the worker is killed) reaches the client through ugu's
router as cut short: the chunked body it frames ends without its last
chunk, and the connection closes.  uWSGI's worker closes such a
connection as it closes a finished one, and its router ends the body
with the close, which the client takes for whole; ugu's worker resets
the connection until the body's end instead (ugu/vassal/transport.py),
which the router tells apart (ugu/router/exchange.py).  Every body that
does end must still end whole, whatever sent it."""

import os
import re
import signal
import socket
import textwrap

import pytest

from tests import support
from tests.support import read_to_eof

APP = textwrap.dedent('''
    import os, sys, time

    def body(how):
        yield b"part 1\\n"
        if how == "raise":
            raise RuntimeError("the app fails halfway")
        if how == "exit":
            sys.exit(3)
        if how == "hang":
            open("streaming", "w").write(str(os.getpid()))
            time.sleep(60)
        yield b"part 2\\n"

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/file":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return environ["wsgi.file_wrapper"](open("page.txt", "rb"))
        environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body(path[1:])
''')
PAGE = b"a line of the page\n" * 5000
CUT_SHORT = (r"\[uwsgi-http key: t client_addr: 127\.0\.0\.1 client_port: "
             r"\d+\] response cut short: backend broke off the response: "
             r"Connection reset by peer")


@pytest.fixture
def pair(procs, tmp_path):
    """An ugu worker (with an offload thread) and ugu's router before
    it; (router, worker, the router's port)."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "page.txt").write_bytes(PAGE)
    worker_port, port = support.free_port(), support.free_port()
    worker = procs.ugu("--master", "--socket", f"127.0.0.1:{worker_port}",
                       "--wsgi-file", "app.py", "--offload-threads", "1",
                       cwd=tmp_path)
    worker.wait_for_log(r"spawned uWSGI worker 1 ")
    support.wait_for_port(worker_port)
    router = procs.ugu("--master", "--processes", "0", "--http",
                       f"127.0.0.1:{port}", "--http-to",
                       f"127.0.0.1:{worker_port}", "--http-keepalive",
                       cwd=tmp_path)
    support.wait_for_port(port)
    return router, worker, port


def ask(port, path, body=b""):
    """The answer to `path` (a POST of `body`, if any), read until the
    router closes or 10 s pass."""
    method = b"POST" if body else b"GET"
    head = (method + b" " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n"
            + (b"Content-Length: %d\r\n" % len(body) if body else b"")
            + b"Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        return read_to_eof(s)


def chunks(answer):
    """The chunked body's chunks, and whether the last chunk ended it."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    found = []
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        size = int(size, 16)
        if size == 0:
            return found, rest == b"\r\n"
        found.append(rest[:size])
        rest = rest[size + 2:]
    return found, False


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_an_app_that_fails_halfway_is_cut_short(pair, how):
    router, _, port = pair
    assert chunks(ask(port, f"/{how}")) == ([b"part 1\n"], False)
    router.wait_for_log(CUT_SHORT)


def test_a_worker_killed_halfway_is_cut_short(pair, tmp_path):
    router, worker, port = pair
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        streaming = support.wait_until(
            lambda: (tmp_path / "streaming").exists()
            and (tmp_path / "streaming").read_text(), what="the body to begin")
        os.kill(int(streaming), signal.SIGKILL)
        answer = read_to_eof(s)
    assert chunks(answer) == ([b"part 1\n"], False)
    router.wait_for_log(CUT_SHORT)
    worker.wait_for_log(r"DAMN ! worker 1 \(pid: \d+\) died")


@pytest.mark.parametrize("body", [b"", b"x" * 200000], ids=["get", "post"])
def test_a_body_of_unknown_length_that_ends_ends_whole(pair, body):
    router, _, port = pair
    found, ended = chunks(ask(port, "/whole", body))
    assert b"".join(found) == b"part 1\npart 2\n" and ended
    assert not re.search(CUT_SHORT, router.output())


def test_a_file_an_offload_thread_sends_ends_whole(pair):
    """The offload thread closes the connection at the file's end: as a
    finished body, not a broken one."""
    router, _, port = pair
    found, ended = chunks(ask(port, "/file"))
    assert b"".join(found) == PAGE and ended
