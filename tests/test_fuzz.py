"""Random bytes at live servers: ugu's router, an http-socket and a uwsgi
socket, each a real process.

Bounded (a couple of hundred examples each, a few seconds): every example
sends its bytes on a fresh connection and half-closes it, so the server
must answer or close at once, never wait for a timeout.  Between examples
a well-formed request carrying a fresh secret is served on its own
connection, and no fuzzed connection may ever see a secret: no other
request's data leaks into a response.
"""

import errno
import itertools
import socket
import struct
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import support

APP = textwrap.dedent('''
    def application(environ, start_response):
        environ["wsgi.input"].read()
        secret = environ.get("HTTP_X_SECRET", "none")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"secret " + secret.encode("latin-1")]
''')
EXAMPLES = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
# Longest a server may take to answer a half-closed connection.
ANSWER_SECONDS = 5
_secrets = (f"s3cr3t-{n:06d}" for n in itertools.count())

VALID = [b"POST /p?q=1 HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 5\r\n"
         b"X-A: b\r\n\r\nhello",
         b"PUT /%41/b HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked"
         b"\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         b"GET / HTTP/1.0\r\n\r\nHEAD /h HTTP/1.1\r\nHost: h\r\n\r\n"]
LINES = sorted({line for valid in VALID for line in valid.split(b"\r\n")})


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """{"router": port, "http-socket": port, "uwsgi": port}."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "app.py").write_text(APP)
    ports = {name: support.free_port()
             for name in ("router", "http-socket", "uwsgi")}
    process = support.ugu(
        "--master", "--processes", "1", "--threads", "2",
        "--wsgi-file", str(folder / "app.py"), "--socket-timeout", "2",
        "--socket", f"127.0.0.1:{ports['uwsgi']}",
        "--http-socket", f"127.0.0.1:{ports['http-socket']}",
        "--http", f"127.0.0.1:{ports['router']}", "--http-to",
        f"127.0.0.1:{ports['uwsgi']}", "--http-keepalive",
        "--http-headers-timeout", "2", "--http-timeout", "5", cwd=folder)
    try:
        process.wait_for_log(r"spawned uWSGI http 1")
        for port in ports.values():
            support.wait_for_port(port)
        yield ports
    finally:
        process.stop()


def send_and_read(port, data):
    """All the server sends back on a half-closed connection."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=ANSWER_SECONDS) as s:
        chunks = []
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        except OSError as e:
            # Reset before the half-close: no longer connected.
            if e.errno != errno.ENOTCONN:
                raise
        return b"".join(chunks)


def served_with_secret(port):
    """A well-formed request is served; returns its secret."""
    secret = next(_secrets)
    raw = send_and_read(port, b"GET / HTTP/1.1\r\nHost: t\r\nX-Secret: "
                        + secret.encode() + b"\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw
    assert secret.encode() in raw
    return secret


def uwsgi_served_with_secret(port):
    secret = next(_secrets)
    raw = support.uwsgi_request(port, headers=[("X-Secret", secret)])
    assert secret.encode() in raw
    return secret


def check_http(port, data):
    secret = served_with_secret(port)
    raw = send_and_read(port, data)
    assert secret.encode() not in raw
    assert raw == b"" or raw.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), \
        raw[:200]


http_bytes = st.one_of(
    st.binary(max_size=400),
    st.sampled_from(VALID),
    # A valid request with random bytes spliced in.
    st.tuples(st.sampled_from(VALID), st.integers(0, 200),
              st.binary(min_size=1, max_size=20))
    .map(lambda v: v[0][:v[1]] + v[2] + v[0][v[1]:]),
    # Valid lines in a random order, some repeated.
    st.lists(st.sampled_from(LINES), max_size=12)
    .map(lambda lines: b"\r\n".join(lines) + b"\r\n\r\n"),
)


@EXAMPLES
@given(data=http_bytes)
def test_random_bytes_at_the_router(servers, data):
    check_http(servers["router"], data)


@EXAMPLES
@given(data=http_bytes)
def test_random_bytes_at_the_http_socket(servers, data):
    check_http(servers["http-socket"], data)


uwsgi_packets = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.integers(0, 255), st.integers(0, 600), st.integers(0, 255),
              st.binary(max_size=600))
    .map(lambda p: struct.pack("<BHB", p[0], p[1], p[2]) + p[3]),
)


@EXAMPLES
@given(data=uwsgi_packets)
def test_random_packets_at_the_uwsgi_socket(servers, data):
    port = servers["uwsgi"]
    secret = uwsgi_served_with_secret(port)
    raw = send_and_read(port, data)
    assert secret.encode() not in raw


def test_served_after_the_fuzzing(servers):
    served_with_secret(servers["router"])
    served_with_secret(servers["http-socket"])
    uwsgi_served_with_secret(servers["uwsgi"])
