"""limit-post: a request whose body is declared longer than the limit is
refused where uWSGI's parser meets its CONTENT_LENGTH, on a uwsgi socket
and on an http-socket, beside the real uWSGI: the same lines, but where
uWSGI closes the connection unanswered (and logs a 500 it never sent),
ugu answers 413 (DEVIATIONS 3) and its line says so; through ugu's
router, the client gets that 413."""

import re
import socket
import threading

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


# The refused request's response in its line: uWSGI's 500 that nothing
# sent, ugu's 413 page.
THEIR_REFUSAL = re.compile(r"generated 0 bytes(.*) 500\) 0 headers in 0 "
                           r"bytes")
OUR_REFUSAL = (r"generated 64 bytes\1 413) 3 headers in 105 bytes")
# The head of ugu's 413, whatever the request's protocol.
TOO_LARGE = re.compile(rb"HTTP/1\.[01] 413 Request Entity Too Large\r\n"
                       rb"Content-Type: text/html\r\nContent-Length: 64\r\n"
                       rb"Connection: close\r\n\r\n<html>")


def serve(argv, tmp_path, kind, ask, refusal):
    port = support.free_port()
    server = support.Process(
        [*argv, f"--{kind}", f"127.0.0.1:{port}", "--wsgi-file", "app.py",
         "--limit-post", str(LIMIT)], cwd=tmp_path)
    try:
        support.wait_for_port(port)
        answers = ask(port)
        server.wait_for_log(r"\] POST /at => ")
        # Each refused request's line follows its Invalid line.
        server.wait_for_log(refusal, count=2)
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
    theirs = serve([uwsgi_binary], tmp_path, kind, ask,
                   r" 500\) 0 headers in 0 bytes")
    ours = serve(support.UGU, tmp_path, kind, ask, r" 413\) 3 headers in ")
    answers, lines = ours
    # uWSGI closes unanswered where ugu answers 413.
    assert [a[-6:] or b"closed" for a in theirs[0]] == [
        b"closed" if TOO_LARGE.match(a) else a[-6:] for a in answers]
    assert [THEIR_REFUSAL.sub(OUR_REFUSAL, line)
            for line in theirs[1]] == lines
    # What the comparison covered.
    assert sum(a.endswith(b"got 10") for a in answers) == 1
    assert sum(bool(TOO_LARGE.match(a)) for a in answers) == 2
    assert lines.count("Invalid (too big) CONTENT_LENGTH. skip.") == 2
    assert any("(HTTP/1.1 413) 3 headers in 105 bytes" in line
               and "POST /over" in line for line in lines)
    if kind == "socket":
        assert any("  () {0 vars in 106 bytes}   => " in line
                   for line in lines)


def upload_over_the_limit(port, size):
    """A POST whose body is over the limit, sent by a client that reads
    as it sends (as curl does); the answer, read to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /over HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        sender = threading.Thread(target=_send_body, args=(s, size),
                                  daemon=True)
        sender.start()
        try:
            return support.read_to_eof(s)
        finally:
            sender.join(10)


def _send_body(sock, size):
    try:
        sock.sendall(b"x" * size)
    except OSError:
        # The server closed after its answer, the body unread.
        pass


@pytest.mark.parametrize("size", [LIMIT + 1, 5_000_000])
@pytest.mark.parametrize("front", ["http", "http-socket"])
def test_the_413_reaches_a_client_still_uploading(procs, tmp_path, front,
                                                  size):
    """Through ugu's router (`http` in front of a uwsgi socket) and on an
    http-socket: the 413 arrives whole, however much of the body the
    client is still sending when the worker closes."""
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    listen = [f"--{front}", f"127.0.0.1:{port}"]
    if front == "http":
        listen += ["--socket", f"127.0.0.1:{support.free_port()}"]
    server = procs.ugu("--master", *listen, "--wsgi-file", "app.py",
                       "--limit-post", str(LIMIT), cwd=tmp_path)
    server.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    answer = upload_over_the_limit(port, size)
    assert TOO_LARGE.match(answer)
    assert answer.endswith(b"<h1>413 Request Entity Too Large</h1>"
                           b"</body></html>\n")
    server.wait_for_log(r"Invalid \(too big\) CONTENT_LENGTH\. skip\.")
