"""Routing actions that change the body: `gzip` and the X-Sendfile
emulation (a response route's `static:`).

The differential test replays requests against ugu and the real uWSGI on
a uwsgi socket, where the answers must be the same bytes but for
DEVIATIONS 14 (no stale Content-Length) and 15 (404 for a file that
cannot be sent); the others check the framing over an http-socket and
through the router, and the cases where uWSGI's reply is broken.
"""

import gzip
import http.client
import re
import socket
import zlib

import pytest
import requests

from tests import support
from ugu.vassal.transform import Layers

TEXT = b"hello world " * 100
APP = """
import os

TEXT = b"hello world " * 100


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/cl":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(TEXT)))])
        return [TEXT]
    if path == "/pieces":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"one ", b"", b"two ", b"three"]
    if path == "/empty":
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]
    if path == "/empty-first":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"")
        return [b"after an empty write"]
    if path == "/encoded":
        start_response("200 OK", [("Content-Encoding", "br"),
                                  ("Content-Length", "4")])
        return [b"abcd"]
    if path == "/random":
        body = os.urandom(int(environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/teapot":
        start_response("418 I'm a teapot", [("Content-Type", "text/plain")])
        return [b"short and stout"]
    if path == "/wrapped":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open("static/f.txt", "rb"))
    # X-Sendfile: the file the query names, instead of this body.
    body = b"the app's body"
    start_response("201 Created", [
        ("Content-Type", "text/html"), ("X-App", "1"),
        ("X-Sendfile", environ["QUERY_STRING"]),
        ("Content-Length", str(len(body)))])
    return [body]
"""
ROUTES = [
    "route-run = addheader:X-Request-Route: 1",
    "route-if = contains:${HTTP_ACCEPT_ENCODING};gzip gzip:",
    "route = ^/twice gzip:",
    "route = ^/twice gzip:",
    "route = ^/twice rewrite:/cl",
    "add-header = X-Always: 1",
    "error-route-status = 418 return:403",
    "collect-header = X-Sendfile X_SENDFILE",
    "response-route-run = addheader:X-Response-Route: 1",
    "response-route-if-not = empty:${X_SENDFILE} static:${X_SENDFILE}",
]
GZIP = {"Accept-Encoding": "gzip, deflate"}
# What a request's log line says, with what differs from run to run out.
REQUEST_LINE = re.compile(r"^\[pid: \d+\|app: 0\|req: \d+/\d+\] (.*) \[[^]]+"
                          r"\] (.*) in \d+ msecs (.*)$", re.M)


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "f.txt").write_text("file body\n")
    (tmp_path / "static" / "sub").mkdir()
    (tmp_path / "routes.ini").write_text("\n".join(["[uwsgi]", *ROUTES,
                                                    "wsgi-file = app.py"]))
    return tmp_path


def start(procs, site, binary, *options, kind="socket"):
    """ugu (binary None) or uWSGI on the routes; its port and process."""
    port = support.free_port()
    argv = ["--ini", "routes.ini", f"--{kind}", f"127.0.0.1:{port}",
            *options]
    p = procs.start([binary, *argv], cwd=site) if binary else \
        procs.ugu(*argv, cwd=site)
    support.wait_for_port(port)
    return port, p


def ask(port, method, target, headers):
    return support.uwsgi_request(port, target, method=method,
                                 headers=list(headers.items()))


def without_length(raw):
    """uWSGI's answer without the Content-Length it leaves stale."""
    return re.sub(rb"\r\nContent-Length: \d+", b"", raw, count=1)


def gunzip(body, times=1):
    for _ in range(times):
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        body = inflate.decompress(body)
        assert inflate.eof, "the gzip member is cut short"
    return body


# --- the compression, alone --------------------------------------------------

def test_layers_gzip_each_piece_and_end_the_member():
    layers = Layers(1)
    body = layers.chunk(b"one ") + layers.chunk(b"") + \
        layers.chunk(b"two") + layers.final()
    assert body.startswith(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03")
    assert gzip.decompress(body) == b"one two"


def test_two_layers_gzip_the_gzipped_body():
    layers = Layers(2)
    body = layers.chunk(TEXT) + layers.final()
    assert gunzip(body, times=2) == TEXT


def test_a_started_layer_without_data_still_ends_a_whole_member():
    layers = Layers(1)
    body = layers.chunk(b"") + layers.final()
    assert gzip.decompress(body) == b""


def test_headers_say_the_encoding_where_uwsgi_adds_it():
    headers = [("Content-Type", "text/plain"), ("Content-Length", "9"),
               ("X-Always", "1")]
    assert Layers(2).headers(headers, 2) == [
        ("Content-Type", "text/plain"), ("Content-Encoding", "gzip"),
        ("Content-Encoding", "gzip"), ("X-Always", "1")]


# --- against the real uWSGI ------------------------------------------------

def requests_for(site):
    f = site / "static" / "f.txt"
    return {
        # The same bytes.
        "same": [("GET", "/cl", {}), ("GET", "/pieces", GZIP),
                 ("GET", "/empty", GZIP), ("GET", f"/x?{f}", {}),
                 ("GET", f"/x?{f}", GZIP), ("HEAD", f"/x?{f}", {}),
                 ("GET", "/wrapped", GZIP)],
        # DEVIATIONS 14: uWSGI leaves the app's Content-Length.
        "stale": [("GET", "/cl", GZIP), ("GET", "/encoded", GZIP),
                  ("GET", "/twice", {})],
        # Also DEVIATIONS 14: uWSGI's gzip member of the answer ends
        # short, without its last block.
        "cut": [("GET", "/teapot", GZIP)],
        # DEVIATIONS 15: uWSGI sends the app's head and no body.
        "404": [("GET", f"/x?{site}/static/nope", {}),
                ("GET", f"/x?{site}/static/../static/f.txt", {}),
                ("GET", f"/x?{site}/static/sub", {}),
                ("GET", "/x?static/f.txt", {}),
                ("POST", f"/x?{f}", {})],
    }


def test_gzip_and_x_sendfile_answer_as_uwsgi(site, procs, uwsgi_binary):
    cases = requests_for(site)
    answers, logs = {}, {}
    for name, binary in (("uwsgi", uwsgi_binary), ("ugu", None)):
        port, p = start(procs, site, binary)
        answers[name] = {kind: [ask(port, *r) for r in reqs]
                         for kind, reqs in cases.items()}
        p.wait_for_log(r"POST /x\?")
        logs[name] = p.output()
    theirs, ours = answers["uwsgi"], answers["ugu"]
    for request, their, our in zip(cases["same"], theirs["same"],
                                   ours["same"]):
        assert our == their, request
    assert b"\r\nContent-Encoding: gzip\r\nX-Always: 1\r\nX-Request-Route" \
        b": 1\r\nX-Response-Route: 1\r\n\r\n\x1f\x8b" in ours["stale"][0]
    for request, their, our in zip(cases["stale"], theirs["stale"],
                                   ours["stale"]):
        assert b"Content-Length" not in our.partition(b"\r\n\r\n")[0]
        assert our == without_length(their), request
    assert gunzip(ours["stale"][2].partition(b"\r\n\r\n")[2], 2) == TEXT
    their, our = theirs["cut"][0], ours["cut"][0]
    assert our.startswith(without_length(their))
    assert gunzip(our.partition(b"\r\n\r\n")[2]) == b"Forbidden"
    for request, their, our in zip(cases["404"], theirs["404"],
                                   ours["404"]):
        assert their.startswith(b"HTTP/1.1 201 Created\r\n")
        assert their.endswith(b"\r\n\r\n"), request
        assert our == (b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain"
                       b"\r\nContent-Length: 9\r\nX-Always: 1\r\n"
                       b"X-Request-Route: 1\r\nX-Response-Route: 1\r\n\r\n"
                       b"Not Found"), request
    # The log lines of what both serve alike (the compressed size, the
    # file's sendfile() and size), which come first.
    count = len(cases["same"])
    lines = {name: [m.groups() for m in REQUEST_LINE.finditer(log)]
             for name, log in logs.items()}
    assert lines["ugu"][:count] == lines["uwsgi"][:count]


def test_a_body_uwsgi_cuts_short_goes_out_whole(site, procs):
    """DEVIATIONS 14: uWSGI gives deflate little room for each piece, and
    a big incompressible one (4 MiB) ends without its last block."""
    port, _ = start(procs, site, None)
    raw = ask(port, "GET", f"/random?{4 << 20}", GZIP)
    assert len(gunzip(raw.partition(b"\r\n\r\n")[2])) == 4 << 20


def test_an_empty_first_write_keeps_the_encoding(site, procs):
    """uWSGI sends the head at the app's empty write, before its gzip
    starts, and the compressed body after it without a Content-Encoding."""
    port, _ = start(procs, site, None)
    status, headers, body = support.split_response(
        ask(port, "GET", "/empty-first", GZIP))
    assert headers["content-encoding"] == "gzip"
    assert gunzip(body) == b"after an empty write"


# --- framing over HTTP ------------------------------------------------------

def test_http_socket_frames_the_gzipped_body(site, procs):
    """Chunked on a kept-alive HTTP/1.1 connection, which goes on with
    the next request; HTTP/1.0's ends at the close; HEAD's head says what
    GET's would."""
    port, _ = start(procs, site, None, kind="http-socket")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path in ("/cl", "/pieces", "/cl"):
        conn.request("GET", path, headers=GZIP)
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        assert response.getheader("Content-Length") is None
        body = gunzip(response.read())
        assert body == (TEXT if path == "/cl" else b"one two three")
    conn.request("HEAD", "/cl", headers=GZIP)
    response = conn.getresponse()
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.read() == b""
    conn.close()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /cl HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
        status, headers, body = support.split_response(
            support.read_to_eof(s))
    assert "content-length" not in headers
    assert gunzip(body) == TEXT


def test_x_sendfile_through_an_offload_thread(site, procs):
    port, p = start(procs, site, None, "--offload-threads", "1",
                    kind="http-socket")
    response = requests.get(f"http://127.0.0.1:{port}/x?"
                            f"{site}/static/f.txt", timeout=10)
    assert (response.status_code, response.content) == (200, b"file body\n")
    assert "X-Sendfile" not in response.headers
    assert response.headers["Content-Length"] == "10"
    p.wait_for_log(r"GET /x\?\S+ => generated 10 bytes in \d+ msecs via "
                   r"offload\(\)")


def test_through_the_router(site, procs):
    """The router relays the gzipped body (its end is the worker's
    close) and the file, framed for the client (a connection each: the
    router closes after one response, as uWSGI's)."""
    router_port = support.free_port()
    start(procs, site, None, "--master", "--http", f"127.0.0.1:{router_port}")
    support.wait_for_port(router_port)
    url = f"http://127.0.0.1:{router_port}"
    response = requests.get(f"{url}/cl", headers=GZIP, timeout=10)
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.content == TEXT
    response = requests.get(f"{url}/x?{site}/static/f.txt", timeout=10)
    assert response.content == b"file body\n"
    response = requests.get(f"{url}/x?{site}/nope", timeout=10)
    assert (response.status_code, response.content) == (404, b"Not Found")
