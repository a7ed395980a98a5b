"""limit-post: a request whose body is declared longer than the limit is
refused where uWSGI's parser meets its CONTENT_LENGTH, on a uwsgi socket
and on an http-socket, beside the real uWSGI: the same answer (none),
the same lines."""

import re
import socket

import pytest

from tests import support
from ugu import protocol

APP = """
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"got %d" % len(body)]
"""
LIMIT = 10
# Each request's line, with what differs from run to run left out.
LINE = re.compile(r"^(Invalid .*)$|^\[pid: \d+\|(.*) \[[^]]+\] (.*) in \d+ "
                  r"msecs (.*)$", re.M)


def uwsgi_asks(port):
    """Through a uwsgi socket: at the limit, over it, and over it with
    CONTENT_LENGTH before the method, URI and client."""
    answers = [support.uwsgi_request(port, "/at", method="POST",
                                     body=b"x" * LIMIT)]
    try:
        answers.append(support.uwsgi_request(port, "/over", method="POST",
                                             body=b"x" * (LIMIT + 1)))
    except ConnectionResetError:
        answers.append(b"")
    pairs = [("CONTENT_LENGTH", "11"), ("REQUEST_METHOD", "POST"),
             ("REQUEST_URI", "/first"), ("PATH_INFO", "/first"),
             ("REMOTE_ADDR", "192.0.2.9")]
    packet = protocol.encode([(k.encode(), v.encode()) for k, v in pairs])
    answers.append(send(port, packet + b"x" * 11))
    return answers


def http_asks(port):
    """Through an http-socket: over the limit (a plain request, and one
    of HTTP/1.0), then at it."""
    return [send(port, head + b"x" * 11) for head in (
        b"POST /over HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n",
        b"POST /over?q HTTP/1.0\r\nHost: t\r\nX-Z: 1\r\n"
        b"Content-Length: 11\r\nUser-Agent: u\r\n\r\n",
        b"POST /at HTTP/1.0\r\nHost: t\r\nContent-Length: 10\r\n\r\n")]


def send(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        try:
            return support.read_to_eof(s)
        except ConnectionResetError:
            # The body left unread resets the close, as uWSGI's does.
            return b""


def serve(argv, tmp_path, kind, ask):
    port = support.free_port()
    server = support.Process(
        [*argv, f"--{kind}", f"127.0.0.1:{port}", "--wsgi-file", "app.py",
         "--limit-post", str(LIMIT)], cwd=tmp_path)
    try:
        support.wait_for_port(port)
        answers = ask(port)
        server.wait_for_log(r"\] POST /at => ")
        # Each refused request's line follows its Invalid line.
        server.wait_for_log(r" 500\) 0 headers in 0 bytes", count=2)
    finally:
        server.stop()
    lines = [" ".join(filter(None, m.groups()))
             for m in LINE.finditer(server.output())]
    return answers, lines


@pytest.mark.parametrize("kind, ask", [("socket", uwsgi_asks),
                                       ("http-socket", http_asks)],
                         ids=["uwsgi", "http"])
def test_a_body_over_the_limit_is_refused_as_by_uwsgi(tmp_path, uwsgi_binary,
                                                      kind, ask):
    (tmp_path / "app.py").write_text(APP)
    theirs = serve([uwsgi_binary], tmp_path, kind, ask)
    ours = serve(support.UGU, tmp_path, kind, ask)
    answers, lines = ours
    assert [a[-6:] for a in answers] == [a[-6:] for a in theirs[0]]
    assert lines == theirs[1]
    # What the comparison covered.
    assert sum(a.endswith(b"got 10") for a in answers) == 1
    assert lines.count("Invalid (too big) CONTENT_LENGTH. skip.") == 2
    assert any("(HTTP/1.1 500) 0 headers in 0 bytes" in line
               and "POST /over" in line for line in lines)
    if kind == "socket":
        assert any("  () {0 vars in 106 bytes}   => " in line
                   for line in lines)
