"""The vassal master under pressure: recycling, harakiri, cheaper, gevent,
signals, reload commands and process hygiene, each on a real `ugu`
serving an http-socket on loopback."""

import http.client
import os
import re
import resource
import signal
import socket
import stat
import subprocess
import tempfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import support
from tests.support import read_to_eof
from tests.test_router import read_responses

APP = textwrap.dedent('''
    import os, time
    leak = []

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/sleep":
            # Tells a test that the request is being served.
            open(f"sleeping-{os.getpid()}", "w").close()
            time.sleep(float(environ["QUERY_STRING"] or 5))
        if path == "/leak":
            leak.append(bytearray(20 << 20))
        if path == "/reserve":
            # Address space only: pages never touched stay out of the RSS.
            leak.append(__import__("mmap").mmap(
                -1, int(environ["QUERY_STRING"]) << 20))
        if path == "/boom":
            raise RuntimeError("boom")
        if path == "/gevent-timeout":
            import gevent
            with gevent.Timeout(0.05):
                gevent.sleep(1)
        if path == "/core":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [repr(environ.get("uwsgi.core")).encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
''')


@pytest.fixture
def site():
    # World-readable, so that a worker that dropped root can read the app.
    folder = Path(tempfile.mkdtemp(prefix="ugu-master-"))
    folder.chmod(0o755)
    (folder / "app.py").write_text(APP)
    (folder / "app.py").chmod(0o644)
    yield folder
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir():
            path.rmdir()
        elif path.exists() or path.is_symlink():
            path.unlink()
    folder.rmdir()


@pytest.fixture
def binary(server, request):
    """The server a test parametrized on `server` runs: the real uWSGI's
    binary for "uwsgi", None (ugu) for "ugu"."""
    return request.getfixturevalue("uwsgi_binary") \
        if server == "uwsgi" else None


class Vassal:
    """A started ugu (or the `binary` given: the real uWSGI) with an
    http-socket, and a tiny HTTP client."""

    def __init__(self, procs, site, binary=None, **options):
        self.port = support.free_port()
        pairs = [("strict", "true"), ("master", "true"),
                 ("http-socket", f"127.0.0.1:{self.port}"),
                 ("wsgi-file", "app.py"), ("processes", "2")]
        # A list: the option once per value.
        pairs += [(k.replace("_", "-"), each) for k, v in options.items()
                  for each in (v if isinstance(v, list) else [v])]
        support.write_ini(site / "vassal.ini", uwsgi=pairs)
        if binary:
            self.p = procs.start([binary, "--ini", "vassal.ini"], cwd=site)
        else:
            self.p = procs.ugu("--ini", "vassal.ini", cwd=site)
        self.site = site

    def ready(self, workers=2):
        self.p.wait_for_log(rf"spawned uWSGI worker {workers} ")
        support.wait_for_port(self.port)
        return self

    def get(self, path="/", timeout=10):
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()

    def get_in_background(self, path):
        """GET path in a thread of its own, once the app has begun to
        serve it (its /sleep leaves a file): (thread, {"answer": ...}),
        or {"error": the OSError} where the GET failed."""
        got = {}

        def call():
            try:
                got["answer"] = self.get(path)
            except OSError as e:
                got["error"] = e
        thread = threading.Thread(target=call)
        thread.start()
        support.wait_until(lambda: list(self.site.glob("sleeping-*")), 10,
                           what="the slow request being served")
        return thread, got

    def pid_of_answer(self, path="/"):
        return int(self.get(path)[1])

    def log(self, pattern, **kw):
        return self.p.wait_for_log(pattern, **kw)

    def workers(self):
        return support.children_of(self.p.pid)


def test_harakiri_kills_the_stuck_request_only(procs, site):
    v = Vassal(procs, site, harakiri="1").ready()
    assert " *** WARNING: you have enabled harakiri without post buffering." \
        " Slow upload could be rejected on post-unbuffered webservers *** \n" \
        in v.p.output()
    stuck = {}

    def call():
        started = time.monotonic()
        try:
            stuck["answer"] = v.get("/sleep?30", timeout=20)
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            stuck["error"] = e
        stuck["seconds"] = time.monotonic() - started
    caller = threading.Thread(target=call)
    caller.start()
    line = v.log(r"HARAKIRI \[core 0\] 127\.0\.0\.1 - GET /sleep\?30 "
                 r"since \d+")
    assert line
    assert v.get()[0] == 200
    caller.join(20)
    assert "error" in stuck and stuck["seconds"] < 5
    out = v.p.output()
    assert re.search(r"\*\*\* HARAKIRI ON WORKER \d \(pid: \d+, try: 1, "
                     r"graceful: yes\) \*\*\*", out)
    v.log(r"HARAKIRI triggered by worker \d core 0 !!!")
    v.log(r"DAMN ! worker \d \(pid: \d+\) died, killed by signal 9")
    v.log(r"Respawned uWSGI worker \d \(new pid: \d+\)")
    assert v.get()[0] == 200


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("mode", [{}, {"threads": "2"}, {"gevent": "4"}],
                         ids=["single", "threads", "gevent"])
def test_harakiri_verbose_says_where_core_0_is_stuck(procs, site, server,
                                                     mode, request):
    """Core 0's thread, sleeping in the app: its system call and where
    the kernel sleeps it, right after uWSGI's first harakiri line."""
    if server == "uwsgi":
        fixture = "uwsgi_gevent_binary" if "gevent" in mode else \
            "uwsgi_binary"
        binary = request.getfixturevalue(fixture)
    else:
        binary = None
    if "gevent" in mode:
        # A sleep gevent does not turn into a switch: the process sleeps.
        (site / "app.py").write_text(APP.replace(
            "time.sleep(float(", "__import__('gevent.monkey').monkey."
            "get_original('time', 'sleep')(float("))
    if "gevent" in mode and server == "uwsgi":
        mode = {**mode, "gevent_monkey_patch": "true"}
    v = Vassal(procs, site, binary, processes="1", harakiri="1",
               harakiri_verbose="true", **mode).ready(1)
    if "threads" in mode:
        # Both cores busy, so that core 0 is in the app whichever thread
        # took the first request.
        v.get_in_background("/sleep?30")
        for path in v.site.glob("sleeping-*"):
            path.unlink()
    v.get_in_background("/sleep?30")
    v.log(r"\*\*\* HARAKIRI ON WORKER 1 \(pid: \d+, try: 1, graceful: "
          r"yes\) \*\*\*\nHARAKIRI: -- syscall> \d+ (0x[0-9a-f]+ ?)+\n"
          r"HARAKIRI: -- wchan> hrtimer_nanosleep\n.* - HARAKIRI !!! "
          r"worker 1 status !!!\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("option", [("reload_on_exception", "true"),
                                    ("reload_on_exception_value", "boom"),
                                    ("reload_on_exception_type", "boom")],
                         ids=["any", "value", "type"])
def test_reload_on_exception_ends_the_worker_at_once(procs, site, server,
                                                     option, binary):
    """After the traceback (and ugu's 500, DEVIATIONS 9): no request
    line, and uWSGI's line when the master respawns the worker.  uWSGI
    2.0 matches `-type` against the message too."""
    v = Vassal(procs, site, binary, processes="1", **dict([option])).ready(1)
    first = v.pid_of_answer()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        v.get("/boom")
    v.log(rf"RuntimeError: boom\n(.*\n)?\.\.\. monitored exception "
          rf"detected, respawning worker 1 \(pid: {first}\)\.\.\.\n")
    v.log(r"Respawned uWSGI worker 1 \(new pid: \d+\)")
    assert v.pid_of_answer() != first
    assert "GET /boom =>" not in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_catch_exceptions_page_goes_before_the_worker_ends(procs, site,
                                                           server, request,
                                                           binary):
    v = Vassal(procs, site, binary, processes="1", catch_exceptions="true",
               reload_on_exception="true").ready(1)
    first = v.pid_of_answer()
    with pytest.raises(urllib.error.HTTPError) as raised:
        v.get("/boom")
    assert raised.value.read().startswith(
        b'uWSGI exceptions catcher for "GET /boom" (request plugin: '
        b'"python", modifier1: 0)\n\nException: builtins.RuntimeError: '
        b"boom\n\n")
    v.log(rf"respawning worker 1 \(pid: {first}\)")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_reload_on_exception_type_and_repr_read_the_message(procs, site,
                                                            server, binary):
    v = Vassal(procs, site, binary, processes="1",
               reload_on_exception_type="RuntimeError",
               reload_on_exception_repr="RuntimeError: boom").ready(1)
    first = v.pid_of_answer()
    # ugu's 500 (DEVIATIONS 9), or uWSGI's close.
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        v.get("/boom")
    v.log(r"GET /boom => generated \d+ bytes in \d+ msecs \(HTTP/1\.1 500\)")
    assert v.pid_of_answer() == first
    assert "monitored exception" not in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("lazy", ["false", "true"])
def test_chdir2_moves_each_worker_after_its_app_loads(procs, site, server,
                                                      lazy, binary):
    (site / "sub").mkdir()
    (site / "cwd.py").write_text(
        "import os\nfrom app import application as app\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [os.getcwd().encode()]\n")
    v = Vassal(procs, site, binary, wsgi_file="cwd.py", pythonpath=".",
               chdir2="sub", lazy_apps=lazy).ready()
    assert v.get()[1] == str(site / "sub").encode()
    # Said by each worker.
    v.log(r"chdir\(\) to sub\n", count=2)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_worker_that_cannot_chdir2_dies(procs, site, server, binary):
    v = Vassal(procs, site, binary, processes="1", chdir2="nowhere")
    v.log(r"chdir\(\) to nowhere\nchdir\(\): No such file or directory "
          r"\[core/uwsgi\.c line 3522\]\n")
    v.log(r"DAMN ! worker 1 \(pid: \d+\) died :\( trying respawn \.\.\.")


HARAKIRI_TRY = (r"\*\*\* HARAKIRI ON WORKER 1 \(pid: {pid}, try: {n}, "
                r"graceful: {graceful}\) \*\*\*\n(?:.*\n)*?.* - HARAKIRI: "
                r"graceful termination attempt on worker 1 with signal "
                r"{signum}\. Next harakiri: (\d+)\n.* - HARAKIRI triggered "
                r"by worker 1 core 0 !!!\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("signum", [None, 28], ids=["sigterm", "sigwinch"])
def test_a_graceful_harakiri_signals_then_kills(procs, site, server,
                                                signum, binary):
    """harakiri-graceful-timeout: the first try sends the signal (SIGTERM,
    on which the worker exits; or SIGWINCH, which a worker stuck in the
    app outlives) and moves the deadline on by the timeout; the second
    try kills.  Each try logs the graceful line, as uWSGI's does."""
    options = {"harakiri_graceful_signal": str(signum)} if signum else {}
    v = Vassal(procs, site, binary, processes="1", harakiri="1",
               harakiri_graceful_timeout="2", **options).ready(1)
    caller, got = v.get_in_background("/sleep?30")
    pid = support.children_of(v.p.pid)[0]
    first = v.log(HARAKIRI_TRY.format(pid=pid, n=1, graceful="yes",
                                      signum=signum or 15))
    if signum is None:
        v.log(rf"DAMN ! worker 1 \(pid: {pid}\) died :\( trying respawn")
    else:
        second = v.log(HARAKIRI_TRY.format(pid=pid, n=2, graceful="no",
                                           signum=signum))
        assert int(second[1]) == int(first[1]) + 2
        v.log(rf"DAMN ! worker 1 \(pid: {pid}\) died, killed by signal 9 "
              rf":\( trying respawn")
    caller.join(10)
    assert "error" in got
    assert "try: 3" not in v.p.output()


def test_a_graceful_harakiri_signal_that_is_none_stops_the_start(procs,
                                                                 site):
    v = Vassal(procs, site, harakiri="1", harakiri_graceful_timeout="2",
               harakiri_graceful_signal="99")
    assert v.p.wait() == 1
    assert "option 'harakiri-graceful-signal': 99 is not a signal number " \
        "(SIGTERM is 15)" in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_harakiri_is_the_workers_deadline(procs, site, server, binary):
    """As in uWSGI 2.0: one deadline a worker, pushed back by each request
    that starts and cleared by each that ends, so a slow request outlives
    `harakiri` while the worker's other core serves short ones."""
    v = Vassal(procs, site, binary, processes="1", threads="2",
               harakiri="2").ready(1)
    caller, slow = v.get_in_background("/sleep?4")
    while caller.is_alive():
        assert v.get()[0] == 200
        caller.join(0.25)
    assert slow["answer"][0] == 200
    assert "HARAKIRI" not in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_post_buffering_pushes_harakiri_at_each_read_of_the_body(procs, site,
                                                                 server,
                                                                 binary):
    """Each read of a buffered body pushes the worker's deadline
    `harakiri` seconds further, as uWSGI's inc_harakiri() does: an upload
    slower than `harakiri` leaves the app its time (4 reads, deadline
    10 s after the start) rather than a deadline already past."""
    v = Vassal(procs, site, binary, processes="1", harakiri="2",
               post_buffering="10000").ready(1)
    with socket.create_connection(("127.0.0.1", v.port), timeout=20) as s:
        s.sendall(b"POST /sleep?2.5 HTTP/1.0\r\nContent-Length: 4\r\n\r\n")
        for piece in b"slow":
            # The client's own pace, past the deadline: not a wait.
            time.sleep(0.8)
            s.sendall(bytes([piece]))
        assert read_to_eof(s).split(b"\r\n")[0].endswith(b" 200 OK")
    output = v.p.output()
    assert "HARAKIRI" not in output
    # Start-up, as uWSGI words it: a buffer over the default's size is
    # said, and harakiri is no longer warned about.
    assert "setting request body buffering size to 10000 bytes" in output
    assert "harakiri without post buffering" not in output


def test_no_mercy_is_said_once_a_worker(procs, site):
    v = Vassal(procs, site, processes="1", worker_reload_mercy="1").ready(1)

    caller, got = v.get_in_background("/sleep?30")
    os.kill(v.p.pid, signal.SIGHUP)
    v.log(r"spawned uWSGI worker 1 ", count=2)
    caller.join(10)
    # The killed worker's client is closed on, unanswered.
    assert isinstance(got.get("error"), http.client.RemoteDisconnected)
    assert len(re.findall(r"worker 1 \(pid: \d+\) is taking too much time "
                          r"to die\.\.\.NO MERCY !!!", v.p.output())) == 1


def test_workers_stopped_with_the_master_are_buried(procs, site):
    """Ctrl-C signals the whole group: gevent workers die before the
    master has read its SIGINT, and each still gets its line."""
    v = Vassal(procs, site, gevent="10").ready()
    assert v.get()[0] == 200
    os.killpg(v.p.pgid, signal.SIGINT)
    assert v.p.wait() == 0
    for wid in (1, 2):
        assert re.search(rf"worker {wid} buried after \d+ seconds",
                         v.p.output())
    assert "goodbye to uWSGI." in v.p.output()


def test_an_app_raising_a_base_exception_gets_a_500(procs, site):
    """gevent.Timeout is a BaseException, not an Exception: uWSGI answers
    500 to it, with the app's traceback, as to any other."""
    v = Vassal(procs, site, processes="1", gevent="10").ready(1)
    with pytest.raises(urllib.error.HTTPError) as caught:
        v.get("/gevent-timeout")
    assert caught.value.code == 500
    line = v.log(r"GET /gevent-timeout => generated \d+ bytes in \d+ "
                 r"msecs \(HTTP/1\.1 500\)")
    output = v.p.output()
    assert "gevent.timeout.Timeout: 0.05 seconds" in output
    assert output.index("Timeout: 0.05 seconds") < output.index(line[0])
    assert v.get()[0] == 200


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_gevent_cores_are_taken_from_the_top(procs, site, server, request):
    binary = request.getfixturevalue("uwsgi_gevent_binary") \
        if server == "uwsgi" else None
    v = Vassal(procs, site, binary, processes="1", gevent="10").ready(1)
    assert v.get("/core") == (200, b"9")
    v.log(r"GET /core => .* \(1 switches on core 9\)"
          if server == "ugu" else r"GET /core => .* on core 9\)")


def _req_counts(output):
    """The `req: A/B` of each request log line, in order."""
    return [(int(a), int(b)) for a, b in
            re.findall(r"\|req: (\d+)/(\d+)\]", output)]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_req_counts_the_apps_requests_then_the_instances(procs, site, server,
                                                         binary):
    """`req: A/B` as uWSGI writes it: A the app's requests in this worker,
    B those of every worker, so a second worker's first line is 1/N."""
    v = Vassal(procs, site, binary).ready()
    slow = threading.Thread(target=v.get, args=("/sleep?1",))
    slow.start()
    support.wait_until(lambda: list(site.glob("sleeping-*")), 10,
                       what="the slow request being served")
    for _ in range(3):
        assert v.get()[0] == 200   # the other worker's
    slow.join()
    support.wait_until(lambda: len(_req_counts(v.p.output())) == 4, 5,
                       what="four request lines")
    assert _req_counts(v.p.output()) == [(1, 1), (2, 2), (3, 3), (1, 4)]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_req_counts_the_requests_begun_when_the_line_is_written(
        procs, site, server, request):
    binary = request.getfixturevalue("uwsgi_gevent_binary") \
        if server == "uwsgi" else None
    v = Vassal(procs, site, binary, processes="1", gevent="10",
               gevent_monkey_patch="true").ready(1)
    calls = [threading.Thread(target=v.get, args=("/sleep?1",))
             for _ in range(4)]
    for c in calls:
        c.start()
    support.wait_until(lambda: len(list(site.glob("sleeping-*"))) == 1, 10,
                       what="the slow requests being served")
    for c in calls:
        c.join()
    support.wait_until(lambda: len(_req_counts(v.p.output())) == 4, 5,
                       what="four request lines")
    counts = _req_counts(v.p.output())
    assert [a for a, _ in counts] == [4, 4, 4, 4]
    # uWSGI's gevent mode also counts the readiness probe's empty
    # connection (a line of its own, with req: -1/1), ugu does not.
    first = counts[0][1]
    assert [b for _, b in counts] == [first, first + 1, first + 2, first + 3]


@pytest.mark.parametrize("defer", [True, False])
def test_a_connection_that_sends_nothing_holds_no_core(procs, site, defer):
    """TCP_DEFER_ACCEPT, as uWSGI sets it (for socket-timeout seconds): a
    connection is accepted once it sends, so a silent one does not take
    the only core until its timeout.  no-defer-accept turns it off."""
    options = {} if defer else {"no_defer_accept": "true"}
    v = Vassal(procs, site, processes="1", socket_timeout="3",
               **options).ready(1)
    # Connected (handshake done) before the GET's: first in the queue.
    with socket.create_connection(("127.0.0.1", v.port), timeout=10):
        began = time.monotonic()
        assert v.get()[0] == 200
        waited = time.monotonic() - began
    # Without it the core waits socket-timeout on the silent one first.
    assert waited < 1.5 if defer else waited >= 2


def test_zero_threads_serve_as_one(procs, site):
    v = Vassal(procs, site, processes="1", threads="0").ready(1)
    assert v.get()[0] == 200
    out = v.p.output()
    assert "*** Operational MODE: single process ***" in out
    assert re.search(r"spawned uWSGI worker 1 \(pid: \d+, cores: 1\)", out)
    # uWSGI's order: the mode, then the app loaded in the master.
    assert out.index("*** Operational MODE") < out.index("WSGI app 0 ")


def test_max_requests_recycles_without_a_failure(procs, site):
    v = Vassal(procs, site, max_requests="100",
               min_worker_lifetime="0").ready()
    failures, pids = [], set()

    def client():
        for _ in range(250):
            try:
                status, body = v.get()
                pids.add(int(body))
                if status != 200:
                    failures.append(status)
            except OSError as e:
                failures.append(e)
    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert failures == []
    out = v.p.output()
    done = re.findall(r"\.\.\.The work of process \d+ is done\. Seeya!",
                      out)
    assert len(done) >= 8
    assert re.search(r"worker \d killed successfully \(pid: \d+\)", out)
    assert "DAMN" not in out
    assert len(pids) >= 9


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_max_requests_delta_spares_worker_1(procs, site, binary, server):
    """uWSGI 2.0 adds the delta once per worker before this one."""
    v = Vassal(procs, site, binary, processes="1", max_requests="2",
               max_requests_delta="5", min_worker_lifetime="0").ready(1)
    first = v.pid_of_answer()
    assert v.pid_of_answer() == first
    v.log(rf"\.\.\.The work of process {first} is done\. Seeya!")
    v.log(r"Respawned uWSGI worker 1")
    assert v.pid_of_answer() != first


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_respawned_worker_goes_on_counting(procs, site, binary, server):
    """The app's count in the log line and the statistics live in the
    worker's slot, not in the process: a respawn keeps them."""
    v = Vassal(procs, site, binary, processes="1", max_requests="2",
               min_worker_lifetime="0").ready(1)
    first = v.pid_of_answer()
    v.get()
    v.log(r"Respawned uWSGI worker 1")
    # ugu answers 500 (DEVIATIONS 9), uWSGI closes.
    with pytest.raises(OSError):
        v.get("/boom")
    v.log(r"\|app: 0\|req: 3/3\] .* GET /boom => generated")
    assert v.pid_of_answer() != first
    v.log(r"\|app: 0\|req: 4/4\] ")
    v.p.send_signal(signal.SIGUSR1)
    v.log(r"\tworkers total requests: 4\n")
    v.log(r"\tworker 1 app 0 \[\] requests: 4 exceptions: 1\n")


def test_min_worker_lifetime_gates_max_requests(procs, site):
    v = Vassal(procs, site, max_requests="3", processes="1").ready(1)
    for _ in range(6):
        assert v.get()[0] == 200
    assert "is done. Seeya!" not in v.p.output()


def test_reload_on_rss_recycles_a_leaking_worker(procs, site):
    v = Vassal(procs, site, reload_on_rss="100", processes="1",
               min_worker_lifetime="0").ready(1)
    first = v.pid_of_answer()
    for _ in range(6):
        v.get("/leak")
    v.log(rf"\.\.\.The work of process {first} is done\. Seeya!")
    v.log(rf"worker 1 killed successfully \(pid: {first}\)")
    v.log(r"Respawned uWSGI worker 1")
    assert v.pid_of_answer() != first


def test_max_worker_lifetime(procs, site):
    """As uWSGI: whole seconds past the limit, and a quiet end (no
    'Gracefully killing', no 'killed successfully')."""
    v = Vassal(procs, site, max_worker_lifetime="2", processes="1",
               min_worker_lifetime="1").ready(1)
    v.log(r"worker 1 lifetime reached, it was running for 3 second\(s\)\n"
          r"Respawned uWSGI worker 1 \(new pid: \d+\)\n")
    assert "killed successfully" not in v.p.output()
    assert "Gracefully killing" not in v.p.output()


def test_reload_mercy_leaves_a_graceful_reload_alone(procs, site):
    """uWSGI 2.0's reload-mercy is the Emperor's: a worker finishing its
    request on SIGHUP has worker-reload-mercy (60 s)."""
    v = Vassal(procs, site, processes="1", reload_mercy="1").ready(1)
    caller, slow = v.get_in_background("/sleep?3")
    os.kill(v.p.pid, signal.SIGHUP)
    caller.join(15)
    assert slow["answer"][0] == 200
    assert "NO MERCY" not in v.p.output()


def test_a_worker_sent_sighup_leaves_quietly_and_comes_back(procs, site):
    """As uWSGI: its own line, then the respawn; no 'DAMN', and a worker
    younger than a second is not held back as a fork bomb."""
    v = Vassal(procs, site, processes="1").ready(1)
    [worker] = v.workers()
    os.kill(worker, signal.SIGHUP)
    v.log(rf"Gracefully killing worker 1 \(pid: {worker}\)\.\.\.\n"
          rf"Respawned uWSGI worker 1 \(new pid: \d+\)\n")
    assert "DAMN" not in v.p.output()
    [young] = support.wait_until(
        lambda: [w for w in v.workers() if w != worker], 5,
        what="the new worker")
    os.kill(young, signal.SIGKILL)
    v.log(r"Respawned uWSGI worker 1", count=2)
    assert "respawning too fast" not in v.p.output()
    assert v.get()[0] == 200


def test_respawns_faster_than_processes_are_held_back(procs, site):
    """uWSGI's fork-bomb guard: more respawns than `processes`, each
    within a second of the last, and the next one waits 2 s."""
    v = Vassal(procs, site, processes="1").ready(1)
    for count in range(1, 4):
        [worker] = support.wait_until(v.workers, 5, what="a worker")
        os.kill(worker, signal.SIGKILL)
        v.log(rf"DAMN ! worker 1 \(pid: {worker}\) died", count=1)
        if count < 2:
            v.log(r"Respawned uWSGI worker 1", count=count)
    v.log(r"worker respawning too fast !!! i have to sleep a bit "
          r"\(2 seconds\)\.\.\.")
    assert v.get()[0] == 200


@pytest.mark.parametrize("delay", ["3", "0"])
def test_forkbomb_delay_sets_the_wait(procs, site, delay):
    """forkbomb-delay: the seconds of that wait, as uWSGI says them; 0,
    no wait and no line."""
    v = Vassal(procs, site, processes="1", forkbomb_delay=delay).ready(1)
    for count in range(1, 4):
        [worker] = support.wait_until(v.workers, 5, what="a worker")
        os.kill(worker, signal.SIGKILL)
        v.log(rf"DAMN ! worker 1 \(pid: {worker}\) died", count=1)
        if count < 2 or delay == "0":
            v.log(r"Respawned uWSGI worker 1", count=count)
    if delay == "0":
        assert "respawning too fast" not in v.p.output()
    else:
        v.log(r"worker respawning too fast !!! i have to sleep a bit "
              r"\(3 seconds\)\.\.\.")
    assert v.get()[0] == 200


def test_without_master_the_other_workers_finish_their_requests(procs,
                                                                 site):
    """Worker 1 (the process started) ends on SIGHUP; the workers it
    forked live on, as in uWSGI, and finish what they serve."""
    v = Vassal(procs, site, master="false")
    v.p.wait_for_log(r"spawned uWSGI worker 2 ")
    support.wait_for_port(v.port)
    answers = []
    calls = [threading.Thread(target=lambda t=t: answers.append(
        v.get(f"/sleep?{t}"))) for t in (1, 3)]
    for c in calls:
        c.start()
    support.wait_until(lambda: len(list(site.glob("sleeping-*"))) == 2, 10,
                       what="both requests being served")
    os.kill(v.p.pid, signal.SIGHUP)
    for c in calls:
        c.join(15)
    assert [a[0] for a in answers] == [200, 200]
    others = [p for p in support.group_members(v.p.pgid) if p != v.p.pid]
    for pid in others:
        os.kill(pid, signal.SIGINT)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_full_listen_queue_is_logged_as_uwsgi_logs_it(procs, site, binary,
                                                       server):
    """The line monitoring greps for: the workers do not keep up."""
    v = Vassal(procs, site, binary, processes="1", listen="5").ready(1)
    waiting = []
    try:
        for _ in range(10):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", v.port))
            waiting.append(s)
        for s in waiting:
            support.wait_until(lambda s=s: _sent(s, b"GET /sleep?3 HTTP/1.0"
                                                 b"\r\n\r\n"), 5,
                               what="a connection")
        v.log(r' - \*\*\* uWSGI listen queue of socket "127\.0\.0\.1:'
              rf'{v.port}" \(fd: \d+\) full !!! \(\d+/5\) \*\*\*',
              timeout=10)
    finally:
        for s in waiting:
            s.close()


def _sent(sock, data):
    try:
        return sock.send(data) == len(data)
    except (BlockingIOError, OSError):
        return False


def test_lifetime_floor_must_be_below_ceiling(procs, site):
    v = Vassal(procs, site, max_worker_lifetime="2")
    assert v.p.wait() == 1
    assert "invalid min-worker-lifetime value (10), must be lower than " \
        "max-worker-lifetime (2)" in v.p.output()


def test_cheaper_grows_under_load_and_shrinks_when_idle(procs, site):
    v = Vassal(procs, site, processes="3", cheaper="1",
               cheaper_overload="1").ready(1)
    callers = [threading.Thread(target=v.get, args=("/sleep?3",))
               for _ in range(3)]
    for c in callers:
        c.start()
    v.log(r"spawned uWSGI worker 2 \(pid: \d+, cores: 1\)")
    v.log(r"spawned uWSGI worker 3 \(pid: \d+, cores: 1\)", timeout=10)
    for c in callers:
        c.join()
    v.log(r"uWSGI worker \d cheaped\.", timeout=15)
    v.log(r"uWSGI worker \d cheaped\.", timeout=15, count=2)
    assert re.search(r"worker \d killed successfully \(pid: \d+\)",
                     v.p.output())
    # A cheaped worker says nothing of its own end, as in uWSGI.
    assert "Gracefully killing" not in v.p.output()
    support.wait_until(lambda: len(v.workers()) == 1, 5,
                       what="one worker left")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_reload_on_as_recycles_a_worker_after_its_request(procs, site,
                                                          server, binary):
    v = Vassal(procs, site, binary, reload_on_as="1024", processes="1",
               min_worker_lifetime="0").ready(1)
    first = v.pid_of_answer()
    assert v.get("/reserve?512")[0] == 200
    assert v.pid_of_answer() == first
    assert v.get("/reserve?600")[0] == 200
    v.log(rf"\.\.\.The work of process {first} is done\. Seeya!")
    v.log(rf"worker 1 killed successfully \(pid: {first}\)")
    v.log(r"Respawned uWSGI worker 1")
    assert v.pid_of_answer() != first


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("limit, grow, words", [
    ("evil_reload_on_rss", ["/leak"] * 5, "RSS"),
    ("evil_reload_on_as", ["/reserve?1200"], "ADDRESS SPACE"),
], ids=["rss", "as"])
def test_evil_reload_kills_the_worker_from_the_master(procs, site, server,
                                                      limit, grow, words,
                                                      binary):
    """The master's check, whatever the worker is doing: SIGKILL, then
    the death told as any other, and the respawn."""
    v = Vassal(procs, site, binary, processes="1",
               **{limit: "1024" if "as" in limit else "90"}).ready(1)
    first = v.pid_of_answer()
    for path in grow:
        v.get(path)
    v.log(rf"\*\*\* EVIL RELOAD ON WORKER 1 {words}: \d+ \(pid: {first}\) "
          rf"\*\*\*\n(?:.*\n)*?DAMN ! worker 1 \(pid: {first}\) died, "
          rf"killed by signal 9 :\( trying respawn \.\.\.\n(?:.*\n)*?"
          rf"Respawned uWSGI worker 1 \(new pid: \d+\)\n", timeout=15)
    assert v.pid_of_answer() != first


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_manual_cheaper_moves_on_the_master_fifo(procs, site, server,
                                                 binary):
    fifo = site / "fifo"
    v = Vassal(procs, site, binary, processes="3", cheaper="1",
               cheaper_algo="manual", cheaper_overload="1",
               master_fifo=str(fifo)).ready(1)
    support.wait_until(fifo.exists, 10, what="the master fifo")
    # Overloaded: manual spawns nothing of its own.
    caller, _ = v.get_in_background("/sleep?3")
    caller.join()
    assert "spawned uWSGI worker 2" not in v.p.output()
    with open(fifo, "w") as f:
        f.write("+")
    v.log(r"spawned uWSGI worker 2 \(pid: \d+, cores: 1\)")
    with open(fifo, "w") as f:
        f.write("-")
    v.log(r"worker 1 killed successfully \(pid: \d+\)\n(?:.*\n)*?"
          r"uWSGI worker 1 cheaped\.\n")
    support.wait_until(lambda: len(v.workers()) == 1, 10,
                       what="one worker left")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_backlog_cheaper_follows_the_listen_queue(procs, site, server, binary):
    """Connections waiting behind a slow request spawn a worker; an
    empty queue stops the oldest idle one."""
    v = Vassal(procs, site, binary, processes="2", cheaper="1",
               cheaper_algo="backlog", cheaper_overload="1").ready(1)
    # A busy worker and an empty queue: spare would spawn, backlog not.
    caller, _ = v.get_in_background("/sleep?3")
    caller.join()
    assert "spawned uWSGI worker 2" not in v.p.output()
    for path in v.site.glob("sleeping-*"):
        path.unlink()
    caller, _ = v.get_in_background("/sleep?4")
    waiting = [socket.create_connection(("127.0.0.1", v.port))
               for _ in range(3)]
    for conn in waiting:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
    v.log(r"spawned uWSGI worker 2 \(pid: \d+, cores: 1\)", timeout=10)
    for conn in waiting:
        read_to_eof(conn)
        conn.close()
    caller.join()
    v.log(r"uWSGI worker \d cheaped\.\n", timeout=15)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_busyness_cheaper_grows_under_load_and_shrinks_when_idle(
        procs, site, server, binary):
    """Slow requests keep the workers busy without CPU: workers are
    spawned at the cycles that find them busy, and stopped after
    multiplier cycles without requests, with uWSGI's lines."""
    v = Vassal(procs, site, binary, processes="2", cheaper="1",
               cheaper_algo="busyness", cheaper_overload="1",
               cheaper_busyness_multiplier="1").ready(1)
    v.log(r"\[busyness\] settings: min=25%, max=50%, overload=1, "
          r"multiplier=1, respawn penalty=2\n\[busyness\] backlog alert is "
          r"set to 33 request\(s\), step is 1\n\[busyness\] backlog "
          r"non-zero alert is set to 60 second\(s\)\n(?:.*\n)*?uwsgi socket "
          r"0 bound to TCP address")
    callers = [threading.Thread(target=v.get, args=("/sleep?1.5",))
               for _ in range(2)]
    for c in callers:
        c.start()
    v.log(r"\[busyness\] 1s average busyness is at 100%, will spawn 1 new "
          r"worker\(s\)\n(?:.*\n)*?spawned uWSGI worker 2 ", timeout=10)
    for c in callers:
        c.join()
    v.log(r"\[busyness\] 1s average busyness is at 0%, cheap one of 2 "
          r"running workers\n(?:.*\n)*?uWSGI worker \d cheaped\.\n",
          timeout=10)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_busyness_counts_the_time_of_finished_requests(procs, site, server,
                                                       binary):
    """A worker's busyness over a cycle is the time its requests that
    ended in it took: the workers' running time, as uWSGI's."""
    v = Vassal(procs, site, binary, processes="2", cheaper="1",
               cheaper_initial="2", cheaper_algo="busyness",
               cheaper_overload="1", cheaper_busyness_verbose="true",
               cheaper_busyness_max="99").ready(2)
    v.get("/sleep?0.6")
    v.log(r"\[busyness\] worker nr \d 1s average busyness is at "
          r"(59|6\d)%\n", timeout=5)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_busyness_cheaper_spawns_an_emergency_worker_on_the_queue(
        procs, site, server, binary):
    """Connections waiting behind a slow request, more than the alert:
    a worker at the next check, before any busyness cycle ends."""
    v = Vassal(procs, site, binary, processes="2", cheaper="1",
               cheaper_algo="busyness", cheaper_overload="10",
               cheaper_busyness_backlog_alert="1").ready(1)
    caller, _ = v.get_in_background("/sleep?2")
    waiting = [socket.create_connection(("127.0.0.1", v.port))
               for _ in range(3)]
    for conn in waiting:
        conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
    v.log(r"\[busyness\] [23] requests in listen queue, spawning 1 "
          r"emergency worker\(s\) \(1\)!\n(?:.*\n)*?spawned uWSGI worker 2 ",
          timeout=10)
    for conn in waiting:
        read_to_eof(conn)
        conn.close()
    caller.join()
    assert "average busyness" not in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_cheaper_rss_limit_hard_cheaps_a_worker(procs, site, server, binary):
    """After a request (uWSGI counts a worker's memory from its first),
    the workers together are over the limit: one goes, the last stays."""
    v = Vassal(procs, site, binary, processes="3", cheaper="1",
               cheaper_initial="2", memory_report="true",
               cheaper_rss_limit_soft="1000",
               cheaper_rss_limit_hard="2000").ready(2)
    assert v.get()[0] == 200
    v.log(r"cheaper hard rss memory limit exceeded, cheap one of 2 workers"
          r"\n(?:.*\n)*?worker 1 killed successfully \(pid: \d+\)\n"
          r"(?:.*\n)*?uWSGI worker 1 cheaped\.\n", timeout=15)
    support.wait_until(lambda: len(v.workers()) == 1, 10,
                       what="one worker left")
    assert "cheap one of 1 workers" not in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_unknown_cheaper_algorithm_falls_back_to_spare(procs, site, server,
                                                          binary):
    v = Vassal(procs, site, binary, cheaper_algo="nosuch").ready()
    v.log(r"spawned uWSGI worker 2 \(pid: \d+, cores: 1\)\n(?:.*\n)*?"
          r"unable to find requested cheaper algorithm, falling back to "
          r"spare\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("cheaper, woken", [("0", 3), ("1", 1)],
                         ids=["all", "cheaper"])
def test_cheap_mode_spawns_the_workers_on_the_first_connection(
        procs, site, server, cheaper, woken, binary):
    """Every worker, or the cheaper's floor of them."""
    v = Vassal(procs, site, binary, cheap="true", processes="3",
               cheaper=cheaper)
    v.log(r"spawned uWSGI master process \(pid: \d+\)\n(?:.*\n)*?"
          r"cheap mode enabled: waiting for socket connection\.\.\.\n")
    # The socket is bound by then; a connection to see it would wake the
    # workers.
    assert v.workers() == []
    assert v.get()[0] == 200
    v.log(rf"spawned uWSGI worker {woken} \(pid: \d+, cores: 1\)")
    assert len(v.workers()) == woken


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_idle_goes_back_to_cheap_mode(procs, site, server, binary):
    v = Vassal(procs, site, binary, idle="1").ready()
    assert v.get()[0] == 200
    v.log(r"workers have been inactive for more than 1 seconds "
          r"\((\d+)-(\d+)\)\n(?:.*\n)*?cheap mode enabled: waiting for "
          r"socket connection\.\.\.\n", timeout=15)
    assert v.workers() == []
    assert v.get()[0] == 200
    v.log(r"Respawned uWSGI worker 2 \(new pid: \d+\)")
    assert len(v.workers()) == 2
    # The idle time is counted afresh.
    v.log(r"cheap mode enabled", count=2, timeout=15)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_die_on_idle_ends_the_instance(procs, site, server, binary):
    v = Vassal(procs, site, binary, idle="1", die_on_idle="true").ready()
    assert v.p.wait(timeout=15) == 0
    v.log(r"workers have been inactive for more than 1 seconds "
          r"\(\d+-\d+\)\nSIGINT/SIGTERM received\.\.\.killing workers"
          r"\.\.\.\n(?:.*\n)*?goodbye to uWSGI\.\n")
    assert "cheap mode enabled" not in v.p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_die_on_idle_asks_the_emperor_to_stop_the_vassal(procs, site,
                                                         start_server,
                                                         server):
    (site / "vassals").mkdir()
    support.write_ini(site / "vassals" / "idle.ini", uwsgi=[
        ("master", "true"), ("chdir", str(site)),
        ("http-socket", f"127.0.0.1:{support.free_port()}"),
        ("wsgi-file", "app.py"), ("idle", "1"), ("die-on-idle", "true")])
    emperor = start_server(server, ["--emperor", "vassals/*.ini"], cwd=site)
    emperor.wait_for_log(r"workers have been inactive for more than 1 "
                         r"seconds \(\d+-\d+\)\n(?:.*\n)*?.* - \[emperor\] "
                         r"stop the uwsgi instance vassals/idle\.ini\n",
                         timeout=15)
    emperor.wait_for_log(r"\[emperor\] removed uwsgi instance "
                         r"vassals/idle\.ini\n")


def test_gevent_serves_concurrently_in_one_worker(procs, site):
    v = Vassal(procs, site, processes="1", gevent="10").ready(1)
    v.log(r"\*\*\* running gevent loop engine \[addr:0x[0-9a-f]+\] \*\*\*")
    assert "*** Operational MODE: async ***" in v.p.output()
    assert re.search(r"spawned uWSGI worker 1 \(pid: \d+, cores: 10\)",
                     v.p.output())
    answers = []
    started = time.monotonic()
    calls = [threading.Thread(target=lambda: answers.append(
        v.get("/sleep?1"))) for _ in range(8)]
    for c in calls:
        c.start()
    for c in calls:
        c.join()
    assert len(answers) == 8 and {a[0] for a in answers} == {200}
    assert time.monotonic() - started < 4
    # The app loads in the worker, after gevent patched it.
    worker = v.workers()[0]
    assert re.search(rf"WSGI app 0 .* pid: {worker} \(default app\)",
                     v.p.output())


def test_gevent_keeps_an_idle_keepalive_connection(procs, site):
    """A greenlet is cheap: the connection waits for the client's next
    request (up to socket-timeout), where a thread would close it after
    KEEPALIVE_WAIT and race a client still reading a big response."""
    v = Vassal(procs, site, processes="1", gevent="10",
               socket_timeout="5").ready(1)
    request = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
    with socket.create_connection(("127.0.0.1", v.port), timeout=10) as s:
        s.sendall(request)
        [(first, pid)] = read_responses(s, [b"GET"])
        # The client's pause between requests is the case under test.
        time.sleep(0.5)
        s.sendall(request)
        [(second, same_pid)] = read_responses(s, [b"GET"])
    assert (first.status_code, second.status_code) == (200, 200)
    assert pid == same_pid


def test_gevent_idle_connections_make_room_for_a_new_client(procs, site):
    """Three idle keepalive clients and a slow request take the four
    greenlets: the idle ones close, and a new client is served at once,
    not when the slow request ends or socket-timeout passes."""
    v = Vassal(procs, site, processes="1", gevent="4",
               socket_timeout="30").ready(1)
    request = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
    idle = []
    try:
        for _ in range(3):
            idle.append(socket.create_connection(("127.0.0.1", v.port),
                                                 timeout=10))
            idle[-1].sendall(request)
            read_responses(idle[-1], [b"GET"])
        slow = threading.Thread(target=v.get, args=("/sleep?3",))
        slow.start()
        support.wait_until(lambda: list(v.site.glob("sleeping-*")), 10,
                           what="the slow request being served")
        began = time.monotonic()
        assert v.get(timeout=20)[0] == 200
        assert time.monotonic() - began < 2
        slow.join()
    finally:
        for s in idle:
            s.close()


def test_gevent_reload_does_not_wait_for_idle_connections(procs, site):
    v = Vassal(procs, site, processes="1", gevent="10",
               socket_timeout="30").ready(1)
    with socket.create_connection(("127.0.0.1", v.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        read_responses(s, [b"GET"])
        began = time.monotonic()
        os.kill(v.p.pid, signal.SIGHUP)
        assert s.recv(1) == b""
        assert time.monotonic() - began < 10
    v.log(r"spawned uWSGI worker 1 ", count=2)


def test_lazy_apps_load_in_each_worker(procs, site):
    v = Vassal(procs, site, lazy_apps="true").ready()
    for pid in v.workers():
        v.log(rf"WSGI app 0 \(mountpoint=''\) ready in \d+ seconds on "
              rf"interpreter 0x[0-9a-f]+ pid: {pid} \(default app\)")
    assert v.get()[0] == 200


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_lazy_need_app_stops_the_instance(procs, site, binary, server):
    v = Vassal(procs, site, binary, lazy_apps="true", need_app="true",
               wsgi_file="missing.py")
    assert v.p.wait() == 22
    assert "*** no app loaded. GAME OVER ***" in v.p.output()
    assert re.search(r"OOPS ! failed loading app in worker \d \(pid \d+\)\n"
                     r"(.*\n)*.* - need-app requested, destroying the "
                     r"instance\.\.\.\n", v.p.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_lazy_worker_whose_mount_fails_tries_again(procs, site, binary,
                                                     server):
    v = Vassal(procs, site, binary, lazy_apps="true", processes="1",
               mount="/x=missing.py")
    v.log(r"OOPS ! failed loading app in worker 1 \(pid \d+\) :\( trying "
          r"again\.\.\.\n", count=2)


def test_sigusr1_prints_stats(procs, site):
    v = Vassal(procs, site).ready()
    v.get()
    with pytest.raises(urllib.error.HTTPError):
        v.get("/boom")
    # The counters move once the request is logged, after its answer.
    v.log(r"GET /boom => generated")
    v.log(r"GET / => generated")
    v.p.send_signal(signal.SIGUSR1)
    v.log(r";uWSGI instance configuration")
    v.log(r"\tworkers total requests: 2")
    v.log(r"\tworker 2 app 0 \[\] requests: \d+ exceptions: \d+")
    counts = re.findall(r"\tworker \d app 0 \[\] requests: (\d+) "
                        r"exceptions: (\d+)", v.p.output())
    assert sorted(counts) in ([("0", "0"), ("2", "1")],
                              [("1", "0"), ("1", "1")])


def test_sigusr2_to_a_worker_names_its_request(procs, site):
    v = Vassal(procs, site, processes="1").ready(1)
    caller = threading.Thread(target=v.get, args=("/sleep?2",))
    caller.start()
    worker = v.workers()[0]
    support.wait_until((site / f"sleeping-{worker}").exists, 5,
                       what="the request to start")
    os.kill(worker, signal.SIGUSR2)
    v.log(r"SIGUSR2: --- uWSGI worker 1 \(pid: \d+\) is managing request "
          r"/sleep\?2 since \w{3} \w{3} [ \d]\d [\d:]{8} \d{4} ---")
    caller.join()


def test_touch_reload_files(procs, site):
    for name in ("reload", "workers", "chain"):
        (site / name).write_text("")
    v = Vassal(procs, site, touch_reload="reload",
               touch_workers_reload="workers",
               touch_chain_reload="chain").ready()
    _touch(site / "workers")
    v.log(r"\*\*\* workers has been touched\.\.\. workers reload !!! \*\*\*")
    v.log(r"worker 2 killed successfully", timeout=10)
    _touch(site / "chain")
    v.log(r"\*\*\* chain has been touched\.\.\. chain reload !!! \*\*\*")
    v.log(r"chain next victim is worker 1")
    v.log(r"chain next victim is worker 2", timeout=10)
    v.log(r"chain reloading complete", timeout=10)
    _touch(site / "reload")
    v.log(r"\*\*\* reload has been touched\.\.\. grace them all !!! \*\*\*")
    v.log(r"gracefully \(RE\)spawned uWSGI master process")
    v.log(r"spawned uWSGI worker 2", count=2)
    assert v.get()[0] == 200


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_touch_exec_runs_its_command_and_tells_its_end(procs, site,
                                                      binary, server):
    """Through /bin/sh, its output in the log, its end told as a
    subprocess's; without a command, the file itself is run."""
    (site / "hook").write_text("")
    script = site / "script.sh"
    script.write_text("#!/bin/sh\necho ran-the-file\n")
    script.chmod(0o755)
    v = Vassal(procs, site, binary, processes="1",
               touch_exec=["hook echo touched-$((6 * 7)); exit 3",
                           f"{script}"]).ready(1)
    _touch(site / "hook")
    v.log(r" - \[uwsgi-touch-exec\] running echo touched-\$\(\(6 \* 7\)\); "
          r"exit 3\n(?:.*\n)*?touched-42\n(?:.*\n)*?subprocess \d+ exited "
          r"with code 3\n")
    assert v.pid_of_answer()
    _touch(script)
    v.log(rf" - \[uwsgi-touch-exec\] running {script}\n(?:.*\n)*?"
          rf"ran-the-file\n(?:.*\n)*?subprocess \d+ exited with code 0\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fs_reload_watches_a_directory(procs, site, binary, server):
    """A new entry in the directory: a graceful reload; a path not there
    is said and left out."""
    (site / "watched").mkdir()
    v = Vassal(procs, site, binary, processes="1",
               fs_reload=[str(site / "watched"), str(site / "nosuch")]
               ).ready(1)
    v.log(rf'spawned uWSGI worker 1 .*\n(?:.*\n)*?\[uwsgi-fsmon\] '
          rf'registered monitor for "{site}/watched"\n'
          rf'fsmon_add\(\)/inotify_add_watch\(\): No such file or directory '
          rf'\[core/fsmon\.c line 28\]\n'
          rf'\[uwsgi-fsmon\] unable to register monitor for '
          rf'"{site}/nosuch"\n')
    # Served: uWSGI's young worker can miss the master's signal.
    assert v.get()[0] == 200
    (site / "watched" / "new").write_text("x")
    # The request's line may come between: the worker writes it after
    # its answer.
    v.log(rf' - \[uwsgi-fsmon\] detected event on "{site}/watched"\n'
          rf'(?:.*\n)*?\.\.\.gracefully killing workers\.\.\.\n')
    v.log(r"gracefully \(RE\)spawned uWSGI master process")
    v.log(r"spawned uWSGI worker 1 ", count=2)
    assert v.get()[0] == 200


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fs_brutal_reload_watches_a_file(procs, site, binary, server):
    (site / "brutal").write_text("")
    v = Vassal(procs, site, binary, processes="1",
               fs_brutal_reload=str(site / "brutal")).ready(1)
    v.log(rf'\[uwsgi-fsmon\] registered monitor for "{site}/brutal"\n')
    # Served: uWSGI's young worker can miss the master's signal.
    assert v.get()[0] == 200
    (site / "brutal").write_text("changed")
    # The request's line may come between: the worker writes it after
    # its answer.
    v.log(rf' - \[uwsgi-fsmon\] detected event on "{site}/brutal"\n'
          rf'(?:.*\n)*?\.\.\.brutally killing workers\.\.\.\n')
    v.log(r"gracefully \(RE\)spawned uWSGI master process")
    v.log(r"spawned uWSGI worker 1 ", count=2)
    assert v.get()[0] == 200


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_missing_touch_file_is_said_after_the_spawns(procs, site, binary,
                                                       server):
    v = Vassal(procs, site, binary, http=f"127.0.0.1:{support.free_port()}",
               touch_reload="later")
    v.log(r"spawned uWSGI worker 2 .*\n(?:.*\n)*unable to stat\(\) later, "
          r"events will be triggered as soon as the file is created\n")
    log = v.p.output()
    assert log.index("spawned uWSGI http 1") < log.index("unable to stat")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_chain_waits_for_each_replacement_to_accept(procs, site, binary,
                                                    server):
    """As uWSGI: the chain moves on once the old worker is gone, and
    waits, saying so, while its replacement loads (lazily, slowly)."""
    (site / "slow.py").write_text("import time\ntime.sleep(2)\n"
                                  "from app import application\n")
    (site / "chain").write_text("")
    v = Vassal(procs, site, binary, lazy_apps="true", wsgi_file="slow.py",
               pythonpath=".", touch_chain_reload="chain").ready()
    assert v.get()[0] == 200
    support.wait_until(lambda: v.p.output().count("WSGI app 0") == 2, 20,
                       what="both workers' apps")
    _touch(site / "chain")
    v.log(r"chain is still waiting for worker 1\.\.\.", timeout=20)
    _touch(site / "chain", ahead=10)
    v.log(r"\*\*\* chain has been touched\.\.\. but chain reload is "
          r"already running \*\*\*")
    v.log(r"chain next victim is worker 2", timeout=20)
    v.log(r"chain reloading complete", timeout=20)
    log = v.p.output()
    assert log.count("chain reload !!!") == 1
    respawned = log.index("Respawned uWSGI worker 1")
    waiting = log.index("chain is still waiting for worker 1...")
    assert respawned < waiting < log.index("chain next victim is worker 2")


def _touch(path, ahead=5):
    """A new mtime, `ahead` seconds from now: a second touch a moment
    later must differ in whole seconds, as uWSGI compares them."""
    later = time.time() + ahead
    os.utime(path, (later, later))


def test_master_fifo_commands(procs, site):
    v = Vassal(procs, site, master_fifo="fifo").ready()
    fifo = site / "fifo"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    _write_fifo(fifo, "w")
    v.log(r"worker 1 killed successfully")
    v.log(r"worker 2 killed successfully")
    _write_fifo(fifo, "c")
    v.log(r"chain reload starting\.\.\.")
    v.log(r"chain reloading complete", timeout=10)
    _write_fifo(fifo, "s")
    v.log(r"workers total requests")
    _write_fifo(fifo, "r")
    v.log(r"gracefully \(RE\)spawned uWSGI master process")
    support.wait_for_port(v.port)
    v.log(r"spawned uWSGI worker 2", count=2)
    _write_fifo(fifo, "q")
    v.log(r"graceful shutdown triggered\.\.\.")
    assert v.p.wait() == 0


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fifo_w_kills_the_workers_and_respawns_them(procs, site, binary,
                                                    server):
    """uWSGI's brutal workers reload: each worker named, interrupted,
    reported dead as any worker, and respawned."""
    v = Vassal(procs, site, binary, processes="1",
               master_fifo="fifo").ready(1)
    [worker] = v.workers()
    # Once it serves: uWSGI's worker loses a SIGINT that comes while it
    # is still starting.
    assert v.get()[0] == 200
    _write_fifo(site / "fifo", "W")
    v.log(rf" - killing worker 1 \(pid: {worker}\)\n")
    v.log(rf"DAMN ! worker 1 \(pid: {worker}\) died :\( trying respawn "
          r"\.\.\.\n")
    v.log(r"Respawned uWSGI worker 1 \(new pid: \d+\)")
    assert v.get()[0] == 200


def _write_fifo(path, letters):
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, letters.encode())
    os.close(fd)


def test_unix_socket_pidfile_vacuum_chmod(procs, site):
    sock = site / "app.sock"
    pidfile = site / "app.pid"
    support.write_ini(site / "unix.ini", uwsgi=[
        ("master", "true"), ("socket", str(sock)), ("chmod-socket", "1"),
        ("wsgi-file", "app.py"), ("pidfile", str(pidfile)),
        ("vacuum", "true")])
    p = procs.ugu("--ini", "unix.ini", cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    assert int(pidfile.read_text()) == p.pid
    assert stat.S_IMODE(sock.stat().st_mode) == 0o666
    assert "chmod() socket to 666 for lazy and brave users" in p.output()
    raw = _uwsgi_over_unix(str(sock))
    assert raw.startswith(b"HTTP/1.1 200 OK")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    assert p.output().count("writing pidfile to") == 1
    p.send_signal(signal.SIGINT)
    assert p.wait() == 0
    assert "VACUUM: pidfile removed." in p.output()
    assert f"VACUUM: unix socket {sock} removed." in p.output()
    assert not sock.exists() and not pidfile.exists()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_chmod_socket_acts_and_speaks_as_each_socket_binds(procs, site, binary,
                                                           server):
    """Said only for the lazy 666, before the bind line; not again for
    the sockets a reload inherits."""
    lazy, strict = site / "lazy.sock", site / "strict.sock"
    ini = support.write_ini(site / "unix.ini", uwsgi=[
        ("master", "true"), ("socket", str(lazy)), ("chmod-socket", "1"),
        ("wsgi-file", "app.py")])
    argv = [binary] if binary else support.UGU
    p = procs.start([*argv, "--ini", ini.name], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    p.wait_for_log(rf"chmod\(\) socket to 666 for lazy and brave users\n"
                   rf"uwsgi socket 0 bound to UNIX address {lazy} fd")
    assert stat.S_IMODE(lazy.stat().st_mode) == 0o666
    # A request first: a uWSGI worker can lose a signal during start-up.
    assert _uwsgi_over_unix(str(lazy)).startswith(b"HTTP/1.1 200 OK")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    p.wait_for_log(r"spawned uWSGI worker 1", count=2)
    assert p.output().count("chmod() socket") == 1
    p.stop()
    support.write_ini(ini, uwsgi=[
        ("master", "true"), ("socket", str(strict)), ("chmod-socket", "640"),
        ("wsgi-file", "app.py")])
    p = procs.start([*argv, "--ini", ini.name], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    assert stat.S_IMODE(strict.stat().st_mode) == 0o640
    assert "chmod()" not in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_master_worker_1_vacuums_at_its_end(procs, site, binary,
                                                    server):
    sock, pidfile = site / "app.sock", site / "app.pid"
    support.write_ini(site / "unix.ini", uwsgi=[
        ("socket", str(sock)), ("wsgi-file", "app.py"),
        ("pidfile", str(pidfile)), ("vacuum", "true")])
    argv = [binary] if binary else support.UGU
    p = procs.start([*argv, "--ini", "unix.ini"], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1 \(and the only\)")
    assert _uwsgi_over_unix(str(sock)).startswith(b"HTTP/1.1 200 OK")
    p.send_signal(signal.SIGINT)
    assert p.wait() == 30
    p.wait_for_log(rf"VACUUM: pidfile removed\.\n"
                   rf"VACUUM: unix socket {sock} removed\.\n")
    assert not sock.exists() and not pidfile.exists()


def test_vacuum_spares_a_socket_another_process_bound_since(procs, site):
    """As uWSGI: the path's inode is no longer the one bound, so the file
    belongs to someone else now."""
    sock = site / "app.sock"
    support.write_ini(site / "unix.ini", uwsgi=[
        ("master", "true"), ("socket", str(sock)), ("wsgi-file", "app.py"),
        ("vacuum", "true")])
    p = procs.ugu("--ini", "unix.ini", cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    sock.unlink()
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(sock))
        p.send_signal(signal.SIGINT)
        assert p.wait() == 0
        assert sock.exists()
    assert f"VACUUM WARNING: unix socket {sock} changed inode. Skip " \
        f"removal" in p.output()


def _uwsgi_over_unix(path):
    from ugu import protocol
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/"),
             ("PATH_INFO", "/"), ("SERVER_PROTOCOL", "HTTP/1.1")]
    packet = protocol.encode([(k.encode(), v.encode()) for k, v in pairs])
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(packet)
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


@pytest.mark.parametrize("die_on_term", [False, True])
def test_term_and_quit_swap_with_die_on_term(procs, site, die_on_term):
    """TERM reloads brutally and QUIT stops; die-on-term swaps them."""
    v = Vassal(procs, site, die_on_term=str(die_on_term).lower()).ready()
    reload_by, stop_by = (signal.SIGQUIT, signal.SIGTERM) if die_on_term \
        else (signal.SIGTERM, signal.SIGQUIT)
    v.p.send_signal(reload_by)
    v.log(r"binary reloading uWSGI")
    v.ready()
    assert v.get()[0] == 200
    v.p.send_signal(stop_by)
    assert v.p.wait() == 0
    assert "goodbye to uWSGI." in v.p.output()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop it")
def test_uid_gid_drop_to_nobody(procs, site):
    """Dropped before the sockets are bound, as uWSGI: they belong to
    the user the workers run as."""
    # pytest's folders are root's alone: nobody binds in one of its own.
    with tempfile.TemporaryDirectory(dir="/tmp") as shared:
        os.chmod(shared, 0o777)
        path = os.path.join(shared, "w.sock")
        v = Vassal(procs, site, uid="nobody", gid="nogroup",
                   socket=path).ready()
        out = v.p.output()
        assert out.index("setgid() to 65534") < \
            out.index("setuid() to 65534") < out.index("bound to UNIX")
        assert os.stat(path).st_uid == 65534
        for pid in [v.p.pid, *v.workers()]:
            status = Path(f"/proc/{pid}/status").read_text()
            assert re.search(r"^Uid:\t65534\t", status, re.M)
            assert re.search(r"^Gid:\t65534\t", status, re.M)
        assert v.get()[0] == 200
        v.p.stop()


def test_process_titles(procs, site):
    v = Vassal(procs, site, procname_prefix="pfx-").ready()
    assert _cmdline(v.p.pid) == "pfx-uWSGI master"
    _wait_for_titles(v, ["pfx-uWSGI worker 1", "pfx-uWSGI worker 2"])


def test_explicit_procnames(procs, site):
    v = Vassal(procs, site, procname="busy", procname_master="boss").ready()
    assert _cmdline(v.p.pid) == "boss"
    _wait_for_titles(v, ["busy", "busy"])


# (options, the master's title, its children's), as uWSGI names them:
# any procname option turns auto-procname on, `procname` names every
# process (the router too), `procname-append` ends every name.
PROCNAMES = [
    ({"procname_master": "boss", "procname_append": "+a"}, "boss+a",
     ["uWSGI http 1+a", "uWSGI worker 1+a", "uWSGI worker 2+a"]),
    ({"procname": "busy", "procname_prefix_spaced": "my"}, "my busy",
     ["my busy", "my busy", "my busy"]),
]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("options, master, children", PROCNAMES)
def test_procname_options(procs, site, binary, server, options, master,
                          children):
    v = Vassal(procs, site, binary, http=f"127.0.0.1:{support.free_port()}",
               **options).ready()
    _wait_for_titles(v, children)
    assert _cmdline(v.p.pid) == master


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_master_worker_1_keeps_its_command_line(procs, site,
                                                        binary, server):
    """uWSGI names the processes it forks, and worker 1 is not one."""
    v = Vassal(procs, site, binary, master="false",
               auto_procname="true").ready()
    _wait_for_titles(v, ["uWSGI worker 2"])
    assert _cmdline(v.p.pid).endswith("--ini vassal.ini")


def _wait_for_titles(vassal, expected):
    """A worker carries its master's title from fork until it names
    itself: wait for the names, not for an instant."""
    support.wait_until(
        lambda: sorted(_cmdline(pid) for pid in vassal.workers())
        == expected, 5, what=f"worker titles {expected}")


def _cmdline(pid):
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    return raw.replace(b"\0", b" ").decode().strip()


@pytest.mark.parametrize("options", [{}, {"no_orphans": "true"}],
                         ids=["default", "no-orphans"])
def test_master_sigkill_takes_every_worker_within_2s(procs, site, options):
    """Always, as uWSGI's no-orphans does (which ugu accepts for it)."""
    v = Vassal(procs, site, processes="3", threads="2", **options).ready(3)
    threading.Thread(target=_ignore_errors, args=(v.get, "/sleep?5"),
                     daemon=True).start()
    workers = v.workers()
    assert len(workers) == 3
    v.p.send_signal(signal.SIGKILL)
    support.wait_until(lambda: not any(_alive(p) for p in workers), 2,
                       what="workers to die with their master")


def _ignore_errors(fn, *args):
    try:
        fn(*args)
    except OSError:
        pass


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except OSError:
        return False
    return state.split()[0] != "Z"


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_master_harakiri_ends_the_worker_itself(procs, site,
                                                         binary, server):
    v = Vassal(procs, site, binary, master="false", processes="1",
               harakiri="1").ready(workers=1)
    assert v.get()[0] == 200
    with pytest.raises(http.client.RemoteDisconnected):
        v.get("/sleep?5")
    assert v.p.wait() == 0
    v.log(rf"\n\nKilling the current process \(pid: {v.p.pid} app_id: 0\)"
          r"\.\.\.\n\*\*\* if you want your workers to be automatically "
          r"respawned consider enabling the uWSGI master process \*\*\*\n")


@pytest.mark.parametrize("option", ["touch-reload", "touch-workers-reload",
                                    "touch-chain-reload", "master-fifo"])
def test_options_that_need_the_master_turn_it_on(procs, site, option):
    v = procs.ugu("--http-socket", f"127.0.0.1:{support.free_port()}",
                  "--wsgi-file", "app.py", f"--{option}",
                  str(site / "watched"), cwd=site)
    v.wait_for_log(r"spawned uWSGI master process")
    v.wait_for_log(r"spawned uWSGI worker 1 ")


def test_without_master_max_worker_lifetime_is_accepted(procs, site):
    """As by uWSGI: only a master would enforce it, and none is asked."""
    v = Vassal(procs, site, master="false", processes="1",
               min_worker_lifetime="1", max_worker_lifetime="2").ready(1)
    assert v.get()[0] == 200
    assert "spawned uWSGI master" not in v.p.output()


class Load:
    """`clients` threads sending GET / on fresh connections until stopped;
    every outcome is counted, with the phase it happened in."""

    def __init__(self, vassal, clients=20):
        self.vassal = vassal
        self.phase = "warmup"
        self.counts = {}
        self.errors = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._client, daemon=True)
                        for _ in range(clients)]

    def _client(self):
        while not self.stopping.is_set():
            started = self.phase
            try:
                status = self.vassal.get(timeout=15)[0]
                outcome = "5xx" if status >= 500 else "ok"
            except urllib.error.HTTPError as e:
                outcome = "5xx" if e.code >= 500 else "ok"
            except (OSError, http.client.HTTPException) as e:
                outcome = "error"
                self.errors.append((self.phase, repr(e)))
            # A failure belongs to the phase it happened in: its end.  The
            # phase after the kills holds only requests begun after them
            # (the last victim's request may fail once that phase began).
            phase = self.phase
            if phase == "after" and started != "after":
                phase = started
            with self.lock:
                key = (phase, outcome)
                self.counts[key] = self.counts.get(key, 0) + 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(20)

    def count(self, phase, outcome):
        return self.counts.get((phase, outcome), 0)


def test_reloads_and_kills_under_load(procs, site):
    v = Vassal(procs, site, processes="4").ready(4)
    with Load(v) as load:
        support.wait_until(lambda: load.count("warmup", "ok") > 50, 10,
                           what="the load to start")
        load.phase = "sighup"
        for n in range(1, 6):
            v.p.send_signal(signal.SIGHUP)
            v.log(r"gracefully \(RE\)spawned uWSGI master process", count=n)
            v.log(r"spawned uWSGI worker 4 ", count=n + 1)
            support.wait_until(lambda: len(v.workers()) == 4, 10,
                               what="four workers")
        load.phase = "kill9"
        for n in range(1, 6):
            os.kill(v.workers()[0], signal.SIGKILL)
            v.log(r"Respawned uWSGI worker \d", count=n)
        load.phase = "after"
        support.wait_until(lambda: load.count("after", "ok") > 50, 10,
                           what="answers after the kills")
    print(f"\nload figures: {sorted(load.counts.items())} {load.errors}")
    # The load ran through the reloads (its pace is the machine's).
    assert load.count("sighup", "ok") > 20
    assert load.count("sighup", "error") == 0
    assert load.count("sighup", "5xx") == 0
    # One core per worker: a kill -9 loses at most its one request.
    assert load.count("kill9", "error") <= 5
    assert load.count("kill9", "5xx") == 0
    assert load.count("after", "error") == 0


# -- socket lines, as uWSGI logs them -------------------------------------

SOCKET_LINE = re.compile(r"^(uWSGI http bound|uwsgi socket \d|closing all "
                         r"non-uwsgi|found fd|binary reloading|running "
                         r"|\*\*\* Starting uWSGI).*$", re.M)


def socket_lines(procs, site, argv, options, reload):
    """The socket lines of a start (and of a reload by SIGTERM, uWSGI's
    brutal one), each `{NAME}` in `options` a free port, those ports and
    the descriptor numbers named in the text."""
    ports = {name: support.free_port() for name in ("A", "B")}
    server = procs.start([*argv, "--master", "--wsgi-file", "app.py",
                          *(o.format(**ports) for o in options)], cwd=site)
    server.wait_for_log(r"spawned uWSGI worker 1")
    if reload:
        # Once the worker serves: uWSGI's master waits out the mercy
        # period for a worker signalled before it is ready.
        support.wait_for_port(ports["B"])
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['B']}/",
                                    timeout=10) as answer:
            assert answer.status == 200
        server.send_signal(signal.SIGTERM)
        server.wait_for_log(r"uwsgi socket 1 inherited INET address")
    text = "\n".join(m[0] for m in SOCKET_LINE.finditer(server.output()))
    for name, port in ports.items():
        text = text.replace(f":{port}", f":{name}")
    # The order of the lines, not the binary's path or its banner.
    text = re.sub(r"(?m)^(running|\*\*\* Starting uWSGI) .*$", r"\1",
                  text)
    return re.sub(r"fd \d+", "fd N", text)


@pytest.mark.parametrize("options, reload", [
    (["--socket", "127.0.0.1:{A}", "--http-socket", "127.0.0.1:{B}"], True),
    (["--http-socket", "127.0.0.1:{A}", "--http", "127.0.0.1:{B}"], False),
    (["--http", "127.0.0.1:{A}"], False),
], ids=["reload", "router-first", "port-auto-assigned"])
def test_socket_lines_are_uwsgis(procs, site, uwsgi_binary, options,
                                 reload):
    theirs = socket_lines(procs, site, [uwsgi_binary], options, reload)
    ours = socket_lines(procs, site, support.UGU, options, reload)
    # uWSGI's own socket for a router without http-to takes a free port.
    auto = r"127\.0\.0\.1:\d+ \(port auto-assigned\)"
    assert re.sub(auto, "AUTO", ours) == re.sub(auto, "AUTO", theirs)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_umask_shapes_the_files_and_sockets_the_instance_makes(
        procs, site, binary, server):
    """A unix socket without chmod-socket and the pidfile take the modes
    the umask leaves them; thunder-lock, which ugu's accept already
    does, is taken too."""
    sock, pidfile = site / "app.sock", site / "app.pid"
    ini = support.write_ini(site / "umask.ini", uwsgi=[
        ("master", "true"), ("umask", "0027"), ("thunder-lock", "true"),
        ("socket", str(sock)), ("pidfile", str(pidfile)),
        ("wsgi-file", "app.py")])
    argv = [binary] if binary else support.UGU
    p = procs.start([*argv, "--ini", ini.name], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    assert _uwsgi_over_unix(str(sock)).startswith(b"HTTP/1.1 200 OK")
    assert stat.S_IMODE(sock.stat().st_mode) == 0o750
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o640


@pytest.mark.parametrize("value", ["22", "0o22", "099", "u=rwx"])
def test_a_umask_that_is_not_octal_digits_is_refused(tmp_path, value):
    """uWSGI reads such a value as a mask of its own making (or 0, so
    world-writable files): ugu stops instead."""
    said = refused_start(tmp_path / "umask.ini", (
        f"[uwsgi]\nmaster = true\nsocket = {tmp_path}/s.sock\n"
        f"umask = {value}\n"))
    assert (f"umask.ini:4: option 'umask': invalid umask: {value} (write "
            f"three octal digits, as 022)" in said)


def refused_start(ini, text):
    """What ugu says when `text` in the INI file `ini` stops its start."""
    ini.write_text(text)
    done = subprocess.run([*support.UGU, "--ini", str(ini)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    return done.stderr


def test_a_listen_queue_over_somaxconn_is_refused(tmp_path):
    """As uWSGI: the kernel would cut it without a word."""
    limit = int(Path("/proc/sys/net/core/somaxconn").read_text())
    said = refused_start(tmp_path / "big.ini", (
        f"[uwsgi]\nmaster = true\nlisten = {limit + 1}\n"
        f"http-socket = 127.0.0.1:{support.free_port()}\n"))
    assert (f"big.ini:3: option 'listen': Listen queue size is greater "
            f"than the system max net.core.somaxconn ({limit})" in said)


@pytest.mark.parametrize("value", ["", "0660", "rw"])
def test_a_chmod_value_uwsgi_refuses_is_refused(tmp_path, value):
    said = refused_start(tmp_path / "sock.ini", (
        f"[uwsgi]\nmaster = true\nsocket = {tmp_path}/s.sock\n"
        f"chmod-socket = {value}\n"))
    assert (f"sock.ini:4: option 'chmod-socket': invalid chmod value: "
            f"{value} (write three octal digits" in said)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("limit, refused", [("1234", False),
                                            ("99999999", True)])
def test_max_fd_sets_the_open_files_limit(procs, site, server, limit,
                                          refused, binary):
    """For the workers too; a limit the kernel refuses is said, and the
    start goes on with the old one."""
    (site / "limits.py").write_text(
        "import resource\n"
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [repr(resource.getrlimit(resource.RLIMIT_NOFILE))"
        ".encode()]\n")
    before = repr(resource.getrlimit(resource.RLIMIT_NOFILE)).encode()
    v = Vassal(procs, site, binary, wsgi_file="limits.py",
               max_fd=limit).ready()
    said = "setrlimit(): Operation not permitted [core/uwsgi.c line 2710]"
    assert (said in v.p.output()) == refused
    assert v.get()[1] == (before if refused else f"({limit}, {limit})"
                          .encode())


@pytest.mark.parametrize("skip", [False, True], ids=["taken", "skip-zero"])
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_skip_zero_leaves_a_listening_stdin_alone(procs, site, server, skip,
                                                  request):
    """A listening socket as stdin is one more socket of the instance,
    served as the others; skip-zero: it is not looked at (no line, and
    nothing on it is answered)."""
    argv = support.UGU if server == "ugu" else [
        request.getfixturevalue("uwsgi_binary")]
    port = support.free_port()
    with socket.create_server(("127.0.0.1", 0)) as stdin:
        stdin_port = stdin.getsockname()[1]
        p = procs.start([*argv, "--master", "--wsgi-file", "app.py",
                         "--http-socket", f"127.0.0.1:{port}",
                         *(["--skip-zero"] if skip else [])],
                        cwd=site, stdin=stdin)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    line = (f"uwsgi socket 1 inherited INET address 127.0.0.1:{stdin_port} "
            f"fd 0")
    assert (line in p.output()) is not skip
    if not skip:
        # uwsgi, the default protocol.
        assert b" 200 " in support.uwsgi_request(stdin_port, "/")


EXITING_APP = textwrap.dedent('''
    import atexit, os, sys
    import uwsgi

    atexit.register(lambda: print("the app's atexit ran", flush=True))

    def handler(signum):
        sys.exit(4)

    uwsgi.register_signal(17, "worker", handler)

    def application(environ, start_response):
        path, query = environ["PATH_INFO"], environ["QUERY_STRING"]
        if path == "/exit":
            sys.exit(int(query) if query.isdigit() else query)
        if path == "/interrupt":
            raise KeyboardInterrupt
        if path == "/signal":
            uwsgi.signal(17)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
''')


def exiting_vassal(procs, site, binary, threads):
    (site / "app.py").write_text(EXITING_APP)
    return Vassal(procs, site, binary, processes="1",
                  threads=threads).ready(1)


def respawned_after(v, pid):
    """The worker that replaced `pid`, once it answers."""
    new = int(v.log(rf"DAMN ! worker 1 \(pid: {pid}\) died :\( trying "
                    rf"respawn \.\.\.\n(?:.*\n)*?Respawned uWSGI worker 1 "
                    rf"\(new pid: (\d+)\)").group(1))
    assert support.wait_until(lambda: v.pid_of_answer() == new, 15,
                              what="the new worker answering")
    return new


# A threaded uWSGI worker at times hangs in its interpreter's end instead
# of exiting (in most runs here): ugu's is compared where uWSGI's ends.
EXITING = [("ugu", "1"), ("ugu", "2"), ("uwsgi", "1")]


@pytest.mark.parametrize("server,threads", EXITING)
def test_an_app_that_raises_system_exit_ends_its_worker(
        procs, site, binary, server, threads):
    """As CPython's exception printing does under uWSGI: the app's atexit
    functions, the exit, and the master's respawn; the request is not
    answered, nor logged.  A worker left without the core that raised
    it used to stay, and never answered again."""
    v = exiting_vassal(procs, site, binary, threads)
    pid = v.pid_of_answer()
    with pytest.raises(OSError):
        v.get("/exit?3")
    pid = respawned_after(v, pid)
    with pytest.raises(OSError):
        v.get("/exit?goodbye")
    respawned_after(v, pid)
    out = v.p.output()
    assert out.count("the app's atexit ran\n") == 2
    assert "\ngoodbye\n" in out
    assert "GET /exit" not in out


@pytest.mark.parametrize("server,threads", EXITING)
def test_a_signal_handler_that_raises_system_exit_ends_its_worker(
        procs, site, binary, server, threads):
    v = exiting_vassal(procs, site, binary, threads)
    pid = v.pid_of_answer()
    try:
        v.get("/signal")
    except (OSError, http.client.HTTPException):
        # The handler may run on the core that sent the signal, before
        # the answer is whole.
        pass
    respawned_after(v, pid)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_keyboard_interrupt_the_app_raises_is_its_failure(
        procs, site, binary, server):
    """uWSGI prints it as any other exception: the worker serves on."""
    v = exiting_vassal(procs, site, binary, "1")
    pid = v.pid_of_answer()
    with pytest.raises(OSError) as failed:
        v.get("/interrupt")
    if server == "ugu":
        # uWSGI closes unanswered (ugu's 500: DEVIATIONS 9).
        assert isinstance(failed.value, urllib.error.HTTPError)
        assert failed.value.code == 500
    v.log(r"\nKeyboardInterrupt\n")
    v.log(r"GET /interrupt => generated \d+ bytes in \d+ msecs "
          r"\(HTTP/1\.1 500\)")
    assert v.pid_of_answer() == pid


HOGGING_APP = textwrap.dedent('''
    import os, threading, time
    import uwsgi

    held = []

    def hog():
        # A regular file's: gevent's os.close, which a gevent worker
        # patches in, closes a device's only at its loop's next turn.
        try:
            while True:
                held.append(os.open(__file__, os.O_RDONLY))
        except OSError:
            pass

    def hog_for_a_while(connection):
        # Once /hog's connection has closed (no other descriptor frees):
        # every descriptor, a file that tells the test so, and the one
        # the file took, until the test has seen the failed accept and
        # says so with a file of its own (20 s at most).
        while True:
            try:
                os.fstat(connection)
            except OSError:
                break
            time.sleep(0.01)
        hog()
        os.close(held.pop())
        open("hogged", "w").close()
        hog()
        deadline = time.monotonic() + 20
        while not os.path.exists("release") and time.monotonic() < deadline:
            time.sleep(0.01)
        while held:
            os.close(held.pop())

    def application(environ, start_response):
        if environ["PATH_INFO"] == "/hog":
            threading.Thread(target=hog_for_a_while,
                             args=(uwsgi.connection_fd(),)).start()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(held)).encode()]
''')


@pytest.mark.parametrize("cores", [{"threads": "2"}, {"gevent": "10"}],
                         ids=["threads", "gevent"])
def test_a_worker_out_of_descriptors_says_so_once_and_serves_after(
        procs, site, cores):
    """A connection that comes while the app holds every descriptor: the
    failed accept is said once, not at every try of a core that spins
    (nor as a traceback of gevent's server at each of its tries), and the
    connection is served once the app lets them go."""
    (site / "app.py").write_text(HOGGING_APP)
    v = Vassal(procs, site, processes="1", **cores).ready(1)
    v.get("/hog")
    support.wait_until(lambda: (site / "hogged").exists(), 10,
                       what="the app holding every descriptor")
    line = ("accept(): Too many open files (a connection waits; `max-fd` "
            "or `ulimit -n` sets how many files a worker may open)")
    with socket.create_connection(("127.0.0.1", v.port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        v.log(re.escape(line))
        (site / "release").touch()
        assert support.read_to_eof(s).startswith(b"HTTP/1.0 200 OK")
    assert v.p.output().count(line) == 1
