"""The PROXY protocol's v1 line before a request: enable-proxy-protocol
on an http-socket, http-enable-proxy-protocol (or enable-proxy-protocol)
on the router; REMOTE_ADDR and REMOTE_PORT as the real uWSGI sets them
from it, and as ugu reads them on a kept-alive connection."""

import re
import socket

import pytest

from tests import support
from ugu.http import proxyline

APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s %s" % (environ["REMOTE_ADDR"],
                        environ.get("REMOTE_PORT", "-"))).encode()]
"""

LINES = [
    b"PROXY TCP4 203.0.113.7 198.51.100.1 56324 80\r\n",
    b"",
    b"PROXY UNKNOWN\r\n",
    b"PROXY TCP4 203.0.113.8 198.51.100.1 56324\r\n",
    b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n",
]


def ask(port, line):
    """The body answered to a request behind the PROXY line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(line + b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n")
        raw = support.read_to_eof(s)
    return support.split_response(raw)[2].decode()


def answers(procs, argv, tmp_path, options, router):
    (tmp_path / "app.py").write_text(APP)
    port, node = support.free_port(), support.free_port()
    if router:
        sockets = ["--http", f"127.0.0.1:{port}", "--http-to",
                   f"127.0.0.1:{node}", "--socket", f"127.0.0.1:{node}"]
    else:
        sockets = ["--http-socket", f"127.0.0.1:{port}"]
    p = procs.start([*argv, *sockets, "--wsgi-file", "app.py", "--master",
                     "--log-format", "LOG %(addr)", *options],
                    cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    # The ports of the router's own connections to the node differ.
    found = [re.sub(r"^127\.0\.0\.1 \d+$", "127.0.0.1 PORT",
                    ask(port, line)) for line in LINES]
    p.wait_for_log(r"LOG ", count=len(LINES))
    p.stop()
    logged = [line for line in p.output().splitlines()
              if line.startswith("LOG ")]
    return found, logged


@pytest.mark.parametrize("options, router", [
    (["--enable-proxy-protocol"], False),
    (["--http-enable-proxy-protocol"], True),
    (["--enable-proxy-protocol"], True),
], ids=["http-socket", "router", "router-by-core-option"])
def test_proxy_line_names_the_client_as_in_uwsgi(procs, uwsgi_binary,
                                                 tmp_path, options, router):
    ours = answers(procs, support.UGU, tmp_path, options, router)
    assert ours == answers(procs, [uwsgi_binary], tmp_path, options,
                           router)
    found, logged = ours
    assert found[0] == "203.0.113.7 56324"
    assert found[1] in ("127.0.0.1 PORT", "127.0.0.1 -")
    assert found[3] == "203.0.113.8 -"
    assert found[4] == "2001:db8::1 4000"
    assert logged[0] == "LOG 203.0.113.7"


def test_without_the_option_a_proxy_line_is_a_bad_request(procs, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                  "app.py", cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(LINES[0] + b"GET /a HTTP/1.0\r\n\r\n")
        assert support.read_to_eof(s).startswith(b"HTTP/1.1 400 ")


@pytest.mark.parametrize("router", [False, True])
def test_the_line_holds_for_the_connections_later_requests(procs, tmp_path,
                                                           router):
    """A proxy sends its line once per connection (HAProxy's send-proxy):
    every request on it comes from the client it names."""
    (tmp_path / "app.py").write_text(APP)
    port, node = support.free_port(), support.free_port()
    sockets = (["--http", f"127.0.0.1:{port}", "--http-keepalive=1",
                "--http-to", f"127.0.0.1:{node}", "--socket",
                f"127.0.0.1:{node}", "--http-enable-proxy-protocol"]
               if router else ["--http11-socket", f"127.0.0.1:{port}",
                               "--enable-proxy-protocol"])
    p = procs.ugu(*sockets, "--wsgi-file", "app.py", "--master",
                  cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    request = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(LINES[0] + request)
        first = s.recv(65536)
        s.sendall(request.replace(b"HTTP/1.1\r\n",
                                  b"HTTP/1.1\r\nConnection: close\r\n"))
        second = support.read_to_eof(s)
    assert b"203.0.113.7 56324" in first
    assert b"203.0.113.7 56324" in second


@pytest.mark.parametrize("data, expected", [
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 10 20\r\nGET", (34, b"1.2.3.4", b"10")),
    (b"PROXY UNKNOWN\r\n", (15, None, None)),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 10\r\n", (31, b"1.2.3.4", None)),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 10", proxyline.INCOMPLETE),
    (b"PRO", proxyline.INCOMPLETE),
    (b"GET / HTTP/1.1\r\n", None),
    (b"PROXY " + b"x" * 100, None),
])
def test_parse_as_uwsgi_reads_the_line(data, expected):
    assert proxyline.parse(data, 64) == expected
