"""Offload threads under slow clients: one client that does not read must
neither lose its file nor hold up anybody else's, whether the cores are
threads or greenlets (the offload threads are real threads either way)."""

import os
import socket

import pytest
import requests

from tests import support
from tests.support import read_to_eof, split_response, uwsgi_request

BIG = 32 * 1024 * 1024


@pytest.fixture(params=[("--threads", "2"), ("--gevent", "10")],
                ids=["threads", "gevent"])
def worker(request, tmp_path, procs):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "big.bin").write_bytes(os.urandom(BIG))
    (tmp_path / "static" / "small.txt").write_bytes(b"small\n")
    port = support.free_port()
    p = procs.ugu("--master", "--socket", f"127.0.0.1:{port}",
                  "--check-static", "static/", "--offload-threads", "1",
                  *request.param, cwd=tmp_path)
    support.wait_for_port(port)
    p.port, p.root = port, tmp_path
    return p


def start_download(port, path):
    """A uwsgi request whose answer the caller reads later (or never)."""
    from ugu import protocol
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", path.encode()),
             (b"REQUEST_URI", path.encode()),
             (b"SERVER_PROTOCOL", b"HTTP/1.1")]
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(protocol.encode(pairs))
    return s


def test_stalled_client_holds_up_no_one_and_gets_its_file(worker):
    stalled = [start_download(worker.port, "/big.bin") for _ in range(3)]
    worker.wait_for_log(r"GET /big\.bin => .* via offload\(\)", count=3)
    for _ in range(5):
        raw = uwsgi_request(worker.port, "/small.txt")
        assert split_response(raw)[2] == b"small\n"
    expected = (worker.root / "static" / "big.bin").read_bytes()
    for s in stalled:
        with s:
            assert split_response(read_to_eof(s))[2] == expected


WRAPPER_APP = """import os
def application(environ, start_response):
    f = open(os.path.join(os.path.dirname(__file__), "big.bin"), "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](f)
"""


def test_an_apps_file_wrapper_is_offloaded(tmp_path, procs):
    """As uWSGI does with offload threads: the one core is free while the
    file goes out to clients that do not read, and the app closing its
    file (the response's close) cuts nothing."""
    expected = os.urandom(BIG)
    (tmp_path / "big.bin").write_bytes(expected)
    (tmp_path / "wrapper.py").write_text(WRAPPER_APP)
    port = support.free_port()
    p = procs.ugu("--master", "--socket", f"127.0.0.1:{port}",
                  "--wsgi-file", "wrapper.py", "--offload-threads", "1",
                  "--threads", "1", cwd=tmp_path)
    support.wait_for_port(port)
    stalled = [start_download(port, "/any") for _ in range(3)]
    p.wait_for_log(r"GET /any => generated %d bytes .* via offload\(\)"
                   % BIG, count=3)
    for s in stalled:
        with s:
            assert split_response(read_to_eof(s))[2] == expected


def test_a_file_wrapper_over_http_socket_arrives_whole(tmp_path, procs):
    """HTTP frames a body of no declared length in chunks, which an
    offload thread does not write: the core sends it."""
    expected = os.urandom(1 << 20)
    (tmp_path / "big.bin").write_bytes(expected)
    (tmp_path / "wrapper.py").write_text(WRAPPER_APP)
    port = support.free_port()
    procs.ugu("--master", "--http-socket", f"127.0.0.1:{port}",
              "--wsgi-file", "wrapper.py", "--offload-threads", "1",
              cwd=tmp_path)
    support.wait_for_port(port)
    answer = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
    assert answer.content == expected


PARTLY_READ_APP = """import os
def application(environ, start_response):
    path = os.path.join(os.path.dirname(__file__), "data.txt")
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/pipe":
        read_end, write_end = os.pipe()
        os.write(write_end, b"never sent")
        os.close(write_end)
        return environ["wsgi.file_wrapper"](os.fdopen(read_end, "rb"))
    f = open(path, "rb")
    if environ["PATH_INFO"] == "/read":
        f.read(3)
    elif environ["PATH_INFO"] == "/seek":
        f.seek(6)
    return environ["wsgi.file_wrapper"](f)
"""


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_file_wrapper_sends_the_whole_file_whatever_was_read(
        tmp_path, start_server, server):
    """As uWSGI: from the first byte, however far the app read or sought
    (a buffered read takes more than it returns); a pipe has nothing."""
    (tmp_path / "data.txt").write_bytes(b"hello world\n")
    (tmp_path / "partly.py").write_text(PARTLY_READ_APP)
    port = support.free_port()
    argv = ["--master", "--http-socket", f"127.0.0.1:{port}",
            "--wsgi-file", "partly.py"]
    start_server(server, argv, cwd=tmp_path)
    support.wait_for_port(port)
    for path in ("/", "/read", "/seek"):
        answer = requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        assert (answer.status_code, answer.content) == (200,
                                                        b"hello world\n")
    answer = requests.get(f"http://127.0.0.1:{port}/pipe", timeout=10)
    assert (answer.status_code, answer.content) == (200, b"")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_client_gone_mid_sendfile_is_logged_as_uwsgi_logs_it(
        tmp_path, start_server, server):
    """The writer's line for the failed sendfile(), and a request line
    that counts none of the file."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "big.bin").write_bytes(os.urandom(BIG))
    port = support.free_port()
    argv = ["--master", "--http-socket", f"127.0.0.1:{port}",
            "--check-static", "static/"]
    p = start_server(server, argv, cwd=tmp_path)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(65536)
        # A reset, so that the server's next write fails at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
    p.wait_for_log(r"uwsgi_response_sendfile_do\(\): (Broken pipe|"
                   r"Connection reset by peer) \[core/writer\.c line 655\] "
                   r"during GET /big\.bin \(127\.0\.0\.1\)")
    p.wait_for_log(r"GET /big\.bin => generated 0 bytes in \d+ msecs via "
                   r"sendfile\(\) \(HTTP/1\.1 200\)")


SIZED_WRAPPER_APP = """import os
def application(environ, start_response):
    path = os.path.join(os.path.dirname(__file__), "big.bin")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.path.getsize(path)))])
    return environ["wsgi.file_wrapper"](open(path, "rb"))
"""


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_sized_file_wrapper_over_http_socket_is_offloaded(
        tmp_path, start_server, server):
    """Its declared length needs no framing: the core hands it over."""
    expected = os.urandom(1 << 20)
    (tmp_path / "big.bin").write_bytes(expected)
    (tmp_path / "sized.py").write_text(SIZED_WRAPPER_APP)
    port = support.free_port()
    argv = ["--master", "--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
            "sized.py", "--offload-threads", "1"]
    p = start_server(server, argv, cwd=tmp_path)
    support.wait_for_port(port)
    answer = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
    assert answer.content == expected
    p.wait_for_log(r"GET / => generated %d bytes .* via offload\(\)"
                   % len(expected))


@pytest.mark.parametrize("path", ["/small.txt", "/"])
def test_an_offloaded_answer_on_a_keepalive_connection_says_it_closes(
        tmp_path, procs, path):
    """The offload thread closes the connection after the file: the head
    says so, and the client's next request goes on a new one instead of
    into the close (a static file, and an app's sized file_wrapper)."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "small.txt").write_bytes(b"small\n")
    (tmp_path / "big.bin").write_bytes(b"wrapped\n")
    (tmp_path / "sized.py").write_text(SIZED_WRAPPER_APP)
    port = support.free_port()
    procs.ugu("--master", "--http-socket", f"127.0.0.1:{port}",
              "--wsgi-file", "sized.py", "--check-static", "static/",
              "--offload-threads", "1", cwd=tmp_path)
    support.wait_for_port(port)
    with requests.Session() as session:
        for _ in range(3):
            answer = session.get(f"http://127.0.0.1:{port}{path}",
                                 timeout=30)
            assert answer.headers["Connection"] == "close"
            assert answer.content in (b"small\n", b"wrapped\n")


def test_an_offloaded_answer_drops_the_apps_own_connection_header(
        tmp_path, procs):
    """An app's `Connection: keep-alive` would contradict the close the
    head must announce: only `Connection: close` goes."""
    (tmp_path / "big.bin").write_bytes(b"wrapped\n")
    (tmp_path / "sized.py").write_text(SIZED_WRAPPER_APP.replace(
        '("Content-Length",', '("Connection", "keep-alive"), '
        '("Content-Length",'))
    port = support.free_port()
    procs.ugu("--master", "--http-socket", f"127.0.0.1:{port}",
              "--wsgi-file", "sized.py", "--offload-threads", "1",
              cwd=tmp_path)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = read_to_eof(s).split(b"\r\n\r\n")[0].lower()
    assert head.count(b"connection:") == 1
    assert b"connection: close" in head
