"""The router repeats a static file's answer (ugu.staticanswer): through
the tutorial's two vassals, a file asked for again with the same head is
answered by the router while the file is the same, with the worker's
request line written by the router; anything changed goes to the worker.
"""

import gzip
import re
import socket
import tracemalloc

import pytest

from tests import support
from tests.support import read_to_eof, split_response
from tests.test_router import start_uwsgi_router
from tests.test_tutorial import start_tutorial
from ugu import staticanswer

CSS = (support.EXAMPLES / "static" / "base.css").read_bytes()
LINE = re.compile(r"^\[pid: (\d+)\|app: -1\|req: -1/\d+\] 127\.0\.0\.1 \(\) "
                  r"\{(\d+) vars in \d+ bytes\} \[[^]]+\] GET (\S+) => "
                  r"generated (\d+) bytes in \d+ msecs (.*)$", re.M)


@pytest.fixture
def setup(tmp_path, procs):
    emperor = start_tutorial(procs, tmp_path)
    emperor.router = int(emperor.wait_for_log(
        r"spawned uWSGI http 1 \(pid: (\d+)\)").group(1))
    return emperor


def get(port, path, *headers, method="GET"):
    """The raw answer to a request whose head is the same every time."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: site\r\n"
            + "".join(f"{h}\r\n" for h in headers)
            + "Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head.encode())
        return read_to_eof(s)


def lines(process, path):
    """(pid, the line but for what varies) of each request line for
    `path`."""
    return [(int(m.group(1)), m.group(2, 4, 5))
            for m in LINE.finditer(process.output()) if m.group(3) == path]


def repeated(setup, path, *headers):
    """Ask for `path` until the router answers it; the answers."""
    answers = []

    def by_router():
        answers.append(get(setup.port, path, *headers))
        return any(pid == setup.router for pid, _ in lines(setup, path))
    support.wait_until(by_router, what=f"the router to answer {path}")
    return answers


def test_a_file_asked_for_again_is_answered_by_the_router(setup):
    answers = repeated(setup, "/base.css")
    assert len(answers) >= 2
    for raw in answers:
        status, headers, body = split_response(raw)
        assert status == "HTTP/1.1 200 OK"
        assert body == CSS
        assert not any(name.startswith("x-ugu") for name in headers)
    assert len(set(answers)) == 1
    # The worker writes its line once its answer is out: waited for.
    found = support.wait_until(
        lambda: (lambda got: got if any(pid != setup.router for pid, _ in
                                        got) else None)(
            lines(setup, "/base.css")), what="the worker's line")
    worker = [line for pid, line in found if pid != setup.router]
    router = [line for pid, line in found if pid == setup.router]
    assert worker and router
    # The worker's line, as the router writes it.
    assert set(router) == set(worker)
    assert worker[0][1] == str(len(CSS))
    assert re.fullmatch(r"via offload\(\) \(HTTP/1\.1 200\) 3 headers in "
                        r"\d+ bytes \(0 switches on core \d\)", worker[0][2])


def test_a_file_rewritten_is_sent_anew(setup):
    repeated(setup, "/base.css")
    changed = CSS.replace(b"body", b"BODY")
    assert len(changed) == len(CSS)
    (setup.site / "static" / "base.css").write_bytes(changed)
    assert split_response(get(setup.port, "/base.css"))[2] == changed


def test_a_file_removed_is_no_longer_sent(setup):
    repeated(setup, "/base.css")
    (setup.site / "static" / "base.css").unlink()
    assert split_response(get(setup.port, "/base.css"))[2] != CSS


def test_a_compressed_variant_is_repeated_and_its_removal_seen(setup):
    accept = "Accept-Encoding: gzip"
    for raw in repeated(setup, "/base.css", accept):
        status, headers, body = split_response(raw)
        assert headers["content-encoding"] == "gzip"
        assert gzip.decompress(body) == CSS
    (setup.site / "static" / "base.css.gz").unlink()
    status, headers, body = split_response(get(setup.port, "/base.css",
                                               accept))
    assert "content-encoding" not in headers and body == CSS


def test_a_compressed_variant_made_later_is_sent(setup):
    (setup.site / "static" / "base.css.gz").unlink()
    accept = "Accept-Encoding: gzip"
    for raw in repeated(setup, "/base.css", accept):
        assert split_response(raw)[2] == CSS
    (setup.site / "static" / "base.css.gz").write_bytes(
        gzip.compress(b"made later"))
    status, headers, body = split_response(get(setup.port, "/base.css",
                                               accept))
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == b"made later"


def test_the_marker_reaches_no_client(setup):
    """Not on a HEAD, nor on an answer too big for the fast path."""
    big = b"p { margin: 0 }\n" * 8192
    (setup.site / "static" / "big.css").write_bytes(big)
    for _ in range(3):
        raw = get(setup.port, "/big.css")
        assert split_response(raw)[2] == big
        assert b"x-ugu" not in raw.partition(b"\r\n\r\n")[0].lower()
        raw = get(setup.port, "/base.css", method="HEAD")
        assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"x-ugu" not in raw.lower()


def test_a_stopped_worker_is_heard_of_within_seconds(setup):
    repeated(setup, "/base.css")
    (setup.site / "uwsgi.ini").unlink()
    support.wait_until(
        lambda: split_response(get(setup.port, "/base.css"))[0]
        == "HTTP/1.1 502 Bad Gateway", timeout=10,
        what="the router to find the worker gone")


NOT_FOUND_APP = ("def application(e, sr):\n    sr('404 Not Found', [])\n"
                 "    return [b'none']\n")


def _pair(procs, tmp_path, worker_binary, *worker_options,
          router_options=(), app=NOT_FOUND_APP):
    """A worker serving static/ (and `app`) and an ugu router before it,
    logging to one file; (the router's pid, its port, the log)."""
    site = tmp_path / "site"
    (site / "static").mkdir(parents=True)
    (site / "static" / "a.css").write_bytes(CSS)
    (site / "app.py").write_text(app)
    worker_port, port = support.free_port(), support.free_port()
    log = tmp_path / "both.log"
    procs.start(
        [*worker_binary, "--master", "--socket", f"127.0.0.1:{worker_port}",
         "--wsgi-file", "app.py", "--check-static", "static",
         "--logto", str(log), *worker_options], cwd=site)
    support.wait_for_port(worker_port)
    procs.ugu("--master", "--processes", "0", "--http", f"127.0.0.1:{port}",
              "--http-to", f"127.0.0.1:{worker_port}", "--http-keepalive",
              "--logto", str(log), *router_options, cwd=site)
    support.wait_for_port(port)
    spawned = support.wait_until(lambda: re.search(
        r"spawned uWSGI http 1 \(pid: (\d+)\)", log.read_text()))
    return int(spawned.group(1)), port, log


def _pids_answering(port, log, count=5):
    """The pid in the line of each of `count` requests for a.css."""
    for _ in range(count):
        assert split_response(get(port, "/a.css"))[2] == CSS
    return support.wait_until(
        lambda: (lambda got: got if len(got) == count else None)(
            [int(m.group(1)) for m in LINE.finditer(log.read_text())
             if m.group(3) == "/a.css"]),
        what="a line per request")


def test_a_worker_logging_where_the_router_does_is_repeated(procs,
                                                            tmp_path):
    router, port, log = _pair(procs, tmp_path, support.UGU)
    assert router in _pids_answering(port, log)


def test_an_answer_is_repeated_only_on_the_listener_it_was_sent_on(
        procs, tmp_path):
    """The worker's answer may depend on the listener's vars (here a
    response route adds SERVER_PORT): the same head on another of the
    router's sockets is the worker's to answer."""
    other = support.free_port()
    router, port, log = _pair(
        procs, tmp_path, support.UGU, "--response-route",
        "^/ addheader:X-Port: ${SERVER_PORT}",
        router_options=("--http", f"127.0.0.1:{other}"))
    support.wait_for_port(other)
    assert router in _pids_answering(port, log)
    for _ in range(3):
        assert split_response(get(other, "/a.css"))[1]["x-port"] == \
            str(other)


def test_the_marker_reaches_no_client_where_the_router_sends_117_itself(
        procs, tmp_path):
    """`http-modifier2 = 117` offers every request it relays, the GETs
    the greenlet code relays (a body, chunked) too."""
    router, port, log = _pair(procs, tmp_path, support.UGU,
                              router_options=("--http-modifier2", "117"))
    for framing in ("Content-Length: 1\r\n\r\nz",
                    "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=10) as conn:
            conn.sendall(f"GET /a.css HTTP/1.1\r\nHost: site\r\n"
                         f"Connection: close\r\n{framing}".encode())
            raw = read_to_eof(conn)
        assert split_response(raw)[2] == CSS
        assert b"x-ugu" not in raw.lower()


def test_a_response_route_on_the_client_address_answers_every_time(
        procs, tmp_path):
    """response-route-remote-addr reads REMOTE_ADDR, which is no part
    of the head: another client with the same head gets its own."""
    router, port, log = _pair(
        procs, tmp_path, support.UGU, "--response-route-remote-addr",
        r"^127\.0\.0\.2$ addheader:X-Internal: yes")

    def internal(source):
        with socket.socket() as conn:
            conn.settimeout(10)
            conn.bind((source, 0))
            conn.connect(("127.0.0.1", port))
            conn.sendall(b"GET /a.css HTTP/1.1\r\nHost: site\r\n"
                         b"Connection: close\r\n\r\n")
            return "x-internal" in split_response(read_to_eof(conn))[1]
    assert not any([internal("127.0.0.1") for _ in range(3)])
    assert all([internal("127.0.0.2") for _ in range(3)])


def test_a_response_route_on_a_file_answers_every_time(procs, tmp_path):
    """A condition that looks at a file (exists, isfile...) looks at a
    name the router does not: the worker answers once it is there."""
    flag = tmp_path / "maintenance"
    router, port, log = _pair(
        procs, tmp_path, support.UGU, "--response-route-if",
        f"exists:{flag} addheader:X-Maintenance: on")
    for _ in range(3):
        assert "x-maintenance" not in split_response(get(port, "/a.css"))[1]
    flag.touch()
    assert split_response(get(port, "/a.css"))[1]["x-maintenance"] == "on"


def test_a_marker_too_big_for_a_head_is_not_sent(procs, tmp_path):
    """The marker names the file under each root tried: a long path
    (slashes a client adds) under many roots makes it longer than the
    router reads of a head.  The router never keeps an answer that big;
    the worker sends it without a marker."""
    roots = [f"root{number}" for number in range(18)]
    last = tmp_path / "site" / roots[-1]
    last.mkdir(parents=True)
    (last / "deep.css").write_bytes(CSS)
    router, port, log = _pair(
        procs, tmp_path, support.UGU, "--buffer-size", "65535",
        *(option for root in roots for option in ("--check-static", root)))
    for _ in range(2):
        raw = get(port, "/" * 3900 + "deep.css")
        status, headers, body = split_response(raw)
        assert status == "HTTP/1.1 200 OK"
        assert body == CSS
        assert b"probes" not in raw


def test_a_worker_with_request_routes_answers_every_time(procs, tmp_path):
    router, port, log = _pair(procs, tmp_path, support.UGU,
                              "--route-uri", "^/never$ return:403")
    assert router not in _pids_answering(port, log)


def test_a_uwsgi_worker_answers_every_time(procs, tmp_path, uwsgi_binary):
    """uWSGI's worker takes the offer for modifier2 0 and adds nothing."""
    router, port, log = _pair(procs, tmp_path, [uwsgi_binary])
    assert router not in _pids_answering(port, log)


def test_an_ugu_worker_behind_uwsgi_router_is_not_offered(procs, tmp_path,
                                                         uwsgi_binary):
    site = tmp_path
    (site / "static").mkdir()
    (site / "static" / "a.css").write_bytes(CSS)
    worker_port = support.free_port()
    worker = procs.ugu("--master", "--socket", f"127.0.0.1:{worker_port}",
                       "--check-static", "static", cwd=site)
    support.wait_for_port(worker_port)
    front, port = start_uwsgi_router(uwsgi_binary,
                                     f"127.0.0.1:{worker_port}")
    try:
        for _ in range(3):
            raw = get(port, "/a.css")
            assert split_response(raw)[2] == CSS
            assert b"x-ugu" not in raw.lower()
        worker.wait_for_log("(?m)" + LINE.pattern, count=3)
        assert len(LINE.findall(worker.output())) == 3
    finally:
        front.stop()


def test_requests_sent_at_once_are_all_answered_in_order(setup):
    """Many requests for a repeated file in one write: each answered
    from the loop in turn, none from deeper in the last one's call."""
    repeated(setup, "/base.css")
    one = "GET /base.css HTTP/1.1\r\nHost: site\r\n\r\n"
    last = ("GET /nothing-here HTTP/1.1\r\nHost: site\r\n"
            "Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", setup.port),
                                  timeout=10) as conn:
        conn.sendall((one * 500 + last).encode())
        raw = read_to_eof(conn)
    assert raw.count(b"HTTP/1.1 200 OK\r\n") == 501
    assert raw.count(CSS) == 500
    assert "fast path failed" not in setup.output()


def test_the_names_an_answer_probes_count_towards_the_cap():
    """A request's head and answer may be small while the names looked
    at are many and long (a deep path under many check-static roots):
    those names are held too, and the 8 MB cap must hold them."""
    answers = staticanswer.Answers()
    tracemalloc.start()
    try:
        for i in range(600):
            probes = [(f"/srv/root{root}/{'d' * 4000}{i}", None)
                      for root in range(10)]
            answers.keep(None, b"GET /%d" % i, b"x", probes, None, 0)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 12 * 1024 * 1024


# An app that answers with a marker of its own, one the router would take
# (its place, the log both write to, a line that formats), and a body
# that counts its calls: each request must reach it.
FORGING_APP = """
import itertools, json, os
from ugu import staticanswer

calls = itertools.count(1)
FIRST = os.environ.get("FORGED_FIRST") == "1"

def application(environ, start_response):
    log = os.stat(os.environ["LOG"])
    marker = {"v": 1, "place": staticanswer.place(), "probes": [],
              "sink": [log.st_dev, log.st_ino], "line": "forged {count}",
              "size": 0}
    body = str(next(calls)).encode()
    headers = [("Content-Type", "text/plain"),
               ("Content-Length", str(len(body)))]
    forged = ("X-Ugu-Static-Answer", json.dumps(marker))
    headers.insert(0 if FIRST else 1, forged)
    start_response("200 OK", headers)
    return [body]
"""


def _forged_answers(procs, tmp_path, worker_binary, first):
    # uWSGI's Python finds ugu's staticanswer by the pythonpath.
    router, port, log = _pair(
        procs, tmp_path, worker_binary, "--pythonpath", str(support.REPO),
        "--env", f"LOG={tmp_path / 'both.log'}",
        "--env", f"FORGED_FIRST={int(first)}", app=FORGING_APP)
    answers = [split_response(get(port, "/dynamic")) for _ in range(4)]
    return answers, log


@pytest.mark.parametrize("first", [True, False], ids=["first", "second"])
def test_an_app_s_own_marker_is_dropped_by_an_ugu_worker(procs, tmp_path,
                                                         first):
    """Wherever the app puts it, the worker drops it from the answers to
    an offer (the requests after the first of their head): every request
    reaches the app, and the router writes no line of the app's."""
    answers, log = _forged_answers(procs, tmp_path, support.UGU, first)
    assert [body for _, _, body in answers] == [b"1", b"2", b"3", b"4"]
    assert not any("x-ugu-static-answer" in headers
                   for _, headers, _ in answers[1:])
    assert "forged" not in log.read_text()


def test_a_marker_below_the_first_header_is_an_app_s_header(
        procs, tmp_path, uwsgi_binary):
    """A uWSGI worker sends the app's headers as they are: the router
    takes a marker only from the line after the status line, where an ugu
    worker puts its own, and relays one further down as any header."""
    answers, log = _forged_answers(procs, tmp_path, [uwsgi_binary],
                                   first=False)
    assert [body for _, _, body in answers] == [b"1", b"2", b"3", b"4"]
    assert all("x-ugu-static-answer" in headers for _, headers, _ in answers)
    assert "forged" not in log.read_text()


def test_the_marker_is_taken_from_the_head_s_first_line_only():
    marker = staticanswer.MARKER + b": {}\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + marker + b"A: b\r\n\r\n"
    assert staticanswer.take_marker(head, head.find(b"\r\n\r\n")) == (
        b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", b"{}")
    lower = b"HTTP/1.1 200 OK\r\nA: b\r\n" + marker + b"\r\n"
    assert staticanswer.take_marker(lower, lower.find(b"\r\n\r\n")) == (
        lower, None)
