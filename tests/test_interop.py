"""ugu's pieces mixed with real uWSGI's and nginx's.

Every front (ugu's router, uWSGI's router, nginx with `uwsgi_pass`) sits
before both a real uWSGI worker and an ugu worker serving the same app;
the same requests must get the same answers whichever pieces serve them:
status, body and the headers that matter (framing aside: ugu's router
chunks a response of unknown length where uWSGI's ends it with a close).
"""

import errno
import json
import os
import re
import shutil
import socket
import struct
import textwrap

import pytest
import requests

from tests import support
from tests.support import read_to_eof
from tests.test_router import read_responses, start_uwsgi_router

APP = textwrap.dedent('''
    import hashlib, json

    CGI = {"REQUEST_METHOD", "REQUEST_URI", "PATH_INFO", "QUERY_STRING",
           "SERVER_PROTOCOL", "SCRIPT_NAME", "CONTENT_TYPE",
           "CONTENT_LENGTH", "REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME",
           "wsgi.url_scheme"}

    def broken():
        yield b"part 1\\n"
        raise RuntimeError("the app fails halfway")

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        # /early answers an upload without reading it.
        body = environ["wsgi.input"].read() if path != "/early" else b""
        if path.startswith("/env"):
            env = {k: v for k, v in environ.items()
                   if k in CGI or k.startswith("HTTP_")}
            env["body"] = [len(body), hashlib.sha256(body).hexdigest()]
            page = json.dumps(env, sort_keys=True).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(page)))])
            return [page]
        if path == "/status":
            start_response("404 Not Here", [("Content-Type", "text/plain"),
                                            ("X-Custom", "a"),
                                            ("X-Custom", "b")])
            return [b"missing"]
        if path == "/stream":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (b"part %d\\n" % n for n in range(50))
        if path == "/broken":
            # A body of unknown length the app cannot finish.
            start_response("200 OK", [("Content-Type", "text/plain")])
            return broken()
        if path == "/redirect":
            start_response("302 Found", [("Location", "/elsewhere")])
            return [b""]
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-App", "interop")])
        return [b"hello from " + path.encode("latin-1")]
''')
# Headers that frame the message or name the server, not the response.
FRAMING = {"transfer-encoding", "connection", "date", "server",
           "keep-alive"}
BIG = "b" * 3000
REQUESTS = [
    ("GET", "/", {}, None),
    ("GET", "/env?x=1&y=%20z&x=2", {"X-Test": "t", "Accept": "*/*"}, None),
    ("GET", "/env/a%20b/c", {}, None),
    ("GET", "/env", {"X-Large": BIG, "Cookie": "c=" + "x" * 500}, None),
    ("POST", "/env", {"Content-Type": "application/x-www-form-urlencoded"},
     b"a=1&b=" + b"z" * 100000),
    ("PUT", "/env", {"Content-Type": "application/octet-stream"},
     bytes(range(256)) * 10),
    ("HEAD", "/", {}, None),
    ("GET", "/status", {}, None),
    ("GET", "/stream", {}, None),
    ("GET", "/redirect", {}, None),
    ("GET", "/page.txt", {}, None),
    ("HEAD", "/page.txt", {}, None),
]
# Vars that name the front's own socket or the client's port.
PER_FRONT = {"SERVER_PORT", "REMOTE_PORT"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("interop")
    (folder / "app.py").write_text(APP)
    (folder / "static").mkdir()
    (folder / "static" / "page.txt").write_bytes(b"static line\n" * 300)
    return folder


def started(argv, ready, **kw):
    process = support.Process(argv, **kw)
    try:
        ready(process)
    except BaseException:
        process.stop()
        raise
    return process


def worker_argv(site, port):
    return ["--master", "--socket", f"127.0.0.1:{port}", "--processes",
            "1", "--wsgi-file", str(site / "app.py"), "--check-static",
            str(site / "static")]


@pytest.fixture(scope="module")
def workers(uwsgi_binary, site):
    """{"uwsgi": process, "ugu": process}: the same app behind each;
    process.port is its uwsgi socket."""
    found, processes = {}, []
    try:
        for name, command in (("uwsgi", [uwsgi_binary]),
                              ("ugu", support.UGU)):
            port = support.free_port()
            processes.append(started(
                [*command, *worker_argv(site, port)],
                lambda p: p.wait_for_log(r"spawned uWSGI worker 1"),
                cwd=site))
            support.wait_for_port(port)
            processes[-1].port = port
            found[name] = processes[-1]
        yield found
    finally:
        for process in processes:
            process.stop()


def ugu_router(node, *options):
    """ugu as a router-only instance; (process, port)."""
    port = support.free_port()

    def ready(process):
        process.wait_for_log(r"spawned uWSGI http 1")
        support.wait_for_port(port)
    return started([*support.UGU, "--master", "--processes", "0", "--http",
                    f"127.0.0.1:{port}", "--http-to", node, *options],
                   ready), port


@pytest.fixture(scope="module")
def routers(uwsgi_binary, workers):
    """{(front, back): port} for both routers before both workers."""
    ports, processes = {}, []
    try:
        for back, worker in workers.items():
            node = f"127.0.0.1:{worker.port}"
            process, ports["ugu", back] = ugu_router(node)
            processes.append(process)
            process, ports["uwsgi", back] = start_uwsgi_router(
                uwsgi_binary, node)
            processes.append(process)
        yield ports
    finally:
        for process in processes:
            process.stop()


def answer(port, method, path, headers, body):
    """What matters of one response, on a fresh connection."""
    # One Host for every front: the default names the front's port.
    r = requests.request(method, f"http://127.0.0.1:{port}{path}",
                         headers={"Host": "interop", **headers},
                         data=body, timeout=10,
                         allow_redirects=False)
    kept = sorted((k.lower(), v) for k, v in r.headers.items()
                  if k.lower() not in FRAMING)
    content = r.content
    if r.headers.get("Content-Type") == "application/json":
        env = json.loads(content)
        content = {k: v for k, v in env.items() if k not in PER_FRONT}
        # Its length counts the per-front vars too.
        kept = [(k, v) for k, v in kept if k != "content-length"]
    return r.status_code, kept, content


def differences(ours, theirs):
    """What differs between two answers, for a readable failure."""
    parts = zip(("status", "headers", "body"), ours, theirs)
    found = {name: (a, b) for name, a, b in parts if a != b}
    if isinstance(found.get("body", (None,))[0], dict):
        a, b = found["body"]
        found["body"] = {k: (a.get(k), b.get(k)) for k in a.keys() | b
                         if a.get(k) != b.get(k)}
    return found


def answers(port):
    return [answer(port, *request) for request in REQUESTS]


def test_every_router_and_worker_pair_answers_alike(routers):
    expected = answers(routers["uwsgi", "uwsgi"])
    assert expected[0][0] == 200
    for pair in (("uwsgi", "ugu"), ("ugu", "uwsgi"), ("ugu", "ugu")):
        got = answers(routers[pair])
        for request, ours, theirs in zip(REQUESTS, got, expected):
            assert ours == theirs, (pair, request[:2],
                                    differences(ours, theirs))


def outcome(port, request):
    """The status a raw request gets, or "closed" when the connection
    ends without a byte (uWSGI's router's answer to every failure)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        try:
            raw = read_to_eof(s)
        except ConnectionResetError:
            raw = b""
    return int(raw.split(b" ", 2)[1]) if raw else "closed"


@pytest.mark.parametrize("pair", [("uwsgi", "uwsgi"), ("uwsgi", "ugu"),
                                  ("ugu", "uwsgi"), ("ugu", "ugu")])
def test_an_answer_before_the_upload_ends_reaches_the_client(routers, pair):
    """An app that answers without reading the body is heard while the
    client is still sending it, through either router, from either
    worker."""
    with socket.create_connection(("127.0.0.1", routers[pair]),
                                  timeout=10) as s:
        s.sendall(b"POST /early HTTP/1.1\r\nHost: interop\r\n"
                  b"Content-Length: 100000\r\n\r\nabc")
        s.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            more = s.recv(65536)
            assert more, f"closed without an answer: {head!r}"
            head += more
    assert head.startswith(b"HTTP/1.1 200 OK")


def test_vars_over_the_workers_buffer_size(routers, workers):
    """Both workers drop a request whose vars exceed their buffer-size
    (4096); uWSGI's router then closes silently, ugu's answers 502
    (DEVIATIONS 1).  Either way the next request is served."""
    huge = (b"GET / HTTP/1.1\r\nHost: h\r\nX-Huge: " + b"h" * 6000
            + b"\r\nConnection: close\r\n\r\n")
    got = {pair: outcome(port, huge) for pair, port in routers.items()}
    assert got == {("uwsgi", "uwsgi"): "closed", ("uwsgi", "ugu"): "closed",
                   ("ugu", "uwsgi"): 502, ("ugu", "ugu"): 502}
    workers["ugu"].wait_for_log(r"invalid request block size: \d+ "
                                r"\(max 4096\)\.\.\.skip")
    for port in routers.values():
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).ok


def test_requests_session_keeps_alive_through_ugu(workers):
    process, port = ugu_router(f"127.0.0.1:{workers['ugu'].port}",
                               "--http-keepalive")
    try:
        with requests.Session() as session:
            envs = [session.get(f"http://127.0.0.1:{port}/env/{n}",
                                timeout=10).json() for n in range(5)]
        assert [env["PATH_INFO"] for env in envs] == [
            f"/env/{n}" for n in range(5)]
        # One client connection (one port, as the router saw it) for all.
        assert len({env["REMOTE_PORT"] for env in envs}) == 1
    finally:
        process.stop()


def test_raw_pipelining_through_ugu_to_both_workers(workers):
    for worker in workers.values():
        process, port = ugu_router(f"127.0.0.1:{worker.port}",
                                   "--http-keepalive")
        try:
            paths = [f"/p{n}" for n in range(5)]
            data = b"".join(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n"
                            % p.encode() for p in paths)
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as s:
                s.sendall(data)
                got = read_responses(s, ["GET"] * len(paths))
            assert [body.decode() for _, body in got] == [
                f"hello from {p}" for p in paths]
        finally:
            process.stop()


# nginx before both workers.

UWSGI_PARAMS = [
    ("QUERY_STRING", "$query_string"), ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"), ("CONTENT_LENGTH", "$content_length"),
    ("REQUEST_URI", "$request_uri"), ("PATH_INFO", "$document_uri"),
    ("DOCUMENT_ROOT", "$document_root"),
    ("SERVER_PROTOCOL", "$server_protocol"),
    ("REQUEST_SCHEME", "$scheme"), ("HTTPS", "$https if_not_empty"),
    ("REMOTE_ADDR", "$remote_addr"), ("REMOTE_PORT", "$remote_port"),
    ("SERVER_PORT", "$server_port"), ("SERVER_NAME", "$server_name"),
]
NGINX_CONF = """
master_process off;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{servers}
}}
"""
NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include uwsgi_params;
            uwsgi_pass 127.0.0.1:{worker};
        }}
    }}"""


def nginx_binary():
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
         if os.access(path, os.X_OK)), None)


@pytest.fixture(scope="module")
def nginx(workers, tmp_path_factory):
    """{back: port}: one nginx, a server per worker."""
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (.ci/run installs it)")
    tmp = tmp_path_factory.mktemp("nginx")
    (tmp / "uwsgi_params").write_text("".join(
        f"uwsgi_param {name} {value};\n" for name, value in UWSGI_PARAMS))
    ports = {back: support.free_port() for back in workers}
    servers = "".join(NGINX_SERVER.format(port=ports[back],
                                          worker=worker.port)
                      for back, worker in workers.items())
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp,
                                                      servers=servers))

    def ready(process):
        for port in ports.values():
            support.wait_for_port(port)
    process = started([binary, "-p", str(tmp), "-e", str(tmp / "error.log"),
                       "-c", "nginx.conf", "-g",
                       f"daemon off; pid {tmp}/nginx.pid;"], ready)
    yield ports
    process.stop(timeout=5)


def test_nginx_before_ugu_answers_as_before_uwsgi(nginx):
    expected = answers(nginx["uwsgi"])
    got = answers(nginx["ugu"])
    assert expected[0][0] == 200
    for request, ours, theirs in zip(REQUESTS, got, expected):
        assert ours == theirs, (request[:2], differences(ours, theirs))


def _broken_answer(port):
    """(head, body) of the answer to GET /broken, whose app fails halfway
    through a body of unknown length, read until the front closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /broken HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = read_to_eof(s)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"transfer-encoding: chunked" in head.lower()
    return head, body


def test_a_body_the_ugu_worker_breaks_off_is_cut_short_at_ugu_s_router(
        routers):
    """The worker resets the connection of a body of unknown length it
    cannot finish: the router, which chunks that body for its client,
    relays what came and leaves out the last chunk (uWSGI's worker
    closes as if the body were whole, and the router can only end it
    whole)."""
    head, body = _broken_answer(routers["ugu", "ugu"])
    assert body == b"7\r\npart 1\n\r\n"


def test_a_body_the_ugu_worker_breaks_off_is_cut_short_at_nginx(nginx):
    """nginx too ends its client's chunked body without the last chunk
    (and drops what it had yet to relay, as at any failure upstream)."""
    head, body = _broken_answer(nginx["ugu"])
    assert not body.endswith(b"0\r\n\r\n")


def test_nginx_vars_reach_the_app(nginx):
    r = requests.get(f"http://127.0.0.1:{nginx['ugu']}/env?q=1", timeout=10,
                     headers={"X-Large": BIG})
    env = r.json()
    assert env["QUERY_STRING"] == "q=1"
    assert env["HTTP_X_LARGE"] == BIG
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_nginx_vars_over_buffer_size_then_served(nginx, workers):
    # Over the workers' 4096-byte buffer-size: both drop the request and
    # nginx answers 502 for either; the next request is served.
    statuses = {back: requests.get(
        f"http://127.0.0.1:{port}/", timeout=10,
        headers={"X-Huge": "h" * 6000}).status_code
        for back, port in nginx.items()}
    assert statuses == {"uwsgi": 502, "ugu": 502}
    assert requests.get(f"http://127.0.0.1:{nginx['ugu']}/next",
                        timeout=10).text == "hello from /next"


# Garbage on the uwsgi socket: both workers drop it without a byte and
# log it in the same words; the next request is served.

def _pair(key, value):
    return (struct.pack("<H", len(key)) + key + struct.pack("<H", len(value))
            + value)


GOOD_VARS = _pair(b"REQUEST_METHOD", b"GET") + _pair(b"PATH_INFO", b"/x")
GARBAGE = {
    "bad-modifier": (struct.pack("<BHB", 99, len(GOOD_VARS), 0) + GOOD_VARS,
                     "-- unavailable modifier requested: 99 --"),
    "over-buffer-size": (struct.pack("<BHB", 0, 60000, 0) + b"v" * 100,
                         None),
    "bad-strsize": (struct.pack("<BHB", 0, len(GOOD_VARS) + 3, 0)
                    + GOOD_VARS + b"\x05\x00a",
                    "invalid uwsgi request (current strsize: 5). skip."),
    "empty-key": (struct.pack("<BHB", 0, len(GOOD_VARS) + 4, 0)
                  + GOOD_VARS + b"\x00" * 4,
                  "uwsgi key cannot be null. skip this var."),
    "truncated-vars": (struct.pack("<BHB", 0, 100, 0) + GOOD_VARS, None),
    "short-header": (b"\x00\x01", None),
}


def dropped(port, data):
    """Whether the worker answers `data` with no byte (a close or a
    reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return s.recv(65536) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except OSError as e:
            # Reset before the half-close: no longer connected.
            return e.errno == errno.ENOTCONN


@pytest.mark.parametrize("data, line", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_on_the_uwsgi_socket(workers, data, line):
    for name, worker in workers.items():
        before = worker.output().count(line) if line else 0
        assert dropped(worker.port, data), name
        if line:
            worker.wait_for_log(re.escape(line), count=before + 1)
        answer = support.split_response(support.uwsgi_request(worker.port))
        assert answer[2] == b"hello from /", name


@pytest.fixture(scope="module")
def precompressed(uwsgi_binary, tmp_path_factory):
    """{"uwsgi": port, "ugu": port}: http-sockets serving a static folder
    that holds style.css with its .br and .gz, under static-gzip-all."""
    folder = tmp_path_factory.mktemp("precompressed")
    (folder / "app.py").write_text(APP)
    static = folder / "static"
    static.mkdir()
    for name, data in (("style.css", b"plain"), ("style.css.br", b"br"),
                       ("style.css.gz", b"gz")):
        (static / name).write_bytes(data)
    ports, processes = {}, []
    try:
        for name, command in (("uwsgi", [uwsgi_binary]),
                              ("ugu", support.UGU)):
            port = support.free_port()
            processes.append(started(
                [*command, "--master", "--http-socket", f"127.0.0.1:{port}",
                 "--wsgi-file", "app.py", "--check-static", "static",
                 "--static-gzip-all"],
                lambda p: p.wait_for_log(r"spawned uWSGI worker 1"),
                cwd=folder))
            support.wait_for_port(port)
            ports[name] = port
        yield ports
    finally:
        for process in processes:
            process.stop()


def _static_answer(port, accept_encoding):
    answer = requests.get(f"http://127.0.0.1:{port}/style.css",
                          headers={"Accept-Encoding": accept_encoding},
                          stream=True, timeout=10)
    return answer.headers.get("Content-Encoding"), answer.raw.read()


@pytest.mark.parametrize("accept_encoding", [
    "br", "gzip, deflate, br", "gzip", "x-gzip", "deflate", ""])
def test_static_gzip_all_serves_the_variant_uwsgi_serves(precompressed,
                                                         accept_encoding):
    """FILE.br first, then FILE.gz, as the client accepts them."""
    ugu = _static_answer(precompressed["ugu"], accept_encoding)
    assert ugu == _static_answer(precompressed["uwsgi"], accept_encoding)
    assert ugu[1] in (b"plain", b"br", b"gz")


@pytest.mark.parametrize("accept_encoding, expected", [
    # uWSGI looks for the names anywhere, in this case only: it sends
    # gzip to "gzip;q=0", and br to "brotli"; it sends "GZIP" plain.
    ("gzip;q=0", (None, b"plain")), ("br;q=0, gzip", ("gzip", b"gz")),
    ("brotli", (None, b"plain")), ("GZIP", ("gzip", b"gz")),
    ("*", ("br", b"br")), ("*, br;q=0", ("gzip", b"gz")),
])
def test_static_variants_follow_the_clients_accept_encoding(
        precompressed, accept_encoding, expected):
    assert _static_answer(precompressed["ugu"], accept_encoding) == expected
