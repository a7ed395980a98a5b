"""py-tracebacker, beside the real uWSGI: each worker's unix socket tells
the Python stacks of its threads in uWSGI's text, `connect-and-read`
prints them, harakiri logs them, and vacuum removes the files (where
uWSGI leaves them)."""

import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from tests import support
from tests.support import free_port, write_ini
from ugu.vassal import tracebacker

HEADER = "*** uWSGI Python tracebacker output ***\n\n"

# The request parks in stuck_in_here until the test's end.
APP = textwrap.dedent('''
    import threading
    PARKED = threading.Event()

    def stuck_in_here():
        PARKED.wait(60)

    def application(environ, start_response):
        stuck_in_here()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')

GEVENT_APP = APP.replace("import threading", "import gevent.event").replace(
    "threading.Event()", "gevent.event.Event()")


def _instance(start_server, server, tmp_path, *pairs, app=APP):
    port = free_port()
    (tmp_path / "app.py").write_text(app)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"),
        ("py-tracebacker", tmp_path / "tb"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    p.wait_for_log(r"python tracebacker for worker 1 available on "
                   rf"{tmp_path}/tb1\n")
    return p, port


def _park_a_request(port):
    """Send a request whose answer nobody waits for; its socket."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    return sock


def _read(binary, path):
    """What `BINARY --connect-and-read PATH` prints (on stderr)."""
    result = subprocess.run([*binary, "--connect-and-read", str(path)],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    return result.stderr


def _binary(p):
    return support.UGU if p.argv[0] == sys.executable else p.argv[:1]


def _stacks_naming(p, path, function):
    """The tracebacker's text, once it names `function`."""
    return support.wait_until(
        lambda: (text := _read(_binary(p), path)) and
        f"function = {function} " in text and text,
        what=f"{function} in {path}'s stacks")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stacks_name_the_function_a_request_is_in(start_server, tmp_path,
                                                  server):
    """The master comes on by itself; the worker's core 0 is parked in
    stuck_in_here, called by the app's callable, in uWSGI's lines: the
    header, a line a frame, outermost first, a blank line after each
    thread, and nothing of the server's own."""
    p, port = _instance(start_server, server, tmp_path)
    assert "spawned uWSGI master process" in p.output()
    with _park_a_request(port):
        text = _stacks_naming(p, tmp_path / "tb1", "stuck_in_here")
    assert text.startswith(HEADER)
    core = re.escape("thread_id = uWSGIWorker1Core0 filename = ")
    assert re.search(
        rf"(?m)^{core}\S*app\.py lineno = 9 function = application "
        rf"line = stuck_in_here\(\)\n"
        rf"{core}\S*app\.py lineno = 6 function = stuck_in_here "
        rf"line = PARKED\.wait\(60\)\n", text), text
    assert text.endswith("\n\n")
    assert "ugu/" not in text


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_idle_worker_tells_the_header_alone(start_server, tmp_path,
                                               server):
    """An idle core waits in the server, which is C in uWSGI: no thread
    has a frame to show."""
    p, _ = _instance(start_server, server, tmp_path)
    assert _read(_binary(p), tmp_path / "tb1") == HEADER


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_socket_mode_and_vacuum(start_server, tmp_path, server):
    """The file takes chmod-socket's mode.  At the end vacuum removes it
    in ugu, with a line; uWSGI's vacuum leaves it (ugu differs)."""
    p, _ = _instance(start_server, server, tmp_path,
                     ("chmod-socket", "660"), ("vacuum", "true"))
    path = tmp_path / "tb1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    p.stop()
    if server == "ugu":
        assert not path.exists()
        assert f"VACUUM: unix socket {path} (tracebacker) removed." in \
            p.output()
    else:
        assert path.is_socket()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_vacuum_the_file_stays_and_a_reload_binds_it_again(
        start_server, tmp_path, server):
    p, _ = _instance(start_server, server, tmp_path, ("master", "true"))
    path = tmp_path / "tb1"
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"python tracebacker for worker 1 available", count=2)
    assert _read(_binary(p), path) == HEADER
    p.stop()
    assert path.is_socket()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_harakiri_logs_the_stacks_before_the_kill(start_server, tmp_path,
                                                  server):
    p, port = _instance(start_server, server, tmp_path, ("harakiri", 1))
    with _park_a_request(port):
        p.wait_for_log(r"HARAKIRI triggered by worker 1")
    assert re.search(
        r"\*\*\* HARAKIRI ON WORKER 1 .*\n"
        + re.escape(HEADER)
        + r"(?:thread_id = .*\n)*?thread_id = uWSGIWorker1Core0 .* "
          r"function = stuck_in_here line = PARKED\.wait\(60\)\n"
          r"(?:thread_id = .*\n)*\n"
          r".* - HARAKIRI !!! worker 1 status !!!", p.output()), p.output()


@pytest.fixture(params=["ugu", "uwsgi"])
def gevent_server(request):
    if request.param == "uwsgi":
        request.getfixturevalue("uwsgi_gevent_binary")
    return request.param


def test_gevent_shows_the_hub_as_uwsgi_does(start_server, tmp_path,
                                            gevent_server):
    """A gevent worker has one thread, uWSGI's core 0, running the hub
    while the request's greenlet waits: that is what both show."""
    p, port = _instance(start_server, gevent_server, tmp_path,
                        ("gevent", 10), app=GEVENT_APP)
    hub = re.compile(
        re.escape(HEADER) + r"thread_id = uWSGIWorker1Core0 filename = "
        r"\S*/gevent/hub\.py lineno = \d+ function = run "
        r"line = loop\.run\(\)\n\n")
    with _park_a_request(port):
        # Once the hub waits again, the request parked.
        support.wait_until(
            lambda: hub.fullmatch(_read(_binary(p), tmp_path / "tb1")),
            what="the hub alone in the stacks")


def test_a_socket_that_cannot_be_bound_leaves_the_worker_serving(procs,
                                                                 tmp_path):
    port = free_port()
    (tmp_path / "app.py").write_text(
        "def application(e, sr):\n"
        "    sr('200 OK', [])\n"
        "    return [b'ok']\n")
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                  str(tmp_path / "app.py"), "--py-tracebacker",
                  str(tmp_path / "missing" / "tb"))
    # The worker's two lines; the master's spawn line may come between.
    p.wait_for_log(r"bind\(\): No such file or directory "
                   r"\[core/socket.c line 230\]\n")
    p.wait_for_log(r"worker 1 has no tracebacker: py-tracebacker cannot "
                   r"bind")
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"ok")


def test_dump_names_threads_and_leaves_out_ugus_frames():
    """In-process: a thread of the caller's, by its name, from its
    start to where it waits."""
    parked = threading.Event()

    def parked_here():
        parked.wait(30)

    thread = threading.Thread(target=parked_here, name="Parker")
    thread.start()
    try:
        text = support.wait_until(
            lambda: (t := tracebacker.dump()) and "parked_here" in t and t,
            what="the thread parked")
    finally:
        parked.set()
        thread.join()
    ours = [line for line in text.splitlines()
            if line.startswith("thread_id = Parker ")]
    assert ours[0].endswith("function = _bootstrap "
                            "line = self._bootstrap_inner()")
    assert any(line.endswith("function = parked_here "
                             "line = parked.wait(30)") for line in ours)
    assert "ugu/" not in text
