"""`http-manage-source`: a SOURCE request (Icecast's) opens a raw
session, its body relayed as sent and nothing served after it on its
connection, on ugu and on the real uWSGI alike."""

import socket

import pytest

from tests import support

APP = '''
def application(env, start_response):
    body = env["wsgi.input"].read()
    out = env["REQUEST_METHOD"].encode() + b":" + body
    start_response("200 OK", [("Content-Length", str(len(out)))])
    return [out]
'''
SOURCE = b"SOURCE /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


def _start(start_procs, server, tmp_path, *args):
    app = tmp_path / "app.py"
    app.write_text(APP)
    port = support.free_port()
    start_procs(server, ["--master", "--http", f"127.0.0.1:{port}",
                         "--http-keepalive", "--wsgi-file", str(app),
                         *args])
    support.wait_for_port(port)
    return port


def _exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        return support.read_to_eof(s)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_source_is_a_raw_session(start_server, server, tmp_path):
    port = _start(start_server, server, tmp_path, "--http-manage-source")
    reply = _exchange(port, SOURCE + GET)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    # The answer to SOURCE only: the raw session ends the connection.
    assert reply.endswith(b"\r\n\r\nSOURCE:hello")


def test_source_without_the_option_is_a_request_as_any(start_server,
                                                       tmp_path):
    port = _start(start_server, "ugu", tmp_path)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(SOURCE + GET)
        reply = b""
        while not reply.endswith(b"GET:"):
            chunk = s.recv(65536)
            assert chunk
            reply += chunk
    assert b"SOURCE:hello" in reply


def test_refused_without_the_router(procs):
    proc = procs.ugu("--master", "--http-manage-source", "--socket",
                     f"127.0.0.1:{support.free_port()}")
    assert proc.wait() != 0
    assert "add `http = ADDR`" in proc.output()
