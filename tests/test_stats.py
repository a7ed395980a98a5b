"""The stats server (`stats`): one JSON document per connection, as
uWSGI's master serves it, read the way uwsgitop reads it (connect, read
to EOF)."""

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import textwrap
import threading

import pytest

from tests.support import (UGU, free_port, uwsgi_request, wait_for_port,
                           wait_until, write_ini)

APP = textwrap.dedent('''\
    def application(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("boom")
        if environ["PATH_INFO"] == "/wait":
            # The client sends no body: the core waits on it.
            environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]
''')
HTTP_HEAD = (b"HTTP/1.0 200 OK\r\nConnection: close\r\n"
             b"Access-Control-Allow-Origin: *\r\n"
             b"Content-Type: application/json\r\n\r\n")
ENABLED = r"\*\*\* Stats server enabled on {} fd: \d+ \*\*\*"


def read_stats(address, request=b""):
    """What a client gets: connect, send `request` if any, read to EOF."""
    if isinstance(address, int):
        sock = socket.create_connection(("127.0.0.1", address), timeout=10)
    else:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(10)
        sock.connect(str(address))
    with sock:
        if request:
            sock.sendall(request)
        return sock.makefile("rb").read()


def shape(value):
    """The keys and types of a document, lists by their first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def start(start_server, server, tmp_path, **options):
    (tmp_path / "app.py").write_text(APP)
    # A list is a repeated option, each value on a line of its own.
    pairs = [("master", "true"), ("wsgi-file", "app.py"),
             *((key.replace("_", "-"), value)
               for key, values in options.items()
               for value in (values if isinstance(values, list)
                             else [values]))]
    ini = write_ini(tmp_path / "stats.ini", uwsgi=pairs)
    return start_server(server, ["--ini", str(ini)], cwd=tmp_path)


def serve_both(procs, start_server, tmp_path, **options):
    """The document of ugu and of uWSGI for the same INI, each after one
    good request and one that raises, on the same paths in turn."""
    docs = {}
    for server in ("ugu", "uwsgi"):
        port, stats_port = free_port(), free_port()
        p = start(start_server, server, tmp_path, socket=f"127.0.0.1:{port}",
                  stats=f"127.0.0.1:{stats_port}", **options)
        p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
        wait_for_port(port)
        uwsgi_request(port, "/")
        uwsgi_request(port, "/boom")
        docs[server] = wait_until(
            lambda: (d := json.loads(read_stats(stats_port))) and
            sum(w["requests"] for w in d["workers"]) == 2 and
            all(w["accepting"] and w["status"] == "idle"
                for w in d["workers"]) and d,
            what=f"{server}'s two requests in its stats")
        p.stop()
    return docs["ugu"], docs["uwsgi"]


def test_the_document_has_uwsgis_keys_and_types(procs, start_server,
                                                tmp_path):
    ugu, uwsgi = serve_both(procs, start_server, tmp_path, processes="2",
                            threads="2", offload_threads="1")
    assert shape(ugu) == shape(uwsgi)
    # Key order too: uwsgitop and the plugins print them in turn.
    assert list(ugu) == list(uwsgi)
    assert list(ugu["workers"][0]) == list(uwsgi["workers"][0])
    for doc in (ugu, uwsgi):
        assert doc["sockets"][0]["can_offload"] == 1
        assert [w["id"] for w in doc["workers"]] == [1, 2]
        assert sum(w["exceptions"] for w in doc["workers"]) == 1
        for worker in doc["workers"]:
            assert (worker["status"], worker["accepting"],
                    worker["respawn_count"]) == ("idle", 1, 1)
            assert len(worker["cores"]) == 2
            assert worker["requests"] == worker["delta_requests"] == \
                sum(c["requests"] for c in worker["cores"]) == \
                sum(a["requests"] for a in worker["apps"])
            assert worker["running_time"] >= worker["avg_rt"]
    # uWSGI reads the queues once a second, ugu when asked.
    assert ugu["sockets"][0]["max_queue"] == 100
    busy = [w for w in ugu["workers"] if w["requests"]]
    assert all(w["rss"] > 0 and w["vsz"] > w["rss"] for w in busy)
    # The good request's 2 body bytes and its head.
    assert sum(w["tx"] for w in ugu["workers"]) > 2


def test_minified_over_a_unix_socket_is_uwsgis_text(procs, start_server,
                                                    tmp_path):
    """Byte for byte as uWSGI's, numbers aside; the socket is vacuumed
    with uWSGI's line."""
    texts = {}
    path = tmp_path / "stats.sock"
    for server in ("ugu", "uwsgi"):
        port = free_port()
        p = start(start_server, server, tmp_path, socket=f"127.0.0.1:{port}",
                  stats=str(path), stats_min="true", stats_no_cores="true",
                  stats_no_metrics="true", vacuum="true")
        p.wait_for_log(ENABLED.format(re.escape(str(path))))
        wait_for_port(port)
        uwsgi_request(port, "/")
        texts[server] = wait_until(
            lambda: (t := read_stats(path)) and b'"requests":1,' in t and
            b'"idle"' in t and t, what=f"{server}'s request in its stats")
        p.stop()
        p.wait_for_log(re.escape(f"VACUUM: unix socket {path} (stats) "
                                 f"removed."))
        assert not path.exists()
    ugu, uwsgi = (re.sub(rb"\d+", b"N", texts[s]) for s in ("ugu", "uwsgi"))
    assert b"\n" not in ugu and b'"cores"' not in ugu
    assert ugu == uwsgi


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stats_http_answers_a_request(procs, start_server, tmp_path, server):
    stats_port = free_port()
    p = start(start_server, server, tmp_path,
              socket=f"127.0.0.1:{free_port()}",
              stats=f"127.0.0.1:{stats_port}", stats_http="true")
    p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
    answer = read_stats(stats_port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, body = answer[:len(HTTP_HEAD)], answer[len(HTTP_HEAD):]
    assert head == HTTP_HEAD
    assert json.loads(body)["pid"] == p.pid


def test_a_client_that_says_nothing_holds_no_one_up(procs, start_server,
                                                    tmp_path):
    """With stats-http the request is awaited beside the master's loop
    (uWSGI waits for it inside, socket-timeout seconds): the next client
    is answered meanwhile, and the silent one is closed in time."""
    stats_port = free_port()
    p = start(start_server, "ugu", tmp_path, socket=f"127.0.0.1:{free_port()}",
              stats=f"127.0.0.1:{stats_port}", stats_http="true",
              socket_timeout="2")
    p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
    with socket.create_connection(("127.0.0.1", stats_port)) as silent:
        silent.settimeout(1)
        answer = read_stats(stats_port, b"GET / HTTP/1.0\r\n\r\n")
        assert answer.startswith(HTTP_HEAD)
        with pytest.raises(TimeoutError):
            silent.recv(1)
        silent.settimeout(10)
        assert silent.recv(1) == b""


def test_a_client_that_never_reads_does_not_hang_the_master(
        procs, start_server, tmp_path):
    """A document larger than the socket holds, to a client that reads
    none of it: the master drops the client and goes on (here: it
    respawns a worker killed meanwhile)."""
    path = tmp_path / "stats.sock"
    port = free_port()
    p = start(start_server, "ugu", tmp_path, socket=f"127.0.0.1:{port}",
              stats=str(path), gevent="2000")
    p.wait_for_log(ENABLED.format(re.escape(str(path))))
    wait_for_port(port)
    # Twice what a unix socket holds by default (212992 bytes).
    assert len(read_stats(path)) > 2 * 212992
    with socket.socket(socket.AF_UNIX) as stuck:
        stuck.connect(str(path))
        os.kill(_worker_pid(p), signal.SIGKILL)
        p.wait_for_log(r"Respawned uWSGI worker 1 \(new pid: \d+\)")
        wait_for_port(port)
        assert b"hi" in uwsgi_request(port, "/")


def _worker_pid(p):
    found = re.search(r"spawned uWSGI worker 1 \(pid: (\d+)", p.output())
    return int(found.group(1))


def test_a_request_in_progress_and_the_workers_respawns(procs, start_server,
                                                        tmp_path):
    """A core inside a request is busy with its start time; a worker
    killed by harakiri counts it, and its respawn."""
    port, stats_port = free_port(), free_port()
    p = start(start_server, "ugu", tmp_path, socket=f"127.0.0.1:{port}",
              stats=f"127.0.0.1:{stats_port}", harakiri="1")
    p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
    wait_for_port(port)
    first = json.loads(read_stats(stats_port))["workers"][0]
    waiting = threading.Thread(target=_request_without_body, args=(port,))
    waiting.start()
    worker = wait_until(
        lambda: (w := json.loads(read_stats(stats_port))["workers"][0]) and
        w["status"] == "busy" and w, what="a busy worker")
    assert worker["cores"][0]["in_request"] == 1
    assert worker["cores"][0]["req_info"]["request_start"] >= \
        first["last_spawn"]
    p.wait_for_log(r"Respawned uWSGI worker 1 \(new pid: \d+\)")
    waiting.join(10)
    after = wait_until(
        lambda: (w := json.loads(read_stats(stats_port))["workers"][0]) and
        w["accepting"] and w, what="the respawned worker")
    assert (after["harakiri_count"], after["respawn_count"]) == (1, 2)
    assert after["pid"] != first["pid"]
    assert (after["status"], after["cores"][0]["req_info"]) == ("idle", {})


def _request_without_body(port):
    try:
        uwsgi_request(port, "/wait", headers=[("Content-Length", "10")])
    except OSError:
        pass    # the worker died under it


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_slot_the_cheaper_never_filled(procs, start_server, tmp_path,
                                         server):
    path = tmp_path / "stats.sock"
    p = start(start_server, server, tmp_path,
              socket=f"127.0.0.1:{free_port()}", stats=str(path),
              processes="2", cheaper="1")
    p.wait_for_log(ENABLED.format(re.escape(str(path))))

    def filled():
        workers = json.loads(read_stats(path))["workers"]
        return workers if workers[0]["id"] else None

    # uWSGI enables its stats before worker 1 has its slot.
    first, second = wait_until(filled, what="worker 1's slot")
    assert (first["id"], first["status"], first["respawn_count"]) == (
        1, "idle", 1)
    assert (second["id"], second["pid"], second["status"],
            second["respawn_count"], second["last_spawn"]) == (
        0, 0, "cheap", 0, 0)
    # The master's app, as every slot lists it.
    assert [app["id"] for app in second["apps"]] == [0]


def test_a_cores_requests_by_kind_as_uwsgi_counts_them(procs, start_server,
                                                       tmp_path):
    """A static file sent by an offload thread, then the app: the same
    counts, and the same bytes sent, from both."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "f.txt").write_text("hello\n")
    path = tmp_path / "stats.sock"
    seen = {}
    for server in ("ugu", "uwsgi"):
        port = free_port()
        p = start(start_server, server, tmp_path,
                  **{"http-socket": f"127.0.0.1:{port}"}, stats=str(path),
                  check_static="static", offload_threads="1")
        p.wait_for_log(ENABLED.format(re.escape(str(path))))
        wait_for_port(port)
        for target in ("/f.txt", "/"):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(f"GET {target} HTTP/1.0\r\n\r\n".encode())
                s.makefile("rb").read()
        worker = wait_until(
            lambda: (w := json.loads(read_stats(path))["workers"][0]) and
            w["requests"] == 2 and w["status"] == "idle" and w,
            what=f"{server}'s two requests")
        [core] = worker["cores"]
        seen[server] = (worker["tx"], core["requests"],
                        core["static_requests"], core["offloaded_requests"],
                        worker["apps"][0]["requests"])
        p.stop()
    assert seen["ugu"] == seen["uwsgi"] == (seen["ugu"][0], 2, 1, 1, 1)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_requests_a_route_ended_are_routed_requests(procs, start_server,
                                                    tmp_path, server):
    """A route that answers (return:) counts; one that goes on to the app
    (continue) does not."""
    port, path = free_port(), tmp_path / "stats.sock"
    p = start(start_server, server, tmp_path, socket=f"127.0.0.1:{port}",
              stats=str(path), route=["^/r return:403", "^/c continue:"])
    p.wait_for_log(ENABLED.format(re.escape(str(path))))
    wait_for_port(port)
    for target in ("/r", "/c", "/r", "/"):
        uwsgi_request(port, target)
    worker = wait_until(
        lambda: (w := json.loads(read_stats(path))["workers"][0]) and
        w["requests"] == 4 and w["status"] == "idle" and w,
        what="the four requests")
    assert worker["cores"][0]["routed_requests"] == 2


def test_the_master_of_an_emperor_serves_an_empty_instance(
        procs, start_server, tmp_path):
    """`stats` beside `emperor`: uWSGI's master, which keeps the Emperor,
    serves a document with no socket and no worker; so does ugu's."""
    (tmp_path / "court").mkdir()
    docs = {}
    for server in ("ugu", "uwsgi"):
        stats_port = free_port()
        p = start_server(server, ["--emperor", str(tmp_path / "court"),
                                  "--stats", f"127.0.0.1:{stats_port}"],
                         cwd=tmp_path)
        p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
        docs[server] = json.loads(read_stats(stats_port))
        assert docs[server]["pid"] == p.pid
        p.stop()
    assert docs["ugu"]["workers"] == docs["ugu"]["sockets"] == []
    assert shape(docs["ugu"]) == shape(docs["uwsgi"])


@pytest.fixture
def uwsgitop():
    path = shutil.which("uwsgitop") or \
        shutil.which("uwsgitop", path=os.path.dirname(sys.executable))
    if path is None:
        pytest.skip("uwsgitop is not installed (`pip install uwsgitop`)")
    return path


@pytest.mark.parametrize("http", [False, True])
def test_uwsgitop_shows_the_workers(procs, start_server, tmp_path, uwsgitop,
                                    http):
    """The real uwsgitop, on a terminal, over TCP and over stats-http."""
    port, stats_port = free_port(), free_port()
    options = {"stats_http": "true"} if http else {}
    p = start(start_server, "ugu", tmp_path, socket=f"127.0.0.1:{port}",
              stats=f"127.0.0.1:{stats_port}", **options)
    p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
    wait_for_port(port)
    for _ in range(3):
        uwsgi_request(port, "/")
    address = f"127.0.0.1:{stats_port}"
    # The head line, then the worker's line with its pid and requests.
    screen = _run_on_a_terminal(
        [uwsgitop, f"http://{address}/" if http else address],
        until=rb"req: 3 .*\b%d\b\D+3\b" % _worker_pid(p))
    assert b"Traceback" not in screen


def _run_on_a_terminal(argv, until):
    """What `argv` writes on a 40x160 terminal until `until` shows; then
    it is told to quit (q) and waited for."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    top = subprocess.Popen(argv, stdin=side, stdout=side, stderr=side,
                           env={**os.environ, "TERM": "xterm"},
                           start_new_session=True)
    os.close(side)
    screen = b""
    try:
        while not re.search(until, screen, re.S):
            ready, _, _ = select.select([main], [], [], 10)
            assert ready, f"no {until!r} in {screen[-2000:]!r}"
            screen += os.read(main, 65536)
            assert top.poll() is None, screen
        os.write(main, b"q")
        top.wait(10)
    finally:
        if top.poll() is None:
            os.killpg(top.pid, signal.SIGKILL)
            top.wait()
        os.close(main)
    return screen


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_abstract_unix_socket(procs, start_server, tmp_path, server):
    """`@NAME`, as uWSGI binds it: no file, nothing to vacuum, and the
    kernel's name ends with a NUL as uWSGI's does, so that the other's
    clients (uwsgitop, --connect-and-read) reach it."""
    name = f"ugu-stats-{free_port()}"
    p = start(start_server, server, tmp_path,
              socket=f"127.0.0.1:{free_port()}", stats=f"@{name}",
              vacuum="true")
    p.wait_for_log(ENABLED.format(f"@{name}"))
    assert "setting abstract socket mode (warning: only Linux supports " \
        "this)\n*** Stats server enabled" in p.output()
    assert json.loads(read_stats(f"\0{name}\0"))["pid"] == p.pid
    assert not list(tmp_path.glob("@*"))
    p.stop()
    assert "(stats) removed" not in p.output()


def test_connect_and_read_logs_a_stats_document(procs, start_server,
                                                tmp_path, uwsgi_binary):
    """uWSGI's docs read a stats server with `uwsgi --connect-and-read`:
    the document on stderr, exit 0; a socket that is not there, uWSGI's
    line and exit 1."""
    stats_port = free_port()
    p = start(start_server, "ugu", tmp_path, stats=f"127.0.0.1:{stats_port}",
              **{"http-socket": f"127.0.0.1:{free_port()}"})
    p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
    for argv in (UGU, [uwsgi_binary]):
        read = subprocess.run([*argv, "--connect-and-read",
                               f"127.0.0.1:{stats_port}"],
                              capture_output=True, timeout=30)
        assert read.returncode == 0 and read.stdout == b""
        assert json.loads(read.stderr)["workers"][0]["id"] == 1
        missing = subprocess.run([*argv, "--connect-and-read",
                                  str(tmp_path / "no.sock")],
                                 capture_output=True, text=True, timeout=30)
        assert missing.returncode == 1
        assert missing.stderr.endswith(
            "uwsgi_connect(): No such file or directory [core/uwsgi.c line "
            "4945]\n")


def test_locks_lists_each_user_lock_after_lock_0():
    """`locks = 2`, as uWSGI's document lists them."""
    from ugu import stats
    names = [next(iter(item)) for item in
             stats.instance(user_locks=2)["locks"]]
    assert names[:4] == ["user 0", "user 1", "user 2", "signal"]
