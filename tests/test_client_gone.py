"""A client that goes away: what the worker's log line counts of a
response it left mid-way, and which writer uWSGI names for the failure
(each response shape on ugu and on the real uWSGI); and that the
worker closes the connection of a request whose client left mid-body at
once, whoever holds its wsgi.input."""

import os
import re
import socket
import struct
import textwrap

import pytest

from tests import support

# Far more than the socket buffers take in the first write: the head
# and part of the body go, and a later write meets the reset.
BIG = 16 << 20
APP = textwrap.dedent(f'''
    import os, time

    BIG = b"x" * {BIG}
    HERE = os.path.dirname(os.path.abspath(__file__))

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        if path == "/bytes":
            return BIG
        if path == "/list":
            return [BIG]
        if path == "/chunks":
            return (b"c" * 65536 for _ in range({BIG} // 65536))
        if path == "/slow":
            return slow()
        if path == "/wrapper":
            return environ["wsgi.file_wrapper"](
                open(os.path.join(HERE, "static", "big.bin"), "rb"))
        return [b"ok"]

    def slow():
        yield b"s" * 1000
        # The client goes meanwhile; the body ends after it has.
        time.sleep(0.5)
''')
# The head of the app's response: status line, its header, blank line.
HEAD_SIZE = len("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
GONE = r"(?:Connection reset by peer|Broken pipe)"
SERVERS = ["ugu", "uwsgi"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def file_site(site):
    (site / "static").mkdir()
    (site / "static" / "big.bin").write_bytes(b"f" * BIG)
    return site


def serve(start_server, server, site, socket_option, *options):
    port = support.free_port()
    p = start_server(server, [socket_option, f"127.0.0.1:{port}",
                              "--master", "--wsgi-file", "app.py",
                              *options], cwd=site)
    support.wait_for_port(port)
    p.port = port
    return p


def leave_mid_response(port, path):
    """Read the first bytes of the response, then reset the connection,
    so that the server's next write fails."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = b""
        while len(got) < 1000:
            got += s.recv(1000 - len(got))
        assert got.startswith(b"HTTP/1.1 200 OK\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))


def failed_request(p, path, writer, line):
    """The writer's line for the request, then its log line: the body
    bytes and head bytes the line counts."""
    leave_mid_response(p.port, path)
    found = p.wait_for_log(
        rf"{re.escape(writer)}: {GONE} \[core/writer\.c line {line}\] "
        rf"during GET {path} \(127\.0\.0\.1\)\n(?:.*\n)*?"
        rf".*GET {path} => generated (\d+) bytes in \d+ msecs"
        rf"(?: via sendfile\(\))? \(HTTP/1\.1 200\) \d+ headers in "
        rf"(\d+) bytes")
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("socket_option", ["--http-socket", "--http"])
@pytest.mark.parametrize("path", ["/bytes", "/list"])
def test_a_first_chunk_cut_short_counts_what_went_with_the_head(
        site, start_server, server, socket_option, path):
    """uWSGI writes the head with the first chunk until the head has
    gone, then the rest of the chunk: it counts the body bytes that went
    with the head and names the second writer."""
    p = serve(start_server, server, site, socket_option)
    body, head = failed_request(p, path, "uwsgi_response_write_body_do()",
                                341)
    assert head == HEAD_SIZE
    assert 1000 - HEAD_SIZE <= body < BIG


@pytest.mark.parametrize("server", SERVERS)
def test_a_later_chunk_cut_short_counts_the_chunks_that_went(
        site, start_server, server):
    p = serve(start_server, server, site, "--http-socket")
    body, head = failed_request(p, "/chunks",
                                "uwsgi_response_write_body_do()", 429)
    assert head == HEAD_SIZE
    # Whole chunks: none of the one that failed.
    assert body % 65536 == 0 and 0 < body < BIG


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("path, head_size", [
    ("/wrapper", HEAD_SIZE), ("/static/big.bin", None)])
def test_a_file_cut_short_counts_none_of_it(file_site, start_server, server,
                                            path, head_size):
    p = serve(start_server, server, file_site, "--http-socket",
              "--check-static", str(file_site))
    body, head = failed_request(p, path, "uwsgi_response_sendfile_do()",
                                655)
    assert body == 0
    assert head == (head_size or head)


@pytest.mark.parametrize("server", SERVERS)
def test_an_offloaded_file_counts_whole_when_its_client_goes(
        file_site, start_server, server):
    """The line counts the file whole, as it was handed over; the
    engine says it met the gone client (in either order: ugu's core
    sends what the socket takes at once before it hands over)."""
    p = serve(start_server, server, file_site, "--http-socket",
              "--check-static", str(file_site), "--offload-threads", "1")
    leave_mid_response(p.port, "/static/big.bin")
    p.wait_for_log(rf"GET /static/big\.bin => generated {BIG} bytes in "
                   rf"\d+ msecs via offload\(\) \(HTTP/1\.1 200\)")
    p.wait_for_log(rf"u_offload_sendfile_do\(\): {GONE} "
                   rf"\[core/offload\.c line 376\]")


def test_the_end_of_a_chunked_body_cut_short_is_a_failed_body_write(
        site, procs):
    """The last chunk, which HTTP/1.1 frames for a body of no declared
    length (uWSGI does not, and writes nothing there): its failure said
    as uWSGI's writer says a body write's, before the request's line."""
    port = support.free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--master",
                  "--wsgi-file", "app.py", cwd=site)
    support.wait_for_port(port)
    p.port = port
    body, head = failed_request(p, "/slow", "uwsgi_response_write_body_do()",
                                429)
    assert (body, head) == (1000, HEAD_SIZE)
    assert "error on request" not in p.output()


# An app whose request object is in a reference cycle, as a framework's
# often is, and which keeps wsgi.input; no garbage collector comes by.
CYCLE_APP = textwrap.dedent('''
    import gc
    gc.disable()

    def application(environ, start_response):
        request = {"input": environ["wsgi.input"]}
        request["self"] = request
        try:
            environ["wsgi.input"].read()
        except OSError:
            pass
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def get_ok(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /ok HTTP/1.0\r\nHost: x\r\n\r\n")
        assert support.read_to_eof(s).endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("socket_option", ["--http", "--http-socket"])
def test_a_client_gone_mid_body_leaves_no_connection_open(
        tmp_path, procs, socket_option):
    (tmp_path / "app.py").write_text(CYCLE_APP)
    port = support.free_port()
    p = procs.ugu(socket_option, f"127.0.0.1:{port}", "--master",
                  "--processes", "1", "--wsgi-file", "app.py", cwd=tmp_path)
    worker = int(p.wait_for_log(r"spawned uWSGI worker 1 \(pid: (\d+)")
                 .group(1))
    support.wait_for_port(port)
    get_ok(port)
    baseline = open_fds(worker)
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /post HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"a" * 5000)
    p.wait_for_log(r"\[uwsgi-body-read\] Error reading 95000 bytes", count=30)
    # The one worker core serves this after every POST has ended.
    get_ok(port)
    assert open_fds(worker) == baseline
