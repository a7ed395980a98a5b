"""add-header and del-header: headers every response of the worker gets
or loses, beside the response routes.

The differential test replays the same requests against ugu and the real
uWSGI on a uwsgi socket, where the answers must be the same bytes, and
compares the request lines (their header counts and sizes).
"""

import re
import socket

import pytest

from tests import support
from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.routing.engine import ResponseRouter

APP = """
def application(environ, start_response):
    if environ["PATH_INFO"] == "/raise":
        raise ValueError("boom")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-App", "1"), ("X-Secret", "s"),
                              ("Server", "app")])
    return [b"hello"]
"""
OPTIONS = [
    "wsgi-file = app.py",
    "check-static = static",
    "add-header = X-Added: one",
    "add-header = Content-Type: text/added",
    "add-header = X-Added: two",
    "del-header = x-app",
    "rem-header = Content-Length",
    "del-header = X-Secret",
    # A header del-header removes is not collected either.
    "collect-header = X-Secret SECRET",
    "response-header-collect = Server SERVER",
    "route = ^/ret return:403",
    "route = ^/redir redirect:/elsewhere",
    # Headers the routes add are neither removed nor moved.
    "route = ^/route addheader:X-App: from-route",
    # A header a request route removes is not collected either.
    "route = ^/uncollected delheader:Server",
    "response-route-run = addheader:X-Seen: [${SERVER}] [${SECRET}]",
    "response-route = ^/resp delheader:X-Added",
]
REQUESTS = ["/", "/a.txt", "/ret", "/redir", "/route", "/uncollected",
            "/resp"]
REQUEST_LINE = re.compile(r"^\[pid: \d+\|(app: .*) \[[^]]+\] (.*) in \d+ "
                          r"msecs (.*)$", re.M)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.txt").write_text("static\n")
    return tmp_path


def write_config(site, lines):
    path = site / "headers.ini"
    path.write_text("[uwsgi]\n" + "\n".join(lines) + "\n")
    return path


def serve(argv, site):
    """Start `argv` on OPTIONS, ask REQUESTS; (answers, request lines)."""
    port = support.free_port()
    path = write_config(site, [f"socket = 127.0.0.1:{port}", *OPTIONS])
    server = support.Process([*argv, "--ini", str(path)], cwd=site)
    try:
        support.wait_for_port(port)
        answers = [support.uwsgi_request(port, target)
                   for target in REQUESTS]
        server.wait_for_log(r"GET /resp => ")
    finally:
        server.stop()
    return answers, [" ".join(m.groups())
                     for m in REQUEST_LINE.finditer(server.output())]


def test_headers_added_and_removed_as_uwsgi(site, uwsgi_binary):
    theirs, their_lines = serve([uwsgi_binary], site)
    ours, our_lines = serve(support.UGU, site)
    for target, their, our in zip(REQUESTS, theirs, ours):
        # Last-Modified is the file's, the same for both.
        assert our == their, target
    assert our_lines == their_lines
    # What the comparison covered.
    app, static, ret, redirect, routed, uncollected, resp = ours
    assert app.startswith(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: app\r\n"
        b"X-Added: one\r\nContent-Type: text/added\r\nX-Added: two\r\n"
        b"X-Seen: [app] []\r\n\r\nhello")
    assert b"Content-Length" not in static and static.endswith(b"static\n")
    assert ret.startswith(b"HTTP/1.1 403 ") and b"Content-Length" not in ret
    assert b"\r\nLocation: /elsewhere\r\nX-Added: one\r\n" in redirect
    assert b"X-Added: two\r\nX-App: from-route\r\nX-Seen: " in routed
    assert b"Server" not in uncollected
    assert b"\r\nX-Seen: [] []\r\n" in uncollected
    assert resp.count(b"X-Added") == 2
    assert len(our_lines) == len(REQUESTS)


def ask_http(port, target):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.0\r\nHost: t\r\n\r\n".encode())
        return support.split_response(support.read_to_eof(s))


def test_an_http_socket_and_the_exceptions_page_get_them_too(site, procs):
    """On an http-socket too (h11 frames what del-header left without a
    length), and on catch-exceptions' page, which the response routes
    see, as uWSGI sends them."""
    port = support.free_port()
    path = write_config(site, [f"http-socket = 127.0.0.1:{port}",
                               "catch-exceptions = true", *OPTIONS])
    procs.ugu("--ini", str(path), cwd=site)
    support.wait_for_port(port)
    status, headers, body = ask_http(port, "/a.txt")
    assert (status, headers["x-added"], body) == (
        "HTTP/1.0 200 OK", "two", b"static\n")
    status, headers, body = ask_http(port, "/raise")
    assert status == "HTTP/1.0 500 Internal Server Error"
    assert headers["content-type"] == "text/added"
    # The response routes ran on it too.
    assert headers["x-seen"] == "[] []"
    assert body.startswith(b'uWSGI exceptions catcher for "GET /raise"')


def test_a_line_that_is_not_a_header_is_refused(site):
    """uWSGI sends the line as it is, which breaks the response head."""
    for line in ("add-header = Weird", "add-header = Bad Name: 1"):
        config = resolve(["--ini", str(write_config(site, [line]))],
                         environ={})
        with pytest.raises(ConfigError) as info:
            ResponseRouter.from_config(config)
        assert (info.value.line, info.value.option) == (2, "add-header")
        assert "add-header takes a whole header line, Name: value" in \
            info.value.reason


def test_without_them_responses_are_not_routed(site):
    """The worker then skips the response step, as before."""
    config = resolve(["--ini", str(write_config(site, [
        "wsgi-file = app.py"]))], environ={})
    assert not ResponseRouter.from_config(config).active
    config = resolve(["--ini", str(write_config(site, [
        "del-header = Server"]))], environ={})
    assert ResponseRouter.from_config(config).active


SIZED_HEAD_APP = """
def application(environ, start_response):
    count, size = map(int, environ["QUERY_STRING"].split("x"))
    start_response("200 OK", [("X-Big-%d" % n, "a" * size)
                              for n in range(count)])
    return [b"big head"]
"""
# (count, size) of the app's headers around a response-headers-limit of
# 5000, which the buffer's first page (4096 bytes) passes only by growing
# by a piece (a page more would pass the limit).
SIZED_HEADS = [(1, 100), (1, 4060), (1, 4070), (6, 800), (7, 800),
               (12, 380), (13, 380)]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_response_headers_limit_refuses_the_heads_uwsgi_refuses(
        tmp_path, start_server, server):
    (tmp_path / "app.py").write_text(SIZED_HEAD_APP)
    port = support.free_port()
    p = start_server(server, ["--http-socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py",
                              "--response-headers-limit", "5000"],
                     cwd=tmp_path)
    support.wait_for_port(port)
    taken = []
    for count, size in SIZED_HEADS:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"GET /?{count}x{size} HTTP/1.0\r\n\r\n".encode())
            taken.append(support.read_to_eof(s).endswith(b"big head"))
        p.wait_for_log(rf"GET /\?{count}x{size} => ")
    assert taken == [True, True, False, True, False, True, False]
    assert p.output().count("TypeError: unable to add header to the "
                            "response") == 3
