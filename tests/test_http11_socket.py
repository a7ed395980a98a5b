"""`http11-socket` and `protocol`: HTTP sockets whose connections stay open.

Real ugu (and, where both behave alike, the real uWSGI with the same
options) driven by http.client, requests and raw sockets: a connection
serves request after request, waits up to socket-timeout for the next,
and closes after an HTTP/1.0 request.  Where uWSGI's http11 breaks HTTP
(an unframed response on a kept connection, `Connection: close` ignored,
pipelined requests dropped, a new client kept waiting behind an idle
one), ugu's behaviour is checked alone.
"""

import http.client
import signal
import socket
import subprocess
import time

import pytest
import requests

from tests import support
from tests.support import read_to_eof
from tests.test_router import read_responses

APP = '''
import os

def application(environ, start_response):
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read()
    page = b"%s %d %s" % (path.encode(), len(body),
                          environ["SERVER_PROTOCOL"].encode())
    if path == "/unframed":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"no ", b"length"]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(page)))])
    return [page]
'''
BOTH = pytest.mark.parametrize("server", ["ugu", "uwsgi"])


@pytest.fixture
def start(start_server, tmp_path):
    """start(server, *options): ugu or uWSGI serving APP on an
    http11-socket (or with `options` that bind another), ready."""
    (tmp_path / "app.py").write_text(APP)

    def run(server, *options, socket_option="--http11-socket"):
        port = support.free_port()
        process = start_server(server, [
            socket_option, f"127.0.0.1:{port}", "--wsgi-file", "app.py",
            *options], cwd=tmp_path)
        support.wait_for_port(port)
        process.port = port
        return process
    return run


def get(conn, path, body=None):
    conn.request("POST" if body else "GET", path, body=body)
    response = conn.getresponse()
    return response.read().decode()


def request_bytes(path, version="1.1", *headers):
    lines = [f"GET {path} HTTP/{version}", "Host: t", *headers, "", ""]
    return "\r\n".join(lines).encode()


@BOTH
def test_one_connection_serves_request_after_request(start, server):
    p = start(server)
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    assert get(conn, "/one") == "/one 0 HTTP/1.1"
    sock = conn.sock
    assert get(conn, "/two", body=b"abc") == "/two 3 HTTP/1.1"
    assert get(conn, "/three") == "/three 0 HTTP/1.1"
    assert conn.sock is sock
    conn.close()
    assert f"uwsgi socket 0 bound to TCP address 127.0.0.1:{p.port} fd" \
        in p.output()


@BOTH
def test_a_requests_session_keeps_one_connection(start, server):
    p = start(server)
    url = f"http://127.0.0.1:{p.port}"
    with requests.Session() as session:
        for path in ("/a", "/b", "/c"):
            assert session.get(url + path, timeout=10).text == \
                f"{path} 0 HTTP/1.1"
        pools = session.get_adapter(url).poolmanager.pools
        assert [pools[key].num_connections for key in pools.keys()] == [1]


@BOTH
def test_an_idle_connection_closes_after_socket_timeout(start, server):
    p = start(server, "--socket-timeout", "1")
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(request_bytes("/a"))
        [(response, body)] = read_responses(s, ["GET"])
        assert body == b"/a 0 HTTP/1.1"
        began = time.monotonic()
        assert read_to_eof(s) == b""
    assert 0.5 < time.monotonic() - began < 3


@BOTH
@pytest.mark.parametrize("header", [(), ("Connection: keep-alive",)])
def test_an_http10_request_ends_its_connection(start, server, header):
    p = start(server, "--socket-timeout", "10")
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(request_bytes("/old", "1.0", *header))
        # Closed at once: a kept one would time the read out.
        answer = read_to_eof(s)
    assert answer.endswith(b"\r\n\r\n/old 0 HTTP/1.0")


@BOTH
def test_a_graceful_reload_closes_an_idle_connection_at_once(start,
                                                             server):
    p = start(server, "--master", "--socket-timeout", "10")
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(request_bytes("/a"))
        read_responses(s, ["GET"])
        p.send_signal(signal.SIGHUP)
        assert read_to_eof(s) == b""
    p.wait_for_log(r"spawned uWSGI worker 1 \(pid", count=2)


@BOTH
@pytest.mark.parametrize("setting", ["protocol", "socket-protocol"])
def test_protocol_http11_makes_socket_keep_alive(start, server, setting):
    p = start(server, f"--{setting}", "http11", socket_option="--socket")
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    assert get(conn, "/one") == "/one 0 HTTP/1.1"
    sock = conn.sock
    assert get(conn, "/two") == "/two 0 HTTP/1.1"
    assert conn.sock is sock
    conn.close()


@BOTH
def test_protocol_http_makes_socket_an_http_socket(start, server):
    p = start(server, "--protocol", "http", socket_option="--socket")
    answer = requests.get(f"http://127.0.0.1:{p.port}/x", timeout=10)
    assert answer.text == "/x 0 HTTP/1.1"


@BOTH
def test_protocol_leaves_a_uwsgi_socket_speaking_uwsgi(start, server):
    uwsgi_port = support.free_port()
    p = start(server, "--uwsgi-socket", f"127.0.0.1:{uwsgi_port}",
              "--protocol", "http", socket_option="--socket")
    support.wait_for_port(uwsgi_port)
    answer = support.uwsgi_request(uwsgi_port, "/packet")
    assert answer.endswith(b"\r\n\r\n/packet 0 HTTP/1.1")
    answer = requests.get(f"http://127.0.0.1:{p.port}/x", timeout=10)
    assert answer.text == "/x 0 HTTP/1.1"


# -- where uWSGI breaks HTTP (README "Where ugu differs") -------------------

def test_an_unframed_response_is_chunked_and_the_connection_kept(start):
    """uWSGI sends it as the app wrote it on a connection it keeps: the
    client cannot tell where it ends."""
    p = start("ugu")
    conn = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    conn.request("GET", "/unframed")
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b"no length"
    sock = conn.sock
    assert get(conn, "/after") == "/after 0 HTTP/1.1"
    assert conn.sock is sock
    conn.close()


def test_connection_close_ends_the_connection(start):
    """uWSGI's http11 ignores it and waits socket-timeout."""
    p = start("ugu", "--socket-timeout", "10")
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as s:
        s.sendall(request_bytes("/bye", "1.1", "Connection: close"))
        answer = read_to_eof(s)
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.endswith(b"/bye 0 HTTP/1.1")


def test_pipelined_requests_are_all_answered(start):
    """uWSGI answers the first and closes (DEVIATIONS 4)."""
    p = start("ugu")
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(b"".join(request_bytes(path)
                           for path in ("/1", "/2", "/3")))
        answers = read_responses(s, ["GET"] * 3)
    assert [body for _, body in answers] == [
        b"/1 0 HTTP/1.1", b"/2 0 HTTP/1.1", b"/3 0 HTTP/1.1"]


def test_an_idle_connection_does_not_keep_a_new_client_waiting(start):
    """One thread, socket-timeout 10: uWSGI's core keeps the idle
    connection and the new client waits the 10 s; ugu's gives the idle
    one up for it."""
    p = start("ugu", "--socket-timeout", "10")
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as idle:
        idle.sendall(request_bytes("/first"))
        read_responses(idle, ["GET"])
        began = time.monotonic()
        answer = requests.get(f"http://127.0.0.1:{p.port}/second",
                              timeout=5)
        assert answer.text == "/second 0 HTTP/1.1"
        assert time.monotonic() - began < 2
        assert read_to_eof(idle) == b""


@pytest.mark.parametrize("name, said", [
    ("puwsgi", "ugu does not speak the puwsgi protocol; write "
               "`protocol = uwsgi`"),
    ("https", "ugu does not speak the https protocol; a socket speaking "
              "TLS needs its certificate: write `https-socket"),
    ("bogus", "unable to find protocol bogus (write uwsgi, http, "
              "http11, fastcgi, fastcgi-nph, scgi or scgi-nph)"),
])
def test_a_protocol_ugu_does_not_speak_is_refused(tmp_path, name, said):
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("socket", f"127.0.0.1:{support.free_port()}"),
        ("socket-protocol", name), ("module", "app")])
    done = subprocess.run([*support.UGU, str(ini)], capture_output=True,
                          text=True, timeout=20)
    assert done.returncode != 0
    assert f"app.ini:3: option 'protocol': {said}" in done.stderr


def test_a_router_before_a_socket_made_http_is_warned_about(procs,
                                                             tmp_path):
    router_port, socket_port = support.free_port(), support.free_port()
    p = procs.ugu("--http", f"127.0.0.1:{router_port}",
                  "--socket", f"127.0.0.1:{socket_port}",
                  "--protocol", "http11", "--module", "app",
                  cwd=tmp_path)
    p.wait_for_log("WARNING: the http router forwards to the first socket, "
                   "a socket that `protocol = http11` makes speak HTTP, "
                   "which does not speak the uwsgi protocol: every request "
                   "through it will fail; set `http-to`")
