"""The request log line's options: log-format, log-x-forwarded-for and
disable-logging's exceptions, each compared with the real uWSGI on the
same requests, through an http-socket and a uwsgi socket."""

import re
import socket
import textwrap
import time
import types

import pytest
import requests

from tests import support
from ugu import protocol
from ugu.vassal import reqlog

APP = textwrap.dedent('''
    import time

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/empty":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b""]
        if path == "/404":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"nope"]
        if path == "/500":
            start_response("500 Oops", [("Content-Type", "text/plain")])
            return [b"oops"]
        if path == "/slow":
            time.sleep(0.3)
        if path == "/io":
            try:
                environ["wsgi.input"].read()
            except OSError:
                pass
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"x" * 100000 for _ in range(100)]
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-A", "b")])
        return [b"hello", b" world"]
''')
HEADERS = {"Host": "h.example", "User-Agent": "UA/1", "X-Y": "yy",
           "Referer": "http://r.example/", "X-Forwarded-For": "9.9.9.9"}


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "s.txt").write_text("static\n")
    return tmp_path


def uwsgi_packet(path, modifier2=0, extra=()):
    """A request as a router sends it, modifier2 and all."""
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", path),
             ("PATH_INFO", path), ("QUERY_STRING", ""),
             ("SERVER_PROTOCOL", "HTTP/1.0"), ("SERVER_NAME", "test"),
             ("REMOTE_ADDR", "127.0.0.2"), *extra]
    packet = protocol.encode([(k.encode(), v.encode()) for k, v in pairs])
    return packet[:3] + bytes([modifier2]) + packet[4:]


def serve(site, argv, options, http_paths, uwsgi_packets=()):
    """The request lines the server logs for the requests, in order: the
    default line's (without the /end marker's), or a log-format's first
    lines (those for the requests sent)."""
    http_port, uwsgi_port = support.free_port(), support.free_port()
    p = support.Process([*argv, "--http-socket", f"127.0.0.1:{http_port}",
                         "--socket", f"127.0.0.1:{uwsgi_port}", "--master",
                         "--wsgi-file", "app.py", "--check-static",
                         "static", *options], cwd=site)
    try:
        p.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(uwsgi_port)
        for path in http_paths:
            method, _, path = path.rpartition(" ")
            try:
                requests.request(method or "GET",
                                 f"http://127.0.0.1:{http_port}{path}",
                                 headers=HEADERS,
                                 data=b"abc" if method else None, timeout=10)
            except (requests.exceptions.ConnectionError,
                    requests.exceptions.ChunkedEncodingError):
                # uWSGI closes with a body the app left unread, and the
                # kernel may then reset its answer away; the request's
                # line, compared here, is logged all the same.
                if not method:
                    raise
        for packet in uwsgi_packets:
            with socket.create_connection(("127.0.0.1", uwsgi_port)) as s:
                s.sendall(packet)
                support.read_to_eof(s)
        # The one worker's one core answers this only after it has logged
        # every request before it.
        requests.get(f"http://127.0.0.1:{http_port}/end", timeout=10)
    finally:
        p.stop()
    lines = p.output().splitlines()
    if any(o.startswith(("--log-format", "--logformat")) for o in options):
        count = len(http_paths) + len(uwsgi_packets)
        return [line for line in lines if line.startswith("L:")][:count]
    return [line for line in lines
            if " => generated " in line and " /end => " not in line]


HTTP_PATHS = ["/hello?q=1", "/404", "/empty", "POST /empty", "/s.txt"]
UWSGI_PACKETS = [uwsgi_packet("/hello"), uwsgi_packet("/s.txt"),
                 uwsgi_packet("/hello", modifier2=7,
                              extra=[("HTTP_HOST", "u.example")])]
FORMATS = [
    # An Apache-like line, as uWSGI's docs suggest one.
    '%(addr) - %(user) [%(ltime)] "%(method) %(uri) %(proto)" %(status) '
    '%(size) "%(referer)" "%(uagent)"',
    # The figures of the response and the request.
    "%(host) %(status) %(rsize) %(hsize) %(cl) %(vars) %(pktsize) "
    "%(modifier1) %(modifier2) %(headers) %(switches) %(core) %(wid) "
    "%(vsz) %(rss) %(vszM) %(rssM) %(werr) %(rerr) %(ioerr)",
    # Request vars, logvars (none set: "-"), metrics (none: 0).
    "var=%(var.HTTP_X_Y) missing=%(var.NOPE) lv=%(lv) m=%(metric.x)",
    # uWSGI's reading of odd formats: %%(, %(), a token left open.
    "100%% %%(uri) %() %(method)%(method %(uri",
]


def _times_as_shapes(line):
    """Times, whose values differ between two runs, as their shapes."""
    line = re.sub(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
                  "LTIME", line)
    return re.sub(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}",
                  "CTIME", line)


@pytest.mark.parametrize("fmt", FORMATS, ids=["apache", "figures", "vars",
                                              "odd"])
def test_log_format_lines_are_uwsgis(site, uwsgi_binary, fmt):
    options = ["--log-format", "L: " + fmt]
    ours = serve(site, support.UGU, options, HTTP_PATHS, UWSGI_PACKETS)
    theirs = serve(site, [uwsgi_binary], options, HTTP_PATHS, UWSGI_PACKETS)
    assert len(ours) == len(HTTP_PATHS) + len(UWSGI_PACKETS)
    assert [_times_as_shapes(line) for line in ours] == \
        [_times_as_shapes(line) for line in theirs]


TIMES = ("L: %(time) %(tmsecs) %(tmicros) %(epoch) %(msecs) %(micros) "
         "%(secs) [%(ctime)] [%(ltime)] [%(ftime)]")


def test_log_format_times_are_uwsgis(site, uwsgi_binary):
    """The times of a slow request: its start in each unit, its length
    in each unit, the start as ctime, ltime and ftime (which is ltime
    without logdate, logformat-strftime or not)."""
    options = ["--logformat", TIMES, "--logformat-strftime"]
    shapes = []
    for argv in (support.UGU, [uwsgi_binary]):
        before = time.time()
        line, = serve(site, argv, options, ["/slow"])
        fields = line.split(" ", 8)
        start, tmsecs, tmicros, epoch, msecs, micros = map(int, fields[1:7])
        assert before - 1 <= start <= epoch <= time.time()
        assert tmicros // 1000 == tmsecs and tmsecs // 1000 == start
        assert 300 <= msecs == micros // 1000 < 5000
        assert fields[7] == "%f" % (micros / 1e6)
        assert fields[8] == time.strftime(
            "[%a %b %e %H:%M:%S %Y] [%d/%b/%Y:%H:%M:%S %z] "
            "[%d/%b/%Y:%H:%M:%S %z]", time.localtime(start))
        shapes.append(re.sub(r"\d+", "N", line))
    assert shapes[0] == shapes[1]


def test_ftime_takes_logdates_format_under_logformat_strftime(
        site, uwsgi_binary):
    """Not without logformat-strftime, nor with a bare logdate."""
    lines = {}
    for argv in (support.UGU, [uwsgi_binary]):
        lines[argv[0]] = [
            serve(site, argv, ["--logformat", "L: %(ftime)", *extra],
                  ["/hello"])[0]
            for extra in (["--logformat-strftime", "--logdate=%Y=%j"],
                          ["--logdate=%Y=%j"],
                          ["--logformat-strftime", "--logdate"])]
    ours, theirs = lines.values()
    year_day = time.strftime("%Y=%j")
    assert ours[0] == f"L: {year_day}"
    assert ours[1].startswith("L: ") and year_day not in ours[1]
    assert [_times_as_shapes(line) for line in ours] == \
        [_times_as_shapes(line) for line in theirs]


def test_log_x_forwarded_for_names_the_client_as_uwsgi_does(site,
                                                            uwsgi_binary):
    """The header's value as sent (an empty one too), in the default line
    and log-format's addr; a request without it keeps REMOTE_ADDR."""
    packets = [uwsgi_packet("/hello", extra=[
        ("HTTP_X_FORWARDED_FOR", "1.2.3.4, 5.6.7.8")]),
        uwsgi_packet("/hello", extra=[("HTTP_X_FORWARDED_FOR", "")])]
    found = []
    for argv in (support.UGU, [uwsgi_binary]):
        default = serve(site, argv, ["--log-x-forwarded-for"],
                        ["/hello"], packets)
        formatted = serve(site, argv, ["--log-x-forwarded-for",
                                       "--log-format", "L: %(addr)"],
                          ["/hello"], [uwsgi_packet("/hello"), *packets])
        addresses = [re.search(r"\|req: \S+\] (.*?) \(", line)[1]
                     for line in default]
        found.append((addresses, formatted))
    assert found[0] == (["9.9.9.9", "1.2.3.4, 5.6.7.8", ""],
                        ["L: 9.9.9.9", "L: 127.0.0.2", "L: 1.2.3.4, 5.6.7.8",
                         "L: -"])
    assert found[0] == found[1]


EXCEPTION_PATHS = ["/hello", "/404", "/500", "/empty", "/s.txt", "/slow"]


@pytest.mark.parametrize("exception", [
    [], ["--log-4xx"], ["--log-5xx"], ["--log-zero"], ["--log-slow", "200"],
    ["--log-big", "11"], ["--log-sendfile=1"], ["--log-ioerror=1"]],
    ids=lambda e: e[0][2:] if e else "none")
def test_disable_logging_logs_its_exceptions_as_uwsgi_does(
        site, uwsgi_binary, exception):
    """Which requests each exception logs: a 4xx or 5xx status, no body
    bytes (headers count for nothing), a request this slow or a body
    this big, a static file sent by sendfile()."""
    logged = []
    for argv in (support.UGU, [uwsgi_binary]):
        lines = serve(site, argv, ["--disable-logging", *exception],
                      EXCEPTION_PATHS)
        logged.append([re.search(r"\] GET (\S+) =>", line)[1]
                       for line in lines])
    assert logged[0] == logged[1]
    expected = {"none": [], "log-4xx": ["/404"], "log-5xx": ["/500"],
                "log-zero": ["/empty"], "log-slow": ["/slow"],
                "log-big": ["/hello", "/slow"], "log-sendfile": ["/s.txt"],
                "log-ioerror": []}
    name = exception[0][2:].split("=")[0] if exception else "none"
    assert logged[0] == expected[name]


def cut_short_then_gone(site, argv, options):
    """The request lines of a client that sends part of its body, closes
    its side (the app's read fails), then resets (the response's write
    fails)."""
    port = support.free_port()
    p = support.Process([*argv, "--http-socket", f"127.0.0.1:{port}",
                         "--master", "--wsgi-file", "app.py", *options],
                        cwd=site)
    try:
        p.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /io HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 100\r\n\r\n0123456789")
            s.shutdown(socket.SHUT_WR)
            p.wait_for_log(r"\[uwsgi-body-read\] Error reading 90 bytes")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\0\0\0\0\0\0\0")
        p.wait_for_log(r"OSError: write error")
        requests.get(f"http://127.0.0.1:{port}/end", timeout=10)
    finally:
        p.stop()
    return [line for line in p.output().splitlines()
            if line.startswith("L: /io") or " /io => " in line]


def test_a_failed_write_is_werr_and_a_body_cut_short_no_rerr(site,
                                                            uwsgi_binary):
    """As uWSGI counts them: the write that failed is an I/O error, the
    body the client closed early is not, so log-ioerror (which wants
    both) does not log the request."""
    for options, lines in [
            (["--log-format", "L: %(uri) %(status) %(werr) %(rerr) "
              "%(ioerr)"], ["L: /io 200 1 0 1"]),
            (["--disable-logging", "--log-ioerror=1"], [])]:
        assert cut_short_then_gone(site, support.UGU, options) == lines
        assert cut_short_then_gone(site, [uwsgi_binary], options) == lines


def test_log_format_chunks_read_as_uwsgi_reads_them():
    assert reqlog.chunks("a %(uri) b") == [
        ("text", "a "), ("token", "uri"), ("text", " b")]
    assert reqlog.chunks("%%(uri)%(x") == [
        ("text", "%"), ("token", "uri"), ("text", ""), ("text", "%(x")]
    assert reqlog.chunks("%()x)") == [("text", "%"), ("token", "x")]


def test_logvars_set_on_the_request_are_logged_by_name():
    """The API a route (logvar:) or the app sets them through."""
    from ugu.vassal.request import Exchange
    ctx = types.SimpleNamespace(pid=1)
    ex = Exchange(ctx, 0, None, {"REQUEST_URI": "/x"}, 2, 20, None)
    line = reqlog.compile_format("%(uri) %(a) %(b) %(a)", 1)
    assert line(ex) == "/x - - -"
    ex.set_logvar("a", "1")
    ex.set_logvar("a", "2")
    ex.set_logvar("b", "")
    assert line(ex) == "/x 2 - 2"


MEMORY = re.compile(r"\{address space usage: (\d+) bytes/(\d+)MB\} "
                    r"\{rss usage: (\d+) bytes/(\d+)MB\} \[pid: ")


@pytest.mark.parametrize("fmt", [None, "L: %(vsz) %(vszM) %(rss) %(rssM)"],
                         ids=["default", "log-format"])
def test_memory_report_logs_the_workers_memory_as_uwsgi_does(
        site, uwsgi_binary, fmt):
    """Before the default line (as uWSGI words it), or as log-format's
    vsz and rss (0 without memory-report): bytes and whole MB."""
    options = ["--log-format", fmt] if fmt else []
    for argv in (support.UGU, [uwsgi_binary]):
        with_report = serve(site, argv, [*options, "--memory-report"],
                            ["/hello"])
        line, = with_report
        if fmt:
            vsz, vsz_mb, rss, rss_mb = map(int, line.split()[1:])
            assert serve(site, argv, options, ["/hello"]) == ["L: 0 0 0 0"]
        else:
            vsz, vsz_mb, rss, rss_mb = map(int, MEMORY.match(line).groups())
        assert vsz_mb == vsz // 2**20 and rss_mb == rss // 2**20
        assert 0 < rss_mb < vsz_mb


def test_a_log_format_in_an_ini_file_keeps_its_tokens(site, uwsgi_binary):
    """Its %(name) are not placeholders left unresolved (strict starts),
    but one that names a placeholder is replaced, as by uWSGI."""
    lines = []
    for argv in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        support.write_ini(site / "log.ini", uwsgi=[
            ("strict", "true"), ("http-socket", f"127.0.0.1:{port}"),
            ("wsgi-file", "app.py"), ("set-ph", "where=here"),
            ("log-format", "L: %(where) %(method) %(uri) %(status)")])
        p = support.Process([*argv, "--ini", "log.ini"], cwd=site)
        try:
            support.wait_for_port(port)
            requests.get(f"http://127.0.0.1:{port}/404", timeout=10)
            lines.append(p.wait_for_log(r"L: .*")[0])
        finally:
            p.stop()
    assert lines == ["L: here GET /404 404"] * 2


def test_log_x_forwarded_for_holds_beside_request_routes(site, uwsgi_binary):
    """Request routes leave the client named by the header, unless one
    moves REMOTE_ADDR (setremoteaddr), whose value is then logged."""
    options = ["--log-x-forwarded-for", "--log-format", "L: %(addr) %(uri)",
               "--route", "^/never addheader:X-N: 1",
               "--route", "^/moved setremoteaddr:10.0.0.9"]
    found = [serve(site, argv, options, ["/hello", "/moved"])
             for argv in (support.UGU, [uwsgi_binary])]
    assert found[1] == ["L: 9.9.9.9 /hello", "L: 10.0.0.9 /moved"]
    assert found[0] == found[1]


TOOK = re.compile(r" => generated \d+ bytes in (\d+) (\w+) ")


@pytest.mark.parametrize("memory", [False, True],
                         ids=["default", "memory-report"])
def test_log_micros_gives_the_time_in_microseconds_as_uwsgi_does(
        site, uwsgi_binary, memory):
    """The default line says `in N micros` (after memory-report's
    figures too); a log-format's msecs stays milliseconds."""
    options = ["--log-micros", *(["--memory-report"] if memory else [])]
    paths = ["/hello", "/slow"]
    lines = {}
    for name, argv in (("ugu", support.UGU), ("uwsgi", [uwsgi_binary])):
        found = serve(site, argv, options, paths, UWSGI_PACKETS[:1])
        lines[name] = [_times_as_shapes(TOOK.sub(" => TOOK ", line))
                       for line in found]
        took = [TOOK.search(line).groups() for line in found]
        assert [unit for _, unit in took] == ["micros"] * 3
        # /slow sleeps 0.3 s.
        assert 300_000 <= int(took[1][0]) < 30_000_000
        if memory:
            assert all(MEMORY.match(line) for line in found)
        line, = serve(site, argv, ["--log-micros", "--log-format",
                                   "L: %(msecs)"], ["/slow"])
        assert 300 <= int(line.split()[1]) < 30_000
    # Pids and memory figures differ between the two servers.
    shapes = {name: [re.sub(r"^.*\[pid: \d+", "", line) for line in found]
              for name, found in lines.items()}
    assert shapes["ugu"] == shapes["uwsgi"]
