"""The HTTP router (`http = ADDR`) end to end.

ugu's router runs in a real child process, started by a small launcher
that binds a listener and calls `ugu.router.process.run`, as a vassal's
master does after fork.  Behind it: the real uWSGI worker running this
file's app, or raw-socket backends of the test's own (in threads) that
record what they receive or misbehave on purpose.  Where uWSGI's router
defines the behaviour, the same requests also go through it.
"""

import gzip
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import sys
import textwrap
import threading
import time
from pathlib import Path

import h11
import pytest
import requests

from tests import support
from tests.support import read_to_eof
from ugu.http.chunked import ChunkedFraming
from ugu.http.errors import BadRequest
from ugu.http.gzip import accepts_gzip
from ugu.http.vars import path_info, remove_dot_segments


LAUNCHER = textwrap.dedent('''
    import json, os, socket, sys
    from ugu.options.resolve import resolve
    from ugu.http import plain
    from ugu.router import exchange, fastpath
    from ugu.router.process import run

    if os.environ.get("UGU_TEST_PARSER") == "h11-response":
        # Every backend response through h11, as if none were plain.
        exchange.parse_head = fastpath.parse_head = lambda head: None
    if os.environ.get("UGU_TEST_PARSER") == "h11-request":
        # Every client request through h11, as if none were plain.
        plain.parse_request = lambda head: None

    nodes = [n if isinstance(n, str) else tuple(n)
             for n in json.loads(sys.argv[1])]
    config = resolve(sys.argv[2:], environ={})
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    print("router listening on port", listener.getsockname()[1],
          flush=True)
    run(config, [(listener, None)], nodes, 1)
''')


# Processes.

def ready(process, wait):
    """process once wait(process) returns; stopped if it never does."""
    try:
        wait(process)
    except BaseException:
        process.stop()
        raise
    return process


class Router:
    """ugu's router in its own process, as a master would fork it;
    `parser` names the path requests and responses take: "plain" for
    both, "h11-request" or "h11-response" for h11 on one side."""

    def __init__(self, nodes, *options, parser="plain"):
        self.process = ready(support.Process(
            [sys.executable, "-c", LAUNCHER, json.dumps(nodes), *options],
            cwd=support.REPO, env={"UGU_TEST_PARSER": parser}),
            self._listening)

    def _listening(self, process):
        found = process.wait_for_log(r"listening on port (\d+)")
        self.port = int(found.group(1))
        support.wait_for_port(self.port)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def log(self):
        return self.process.output()

    def stop(self):
        self.process.stop()


def start_worker(uwsgi_binary, app_dir, address):
    """The real uWSGI worker serving APP on `address` (uwsgi protocol)."""
    return ready(support.Process(
        [uwsgi_binary, "--master", "--socket", address, "--processes", "1",
         "--wsgi-file", str(app_dir / "app.py")], cwd=app_dir),
        lambda p: p.wait_for_log(r"spawned uWSGI worker 1"))


def start_uwsgi_router(uwsgi_binary, node, *options):
    """uWSGI's own router, for comparison; returns (process, port)."""
    port = support.free_port()
    def wait(process):
        process.wait_for_log(r"spawned uWSGI http 1")
        support.wait_for_port(port)
    return ready(support.Process(
        [uwsgi_binary, "--master", "--processes", "0", "--http",
         f"127.0.0.1:{port}", "--http-to", node, *options]), wait), port


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("router-app")
    shutil.copy(support.ECHO_APP, folder / "app.py")
    return folder


@pytest.fixture(scope="module")
def worker(uwsgi_binary, app_dir):
    """The real uWSGI worker; its port."""
    port = support.free_port()
    process = start_worker(uwsgi_binary, app_dir, f"127.0.0.1:{port}")
    yield port
    process.stop()


@pytest.fixture(scope="module",
                params=["plain", "h11-response", "h11-request"])
def parser(request):
    """Every router test runs on both paths of a client's request and of
    a backend's response: the plain fast path and h11."""
    return request.param


@pytest.fixture(scope="module")
def router(worker, parser):
    """ugu's router as the tutorial's http.ini sets it up."""
    r = Router([["127.0.0.1", worker]], "--http-keepalive",
               "--http-auto-gzip", parser=parser)
    yield r
    r.stop()


@pytest.fixture
def start_router(parser):
    """Start routers with their own options; stopped when the test
    ends."""
    started = []

    def start(nodes, *options):
        r = Router(nodes, *options, parser=parser)
        started.append(r)
        return r
    yield start
    for r in started:
        r.stop()


# Raw-socket backends, each connection handled in its own thread.

class Backend:
    """A uwsgi-protocol backend of the test's own: `answer(backend, conn,
    pairs, body)` handles each request; every request is also queued."""

    def __init__(self, answer):
        self.answer = answer
        self.requests = queue.Queue()
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        with conn:
            pairs = read_packet(conn)
            found = dict(pairs)
            body = read_exactly(conn, int(found.get(b"CONTENT_LENGTH", 0)))
            self.requests.put((pairs, body))
            self.answer(self, conn, pairs, body)

    def stop(self):
        self.stopped.set()
        self.listener.close()


def read_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise EOFError(f"got {len(data)} of {size} bytes")
        data += chunk
    return data


def read_packet(conn):
    """The (key, value) pairs of one uwsgi request packet."""
    _, size, _ = struct.unpack("<BHB", read_exactly(conn, 4))
    block = read_exactly(conn, size)
    pairs, pos = [], 0
    while pos < size:
        for_key = struct.unpack_from("<H", block, pos)[0]
        key = block[pos + 2:pos + 2 + for_key]
        pos += 2 + for_key
        for_value = struct.unpack_from("<H", block, pos)[0]
        pairs.append((key, block[pos + 2:pos + 2 + for_value]))
        pos += 2 + for_value
    return pairs


def answer_ok(backend, conn, pairs, body):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def answer_nothing(backend, conn, pairs, body):
    """An app that fails before its response: the worker just closes."""


def answer_late(backend, conn, pairs, body):
    backend.stopped.wait()


def answer_half(backend, conn, pairs, body):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")


@pytest.fixture
def backend():
    """Start raw backends with backend(answer); stopped at the end."""
    started = []

    def start(answer):
        b = Backend(answer)
        started.append(b)
        return b
    yield start
    for b in started:
        b.stop()


# Raw HTTP clients.

def exchange(port, data, timeout=10):
    """Send raw bytes, read until the router closes the connection."""
    address = ("127.0.0.1", port)
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(data)
        return read_to_eof(s)


def read_responses(sock, methods):
    """Parse one response per request method from the socket, in order:
    [(h11.Response, body)]."""
    buffered, answers = b"", []
    for method in methods:
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method=method, target="/",
                                headers=[("Host", "test")]))
        parser.send(h11.EndOfMessage())
        if buffered:
            # (An empty receive_data would mean end of stream.)
            parser.receive_data(buffered)
        answers.append(_one_response(sock, parser))
        buffered = parser.trailing_data[0]
    return answers


def _one_response(sock, parser):
    response, body = None, b""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            parser.receive_data(sock.recv(65536))
        elif type(event) is h11.Response:
            response = event
        elif type(event) is h11.Data:
            body += event.data
        elif type(event) is h11.EndOfMessage:
            return response, body


def header(response, name):
    """A header value of an h11 response, or None."""
    for key, value in response.headers:
        if key == name.encode():
            return value.decode()
    return None


# Requests through the real worker.

def test_get_through_the_router(router):
    r = requests.get(f"{router.url}/some/page?x=1", timeout=10)
    assert r.status_code == 200
    assert r.text == "hello from /some/page"
    assert r.headers["Content-Type"] == "text/plain"
    assert r.headers["X-App"] == "test"


def test_app_sees_the_vars_uwsgi_sends(router):
    r = requests.get(f"{router.url}/env?a=%20b", timeout=10,
                     headers={"X-Other": "o"})
    env = r.json()
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "/env"
    assert env["REQUEST_URI"] == "/env?a=%20b"
    assert env["QUERY_STRING"] == "a=%20b"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == socket.gethostname()
    assert env["SERVER_PORT"] == str(router.port)
    assert env["UWSGI_ROUTER"] == "http"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_OTHER"] == "o"


def test_a_raw_utf8_target_reaches_the_app_as_sent(router, parser):
    """curl sends a UTF-8 query unescaped; uWSGI passes it on as it is
    (the app reads latin-1 text, PEP 3333).  h11, which reads any request
    the plain parser does not, refuses it: a smaller difference the
    README lists."""
    target = "/env?q=\u2713".encode()
    with socket.create_connection(("127.0.0.1", router.port), 10) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target)
        [(response, body)] = read_responses(s, [b"GET"])
    if parser == "h11-request":
        assert response.status_code == 400
        return
    env = json.loads(body)
    assert env["REQUEST_URI"] == target.decode("latin-1")
    assert env["QUERY_STRING"] == "q=\u2713".encode().decode("latin-1")
    # An answer the plain framing leaves to h11 (gzipped) goes out too.
    raw = exchange(router.port, b"GET /gz?q=\xe2\x9c\x93 HTTP/1.1\r\n"
                   b"Host: t\r\nAccept-Encoding: gzip\r\n"
                   b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Encoding: gzip\r\n" in raw


def test_repeated_headers_reach_the_app_joined(router):
    raw = exchange(router.port, b"GET /env HTTP/1.1\r\nHost: t\r\n"
                   b"X-Dup: 1\r\nX-Dup: 2\r\nConnection: close\r\n\r\n")
    env = json.loads(raw.partition(b"\r\n\r\n")[2].split(b"\r\n")[1])
    assert env["HTTP_X_DUP"] == "1, 2"


def test_keepalive_serves_requests_on_one_connection(router):
    with requests.Session() as session:
        ports = {session.get(f"{router.url}/env", timeout=10)
                 .json()["REMOTE_PORT"] for _ in range(3)}
    assert len(ports) == 1


def test_pipelined_requests_are_all_answered_in_order(router):
    assert_pipelined_in_order(router.port)


def assert_pipelined_in_order(port):
    """Three pipelined GETs on one connection get their answers in order
    (the router's and http-socket's tests share it)."""
    paths = ["/one", "/two", "/three"]
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % p.encode()
                    for p in paths)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        answers = read_responses(s, ["GET"] * 3)
    assert [body.decode() for _, body in answers] == [
        f"hello from {p}" for p in paths]


def test_a_request_sent_while_one_is_relayed_is_answered_after_it(
        backend, start_router):
    """The next request, sent before the answer to the one out (the
    router reads it as its answer is relayed), gets its own answer after
    that one's."""
    go = threading.Event()

    def answer(b, conn, pairs, body):
        if dict(pairs)[b"PATH_INFO"] == b"/one":
            go.wait(10)
        path = dict(pairs)[b"PATH_INFO"]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(path), path))
    b = backend(answer)
    r = start_router([["127.0.0.1", b.port]], "--http-keepalive")
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
        s.sendall(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
        b.requests.get(timeout=10)
        s.sendall(b"GET /two HTTP/1.1\r\nHost: t\r\n\r\n")
        go.set()
        answers = read_responses(s, ["GET", "GET"])
    assert [body for _, body in answers] == [b"/one", b"/two"]


def test_auto_chunked_keeps_an_unframed_response_alive(worker,
                                                      start_router):
    r = start_router([["127.0.0.1", worker]], "--http-keepalive",
                     "--http-auto-chunked")
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
        for path in (b"/one", b"/two"):
            s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
            [(response, body)] = read_responses(s, ["GET"])
            assert (b"transfer-encoding", b"chunked") in response.headers
            assert body == b"hello from " + path


def test_without_keepalive_the_connection_closes(worker, start_router):
    r = start_router([["127.0.0.1", worker]])
    raw = exchange(r.port, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"
                   b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.count(b"HTTP/1.1 200") == 1
    # As uWSGI: no header announces the close.
    assert b"connection:" not in raw.lower()


def test_gzip_when_the_client_accepts_it(router):
    r = requests.get(f"{router.url}/gz", timeout=10, stream=True,
                     headers={"Accept-Encoding": "gzip"})
    raw = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Vary"] == "Accept-Encoding"
    assert "uWSGI-Encoding" not in r.headers
    assert gzip.decompress(raw) == b"<p>compress me</p>" * 40


def test_gzip_refits_a_sized_response(router):
    r = requests.get(f"{router.url}/gzcl", timeout=10,
                     headers={"Accept-Encoding": "deflate, GZIP;q=0.5"})
    assert r.headers["Content-Encoding"] == "gzip"
    assert r.content == b"<p>sized</p>" * 40


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "br"])
def test_no_gzip_unless_accepted(router, accept):
    r = requests.get(f"{router.url}/gz", timeout=10,
                     headers={"Accept-Encoding": accept})
    assert "Content-Encoding" not in r.headers
    assert "uWSGI-Encoding" not in r.headers
    assert r.content == b"<p>compress me</p>" * 40


def test_head_carries_no_body(router):
    with socket.create_connection(("127.0.0.1", router.port),
                                  timeout=10) as s:
        s.sendall(b"HEAD /gz HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip"
                  b"\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        (head, head_body), (get, get_body) = read_responses(
            s, ["HEAD", "GET"])
    assert head.status_code == 200
    assert header(head, "content-encoding") == "gzip"
    assert head_body == b""
    # Any stray body bytes would have been read as the next response.
    assert get_body == b"hello from /after"


def test_post_body_is_streamed_to_the_app(router):
    body = bytes(range(256)) * 20000
    r = requests.post(f"{router.url}/echo", data=body, timeout=30)
    assert r.text == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_chunked_body_reaches_the_app_dechunked(router):
    pieces = [b"first,", b"second,", b"x" * 100000]
    r = requests.post(f"{router.url}/env", data=iter(pieces), timeout=30)
    env = r.json()
    assert env["body"] == b"".join(pieces).decode()
    assert env["CONTENT_LENGTH"] == str(sum(map(len, pieces)))
    assert "HTTP_TRANSFER_ENCODING" not in env


def test_expect_100_continue_is_answered(router):
    with socket.create_connection(("127.0.0.1", router.port),
                                  timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4"
                  b"\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        expected = b"HTTP/1.1 100 Continue\r\n\r\n"
        assert read_exactly(s, len(expected)) == expected
        s.sendall(b"body")
        raw = read_to_eof(s)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"4 " + hashlib.sha256(b"body").hexdigest()
                        .encode() + b"\r\n0\r\n\r\n")


def test_http_manage_expect_refuses_a_body_over_its_limit(
        uwsgi_binary, backend, start_router):
    node = backend(answer_ok)
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{node.port}", "--http-manage-expect=10")
    try:
        ours = start_router([["127.0.0.1", node.port]],
                            "--http-manage-expect=10")
        head = (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                b"Expect: 100-continue\r\n\r\n")
        for port in (ours.port, their_port):
            raw = exchange(port, head % 11)
            assert raw.startswith(b"HTTP/1.1 413 Request Entity Too Large"
                                  b"\r\n")
            assert node.requests.empty()
            with socket.create_connection(("127.0.0.1", port), 10) as s:
                s.sendall(head % 10)
                continued = b"HTTP/1.1 100 Continue\r\n\r\n"
                assert read_exactly(s, len(continued)) == continued
                s.sendall(b"0123456789")
                assert read_to_eof(s).endswith(b"\r\n\r\nok")
            assert node.requests.get(timeout=10)[1] == b"0123456789"
    finally:
        theirs.stop()


def test_http_var_is_added_last(backend, start_router):
    dump = backend(answer_ok)
    r = start_router([["127.0.0.1", dump.port]], "--http-var",
                     "DOCUMENT_ROOT=/srv")
    requests.get(f"{r.url}/", timeout=10)
    pairs, _ = dump.requests.get(timeout=10)
    assert pairs[-1] == (b"DOCUMENT_ROOT", b"/srv")


def test_modifiers_keep_their_low_byte_as_in_uwsgi(start_router):
    """uWSGI stores them in the packet's bytes: 300 is 44, 513 is 1."""
    with socket.create_server(("127.0.0.1", 0)) as node:
        node.settimeout(10)
        r = start_router([["127.0.0.1", node.getsockname()[1]]],
                         "--http-modifier1", "300", "--http-modifier2",
                         "513")
        with socket.create_connection(("127.0.0.1", r.port), 10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            conn, _ = node.accept()
            with conn:
                modifier1, _, modifier2 = struct.unpack(
                    "<BHB", read_exactly(conn, 4))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"\r\nok")
            assert read_to_eof(s).endswith(b"\r\n\r\nok")
    assert (modifier1, modifier2) == (44, 1)


def test_http_var_without_equals_is_refused_at_its_line(procs, tmp_path):
    """uWSGI would drop the var without a word; ugu stops the vassal
    and names the line."""
    ini = tmp_path / "router.ini"
    ini.write_text(f"[uwsgi]\nmaster = true\n"
                   f"http = 127.0.0.1:{support.free_port()}\n"
                   f"http-to = 127.0.0.1:{support.free_port()}\n"
                   f"http-var = DOCUMENT_ROOT\n")
    p = procs.ugu("--ini", str(ini))
    assert p.wait() == 1
    assert f"{ini}:5: option 'http-var': expected KEY=VALUE, got " \
        f"'DOCUMENT_ROOT'" in p.output()


def test_unix_socket_node(uwsgi_binary, app_dir, tmp_path, start_router):
    path = str(tmp_path / "worker.sock")
    worker = start_worker(uwsgi_binary, app_dir, path)
    try:
        r = start_router([path])
        assert requests.get(f"{r.url}/unix", timeout=10).text == \
            "hello from /unix"
    finally:
        worker.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM,
                                    signal.SIGQUIT])
def test_stop_signals_end_the_router(worker, signum):
    r = Router([["127.0.0.1", worker]], "--auto-procname")
    try:
        # Served means started: the title is set by then.
        assert requests.get(f"{r.url}/", timeout=10).ok
        title = Path(f"/proc/{r.process.pid}/cmdline").read_bytes()
        assert title.rstrip(b"\0") == b"uWSGI http 1"
        os.kill(r.process.pid, signum)
        assert r.process.wait() == 0
    finally:
        r.stop()


# Errors.

def test_502_while_the_node_is_down_then_served(
        uwsgi_binary, app_dir, start_router):
    port = support.free_port()
    r = start_router([["127.0.0.1", port]], "--http-keepalive")
    answer = requests.get(f"{r.url}/", timeout=10)
    assert answer.status_code == 502
    r.process.wait_for_log(
        rf'\[uwsgi-http\] unable to connect\(\) to node "127\.0\.0\.1:'
        rf'{port}" \(0 retries\): Connection refused')
    # Once a request: the fast path hands the failure over, the node
    # is not tried again.
    assert requests.get(f"{r.url}/", timeout=10).status_code == 502
    r.process.wait_for_log(r"=> marking", count=2)
    assert r.log().count("unable to connect()") == 2
    worker = start_worker(uwsgi_binary, app_dir, f"127.0.0.1:{port}")
    try:
        # One node: every request tries it again, no grace period.
        assert requests.get(f"{r.url}/up", timeout=10).text == \
            "hello from /up"
    finally:
        worker.stop()


def test_a_failed_node_is_skipped_for_the_next(backend, start_router):
    live = backend(answer_ok)
    dead = support.free_port()
    r = start_router([["127.0.0.1", dead], ["127.0.0.1", live.port]])
    statuses = [requests.get(f"{r.url}/", timeout=10).status_code
                for _ in range(4)]
    assert statuses == [200] * 4
    assert f'node "127.0.0.1:{dead}"' in r.log()


def test_a_unix_node_with_a_full_backlog_is_a_failed_connect(
        tmp_path, start_router):
    path = str(tmp_path / "full.sock")
    with socket.socket(socket.AF_UNIX) as node, \
            socket.socket(socket.AF_UNIX) as queued:
        node.bind(path)
        node.listen(0)
        # Never accepted: the backlog of 0 holds this one and no other.
        queued.connect(path)
        r = start_router([path], "--http-connect-timeout", "5")
        began = time.monotonic()
        assert requests.get(f"{r.url}/", timeout=10).status_code == 502
        # At once, not after spinning out the connect timeout.
        assert time.monotonic() - began < 2
    assert "Resource temporarily unavailable" in r.log()


def test_round_robin(backend, start_router):
    nodes = [backend(answer_ok), backend(answer_ok)]
    r = start_router([["127.0.0.1", b.port] for b in nodes])
    for _ in range(4):
        requests.get(f"{r.url}/", timeout=10)
    assert [b.requests.qsize() for b in nodes] == [2, 2]


def test_live_nodes_share_the_requests_while_one_is_down(backend,
                                                        start_router):
    """As in uWSGI, the turn passes to the node after the one that took
    the request: a node down does not double its neighbour's share."""
    live = [backend(answer_ok), backend(answer_ok)]
    nodes = [["127.0.0.1", support.free_port()]]
    r = start_router(nodes + [["127.0.0.1", b.port] for b in live])
    for _ in range(6):
        assert requests.get(f"{r.url}/", timeout=10).ok
    assert [b.requests.qsize() for b in live] == [3, 3]


def test_a_request_without_host_is_keyed_by_the_machines_name(
        uwsgi_binary, backend, start_router):
    dead, live = support.free_port(), backend(answer_ok)
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{dead}", "--http-to",
        f"127.0.0.1:{live.port}")
    try:
        ours = start_router([["127.0.0.1", dead], ["127.0.0.1", live.port]])
        line = (rf"\] {re.escape(socket.gethostname())} => marking "
                rf"127\.0\.0\.1:{dead} as failed\n")
        for process, port in ((ours.process, ours.port),
                              (theirs, their_port)):
            raw = exchange(port, b"GET / HTTP/1.0\r\n\r\n")
            assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
            process.wait_for_log(line)
    finally:
        theirs.stop()


def unaccepting_node():
    """A listener whose backlog is full: a connect to it neither
    succeeds nor is refused."""
    node = socket.socket()
    node.bind(("127.0.0.1", 0))
    node.listen(0)
    queued = []
    for _ in range(3):
        pending = socket.socket()
        pending.setblocking(False)
        pending.connect_ex(node.getsockname())
        queued.append(pending)
    return node, queued


def test_a_connect_timeout_is_logged_in_uwsgis_words(uwsgi_binary,
                                                     start_router):
    node, queued = unaccepting_node()
    port = node.getsockname()[1]
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{port}", "--http-connect-timeout", "1")
    try:
        ours = start_router([["127.0.0.1", port]],
                            "--http-connect-timeout", "1")
        line = (rf'\[uwsgi-http\] unable to connect\(\) to node '
                rf'"127\.0\.0\.1:{port}" \(0 retries\): timeout\n')
        for process, router_port in ((ours.process, ours.port),
                                     (theirs, their_port)):
            exchange(router_port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            process.wait_for_log(line)
    finally:
        theirs.stop()
        for sock in (node, *queued):
            sock.close()


def test_504_when_the_backend_is_too_slow(backend, start_router):
    slow = backend(answer_late)
    r = start_router([["127.0.0.1", slow.port]], "--http-timeout", "1")
    assert requests.get(f"{r.url}/", timeout=10).status_code == 504
    assert "504 backend did not answer within 1 seconds" in r.log()


def test_500_when_the_app_fails_before_responding(router):
    r = requests.get(f"{router.url}/boom", timeout=10)
    assert r.status_code == 500
    # The router serves on, on the same connection too.
    with requests.Session() as session:
        assert session.get(f"{router.url}/boom", timeout=10) \
            .status_code == 500
        assert session.get(f"{router.url}/next", timeout=10).ok


def test_500_when_the_backend_closes_without_a_byte(backend,
                                                    start_router):
    silent = backend(answer_nothing)
    r = start_router([["127.0.0.1", silent.port]])
    assert requests.get(f"{r.url}/", timeout=10).status_code == 500
    assert "500 backend closed the connection without a response" in \
        r.log()


def test_backend_vanishing_mid_body_cuts_the_response(backend,
                                                      start_router):
    half = backend(answer_half)
    r = start_router([["127.0.0.1", half.port]], "--http-keepalive")
    raw = exchange(r.port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\npartial")
    assert "response cut short" in r.log()


def test_431_when_the_head_never_ends_before_64_kib(backend, start_router):
    b = backend(answer_ok)
    r = start_router([["127.0.0.1", b.port]], "--http-keepalive")
    head = b"GET /never-finished HTTP/1.1\r\nHost: t\r\n" + \
        b"X-A: b\r\n" * 9000
    raw = exchange(r.port, head)
    assert raw.startswith(b"HTTP/1.1 431 ")
    assert raw.count(b"HTTP/1.1") == 1
    assert b.requests.empty()


def test_431_for_a_target_beyond_the_uwsgi_protocol(backend, start_router):
    b = backend(answer_ok)
    r = start_router([["127.0.0.1", b.port]], "--http-keepalive")
    target = b"/" + b"a" * 65536
    raw = exchange(r.port, b"GET %s HTTP/1.1\r\nHost: t\r\n"
                   b"Connection: close\r\n\r\n" % target)
    assert raw.startswith(b"HTTP/1.1 431 ")
    assert b.requests.empty()
    assert "Traceback" not in r.log()


def test_connect_is_refused_with_501(backend, start_router):
    b = backend(answer_ok)
    r = start_router([["127.0.0.1", b.port]], "--http-keepalive")
    raw = exchange(r.port, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n"
                   b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert b.requests.empty()


def answer_with(raw):
    """A backend answer of these exact bytes."""
    def answer(backend, conn, pairs, body):
        conn.sendall(raw)
    return answer


PIPELINED = 100


# 60 000 bytes fit the fast path's whole-answer limit, 300 000 stream
# through the greenlet code.
@pytest.mark.parametrize("size", [60_000, 300_000])
def test_a_slow_reader_gets_every_answer_whole(backend, start_router, size):
    body = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    big = backend(answer_with(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                              b"\r\n%s" % (size, body)))
    r = start_router([["127.0.0.1", big.port]], "--http-keepalive")
    with socket.socket() as s:
        # A receive window far smaller than the answer: the router's
        # sends stop short and wait for the client to read.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        s.settimeout(10)
        s.connect(("127.0.0.1", r.port))
        # Pipelined answers, more than the socket buffers hold, and the
        # client reads nothing for a while: the router's sends stop short.
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * PIPELINED)
        time.sleep(0.5)
        answers = read_responses(s, [b"GET"] * PIPELINED)
    assert [(a.status_code, b) for a, b in answers] == \
        [(200, body)] * PIPELINED


def test_an_idle_keepalive_connection_closes_after_its_timeout(
        worker, start_router):
    r = start_router([["127.0.0.1", worker]], "--http-keepalive=2")
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        [(response, _)] = read_responses(s, [b"GET"])
        assert response.status_code == 200
        began = time.monotonic()
        assert s.recv(1) == b""
        # The timeout fires up to a sweep interval late.
        assert 1.5 < time.monotonic() - began < 5


def test_without_auto_gzip_the_marker_is_any_header(backend, start_router):
    """uWSGI's router passes uWSGI-Encoding on unless http-auto-gzip
    acts on it."""
    node = backend(answer_with(
        b"HTTP/1.1 200 OK\r\nuWSGI-Encoding: gzip\r\nContent-Length: 2"
        b"\r\n\r\nok"))
    r = start_router([["127.0.0.1", node.port]])
    for _ in range(2):
        answer = requests.get(f"{r.url}/", timeout=10,
                              headers={"Accept-Encoding": "gzip"})
        assert answer.headers["uWSGI-Encoding"] == "gzip"
        assert "Content-Encoding" not in answer.headers
        assert answer.content == b"ok"


def test_one_backend_head_is_framed_for_each_client(backend, start_router):
    """The same head from the worker, relayed to clients that differ in
    keepalive and Accept-Encoding, in turn: each gets its own framing."""
    body = b"<p>same head</p>" * 20
    node = backend(answer_with(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nuWSGI-Encoding: "
        b"gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)))
    r = start_router([["127.0.0.1", node.port]], "--http-keepalive",
                     "--http-auto-gzip")
    plain_get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", r.port), 10) as s:
            s.sendall(plain_get)
            [(kept, got)] = read_responses(s, [b"GET"])
            assert got == body
            assert header(kept, "connection") is None
            assert header(kept, "uwsgi-encoding") is None
        raw = exchange(r.port, b"GET / HTTP/1.1\r\nHost: t\r\n"
                       b"Connection: close\r\n\r\n")
        assert b"\r\nConnection: close\r\n" in raw
        assert raw.endswith(b"\r\n\r\n" + body)
        zipped = requests.get(f"{r.url}/", timeout=10, stream=True,
                              headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.raw.read(decode_content=False)) == body


@pytest.mark.parametrize("raw, status, body", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 200, b"ok"),
    (b"HTTP/1.0 201 Made it\r\nX-A:b\r\n\r\nto close", 201, b"to close"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello"
     b"\r\n0\r\n\r\n", 200, b"hello"),
    (b"HTTP/1.0 200 OK\nContent-Length: 2\n\nok", 200, b"ok"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: "
     b"2\r\n\r\nok", 200, b"ok"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
    (b"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
     200, b"ok"),
    (b"garbage\r\n\r\n", 502, None),
    (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", 502, None),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     502, None),
], ids=["sized", "to-close", "chunked", "bare-lf", "1xx", "204", "fold",
        "garbage", "nul-in-value", "two-lengths"])
def test_backend_response_shapes(backend, start_router, raw, status, body):
    node = backend(answer_with(raw))
    r = start_router([["127.0.0.1", node.port]], "--http-keepalive")
    with requests.Session() as session:
        answer = session.get(f"{r.url}/", timeout=10)
        assert answer.status_code == status
        if body is not None:
            assert answer.content == body
        # The connection serves on after any of them.
        assert session.get(f"{r.url}/", timeout=10).status_code == status


EARLY_HINTS = (b"HTTP/1.1 103 Early Hints\r\n"
               b"Link: </s.css>; rel=preload\r\n\r\n")
FINAL_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_a_1xx_is_relayed_as_uwsgis_router_relays_it(uwsgi_binary, backend,
                                                     start_router):
    node = backend(answer_with(b"HTTP/1.1 100 Continue\r\n\r\n"
                               + EARLY_HINTS + FINAL_OK))
    theirs, their_port = start_uwsgi_router(uwsgi_binary,
                                            f"127.0.0.1:{node.port}")
    try:
        ours = start_router([["127.0.0.1", node.port]])
        request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        assert exchange(ours.port, request) == \
            exchange(their_port, request)
    finally:
        theirs.stop()


def test_an_early_hint_reaches_the_client_before_the_answer(backend,
                                                            start_router):
    seen = threading.Event()

    def hint_first(backend, conn, pairs, body):
        conn.sendall(EARLY_HINTS)
        # The answer waits until the client has the hint.
        seen.wait(10)
        conn.sendall(FINAL_OK)
    r = start_router([["127.0.0.1", backend(hint_first).port]])
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_exactly(s, len(EARLY_HINTS)) == EARLY_HINTS
        seen.set()
        assert read_to_eof(s) == FINAL_OK


def test_no_1xx_for_an_http_1_0_client(backend, start_router):
    """uWSGI's router sends it, though HTTP/1.0 has no 1xx."""
    node = backend(answer_with(EARLY_HINTS + FINAL_OK))
    r = start_router([["127.0.0.1", node.port]])
    raw = exchange(r.port, b"GET / HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"-1\r\nabc\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Length: 3\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +2\r\n\r\nab",
    b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
    b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
], ids=["request-line", "version", "header", "lengths", "coding", "chunk",
        "chunk-negative", "smuggling-cl-te", "smuggling-te-cl",
        "bad-length", "cr-in-value", "fold-first", "space-before-colon"])
def test_400_on_a_malformed_request_then_served(router, request_bytes):
    raw = exchange(router.port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in raw
    assert requests.get(f"{router.url}/next", timeout=10).ok


CHUNKED_HEAD = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                b"chunked\r\nConnection: close\r\n\r\n")
# Chunked bodies with a bare LF where their framing needs CRLF, each
# sent by a client that then waits (no half-close): h11 alone waited
# for ever on some and took others.
BARE_LF_CHUNKED = {
    "size-lines": CHUNKED_HEAD + b"5\nhello\n0\n\n",
    "whole-request": CHUNKED_HEAD.replace(b"\r\n", b"\n")
    + b"5\nhello\n0\n\n",
    "after-data": CHUNKED_HEAD + b"5\r\nhello\n0\r\n\r\n",
    "last-chunk": CHUNKED_HEAD + b"5\r\nhello\r\n0\n\r\n",
    "body-end": CHUNKED_HEAD + b"5\r\nhello\r\n0\r\n\n",
    "trailer": CHUNKED_HEAD + b"5\r\nhello\r\n0\r\nX-T: 1\n\r\n",
}


@pytest.mark.parametrize("request_bytes", BARE_LF_CHUNKED.values(),
                         ids=BARE_LF_CHUNKED.keys())
def test_a_bare_lf_in_chunked_framing_is_refused_at_once(router,
                                                         request_bytes):
    """DEVIATIONS 3: a 400 at once, never a wait for the http-timeout
    (60 s: the socket's 10 s would end the test first)."""
    raw = exchange(router.port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in raw
    assert requests.get(f"{router.url}/next", timeout=10).ok


# Lengths no real body has (ugu.http.plain.MAX_BODY_SIZE, 2**60): an app
# got them, and an OverflowError from wsgi.input.read(), or the router
# waited for that many bytes of a chunk.
ABSURD_LENGTHS = {
    "length-20-digits": b"POST /echo HTTP/1.1\r\nHost: t\r\n"
    b"Content-Length: 99999999999999999999\r\n\r\nabc",
    "length-over-bound": b"POST /echo HTTP/1.1\r\nHost: t\r\n"
    b"Content-Length: %d\r\n\r\nabc" % ((1 << 60) + 1),
    "length-http-1.0": b"POST /echo HTTP/1.0\r\nHost: t\r\n"
    b"Content-Length: 9223372036854775807\r\n\r\nabc",
    "length-5000-digits": b"POST /echo HTTP/1.1\r\nHost: t\r\n"
    b"Content-Length: %s\r\n\r\nabc" % (b"1" * 5000),
    "chunk-over-64-bits": CHUNKED_HEAD + b"fffffffffffffffff\r\nhello",
    "chunk-over-bound": CHUNKED_HEAD + b"1000000000000001\r\nhello",
}


@pytest.mark.parametrize("request_bytes", ABSURD_LENGTHS.values(),
                         ids=ABSURD_LENGTHS.keys())
def test_a_length_no_body_has_is_refused_at_once(router, request_bytes):
    raw = exchange(router.port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert requests.get(f"{router.url}/next", timeout=10).ok


@pytest.mark.parametrize("size", [b"Content-Length: %d" % (1 << 60),
                                  b"Transfer-Encoding: chunked\r\n\r\n"
                                  b"1000000000000000"])
def test_the_longest_body_length_is_taken(router, size):
    """At the bound the request is served: the app that ignores the
    body answers, the chunk is awaited."""
    with socket.create_connection(("127.0.0.1", router.port),
                                  timeout=10) as s:
        s.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: t\r\n%s\r\n"
                  b"\r\nabc" % size)
        s.settimeout(1)
        try:
            answer = s.recv(65536)
        except TimeoutError:
            answer = b"(waited)"
    expected = b"HTTP/1.1 200 OK" if b"Length" in size else b"(waited)"
    assert answer.startswith(expected)


CHUNKED_BODY = (b"5;name=value\r\nhello\r\n00A \r\n" + b"x" * 10
                + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")


@pytest.mark.parametrize("piece", [len(CHUNKED_BODY), 1, 3])
def test_chunked_framing_follows_a_body_in_any_pieces(piece):
    """What follows the body (a pipelined request of bare LFs) is not
    looked at."""
    framing = ChunkedFraming(100)
    data = CHUNKED_BODY + b"GET / HTTP/1.1\nHost: t\n\n"
    for at in range(0, len(data), piece):
        framing.check(data[at:at + piece])


@pytest.mark.parametrize("body, reason", [
    (b"5\nhello\r\n", "bare LF"),
    (b"5\r\nhelloX\r\n", "not followed by CRLF"),
    (b"5\r\nhello\r\n0\r\n\n", "bare LF"),
    (b"5 ;x\r\n", "illegal chunk size line"),
    (b"-5\r\n", "illegal chunk size line"),
    (b"5" * 101, "over 100 bytes"),
], ids=["size-line", "after-data", "end", "space", "negative", "long-line"])
def test_chunked_framing_refuses_at_the_first_broken_byte(body, reason):
    for piece in (len(body), 1):
        framing = ChunkedFraming(100)
        with pytest.raises(BadRequest, match=reason):
            for at in range(0, len(body), piece):
                framing.check(body[at:at + piece])


def test_400_log_line_quotes_the_bad_line_as_text(router):
    exchange(router.port,
             b"GET / HTTP/1.1\r\nHost: t\r\nNo Colon\x01\r\n\r\n")
    router.process.wait_for_log(
        r"\] 400 illegal header line: 'No Colon\\x01'\n")
    assert "bytearray(" not in router.log()


def test_400_log_line_cuts_a_long_bad_line(router):
    """uWSGI's router logs nothing for a malformed request; ugu's one line
    quotes the first 100 characters of the bad line and its length, so a
    client's 60 KiB line does not reach the log whole."""
    exchange(router.port, b"GET /" + b"x" * 60000 + b" HTTP/1.1 e\r\n\r\n")
    router.process.wait_for_log(
        r"\] 400 illegal request line: 'GET /x{95}'\.\.\. "
        r"\(60016 bytes\)\n")
    assert "x" * 101 not in router.log()


def test_vars_over_the_workers_buffer_size_are_named_in_the_log(router):
    """The worker drops a request whose vars exceed its buffer-size (4096
    bytes unless set) without a word to the router: the router's 502
    line says what most likely happened, and which option to raise."""
    r = requests.get(f"{router.url}/env", headers={"X-Big": "x" * 8000},
                     timeout=10)
    assert r.status_code == 502
    router.process.wait_for_log(
        r"\] 502 backend connection failed: .*\(this request's uwsgi vars "
        r"are \d+ bytes: a worker drops vars over its buffer-size, 4096 by "
        r"default; raise buffer-size in the worker's config\)")
    assert requests.get(f"{router.url}/next", timeout=10).ok


def test_bare_lf_is_served_at_once(router):
    started = time.monotonic()
    raw = exchange(router.port, b"GET /lf HTTP/1.1\nHost: t\n"
                   b"Connection: close\n\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"hello from /lf" in raw
    assert time.monotonic() - started < 5


def test_obs_fold_never_reaches_the_app_raw(router):
    raw = exchange(router.port, b"GET /env HTTP/1.1\r\nHost: t\r\n"
                   b"X-Fold: a\r\n  b\r\nConnection: close\r\n\r\n")
    env = json.loads(raw.partition(b"\r\n\r\n")[2].split(b"\r\n")[1])
    assert env["HTTP_X_FOLD"] == "a b"


def slow_client(port, stop, result, gap=0.2):
    """A slowloris: one byte of a request head every `gap` seconds until
    the server closes the connection (or `stop` is set)."""
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 100
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for byte in head:
            try:
                s.sendall(bytes([byte]))
            except OSError:
                break
            if stop.wait(gap):
                break
        result.append(time.monotonic() - started)


def test_a_client_silent_past_the_timeout_is_cut_without_starving_others(
        worker, start_router):
    """As in uWSGI, the headers timeout starts again at each read: a
    client silent for longer between two bytes of its head is cut, and,
    as by uWSGI's router, unsaid."""
    r = start_router([["127.0.0.1", worker]], "--http-headers-timeout",
                     "1", "--http-keepalive")
    stop, result = threading.Event(), []
    slow = [threading.Thread(target=slow_client,
                             args=(r.port, stop, result, 3))
            for _ in range(3)]
    for thread in slow:
        thread.start()
    try:
        for n in range(5):
            assert requests.get(f"{r.url}/during/{n}", timeout=10).ok
    finally:
        # Each one's second byte, 3 seconds on, meets the closed
        # connection; the third would fail.
        for thread in slow:
            thread.join()
    assert max(result) < 8
    assert "[uwsgi-http" not in r.log()


# What a client sends before it leaves: half a head, or a whole head and
# part of its body.
HALF_REQUESTS = {
    "head": b"GET / HTTP/1.1\r\nHost: t\r\nX-Half",
    "body": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
            b"\r\nhalf",
    "chunked": b"POST /echo HTTP/1.1\r\nHost: t\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n64\r\nhalf"}


def leave_mid_request(port, part, how):
    """Half a request, then the client closes, resets the connection or
    stays silent; returns once the router is done with it (a reset: at
    once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(HALF_REQUESTS[part])
        if how == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            return
        if how == "close":
            s.shutdown(socket.SHUT_WR)
        # The router closes once it has given up on the request.
        assert read_to_eof(s) == b""


# uWSGI's router's line for a reset: the client's port left out.
RESET_LINE = (r"\[uwsgi-http key: (t)? client_addr: 127\.0\.0\.1 "
              r"client_port: \d+\] hr_read\(\): Connection reset by peer "
              r"\[plugins/http/http\.c line 918\]")


@pytest.mark.parametrize("part, how", [
    ("head", "close"), ("head", "reset"), ("head", "silence"),
    ("body", "close"), ("body", "reset")])
def test_a_client_leaving_mid_request_is_said_as_by_uwsgis_router(
        uwsgi_binary, worker, start_router, part, how):
    """uWSGI's router says only a reset, in its read's words (keyed by
    the Host once the head is read), and leaves a close, or a silence
    past the headers timeout, unsaid.  ugu's said each, a close
    halfway through a head as a 400 it could not send.  (Not a chunked
    body, which uWSGI's app gets empty, and may answer before the
    close: test_client_vanishing_mid_body.)"""
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{worker}", "--http-headers-timeout", "1")
    try:
        ours = start_router([["127.0.0.1", worker]],
                            "--http-headers-timeout", "1")
        lines = {}
        for name, process, port in (("ugu", ours.process, ours.port),
                                    ("uwsgi", theirs, their_port)):
            leave_mid_request(port, part, how)
            if how == "reset":
                process.wait_for_log(RESET_LINE)
            lines[name] = [re.sub(r"client_port: \d+", "client_port: N",
                                  line)
                           for line in process.output().splitlines()
                           if line.startswith("[uwsgi-http")]
    finally:
        theirs.stop()
    assert lines["ugu"] == lines["uwsgi"]
    assert len(lines["ugu"]) == (how == "reset")


def test_a_client_stalling_mid_chunked_body_is_cut_unsaid(worker,
                                                          start_router):
    """Past http-timeout, as uWSGI's router cuts a silent client: unsaid
    (ugu's said the client went away)."""
    r = start_router([["127.0.0.1", worker]], "--http-timeout", "1")
    leave_mid_request(r.port, "chunked", "silence")
    assert "[uwsgi-http" not in r.log()


def test_a_client_reset_during_its_answer_is_said_in_uwsgis_words(
        worker, start_router):
    """A reset met while the answer is written is said as uWSGI's router
    says a failed write (or a read, if the reset is read first)."""
    r = start_router([["127.0.0.1", worker]])
    with socket.create_connection(("127.0.0.1", r.port), timeout=10) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        # The answer has begun, and its 4 MB do not fit in the buffers.
        assert s.recv(1, socket.MSG_PEEK)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    r.process.wait_for_log(r"\[uwsgi-http key: t client_addr: 127\.0\.0\.1 "
                           r"client_port: \d+\] hr_(read|write)\(\): "
                           r"(Connection reset by peer|Broken pipe) "
                           r"\[plugins/http/http\.c line (918|565)\]")
    assert "went away" not in r.log()


def test_http_chunked_input_gives_the_app_the_chunks_as_sent(
        uwsgi_binary, worker, start_router):
    """With http-chunked-input, as through uWSGI's router, a chunked body
    goes to the node raw, where uwsgi.chunked_read takes it chunk by
    chunk, and the connection closes after (ugu's router used to
    de-chunk it all the same, and the app found no chunk)."""
    request = (b"POST /chunked-read HTTP/1.1\r\nHost: t\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{worker}", "--http-chunked-input")
    try:
        ours = start_router([["127.0.0.1", worker]], "--http-chunked-input")
        for port in (ours.port, their_port):
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as s:
                s.sendall(request)
                status, _, body = support.split_response(read_to_eof(s))
            assert (status, json.loads(body)) == (
                "HTTP/1.1 200 OK", ["hello", " world"]), port
    finally:
        theirs.stop()


def trickled(port, pieces, gap):
    """The answer to a request head sent in `pieces` parts, `gap` seconds
    apart, and the seconds it took."""
    head = (b"GET /trickled HTTP/1.0\r\nHost: t\r\nX-Pad: " + b"p" * 20
            + b"\r\n\r\n")
    size = -(-len(head) // pieces)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for at in range(0, len(head), size):
            if at:
                time.sleep(gap)
            s.sendall(head[at:at + size])
        return read_to_eof(s), time.monotonic() - started


def test_a_head_trickled_within_the_timeout_of_each_read_is_served(
        uwsgi_binary, worker, start_router):
    """uWSGI's router starts its timeout again at each read: a client
    whose head takes longer than http-timeout, but never that long
    between two of its parts, is served, by both routers."""
    options = ("--http-timeout", "2")
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{worker}", *options)
    try:
        ours = start_router([["127.0.0.1", worker]], *options)
        results = {}
        clients = [threading.Thread(
            target=lambda name, port: results.update(
                {name: trickled(port, 6, 0.5)}), args=(name, port))
            for name, port in (("ugu", ours.port), ("uwsgi", their_port))]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    finally:
        theirs.stop()
    for name in ("ugu", "uwsgi"):
        answer, took = results[name]
        assert took > 2
        # ugu's status line says HTTP/1.1 (README).
        assert answer.split(b"\r\n")[0].endswith(b" 200 OK"), name
        assert b"hello from /trickled" in answer, name


# ugu's router under a file limit of its own (the rest of the command).
LOW_FD_LIMIT = ("import os, resource, sys; "
                "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)); "
                "os.execv(sys.executable, [sys.executable, '-m', 'ugu', "
                "*sys.argv[1:]])")


def test_out_of_file_descriptors_the_router_pauses_accepting(procs):
    """Clients that hold every descriptor the router may open: each
    accept() then fails, and the router waits a moment before the next
    try instead of retrying (and logging) in a tight loop; once they
    go, it serves again."""
    port = support.free_port()
    p = procs.start([sys.executable, "-c", LOW_FD_LIMIT, "--master",
                     "--processes", "0", "--http", f"127.0.0.1:{port}",
                     "--http-to", f"127.0.0.1:{support.free_port()}"],
                    cwd=support.REPO)
    support.wait_for_port(port)
    held = []
    began = time.monotonic()
    try:
        for _ in range(80):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
            held.append(s)
        line = r"\[uwsgi-http\] accept\(\): Too many open files"
        p.wait_for_log(line, count=4)
        # A try each 0.1 s pause at most; a tight loop logs thousands.
        tries = len(re.findall(line, p.output()))
        assert tries <= (time.monotonic() - began) / 0.1 + 1
    finally:
        for s in held:
            s.close()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close"
                  b"\r\n\r\n")
        assert read_to_eof(s).startswith(b"HTTP/1.1 502 Bad Gateway\r\n")


@pytest.mark.parametrize("part", ["body", "chunked"])
def test_client_vanishing_mid_body(router, part):
    """Unsaid, as by uWSGI's router, and the next client is served; a
    chunked body too, which ugu's router reads whole before the app
    runs (it said a 400 it could not send)."""
    before = router.log().count("[uwsgi-http")
    leave_mid_request(router.port, part, "close")
    assert requests.get(f"{router.url}/next", timeout=10).ok
    assert router.log().count("[uwsgi-http") == before


def test_an_app_that_ignores_the_body_answers_before_it_comes(
        uwsgi_binary, worker, router):
    """The backend hears the request once its head is read, as through
    uWSGI's router: an app that answers without reading the body
    answers a client that has sent none of it yet (one that waits for
    an answer before it sends, or sends late)."""
    uwsgi, uwsgi_port = start_uwsgi_router(uwsgi_binary,
                                           f"127.0.0.1:{worker}")
    try:
        for port in (router.port, uwsgi_port):
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=5) as s:
                s.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: t\r\n"
                          b"Content-Length: 1000\r\n\r\n")
                assert s.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        uwsgi.stop()


@pytest.mark.parametrize("size", ["7", "0"])
def test_http_buffer_size_is_the_read_size(worker, start_router, size):
    r = start_router([["127.0.0.1", worker]], "--http-buffer-size", size,
                     "--http-keepalive")
    body = os.urandom(50000)
    with requests.Session() as session:
        answer = session.post(f"{r.url}/echo", data=body, timeout=30)
        assert answer.text == \
            f"{len(body)} {hashlib.sha256(body).hexdigest()}"
        assert session.get(f"{r.url}/gz", timeout=10).content == \
            b"<p>compress me</p>" * 40


def test_431_on_huge_headers(router):
    raw = exchange(router.port, b"GET / HTTP/1.1\r\nHost: t\r\n"
                   + b"X-Big: %s\r\n" % (b"a" * 100000) + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 431 ")
    assert requests.get(f"{router.url}/next", timeout=10).ok


# The same requests through uWSGI's router.

VARS_REQUESTS = [
    b"GET /plain HTTP/1.1\r\nHost: example\r\n\r\n",
    b"GET /a%20b/./c/../d?x=%20y&z=1?w HTTP/1.1\r\nHost: h\r\n"
    b"X-Dup: 1\r\nX-Other: o\r\nx-dup: 2\r\nUser-Agent: t\r\n\r\n",
    b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    b"GET /%7Euser/a%2Fb/%2e%2e/x/.. HTTP/1.0\r\nHost: h\r\n\r\n",
    b"GET /../../etc//x?only HTTP/1.1\r\nHost: h\r\nX_Under: u\r\n"
    b"Empty:\r\n\r\n",
    b"GET http://x.y/a/../b?q HTTP/1.1\r\nHost: x.y\r\n\r\n",
    b"DELETE /a/b/.. HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
]


def _vars_seen(port, dump, request):
    exchange(port, request)
    pairs, body = dump.requests.get(timeout=10)
    # The client's port differs per connection, the listener's per router.
    return [(k, v) for k, v in pairs
            if k not in (b"REMOTE_PORT", b"SERVER_PORT")], body


def test_vars_are_the_ones_uwsgis_router_sends(uwsgi_binary, backend,
                                               start_router):
    dump = backend(answer_ok)
    node = f"127.0.0.1:{dump.port}"
    theirs, their_port = start_uwsgi_router(uwsgi_binary, node)
    try:
        ours = start_router([["127.0.0.1", dump.port]])
        for request in VARS_REQUESTS:
            assert _vars_seen(ours.port, dump, request) == \
                _vars_seen(their_port, dump, request), request
    finally:
        theirs.stop()


DIFF_REQUESTS = [
    ("GET", "/", {}, None),
    ("GET", "/page?x=1&y=%20", {}, None),
    ("GET", "/env-free/a/../b", {}, None),
    ("POST", "/echo", {}, b"posted body" * 1000),
    ("GET", "/gz", {"Accept-Encoding": "identity"}, None),
    ("PUT", "/echo", {"Content-Type": "application/octet-stream"}, b"x"),
]


def test_same_answers_as_uwsgis_router(uwsgi_binary, worker, router):
    theirs, their_port = start_uwsgi_router(
        uwsgi_binary, f"127.0.0.1:{worker}", "--http-keepalive=1")
    try:
        for method, path, headers, body in DIFF_REQUESTS:
            answers = [requests.request(
                method, f"http://127.0.0.1:{port}{path}", data=body,
                headers=headers, timeout=10)
                for port in (router.port, their_port)]
            ours, expected = answers
            assert (ours.status_code, ours.content) == \
                (expected.status_code, expected.content), path
    finally:
        theirs.stop()


# The pure parts.

@pytest.mark.parametrize("value, accepted", [
    (b"gzip", True), (b"GZip", True), (b"deflate, gzip;q=0.5", True),
    (b"x-gzip", True), (b"*", True), (b"br;q=1, *;q=0.1", True),
    (b"gzip;q=0", False), (b"gzip; q=0.000", False), (b"", False),
    (b"identity", False), (b"*, gzip;q=0", False), (b"br", False),
])
def test_accept_encoding(value, accepted):
    assert accepts_gzip(value) is accepted


@pytest.mark.parametrize("path, removed", [
    # RFC 3986 section 5.2.4's own examples.
    (b"/a/b/c/./../../g", b"/a/g"), (b"mid/content=5/../6", b"mid/6"),
    (b"/a/b/..", b"/a/"), (b"/.", b"/"), (b"/a//../b", b"/a/b"),
    (b"/a/..b/.c", b"/a/..b/.c"), (b"../x", b"x"),
])
def test_dot_segments(path, removed):
    assert remove_dot_segments(path) == removed


def test_path_info_decodes_after_removing_dots():
    assert path_info(b"/a/%2e%2e/b/../c%20d") == b"/a/../c d"
    # uWSGI would make these NUL bytes and drop the lone %.
    assert path_info(b"/a%zzb%4") == b"/a%zzb%4"


# The plain fast path against h11, byte for byte.

PLAIN_REQUESTS = [
    b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n"
    b"Connection: close\r\n\r\n",
    b"HEAD /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    b"GET /gz HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
    b"HEAD /gzcl HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
    b"Connection: close\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n"
    b"X-Dup: 1\r\nx-dup: 2\r\n\r\n"
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nab",
]


@pytest.mark.parametrize("request_bytes", PLAIN_REQUESTS,
                         ids=["pipelined", "head", "gzip", "post-then-500",
                              "cut-short"])
def test_the_plain_path_answers_as_h11_does(worker, request_bytes):
    routers = [Router([["127.0.0.1", worker]], "--http-keepalive",
                      "--http-auto-gzip", parser=parser)
               for parser in ("plain", "h11-request")]
    try:
        plain, through_h11 = (
            exchange_half_closed(r.port, request_bytes) for r in routers)
    finally:
        for r in routers:
            r.stop()
    assert plain == through_h11
    assert plain.startswith(b"HTTP/1.1 ")


def exchange_half_closed(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


@pytest.mark.parametrize("head, plain", [
    (b"GET / HTTP/1.1\r\nHost: t", True),
    (b"GET / HTTP/1.1\r\nhost: t\r\nContent-Length: 3", True),
    (b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Close", True),
    (b"GET / HTTP/1.0\r\nHost: t", False),
    (b"GET / HTTP/1.1", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nHost: u", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
     b"Content-Length: 1", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: +1", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b", False),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: a\nY: b", False),
    (b"GET /\x80 HTTP/1.1\r\nHost: t", True),
    (b"GET /\x7f HTTP/1.1\r\nHost: t", False),
    (b"\r\nGET / HTTP/1.1\r\nHost: t", False),
])
def test_which_requests_are_plain(head, plain):
    from ugu.http.plain import parse_request
    assert (parse_request(head) is not None) is plain


@pytest.mark.parametrize("buffer, found", [
    (b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", 23),
    (b"GET / HTTP/1.1\r\nHost: t\r\n", -1),
    (b"GET / HTTP/1.1\nHost: t\n", None),
])
def test_complete_head_at(buffer, found):
    from ugu.http.plain import complete_head_at
    assert complete_head_at(buffer) == found


@pytest.mark.parametrize("argv, expected", [
    ([], (60, 60, 60)),
    (["--http-timeout", "0"], (60, 60, 60)),
    (["--http-timeout", "5"], (5, 5, 5)),
    (["--http-timeout", "5", "--http-connect-timeout", "0",
      "--http-headers-timeout", "0"], (5, 5, 5)),
    (["--http-connect-timeout", "2", "--http-headers-timeout", "3"],
     (60, 2, 3)),
])
def test_a_timeout_of_0_is_the_default_as_in_uwsgi(argv, expected):
    from ugu.options.resolve import resolve
    from ugu.router.settings import Settings
    settings = Settings.from_config(resolve(argv, {}))
    assert (settings.timeout, settings.connect_timeout,
            settings.headers_timeout) == expected


def test_an_answer_before_the_upload_ends_is_relayed_at_once(router):
    """On each parser's path: the worker's early answer reaches the
    client while the client still owes most of its body, and the
    connection then closes, the body unread."""
    with socket.create_connection(("127.0.0.1", router.port),
                                  timeout=10) as s:
        s.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Length: 100000\r\n\r\nabc")
        s.settimeout(5)
        answer = b""
        while not answer.endswith(b"ignored"):
            more = s.recv(65536)
            assert more, f"closed without the whole answer: {answer!r}"
            answer += more
        assert answer.startswith(b"HTTP/1.1 200 OK")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(65536) == b""


@pytest.mark.parametrize("first, warned", [("http-socket", True),
                                           ("socket", False)])
def test_a_router_before_an_http_socket_is_warned_about(procs, first,
                                                        warned):
    """The router forwards uwsgi packets to the first socket: where that
    is an http-socket, no request through it can be answered (uWSGI's
    gets nothing, ugu's a 400), which the start says once."""
    router_port, socket_port = support.free_port(), support.free_port()
    p = procs.ugu("--http", f"127.0.0.1:{router_port}",
                  f"--{first}", f"127.0.0.1:{socket_port}",
                  "--wsgi-file", str(support.ECHO_APP), "--master")
    support.wait_for_port(router_port)
    support.wait_for_port(socket_port)
    status = requests.get(f"http://127.0.0.1:{router_port}/",
                          timeout=10).status_code
    assert status == (400 if warned else 200)
    said = "WARNING: the http router forwards to the first socket, an " \
           "http-socket"
    assert (said in p.output()) is warned


def test_an_http_to_host_no_resolver_takes_is_a_502(procs):
    """A host of a label over 63 bytes, which Python's idna codec refuses
    with a UnicodeError, fails as a name nobody knows: each request gets
    502 (uWSGI's resolver says the same); the router died at its start."""
    port = support.free_port()
    node = "a" * 64 + ":80"
    p = procs.ugu("--http", f"127.0.0.1:{port}", "--http-to", node,
                  "--master")
    support.wait_for_port(port)
    for _ in range(2):
        assert requests.get(f"http://127.0.0.1:{port}/",
                            timeout=10).status_code == 502
    p.wait_for_log(rf'unable to connect\(\) to node "{node}" \(0 retries\): '
                   rf'Name or service not known')
    assert "Traceback" not in p.output()
