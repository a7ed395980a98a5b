"""The `uwsgi` module an app imports: what it holds and does, beside the
real uWSGI on the same INI file, and what ugu lacks said by name."""

import http.client
import json
import re
import signal
import textwrap

import pytest

from tests.support import get_body as get
from tests.support import free_port, wait_for_port, write_ini

APP = textwrap.dedent('''\
    import json
    import os
    import threading

    import uwsgi

    AT_IMPORT = {"pid": os.getpid(), "worker_id": uwsgi.worker_id()}
    try:
        AT_IMPORT["request_id"] = uwsgi.request_id()
    except SystemError as e:
        AT_IMPORT["request_id"] = str(e)


    def post_fork():
        print(f"post_fork_hook in worker {uwsgi.worker_id()}", flush=True)


    def at_exit():
        print(f"atexit in worker {uwsgi.worker_id()}", flush=True)


    uwsgi.post_fork_hook = post_fork
    uwsgi.atexit = at_exit


    def shape(value):
        """A value with its types: bytes and str told apart."""
        if isinstance(value, dict):
            return {repr(k): shape(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [type(value).__name__] + [shape(v) for v in value]
        return [type(value).__name__, repr(value)]


    def values(environ):
        names = ["opt", "numproc", "version", "version_info", "buffer_size",
                 "cores", "has_threads", "applications", "is_a_reload",
                 "sockets", "loop", "unbit"]
        found = {name: shape(getattr(uwsgi, name)) for name in names}
        found["types"] = {name: type(getattr(uwsgi, name)).__name__
                          for name in ("hostname", "started_on",
                                       "magic_table")}
        found["magic"] = {k.decode(): v.decode()
                          for k, v in uwsgi.magic_table.items()
                          if k in b"dpsneco0DPSNE"}
        found["env is environ"] = uwsgi.env is environ
        found["worker_id"] = uwsgi.worker_id() in (1, 2)
        found["masterpid"] = uwsgi.masterpid()
        found["at_import"] = AT_IMPORT
        found["pid"] = os.getpid()
        found["mem"] = [type(n).__name__ for n in uwsgi.mem()]
        found["workers"] = [{key: type(value).__name__
                             for key, value in worker.items()}
                            for worker in uwsgi.workers()]
        found["my worker"] = [w["pid"] for w in uwsgi.workers()
                              if w["id"] == uwsgi.worker_id()]
        found["status"] = [w["status"] for w in uwsgi.workers()
                           if w["id"] == uwsgi.worker_id()][0].decode()
        found["counts"] = [uwsgi.request_id(), uwsgi.total_requests()]
        found["fd"] = uwsgi.connection_fd() > 2
        uwsgi.lock()
        locked = uwsgi.is_locked()
        uwsgi.unlock()
        try:
            uwsgi.lock(1)
        except ValueError as e:
            refused = str(e)
        found["lock"] = [locked, uwsgi.is_locked(), refused]
        found["probes"] = [hasattr(uwsgi, "no_such_thing"),
                           hasattr(uwsgi, "worker_id")]
        elsewhere = {}
        def in_a_thread():
            elsewhere["fd"] = uwsgi.connection_fd()
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
        found["fd in a thread"] = elsewhere["fd"] == uwsgi.connection_fd()
        return found


    def application(environ, start_response):
        path = environ["PATH_INFO"]
        body = b""
        if path == "/values":
            body = json.dumps(values(environ)).encode()
        elif path == "/logvar":
            uwsgi.set_logvar("who", "alice")
            uwsgi.set_logvar("n", "1")
            uwsgi.set_logvar("n", b"22")
            body = repr([uwsgi.get_logvar("n"),
                         uwsgi.get_logvar("none")]).encode()
        elif path == "/logthis":
            uwsgi.log_this_request()
        elif path == "/log":
            body = repr(uwsgi.log("a line from the app")).encode()
        elif path == "/reload":
            body = repr(uwsgi.reload()).encode()
        elif path == "/die-locked":
            uwsgi.lock()
            os.kill(os.getpid(), 9)
        elif path == "/locked":
            uwsgi.lock()
            uwsgi.unlock()
            body = b"lock taken"
        elif path.startswith("/user-lock/"):
            # /user-lock/N/die: lock N and die holding it; else which
            # of the user locks are held now (after locking and
            # unlocking N), or the error N gives.
            number, _, die = path[11:].partition("/")
            try:
                uwsgi.lock(int(number))
                if die:
                    os.kill(os.getpid(), 9)
                held = uwsgi.is_locked(int(number))
                uwsgi.unlock(int(number))
                body = repr([held, *map(uwsgi.is_locked, range(3))])
            except ValueError as e:
                body = str(e)
            body = body.encode()
        elif path == "/disconnect":
            uwsgi.disconnect()
            body = b"too late"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
''')


def start(start_server, tmp_path, server, *pairs, args=()):
    """The app on an http-socket of its own, with 2 workers and `pairs`
    more options; (process, port)."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("processes", "2"), ("wsgi-file", "app.py"),
        ("env", "FIRST=1"), ("env", "SECOND=2"), ("myplaceholder", "hello"),
        *pairs])
    p = start_server(server, ["--ini", str(ini), *args], cwd=tmp_path)
    wait_for_port(port)
    p.wait_for_log(r"spawned uWSGI worker 2")
    return p, port


def values(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, args=["--vacuum"])
    found = json.loads(get(port, "/values"))
    master = int(p.wait_for_log(r"spawned uWSGI master process \(pid: "
                                r"(\d+)\)")[1])
    p.stop()
    # Each its own port.
    del found["opt"]["'http-socket'"]
    return found, master


def test_the_module_holds_what_uwsgis_holds(start_server, tmp_path):
    """Values and their types, on the same INI file: opt's str keys and
    bytes values, the last of a repeated option, True for a bare flag on
    the command line; the ids, counts, lock and hooks."""
    ugu, ugu_master = values(start_server, tmp_path, "ugu")
    uwsgi, uwsgi_master = values(start_server, tmp_path, "uwsgi")
    assert ugu["opt"]["'env'"] == ["bytes", "b'SECOND=2'"]
    assert ugu["opt"]["'vacuum'"] == ["bool", "True"]
    assert ugu["opt"]["'myplaceholder'"] == ["bytes", "b'hello'"]
    # Outside a request uWSGI's master reads a request of its own that
    # never runs; ugu says there is none (README).
    outside = ("you can call uwsgi api function only from the main "
               "callable")
    assert ugu["at_import"] == {"pid": ugu_master, "worker_id": 0,
                                "request_id": outside}
    assert uwsgi["at_import"] == {"pid": uwsgi_master, "worker_id": 0,
                                  "request_id": 0}
    assert ugu["masterpid"] == ugu_master
    assert uwsgi["masterpid"] == uwsgi_master
    assert ugu["my worker"] == [ugu["pid"]]
    assert uwsgi["my worker"] == [uwsgi["pid"]]
    for found in (ugu, uwsgi):
        for key in ("at_import", "masterpid", "pid", "my worker"):
            del found[key]
    assert ugu == uwsgi
    assert ugu["magic"]["s"] == "app.ini"


def test_set_logvar_fills_the_log_format(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, (
        "log-format", "LINE %(uri) who=%(who) n=%(n) status=%(status)"))
    assert get(port, "/logvar") == b"[b'22', None]"
    p.wait_for_log(r"LINE /logvar who=alice n=22 status=200\n")
    get(port, "/other")
    p.wait_for_log(r"LINE /other who=- n=- status=200\n")


def test_log_this_request_logs_under_disable_logging(start_server, tmp_path,
                                                     server):
    p, port = start(start_server, tmp_path, server,
                    ("disable-logging", "true"))
    get(port, "/unlogged")
    get(port, "/log")
    get(port, "/logthis")
    p.wait_for_log(r"GET /logthis => generated 0 bytes")
    output = p.output()
    assert "a line from the app\n" in output
    assert "/unlogged" not in output and "GET /log " not in output


def test_reload_is_a_graceful_reload(start_server, tmp_path, server):
    """uwsgi.reload(): the master's graceful reload, in uWSGI's lines,
    each worker's atexit hook as it goes and post_fork_hook in the new
    ones."""
    p, port = start(start_server, tmp_path, server)
    # Both workers up: uWSGI's master stalls on a reload that comes
    # while one is still starting.
    for wid in (1, 2):
        p.wait_for_log(rf"post_fork_hook in worker {wid}\n")
    assert get(port, "/reload") == b"True"
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    for wid in (1, 2):
        p.wait_for_log(rf"post_fork_hook in worker {wid}\n", count=2)
    wait_for_port(port)
    text = p.output()
    lines = [r"\.\.\.gracefully killing workers\.\.\.",
             r"Gracefully killing worker \d \(pid: \d+\)\.\.\.",
             r"atexit in worker \d", r"worker \d buried after \d+ seconds",
             r"binary reloading uWSGI\.\.\.",
             r"gracefully \(RE\)spawned uWSGI master process",
             r"post_fork_hook in worker 1"]
    assert re.search(r".*\n(?:.*\n)*?".join(lines), text), text
    p.stop()
    assert "atexit in worker 1" in p.output()


def test_a_lock_held_by_a_dead_worker_is_free(start_server, tmp_path,
                                              server):
    """A worker killed while it holds lock 0 does not leave it held: the
    next locker gets it, as with uWSGI's robust mutex."""
    p, port = start(start_server, tmp_path, server)
    with pytest.raises(http.client.RemoteDisconnected):
        get(port, "/die-locked")
    p.wait_for_log(r"DAMN ! worker \d \(pid: \d+\) died, killed by signal "
                   r"9")
    p.wait_for_log(r"Respawned uWSGI worker \d")
    for _ in range(4):
        assert get(port, "/locked") == b"lock taken"


def test_locks_adds_user_locks_each_freed_with_a_dead_holder(
        start_server, tmp_path, server):
    """`locks = 2`: user locks 0 to 2, each on its own; N past them is
    refused as uWSGI refuses it; a worker killed holding lock 2 does not
    leave it held."""
    p, port = start(start_server, tmp_path, server, ("locks", "2"))
    for number in range(3):
        assert get(port, f"/user-lock/{number}") == \
            b"[True, False, False, False]"
    assert get(port, "/user-lock/3") == b"Invalid lock number"
    assert get(port, "/user-lock/-1") == b"Invalid lock number"
    with pytest.raises(http.client.RemoteDisconnected):
        get(port, "/user-lock/2/die")
    p.wait_for_log(r"Respawned uWSGI worker \d")
    for _ in range(4):
        assert get(port, "/user-lock/2") == b"[True, False, False, False]"


def test_the_ipcsem_lock_engine_locks_the_same(start_server, tmp_path,
                                               server):
    """`lock-engine = ipcsem` locks as the default does; but uWSGI's
    is_locked() under it is always False (its check of a SysV semaphore
    is a stub), and ugu's still says whether the lock is held."""
    p, port = start(start_server, tmp_path, server, ("locks", "2"),
                    ("lock-engine", "ipcsem"))
    held = b"True" if server == "ugu" else b"False"
    for number in range(3):
        assert get(port, f"/user-lock/{number}") == \
            b"[" + held + b", False, False, False]"


def test_another_lock_engine_is_refused(tmp_path):
    from ugu.options.resolve import resolve
    from ugu.options.errors import ConfigError
    with pytest.raises(ConfigError, match='unable to find lock engine '
                       '"pthread": .* remove the option or write ipcsem'):
        resolve(["--lock-engine", "pthread"])


def test_without_locks_only_lock_0_is_there(start_server, tmp_path,
                                            server):
    p, port = start(start_server, tmp_path, server)
    assert get(port, "/user-lock/1") == b"Invalid lock number"


def test_disconnect_closes_the_connection(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server)
    with pytest.raises(http.client.RemoteDisconnected):
        get(port, "/disconnect")
    p.wait_for_log(r"uwsgi_response_writev_headers_and_body_do\(\): Bad "
                   r"file descriptor \[core/writer\.c line 306\] during "
                   r"GET /disconnect")


def test_what_ugu_lacks_is_named(procs, tmp_path):
    """A name of uWSGI's module whose subsystem ugu lacks: hasattr() is
    False, and a call fails naming the function and what is missing."""
    (tmp_path / "app.py").write_text(textwrap.dedent('''\
        import uwsgi

        def application(environ, start_response):
            start_response("200 OK", [])
            try:
                uwsgi.queue_get(0)
            except AttributeError as e:
                error = str(e)
            try:
                uwsgi.no_such_thing
            except AttributeError as e:
                unknown = str(e)
            return [repr([hasattr(uwsgi, "queue_get"),
                          hasattr(uwsgi, "spool"), error,
                          unknown]).encode()]
    '''))
    port = free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                  "app.py", cwd=tmp_path)
    wait_for_port(port)
    assert get(port, "/") == repr([
        False, False,
        "uwsgi.queue_get is not available: ugu has no queue configured "
        "(add `queue = SLOTS` to the config)",
        "module 'uwsgi' has no attribute 'no_such_thing'"]).encode()
    p.stop(signal.SIGINT)


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param
