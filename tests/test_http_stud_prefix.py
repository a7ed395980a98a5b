"""The HTTP router's stud prefix (`http-stud-prefix`): five bytes before
a stud client's first request, on ugu and on the real uWSGI alike (but
for REMOTE_ADDR, which uWSGI's leaves the connection's)."""

import socket

import pytest

from tests import support

APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s|%s" % (environ["REMOTE_ADDR"], environ.get("HTTPS"),
             environ["wsgi.url_scheme"])).encode()]
'''
REQUEST = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"


def _send(port, *parts):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for part in parts:
            s.sendall(part)
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data


@pytest.fixture
def router(start_server, tmp_path):
    def start(server, stud):
        app = tmp_path / "app.py"
        app.write_text(APP)
        front = support.free_port()
        proc = start_server(server, [
            "--master", "--http", f"127.0.0.1:{front}",
            "--http-stud-prefix", stud,
            "--socket", f"127.0.0.1:{support.free_port()}",
            "--wsgi-file", str(app)])
        proc.wait_for_log(r"spawned uWSGI http 1 \(pid")
        proc.wait_for_log(r"spawned uWSGI worker 1 \(pid")
        support.wait_for_port(front)
        return proc, front
    return start


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stud_client_sends_its_prefix(router, server):
    proc, front = router(server, "127.0.0.1")
    prefix = b"\x02" + bytes([10, 1, 2, 3])
    body = _send(front, prefix + REQUEST).split(b"\r\n\r\n", 1)[1]
    # uWSGI's keeps the connection's address: ugu's passes the prefix's.
    remote = "10.1.2.3" if server == "ugu" else "127.0.0.1"
    assert body == f"{remote}|on|https".encode()
    # Cut anywhere, the prefix is waited for.
    assert _send(front, prefix[:2], prefix[2:], REQUEST).endswith(
        f"{remote}|on|https".encode())
    assert _send(front, b"\x0a" + bytes(4) + REQUEST) == b""
    proc.wait_for_log(r"\[uwsgi-http key:  client_addr: 127\.0\.0\.1 "
                      r"client_port: \d+\]invalid stud prefix for address "
                      r"family 10")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_other_clients_send_none(router, server):
    proc, front = router(server, "127.0.0.2")
    assert _send(front, REQUEST).endswith(b"127.0.0.1|None|http")


@pytest.mark.parametrize("args, words", [
    (["--http", "127.0.0.1:{port}", "--http-stud-prefix", "::1"],
     "'::1' is no IPv4 address"),
    (["--http-stud-prefix", "127.0.0.1"], "add `http = ADDR`"),
])
def test_refused(procs, args, words):
    port = support.free_port()
    proc = procs.ugu("--master", "--socket",
                     f"127.0.0.1:{support.free_port()}",
                     *[a.format(port=port) for a in args])
    assert proc.wait() != 0
    out = proc.output()
    assert "http-stud-prefix" in out and words in out
