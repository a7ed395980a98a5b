"""fastcgi-socket and scgi-socket (and their -nph variants) beside the
real uWSGI, byte for byte, with raw clients (well-formed and malformed
input), and behind a real nginx (fastcgi_pass, scgi_pass)."""

import re
import socket
import struct
import subprocess

import pytest

from tests import support
from tests.test_interop import nginx_binary

APP = """def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    body = environ["wsgi.input"].read()
    if path.endswith("/stream"):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"%d," % i for i in range(3000))
    if path.endswith("/big"):
        start_response("200 OK", [("Content-Length", "100000")])
        return [b"x" * 100000]
    start_response("201 Created", [("Content-Type", "text/plain"),
                                   ("X-Path", path)])
    return [path.encode(), b"|", body]
"""

# FastCGI: version, type, request id, content length, padding, reserved.
RECORD = struct.Struct(">BBHHBx")
BEGIN, PARAMS, STDIN = 1, 4, 5


def record(kind, content=b"", request_id=1, padding=0):
    return (RECORD.pack(1, kind, request_id, len(content), padding)
            + content + bytes(padding))


def pair(name, value):
    def length(size):
        return bytes([size]) if size < 128 else \
            struct.pack(">I", size | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def request_vars(path, body=b"", method="GET"):
    found = [("REQUEST_METHOD", method), ("REQUEST_URI", path),
             ("PATH_INFO", path), ("QUERY_STRING", ""),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1"),
             ("REMOTE_PORT", "4000"), ("SERVER_NAME", "test"),
             ("SERVER_PORT", "80")]
    if body:
        found.insert(0, ("CONTENT_LENGTH", str(len(body))))
    return [(k.encode(), v.encode()) for k, v in found]


def fastcgi_request(path, body=b"", request_id=1, padding=0):
    params = b"".join(pair(k, v) for k, v in request_vars(path, body))
    data = record(BEGIN, struct.pack(">HB5x", 1, 1), request_id)
    data += record(PARAMS, params, request_id, padding)
    data += record(PARAMS, b"", request_id)
    if body:
        # Two STDIN records, the first padded.
        data += record(STDIN, body[:3], request_id, 5)
        data += record(STDIN, body[3:], request_id)
    return data + record(STDIN, b"", request_id)


def scgi_request(path, body=b""):
    found = [(b"CONTENT_LENGTH", str(len(body)).encode()), (b"SCGI", b"1"),
             *request_vars(path, method="POST" if body else "GET")]
    block = b"".join(k + b"\0" + v + b"\0" for k, v in found)
    return b"%d:%s," % (len(block), block) + body


def exchange(port, data, timeout=10):
    """What the server sends for `data` (the client then half-closed)
    until it closes; b"<stalled>" after `timeout`, b"<reset>" for a
    reset."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        try:
            if data:
                s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return support.read_to_eof(s)
        except TimeoutError:
            return b"<stalled>"
        except OSError:
            # A head over buffer-size, closed with bytes unread.
            return b"<reset>"


def start(start_server, server, tmp_path, option, *extra):
    (tmp_path / "app.py").write_text(APP)
    if not (tmp_path / "static").exists():
        # Once: both servers then send the same Last-Modified.
        (tmp_path / "static").mkdir()
        (tmp_path / "static" / "file.bin").write_bytes(
            bytes(range(256)) * 600)
    port = support.free_port()
    p = start_server(server, [
        f"--{option}", f"127.0.0.1:{port}", "--wsgi-file", "app.py",
        "--master", "--offload-threads", "1",
        "--check-static", str(tmp_path / "static"),
        "--route", "^/forbidden$ return:403", *extra], cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    return p, port


def request_lines(p, count):
    """The request log lines, without what changes from run to run."""
    p.wait_for_log(r"\] (GET|POST|) ", count=count)
    lines = re.findall(r"^\[pid: .*$", p.output(), re.MULTILINE)
    return [re.sub(r"pid: \d+|\[\w{3} \w{3} [ \d]\d [\d:]+ \d{4}\]|"
                   r"in \d+ msecs", "", line) for line in lines]


def assert_same(ours, theirs):
    """Each answer and log line alike, the first that differs named."""
    for name, mine, reference in zip(("answers", "lines"), ours, theirs):
        for index, (a, b) in enumerate(zip(mine, reference)):
            assert a == b, f"{name}[{index}]"
        assert len(mine) == len(reference), name


FASTCGI_CASES = [
    fastcgi_request("/x", b"hello world", request_id=258),
    fastcgi_request("/forbidden"),
    fastcgi_request("/file.bin", padding=3),
    fastcgi_request("/stream"),
    fastcgi_request("/big", request_id=7),
    # Another request's record after the body, then the close: the
    # answer and its END_REQUEST keep the request's id.
    fastcgi_request("/y", b"hello", request_id=7)[:-8]
    + record(BEGIN, struct.pack(">HB5x", 1, 1), 9),
]
FASTCGI_MALFORMED = [
    b"",                                          # nothing at all
    b"\x01\x01\x00\x07",                          # half a header
    record(PARAMS, b"\x05", 9),                   # a pair cut short
    record(PARAMS, b"\x05", 9) + record(STDIN, b"", 9),
    record(PARAMS, b"\x00\x00", 3) + record(STDIN, b"", 3),
    record(STDIN, b"", 4),                        # no vars
    record(PARAMS, pair(b"A", b"b"), 5) + record(STDIN, b"", 5),
]


@pytest.mark.parametrize("option", ["fastcgi-socket", "fastcgi-nph-socket"])
def test_fastcgi_as_uwsgi(start_server, tmp_path, option):
    found = {}
    for server in ("ugu", "uwsgi"):
        p, port = start(start_server, server, tmp_path, option)
        answers = [exchange(port, data) for data in FASTCGI_CASES]
        lines = request_lines(p, len(FASTCGI_CASES))
        answers += [exchange(port, data) for data in FASTCGI_MALFORMED]
        p.stop()
        found[server] = answers, lines
    assert_same(found["ugu"], found["uwsgi"])
    answers, lines = found["ugu"]
    head = b"HTTP/1.1 201 Created" if "nph" in option else \
        b"Status: 201 Created"
    head += b"\r\nContent-Type: text/plain\r\nX-Path: /x\r\n\r\n"
    assert answers[0].startswith(RECORD.pack(1, 6, 258, len(head), 0)
                                 + head + RECORD.pack(1, 6, 258, 2, 0))
    assert answers[0].endswith(
        RECORD.pack(1, 6, 258, 0, 0) + RECORD.pack(1, 3, 258, 8, 0)
        + bytes(8))
    assert b"Forbidden" in answers[1]
    # The static file in records of up to 65535 bytes.
    assert RECORD.pack(1, 6, 1, 65535, 0) in answers[2]
    assert "GET /x => generated 14 bytes" in lines[0]
    assert answers[5].endswith(RECORD.pack(1, 3, 7, 8, 0) + bytes(8))


SCGI_CASES = [
    scgi_request("/x", b"hello world"),
    scgi_request("/forbidden"),
    scgi_request("/file.bin"),
    scgi_request("/stream"),
]
SCGI_MALFORMED = [
    b"", b"12:abc", b"0:,", b"3:a\x00b,", b"5:A\x00b\x00\x00,",
    b"3:a\x00b;", b"x" * 5000,
]


@pytest.mark.parametrize("option", ["scgi-socket", "scgi-nph-socket"])
def test_scgi_as_uwsgi(start_server, tmp_path, option):
    found = {}
    for server in ("ugu", "uwsgi"):
        p, port = start(start_server, server, tmp_path, option)
        answers = [exchange(port, data) for data in SCGI_CASES]
        lines = request_lines(p, len(SCGI_CASES))
        answers += [exchange(port, data) for data in SCGI_MALFORMED]
        p.wait_for_log(r"invalid SCGI request size \(max 4096\)\.\.\.skip")
        p.stop()
        found[server] = answers, lines
    assert_same(found["ugu"], found["uwsgi"])
    answers, lines = found["ugu"]
    head = b"HTTP/1.1 201 Created" if "nph" in option else \
        b"Status: 201 Created"
    assert answers[0] == (head + b"\r\nContent-Type: text/plain\r\n"
                          b"X-Path: /x\r\n\r\n/x|hello world")
    assert answers[2].endswith(bytes(range(256)) * 600)
    assert "POST /x => generated 14 bytes" in lines[0]


def test_protocol_option_makes_a_socket_fastcgi(procs, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--protocol", "scgi",
                  "--wsgi-file", "app.py", cwd=tmp_path)
    support.wait_for_port(port)
    assert exchange(port, scgi_request("/y")).startswith(
        b"Status: 201 Created\r\n")
    p.stop()


NGINX_CONF = """
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location /f/ {{
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param PATH_INFO $document_uri;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_keep_conn on;
            fastcgi_pass 127.0.0.1:{fastcgi};
        }}
        location /s/ {{
            scgi_param REQUEST_METHOD $request_method;
            scgi_param REQUEST_URI $request_uri;
            scgi_param PATH_INFO $document_uri;
            scgi_param QUERY_STRING $query_string;
            scgi_param SERVER_PROTOCOL $server_protocol;
            scgi_param REMOTE_ADDR $remote_addr;
            scgi_param SERVER_NAME $server_name;
            scgi_param SERVER_PORT $server_port;
            scgi_pass 127.0.0.1:{scgi};
        }}
    }}
}}
"""


def http(port, method, path, body=b""):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body)
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_behind_nginx(procs, tmp_path):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed")
    (tmp_path / "app.py").write_text(APP)
    fastcgi, scgi, port = (support.free_port() for _ in range(3))
    p = procs.ugu("--fastcgi-socket", f"127.0.0.1:{fastcgi}",
                  "--scgi-socket", f"127.0.0.1:{scgi}", "--threads", "2",
                  "--wsgi-file", "app.py", "--master", cwd=tmp_path)
    (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(
        tmp=tmp_path, port=port, fastcgi=fastcgi, scgi=scgi))
    check = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c",
                            str(tmp_path / "nginx.conf")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    procs.start([binary, "-p", str(tmp_path), "-c",
                 str(tmp_path / "nginx.conf")])
    support.wait_for_port(port)
    support.wait_for_port(fastcgi)
    for prefix in ("/f/", "/s/"):
        for _ in range(3):
            status, headers, body = http(port, "POST", prefix + "a",
                                         b"x" * 70000)
            assert status == 201
            assert headers["X-Path"] == prefix + "a"
            assert body == prefix.encode() + b"a|" + b"x" * 70000
        status, _, body = http(port, "GET", prefix + "stream")
        assert body == b"".join(b"%d," % i for i in range(3000))
        status, headers, body = http(port, "GET", prefix + "big")
        assert (status, len(body)) == (200, 100000)
    p.wait_for_log(r"POST /s/a => generated 70005 bytes", count=3)
