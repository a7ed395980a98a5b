"""uwsgi.chunked_read and chunked_read_nb, chunked-input-limit and
chunked-input-timeout: the same chunked bodies sent to ugu and to the
real uWSGI, raw after a uwsgi packet's vars and through an http-socket."""

import socket
import textwrap
import time

import pytest

from tests import support
from ugu import protocol as codec

APP = textwrap.dedent('''
    import uwsgi

    def application(environ, start_response):
        got = []
        query = environ.get("QUERY_STRING", "")
        try:
            if query == "nb":
                got.append(repr(uwsgi.chunked_read_nb()))
            timeout = int(query) if query.lstrip("-").isdigit() else 0
            while True:
                chunk = uwsgi.chunked_read(timeout)
                got.append(repr(chunk))
                if not chunk:
                    break
        except Exception as e:
            got.append(f"{type(e).__name__}: {e}")
        print("app: " + " ".join(got)[:200], flush=True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')
SERVERS = ["ugu", "uwsgi"]
FAILED = "OSError: unable to receive chunked part"


@pytest.fixture
def server_ports(tmp_path, start_server, request):
    (tmp_path / "app.py").write_text(APP)
    port, http_port = support.free_port(), support.free_port()
    p = start_server(request.param, [
        "--socket", f"127.0.0.1:{port}", "--http-socket",
        f"127.0.0.1:{http_port}", "--wsgi-file", "app.py",
        "--chunked-input-limit", "5000", "--chunked-input-timeout", "1"],
        cwd=tmp_path)
    support.wait_for_port(port)
    support.wait_for_port(http_port)
    p.port, p.http_port = port, http_port
    return p


def send_raw(port, parts, query=""):
    """A uwsgi packet with no CONTENT_LENGTH, then the chunked body in
    `parts` (a number is a pause in seconds); the app's line is read
    from the log, not the answer (uWSGI resets a connection it leaves
    unread)."""
    pairs = [("REQUEST_METHOD", "POST"), ("REQUEST_URI", f"/?{query}"),
             ("PATH_INFO", "/"), ("QUERY_STRING", query),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_NAME", "x"),
             ("SERVER_PORT", "80"), ("REMOTE_ADDR", "127.0.0.1"),
             ("HTTP_TRANSFER_ENCODING", "chunked")]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(codec.encode([(k.encode(), v.encode()) for k, v in pairs]))
        try:
            for part in parts:
                if isinstance(part, (int, float)):
                    time.sleep(part)
                else:
                    # A server done with the body may have reset already.
                    s.sendall(part)
            support.read_to_eof(s)
        except (ConnectionResetError, BrokenPipeError):
            pass


def app_line(p, count):
    return p.wait_for_log(r"\napp: (.*)\n", count=count).group(1)


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST = b"0\r\n\r\n"


@pytest.mark.parametrize("server_ports", SERVERS, indirect=True)
def test_chunks_come_as_the_client_sent_them(server_ports):
    p = server_ports
    send_raw(p.port, [chunk(b"hello"), chunk(b"world!!"), LAST])
    assert app_line(p, 1) == "b'hello' b'world!!' b''"
    # Split anywhere, sizes in either case or with 0x, taken whole.
    send_raw(p.port, [b"A\r\n01234", 0.2, b"56789\r\n0x1F\r\n" + b"x" * 31,
                      b"\r\n" + LAST])
    assert app_line(p, 2) == f"b'0123456789' b'{'x' * 31}' b''"


@pytest.mark.parametrize("server_ports", SERVERS, indirect=True)
def test_a_chunk_and_its_crlf_must_fit_in_chunked_input_limit(server_ports):
    p = server_ports
    send_raw(p.port, [chunk(b"y" * 4998), LAST])
    assert app_line(p, 1) == f"b'{'y' * 4998}' b''"[:200]
    send_raw(p.port, [chunk(b"y" * 4999), LAST])
    assert app_line(p, 2) == FAILED


@pytest.mark.parametrize("server_ports", SERVERS, indirect=True)
def test_a_stalled_body_fails_after_chunked_input_timeout(server_ports):
    """1 s (chunked-input-timeout), unless the app waits longer."""
    p = server_ports
    stalled = [b"5\r\nhel", 2, b"lo\r\n" + LAST]
    send_raw(p.port, stalled)
    assert app_line(p, 1) == FAILED
    send_raw(p.port, stalled, query="5")
    assert app_line(p, 2) == "b'hello' b''"


@pytest.mark.parametrize("server_ports", SERVERS, indirect=True)
def test_chunked_read_nb_answers_none_till_a_chunk_came(server_ports):
    p = server_ports
    send_raw(p.port, [0.5, chunk(b"hello"), LAST], query="nb")
    assert app_line(p, 1) == "None b'hello' b''"


@pytest.mark.parametrize("server_ports", SERVERS, indirect=True)
def test_an_http_sockets_chunked_body_comes_chunk_by_chunk(server_ports):
    p = server_ports
    with socket.create_connection(("127.0.0.1", p.http_port),
                                  timeout=10) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                  b"chunked\r\nConnection: close\r\n\r\n")
        s.sendall(chunk(b"hello") + chunk(b"w" * 3000) + LAST)
        support.read_to_eof(s)
    assert app_line(p, 1) == f"b'hello' b'{'w' * 3000}' b''"[:200]


@pytest.mark.parametrize("server_ports", ["ugu"], indirect=True)
def test_a_chunk_extension_is_skipped(server_ports):
    """HTTP/1.1 allows `;name=value` after a chunk's size; uWSGI 2.0
    fails the read on it (README's differences)."""
    p = server_ports
    send_raw(p.port, [b"5;name=value\r\nhello\r\n" + LAST])
    assert app_line(p, 1) == "b'hello' b''"


@pytest.mark.parametrize("server", SERVERS)
def test_a_long_size_line_is_read_in_one_pass(tmp_path, start_server,
                                              server):
    """A size line that takes hundreds of reads to come (a hostile
    client's, up to the 1 MiB default limit) is checked a byte at a
    time once, not again from its start after every read: the worker
    is held well under a second for it, as uWSGI's, where it was held
    for seconds.  A CR at the end of one read and its LF in the next
    still end the line."""
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = start_server(server, ["--socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py"], cwd=tmp_path)
    support.wait_for_port(port)
    started = time.monotonic()
    send_raw(port, [b"1" * 900_000 + b"\r\n"])
    assert app_line(p, 1) == FAILED
    assert time.monotonic() - started < 4
    send_raw(port, [b"0" * 5000 + b"5\r", 0.2, b"\nhello\r\n" + LAST])
    assert app_line(p, 2) == "b'hello' b''"
