"""http-to-https: router addresses that redirect every request to https,
beside the real uWSGI (the same bytes for each request, the same bound
lines), next to an `http` address that still reaches the app."""

import re
import socket
import time

from tests import support

APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
"""
REQUESTS = [
    b"GET /a/b?c=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    b"GET /nohost HTTP/1.0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /v6 HTTP/1.1\r\nhost: [::1]:80\r\n\r\n",
    b"GET http://x/full HTTP/1.1\r\nHost:  spaced \r\n\r\n",
    b"GET /two HTTP/1.1\r\nHost: a\r\nX: 1\r\nHost: b\r\n\r\n",
    b"GET /long HTTP/1.1\r\nHost: " + b"h" * 300 + b"\r\n\r\n",
    b"garbage\r\n\r\n",
    b"GET /noname HTTP/1.1\r\nHost: h\r\nbroken\r\n\r\n",
]
BOUND = re.compile(r"^uWSGI http bound on .*$", re.M)


def send(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return support.read_to_eof(s)


def serve(argv, tmp_path):
    """(answers of the plain redirect, of the one naming a port, of the
    `http` address; the bound lines)."""
    plain, named, http, node = (support.free_port() for _ in range(4))
    server = support.Process(
        [*argv, "--http-to-https", f"127.0.0.1:{plain}",
         "--http-to-https", f"127.0.0.1:{named},8443",
         "--http", f"127.0.0.1:{http}", "--socket", f"127.0.0.1:{node}",
         "--wsgi-file", "app.py"], cwd=tmp_path)
    try:
        for port in (plain, named, http, node):
            support.wait_for_port(port)
        server.wait_for_log(r"spawned uWSGI worker 1")
        answers = ([send(plain, data) for data in REQUESTS],
                   send(named, REQUESTS[0]),
                   send(http, b"GET / HTTP/1.0\r\nHost: h\r\n\r\n"))
    finally:
        server.stop()
    bound = [line.replace(str(port), "PORT")
             for line in BOUND.findall(server.output())
             for port in (plain, named, http) if str(port) in line]
    return answers, bound


def test_requests_are_redirected_as_by_uwsgi(tmp_path, uwsgi_binary):
    (tmp_path / "app.py").write_text(APP)
    theirs = serve([uwsgi_binary], tmp_path)
    ours = serve(support.UGU, tmp_path)
    (redirects, named, app), bound = ours
    assert redirects == theirs[0][0]
    assert named == theirs[0][1]
    assert sorted(bound) == sorted(theirs[1])
    # What the comparison covered.
    assert redirects[0] == (b"HTTP/1.1 301 Moved Permanently\r\n"
                            b"Location: https://example.com/a/b?c=1\r\n\r\n")
    assert named == (b"HTTP/1.1 301 Moved Permanently\r\n"
                     b"Location: https://example.com:8443/a/b?c=1\r\n\r\n")
    hostname = socket.gethostname().encode()
    assert redirects[1].endswith(b"https://%s/nohost\r\n\r\n" % hostname)
    assert redirects[6].endswith(b"https://a, b/two\r\n\r\n")
    assert redirects[-3:] == [b"", b"", b""]
    assert app.endswith(b"\r\n\r\napp")
    assert len(bound) == 3


def test_a_silent_client_is_closed_after_the_headers_timeout(tmp_path,
                                                              procs):
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    procs.ugu("--http-to-https", f"127.0.0.1:{port}", "--wsgi-file",
              "app.py", "--http-headers-timeout", "1", cwd=tmp_path)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        assert support.read_to_eof(s) == b""
    # The router serves the next client.
    assert send(port, REQUESTS[0]).startswith(b"HTTP/1.1 301 ")


def test_a_head_trickled_within_the_timeout_of_each_read_is_redirected(
        tmp_path, procs):
    """As uWSGI's router, the headers timeout starts again at each read:
    a head taking longer, but never that long between two parts, is
    answered."""
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    procs.ugu("--http-to-https", f"127.0.0.1:{port}", "--wsgi-file",
              "app.py", "--http-headers-timeout", "1", cwd=tmp_path)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for part in (b"GET /t HTTP/1.1\r\n", b"Host: h\r\n", b"X: 1\r\n",
                     b"\r\n"):
            s.sendall(part)
            time.sleep(0.6)
        assert support.read_to_eof(s).startswith(b"HTTP/1.1 301 ")
