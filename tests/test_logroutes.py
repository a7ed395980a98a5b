"""Named loggers (`logger = NAME KIND:ARGS`) and the routes that send
lines to them (`log-route`, `log-req-route`), with the encoders that name
them, each run on ugu and on the real uWSGI with the same INI file; and
what ugu refuses about them."""

import re
import signal
import subprocess
import textwrap

import pytest

from tests import support
from tests.test_logfile import serve
from ugu.options.resolve import resolve

APP = textwrap.dedent('''
    def application(environ, start_response):
        print("say", environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')
SERVERS = ["ugu", "uwsgi"]
MASTER = r"^spawned uWSGI master process \(pid: \d+\)$"
WORKER = r"^spawned uWSGI worker 1 \(pid: \d+, cores: 1\)$"

get = support.http10_get


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def request_line(path):
    return rf"^\[pid: \d+\|app: 0\|req: \d+/\d+\] .* GET {path} => .*$"


def said(path):
    return rf"^say {path}$"


def wait_in_file(path, *patterns):
    def found():
        text = path.read_text() if path.exists() else ""
        return all(re.search(p, text, re.M) for p in patterns)
    support.wait_until(found, what=f"{patterns!r} in {path}")


def has(path, pattern):
    return bool(re.search(pattern, path.read_text(), re.M))


def requests(port, *paths):
    for path in paths:
        assert get(port, path).endswith(b"ok")


@pytest.mark.parametrize("server", SERVERS)
def test_log_route_sends_the_lines_it_matches_to_its_logger_alone(
        start_server, site, server):
    """A line goes to the logger of every route that matches it, and to
    no other; the lines no route matches go to the logger without a
    name: the master's, the worker's, prints and request lines alike."""
    p, port = serve(start_server, server, site,
                    ("logger", "a file:a.log"), ("logger", "b file:b.log"),
                    ("logger", "file:rest.log"),
                    ("log-route", "a ^say /x"),
                    ("log-route", "b /x|spawned uWSGI worker"))
    requests(port, "/x", "/y")
    wait_in_file(site / "a.log", said("/x"))
    wait_in_file(site / "b.log", said("/x"), request_line("/x"), WORKER)
    wait_in_file(site / "rest.log", said("/y"), request_line("/y"), MASTER)
    p.stop()
    assert (site / "a.log").read_text() == "say /x\n"
    assert not has(site / "b.log", "/y|master")
    rest = site / "rest.log"
    assert not any(has(rest, p) for p in (
        said("/x"), request_line("/x"), WORKER))
    assert has(rest, r"^\*\*\* Starting uWSGI")


@pytest.mark.parametrize("server", SERVERS)
def test_a_posix_class_in_a_route_matches_as_in_pcre(start_server, site,
                                                    server):
    """`[[:digit:]]` is PCRE's class of digits, not Python's set of
    `[:digt` followed by `]`."""
    p, port = serve(start_server, server, site,
                    ("logger", "a file:a.log"), ("logger", "file:rest.log"),
                    ("log-route", "a ^say /[[:digit:]]+$"),
                    ("log-route", "a ^say /[^[:alnum:][:space:]]+$"))
    requests(port, "/123", "/x", "/-_-")
    wait_in_file(site / "a.log", said("/123"), said("/-_-"))
    wait_in_file(site / "rest.log", said("/x"))
    p.stop()
    assert (site / "a.log").read_text() == "say /123\nsay /-_-\n"
    assert "Warning" not in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_the_subjects_end_in_a_route_is_pcres(start_server, site, server):
    """A line is matched with its newline: PCRE's `\\Z` matches before
    it (Python's would not), its `\\z` only after it."""
    p, port = serve(start_server, server, site,
                    ("logger", "a file:a.log"), ("logger", "b file:b.log"),
                    ("logger", "file:rest.log"),
                    ("log-route", "a ^say /z\\Z"),
                    ("log-route", "b ^say /z\\z"))
    requests(port, "/z", "/x")
    wait_in_file(site / "a.log", said("/z"))
    wait_in_file(site / "rest.log", said("/x"))
    p.stop()
    assert (site / "a.log").read_text() == "say /z\n"
    assert not (site / "b.log").exists() or \
        "say" not in (site / "b.log").read_text()


def test_a_line_longer_than_a_read_goes_whole_where_its_head_goes(
        start_server, site):
    """The log master reads the pipe 64 KiB at a time: the rest of a
    longer line follows its head to the route's logger, whatever its
    own bytes match (uWSGI keeps the first 8 KiB and drops the rest)."""
    (site / "app.py").write_text(textwrap.dedent('''
        def application(environ, start_response):
            print("say long", "x" * 150000, "end")
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
    '''))
    p, port = serve(start_server, "ugu", site,
                    ("logger", "a file:a.log"), ("logger", "file:rest.log"),
                    ("log-route", "a ^say"), ("disable-logging", "true"))
    requests(port, "/x")
    wait_in_file(site / "a.log", "end$")
    p.stop()
    assert (site / "a.log").read_text() == \
        "say long " + "x" * 150000 + " end\n"
    assert not has(site / "rest.log", "x{100}")


@pytest.mark.parametrize("server", SERVERS)
def test_log_drain_and_log_filter_come_before_the_routes(start_server,
                                                         site, server):
    """A line log-drain drops, or log-filter does not keep, reaches no
    route's logger either; with threaded-logger the thread routes."""
    p, port = serve(start_server, server, site, ("threaded-logger", "true"),
                    ("logger", "a file:a.log"), ("logger", "file:rest.log"),
                    ("log-route", "a /"), ("log-drain", "/y"),
                    ("log-filter", "^say|GET|master"))
    requests(port, "/x", "/y", "/z")
    wait_in_file(site / "a.log", said("/z"), request_line("/z"))
    wait_in_file(site / "rest.log", MASTER)
    p.stop()
    assert not has(site / "a.log", "/y")
    assert has(site / "a.log", said("/x"))
    assert not has(site / "rest.log", "^say|GET|Starting")


@pytest.mark.parametrize("server", SERVERS)
def test_without_a_logger_without_a_name_the_rest_goes_to_the_log(
        start_server, site, server):
    """Where every logger has a name, the lines no route takes go to the
    log, here the logto file."""
    p, port = serve(start_server, server, site, ("logto", "main.log"),
                    ("logger", "a file:a.log"), ("log-route", "a ^say"))
    requests(port, "/x")
    wait_in_file(site / "a.log", said("/x"))
    wait_in_file(site / "main.log", request_line("/x"), WORKER)
    p.stop()
    assert (site / "a.log").read_text() == "say /x\n"
    assert not has(site / "main.log", "^say")


@pytest.mark.parametrize("server", SERVERS)
def test_log_req_route_sends_request_lines_to_a_logger(start_server, site,
                                                       server):
    """log-req-route names a `logger` line, and takes the request lines
    it matches from the req-logger, which keeps the others."""
    p, port = serve(start_server, server, site,
                    ("req-logger", "file:req.log"),
                    ("logger", "x file:x.log"),
                    ("log-req-route", "x GET /x"))
    requests(port, "/x", "/y")
    wait_in_file(site / "x.log", request_line("/x"))
    wait_in_file(site / "req.log", request_line("/y"))
    p.stop()
    assert not has(site / "x.log", "/y")
    assert not has(site / "req.log", "/x")
    assert not has(site / "req.log", "^say")


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("logto", ["logto", "logto2"])
def test_unrouted_request_lines_go_to_the_log_not_to_the_logger(
        start_server, site, server, logto):
    """Without a req-logger, the request lines no log-req-route takes go
    to the log as it was before the loggers (logto's file, or logto2's
    opened later), not to the logger of messages, which keeps the
    rest."""
    p, port = serve(start_server, server, site, (logto, "main.log"),
                    ("logger", "file:messages.log"),
                    ("logger", "x file:x.log"),
                    ("log-req-route", "x GET /x"))
    requests(port, "/x", "/y")
    wait_in_file(site / "x.log", request_line("/x"))
    wait_in_file(site / "main.log", request_line("/y"))
    wait_in_file(site / "messages.log", said("/x"), said("/y"), MASTER)
    p.stop()
    assert not has(site / "main.log", "^say|/x|master")
    assert not has(site / "messages.log", r"^\[pid")


@pytest.mark.parametrize("server", SERVERS)
def test_encoders_naming_a_logger_encode_its_lines_alone(start_server, site,
                                                         server):
    """An encoder written NAME:LOGGER encodes only the lines routed to
    that logger, after or before those for every line, as written."""
    p, port = serve(start_server, server, site,
                    ("logger", "a file:a.log"), ("logger", "file:rest.log"),
                    ("logger", "r file:r.log"),
                    ("log-route", "a ^say"),
                    ("log-req-route", "r GET /x"),
                    ("log-encoder", "prefix:a [a]"),
                    ("log-encoder", "prefix [all]"),
                    ("log-req-encoder", "suffix:r <r>"),
                    ("log-req-encoder", "prefix [req]"))
    requests(port, "/x", "/y")
    wait_in_file(site / "a.log", r"^\[all\]\[a\]say /x$")
    wait_in_file(site / "r.log", r"^\[req\]\[pid: .* GET /x => .*\)\n<r>")
    wait_in_file(site / "rest.log", r"^\[all\]" + MASTER[1:])
    p.wait_for_log(r"(?m)^\[req\]\[pid: .* GET /y => ")
    p.stop()
    assert not has(site / "rest.log", r"\[a\]|^\[all\]say")


@pytest.mark.parametrize("server", SERVERS)
def test_a_named_logger_no_route_names_gets_nothing(start_server, site,
                                                    server):
    """As uWSGI, which opens a logger as it first writes to it, the file
    of a logger that no route names is never made; ugu warns."""
    p, port = serve(start_server, server, site, ("logto", "main.log"),
                    ("logger", "idle file:idle.log"))
    requests(port, "/x")
    wait_in_file(site / "main.log", said("/x"), request_line("/x"))
    p.stop()
    assert not (site / "idle.log").exists()
    if server == "ugu":
        assert "option 'logger': the logger named 'idle' takes only the " \
            "lines that a log-route or log-req-route naming it sends, as " \
            "in uWSGI, and none does" in p.output()


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("logto2", [False, True])
def test_a_named_stdio_logger_writes_to_the_log_before_the_loggers(
        start_server, site, server, logto2):
    """stdio is the log as it was before any logger took it (the
    terminal, or logto2's file, opened later), even where a logger
    without a name takes the rest."""
    p, port = serve(start_server, server, site, ("logger", "s stdio"),
                    ("logger", "file:rest.log"), ("log-route", "s ^say"),
                    *[("logto2", "main.log")] * logto2)
    requests(port, "/x")
    if logto2:
        wait_in_file(site / "main.log", said("/x"))
    else:
        p.wait_for_log("(?m)" + said("/x"))
    wait_in_file(site / "rest.log", request_line("/x"))
    p.stop()
    assert not has(site / "rest.log", "^say")


# -- what ugu refuses ---------------------------------------------------------

def run_ugu(site, *options):
    return subprocess.run(
        [*support.UGU, "--http-socket", "127.0.0.1:0", "--master",
         "--wsgi-file", "app.py", *options], cwd=site, timeout=30,
        capture_output=True, text=True, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("options, message", [
    (["--log-route", "nobody ^say"],
     "option 'log-route': 'nobody ^say': no `logger = nobody KIND:ARGS` "
     "line names a logger 'nobody' (uWSGI looks the name up among the "
     "`logger` lines, req-logger's too)"),
    (["--logger", "a file:a.log", "--log-route", "a"],
     "option 'log-route': 'a' is not NAME REGEX"),
    (["--logger", "a file:a.log", "--log-req-route", "a ("],
     "option 'log-req-route': invalid regexp \"(\""),
    (["--req-logger", "r file:r.log", "--log-req-route", "r GET"],
     "option 'req-logger': req-logger 'r file:r.log': uWSGI never writes "
     "to a named req-logger; write `logger = r file:r.log` and "
     "`log-req-route = r REGEX`"),
    (["--logger", "my-log file:a.log"],
     "option 'logger': logger 'my-log file:a.log': a logger's name is made "
     "of letters and digits only, as in uWSGI (write NAME file:PATH)"),
    (["--logger", "a file:a.log", "--logger", "a file:b.log",
      "--log-route", "a x"],
     "option 'logger': two loggers are named 'a'"),
    (["--logger", "a syslog:x,nowhere", "--log-route", "a x"],
     "option 'logger': logger 'syslog:x,nowhere': 'nowhere' is no syslog "
     "facility"),
    (["--logger", "a zeromq:tcp://127.0.0.1:9", "--log-route", "a x"],
     "option 'logger': logger 'zeromq:tcp://127.0.0.1:9' is not supported "
     "by ugu (use file:PATH, fd:N, stdio, socket:ADDR, rsyslog:ADDR or "
     "syslog)"),
    (["--logto", "main.log", "--log-maxsize", "100000",
      "--logger", "a file:a.log", "--log-req-route", "a GET"],
     "option 'log-req-route': request lines that no log-req-route takes "
     "go to the logto file, which ugu's workers write to themselves and "
     "would not follow once it is rotated or reopened: add `req-logger = "
     "file:PATH` for them")])
def test_what_ugu_cannot_route_is_refused(site, options, message):
    """uWSGI drops a route to a name no `logger` line has, never writes
    to a named req-logger, and looks for a kind of logger named "my-log
    file"; ugu says so before it starts, and makes no file."""
    result = run_ugu(site, *options)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert not (site / "a.log").exists()


def test_the_emperor_refuses_routes(tmp_path):
    """The Emperor has no log master to route with."""
    result = subprocess.run(
        [*support.UGU, "--emperor", str(tmp_path / "*.ini"),
         "--logger", "a file:a.log", "--log-route", "a x"],
        cwd=tmp_path, timeout=30, capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "option 'log-route': ugu's log master runs in vassals" in \
        result.stderr


def test_logto_beside_a_logger_is_inert_unless_requests_go_there(site):
    (site / "app.ini").write_text(
        "[uwsgi]\nlogto = a.log\nlogger = file:b.log\nlogger = x file:x.log\n"
        "log-req-route = x GET\n")
    config = resolve(["--ini", str(site / "app.ini")], {})
    assert not [w for w in config.startup_warnings() if "logto" in w]


PID_APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        print("say", environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
''')


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("loggers", [
    [("logger", "s file:logs/said.log"), ("log-route", "s ^say")],
    [("logger", "file:logs/said.log")],
    [("req-logger", "file:logs/said.log")],
], ids=["named", "unnamed", "req-logger"])
def test_a_reload_goes_on_without_a_loggers_file(start_server, site, server,
                                                 loggers):
    """A logger's file that cannot be opened at a reload (its folder
    gone) does not end the instance: its lines are dropped, and the file
    is tried again at each line, so that it gets the lines that come once
    the folder is back, as uWSGI's file logger does."""
    (site / "app.py").write_text(PID_APP)
    (site / "logs").mkdir()
    p, port = serve(start_server, server, site, *loggers)
    before = support.get_body(port, "/first")
    wait_in_file(site / "logs" / "said.log", "/first")
    (site / "logs" / "said.log").unlink()
    (site / "logs").rmdir()
    p.send_signal(signal.SIGHUP)
    # The new worker answers: the reload is over.
    support.wait_until(lambda: support.get_body(port, "/probe") != before,
                       what="a worker of the reloaded instance")
    named = loggers[0][1].startswith("s ")
    if named:
        # Its print is dropped before its request line reaches the log.
        support.get_body(port, "/lost")
        p.wait_for_log("(?m)" + request_line("/lost"))
    (site / "logs").mkdir()
    mark = "/found" if loggers[0][0] == "req-logger" else "say /found"
    support.wait_until(
        lambda: support.get_body(port, "/found") and
        (site / "logs" / "said.log").exists() and
        mark in (site / "logs" / "said.log").read_text(),
        what="the line in the file made again")
    assert p.popen.poll() is None
    if named:
        assert "/lost" not in (site / "logs" / "said.log").read_text()
