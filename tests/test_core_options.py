"""uWSGI's core options of start-up and shape, beside the real uWSGI:
print, iprint and exit; fallback-config; the wait-for family; pidfile2;
max-worker-lifetime-delta; max-vars; map-socket; alarm-backlog;
need-plugin and plugins-dir; and the refusals of config and ksm.
"""

import os
import re
import socket
import subprocess
import textwrap

import pytest

from tests import support
from tests.support import UGU, free_port, write_ini

APP = textwrap.dedent('''
    import os
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
''')

BOTH = pytest.mark.parametrize("server", ["ugu", "uwsgi"])
AS_ROOT = pytest.mark.skipif(os.getuid() != 0, reason="waited for as root "
                             "only")


def _argv(server, request):
    if server == "ugu":
        return list(UGU)
    return [request.getfixturevalue("uwsgi_binary")]


def _run(server, request, args, cwd):
    return subprocess.run([*_argv(server, request), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def _instance(start_server, server, tmp_path, *pairs):
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"), *pairs])
    return start_server(server, ["--ini", str(ini)], cwd=tmp_path), port


@BOTH
def test_iprint_as_read_exit_at_once(request, tmp_path, server):
    """iprint prints its raw text as the line is read; exit ends there,
    before print (applied once the files are read) prints anything."""
    ini = write_ini(tmp_path / "a.ini", uwsgi=[
        ("foo", "bar"), ("iprint", "i $(HOME) %(foo)"),
        ("print", "p %(foo)"), ("exit", 3)])
    done = _run(server, request, ["--ini", str(ini)], tmp_path)
    assert (done.returncode, done.stdout) == (3, "i $(HOME) %(foo)\n")


@BOTH
def test_print_once_read_and_exit_statuses(request, tmp_path, server):
    done = _run(server, request, ["--print=a", "--print=b"], tmp_path)
    # No socket: the start fails, after the prints.
    assert (done.returncode, done.stdout) == (1, "a\nb\n")
    assert _run(server, request, ["--exit"], tmp_path).returncode == 1
    assert _run(server, request, ["--exit=0"], tmp_path).returncode == 0
    ini = tmp_path / "bare.ini"
    ini.write_text("[uwsgi]\nexit\n")
    assert _run(server, request, [str(ini)], tmp_path).returncode == 0


def test_exit_refuses_a_word(tmp_path):
    done = subprocess.run([*UGU, "--exit=soon"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1
    assert "option 'exit': 'soon' is not an exit status" in done.stderr


@BOTH
def test_fallback_config_on_status_1(request, tmp_path, server):
    fallback = write_ini(tmp_path / "f.ini", uwsgi=[("iprint", "fallen"),
                                                    ("exit", 0)])
    for failing in (["--exit"], ["--ini", "missing.ini"]):
        done = _run(server, request, ["--fallback-config", str(fallback),
                                      *failing], tmp_path)
        assert (done.returncode, done.stdout) == (0, "fallen\n")
        assert re.search(r" - !!! \S+ \(pid: \d+\) exited with status 1 "
                         r"!!!\n.* - !!! Fallback config to "
                         + re.escape(str(fallback)) + " !!!\n",
                         done.stderr), done.stderr
    # Another status starts nothing else.
    done = _run(server, request, ["--fallback-config", str(fallback),
                                  "--exit=2"], tmp_path)
    assert (done.returncode, done.stdout) == (2, "")


@BOTH
def test_fallback_config_after_a_failed_bind(request, tmp_path, server):
    """A start that fails once the config is read (a socket that cannot be
    bound) exits 1 and falls back too, also from the daemon daemonize
    made, where the fallback then runs."""
    fallback = write_ini(tmp_path / "f.ini", uwsgi=[("iprint", "fallen"),
                                                    ("exit", 0)])
    failing = ["--fallback-config", str(fallback), "--master",
               "--socket", str(tmp_path / "nowhere" / "s.sock")]
    done = _run(server, request, failing, tmp_path)
    assert (done.returncode, done.stdout) == (0, "fallen\n"), done.stderr
    assert "!!! Fallback config to " in done.stderr
    daemon_log = tmp_path / "d.log"
    done = _run(server, request, [*failing, "--daemonize", str(daemon_log)],
                tmp_path)
    assert done.returncode == 0
    support.wait_until(lambda: daemon_log.exists() and
                       "fallen\n" in daemon_log.read_text(),
                       what="the daemon's fallback")
    assert "!!! Fallback config to " in daemon_log.read_text()


@BOTH
@pytest.mark.parametrize("hook", [
    ["--hook-asap", "exec:false"],
    pytest.param(["--hook-as-user", "exec:false"], marks=AS_ROOT),
    ["--hook-pre-app", "exec:false"],
    ["--hook-post-fork", "exec:false"],
], ids=["asap", "as-user", "pre-app", "post-fork"])
def test_fallback_config_after_a_fatal_hook(request, tmp_path, server,
                                            hook):
    """A fatal hook that ends the instance with status 1 in the process
    it started as (without a master, worker 1 is that process) falls
    back, as uWSGI's exit(1) does."""
    fallback = write_ini(tmp_path / "f.ini", uwsgi=[("iprint", "fallen"),
                                                    ("exit", 0)])
    (tmp_path / "app.py").write_text(APP)
    done = _run(server, request, [
        "--fallback-config", str(fallback), "--http-socket",
        f"127.0.0.1:{free_port()}", "--wsgi-file", "app.py", *hook],
        tmp_path)
    assert "FATAL hook failed, destroying instance" in done.stderr
    assert (done.returncode, done.stdout) == (0, "fallen\n"), done.stderr
    assert "!!! Fallback config to " in done.stderr


def test_a_fallback_that_fails_again_ends_the_chain(tmp_path):
    """A fallback-config already started in this chain of fallbacks is
    not started again: the instance exits 1 saying so.  uWSGI starts it
    again without end, as fast as it can exec."""
    nowhere = tmp_path / "nowhere" / "s.sock"
    a, b = tmp_path / "a.ini", tmp_path / "b.ini"
    write_ini(a, uwsgi=[("socket", nowhere), ("fallback-config", b)])
    write_ini(b, uwsgi=[("socket", nowhere), ("fallback-config", a)])
    for first, chain in ((b, [b, a, b]), (a, [a, b, a])):
        done = subprocess.run([*UGU, "--socket", str(nowhere),
                               "--fallback-config", str(first)],
                              cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 1, done.stderr
        assert done.stderr.count("!!! Fallback config to ") == 2
        assert re.search(
            r" - !!! \S+ \(pid: \d+\) exited with status 1 !!!\n"
            r"ugu: option 'fallback-config': " + re.escape(
                f"{chain[-1]} failed already in this chain of fallbacks "
                f"({' -> '.join(map(str, chain))}): not started again; "
                f"name another file, or make this one start") + "\n$",
            done.stderr), done.stderr


@AS_ROOT
@BOTH
def test_wait_for_file_then_start(start_server, tmp_path, server):
    flag, mnt = tmp_path / "flag", "/proc"
    p, port = _instance(start_server, server, tmp_path,
                        ("wait-for-file", flag),
                        ("wait-for-mountpoint", mnt),
                        ("wait-for-iface", "lo"))
    p.wait_for_log(rf"(?m)^waiting for {re.escape(str(flag))} \(max 60 "
                   rf"seconds\) \.\.\.$")
    flag.mkdir()  # uWSGI 2.0's wait-for-file takes a folder too
    p.wait_for_log(rf"(?m) - {re.escape(str(flag))} found$")
    p.wait_for_log(r"(?m) - /proc mounted$")
    p.wait_for_log(r"(?m)^interface lo found with index 1$")
    support.wait_for_port(port)
    out = p.output()
    assert out.index("interface lo found") < out.index("waiting for /proc")


@AS_ROOT
@BOTH
def test_wait_for_dir_times_out(start_server, tmp_path, server):
    missing = tmp_path / "missing"
    p, _ = _instance(start_server, server, tmp_path,
                     ("wait-for-dir", missing), ("wait-for-fs-timeout", 1))
    assert p.wait(20) == 1
    assert f"\n{missing} unavailable after 2 seconds\n" in p.output()


@BOTH
def test_wait_for_socket_then_pidfile2(start_server, tmp_path, server):
    """The app loads once the socket accepts; pidfile2 holds the
    master's pid, and vacuum removes it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    address = "127.0.0.1:%d" % listener.getsockname()[1]
    pid2 = tmp_path / "p2.pid"
    p, port = _instance(start_server, server, tmp_path, ("master", "true"),
                        ("wait-for-socket", address),
                        ("wait-for-socket-timeout", 20),
                        ("pidfile2", pid2), ("vacuum", "true"))
    with listener:
        p.wait_for_log(rf"(?m)^waiting for {address} \(max 20 seconds\) "
                       rf"\.\.\.$")
        listener.listen()
        p.wait_for_log(rf"(?m) - {address} ready$")
    p.wait_for_log(rf"(?m)^writing pidfile to {re.escape(str(pid2))}$")
    support.wait_for_port(port)
    assert int(pid2.read_text()) == p.pid
    # A worker that has served: uWSGI's may miss the SIGINT before.
    assert b" 200 OK" in support.http10_get(port)
    p.stop()
    assert "VACUUM: pidfile2 removed.\n" in p.output()
    assert not pid2.exists()


@BOTH
def test_max_worker_lifetime_delta(start_server, tmp_path, server):
    """Worker N lives (N-1) deltas longer."""
    p, _ = _instance(start_server, server, tmp_path, ("master", "true"),
                     ("processes", 2), ("max-worker-lifetime", 1),
                     ("min-worker-lifetime", 0),
                     ("max-worker-lifetime-delta", 2))
    p.wait_for_log(r"(?m)^worker 1 lifetime reached, it was running for "
                   r"2 second\(s\)$")
    p.wait_for_log(r"(?m)^worker 2 lifetime reached, it was running for "
                   r"4 second\(s\)$")


def _uwsgi_get(port, count):
    """A uwsgi request of `count` vars; the answer's bytes."""
    from ugu import protocol
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/")] + [
        (b"X_%d" % i, b"v") for i in range(count - 2)]
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(protocol.encode(pairs))
        return support.read_to_eof(s)


@BOTH
def test_max_vars_on_a_uwsgi_socket(start_server, tmp_path, server):
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    p = start_server(server, ["--socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py", "-v", "2"],
                     cwd=tmp_path)
    support.wait_for_port(port)
    assert b" 200 OK" in _uwsgi_get(port, 4)
    assert _uwsgi_get(port, 5) == b""
    p.wait_for_log(r"(?m)^max vec size reached\. skip this var\.$")


def test_max_vars_on_an_http_socket(procs, tmp_path):
    """Too many headers get a 431 (uWSGI closes unanswered)."""
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
              "app.py", "--max-vars", "10", cwd=tmp_path)
    support.wait_for_port(port)

    def get(headers):
        with socket.create_connection(("127.0.0.1", port), 10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n" + b"".join(
                b"X-%d: a\r\n" % i for i in range(headers)) + b"\r\n")
            return support.read_to_eof(s)
    assert get(2).startswith(b"HTTP/1.0 200")
    assert get(20).startswith(b"HTTP/1.1 431")


@BOTH
def test_map_socket(start_server, tmp_path, server):
    """Socket 0 to worker 1, socket 1 to worker 2: each answers from its
    worker alone."""
    ports = free_port(), free_port()
    (tmp_path / "app.py").write_text(APP)
    p = start_server(server, [
        "--master", "--processes", "2", "--wsgi-file", "app.py",
        *(f"--http-socket=127.0.0.1:{port}" for port in ports),
        "--map-socket", "0:1", "--map-socket", "1:2"], cwd=tmp_path)
    p.wait_for_log(r"(?m)^mapped socket 0 \(127\.0\.0\.1:\d+\) to worker "
                   r"1$")
    p.wait_for_log(r"(?m)^mapped socket 1 \(127\.0\.0\.1:\d+\) to worker "
                   r"2$")
    m = re.findall(r"spawned uWSGI worker (\d) \(pid: (\d+)",
                   p.wait_for_log(r"spawned uWSGI worker 2") and p.output())
    pids = dict(m)
    for port, wid in zip(ports, "12"):
        support.wait_for_port(port)
        for _ in range(3):
            assert support.get_body(port, "/") == pids[wid].encode()


def test_map_socket_refusals(tmp_path):
    for mapping, reason in (("0", "must be socket:worker"),
                            ("0:3", "invalid worker num: 3"),
                            ("1:1", "names socket 1")):
        done = subprocess.run(
            [*UGU, "--socket", "127.0.0.1:0", "--processes", "2",
             "--map-socket", mapping], capture_output=True, text=True,
            timeout=30, stdin=subprocess.DEVNULL)
        assert done.returncode == 1 and reason in done.stderr, done.stderr


def test_alarm_backlog_raised_when_the_queue_is_full(procs, tmp_path):
    """The master's full-queue line raises the alarm with uWSGI's text."""
    port = free_port()
    (tmp_path / "app.py").write_text(textwrap.dedent('''
        import time
        def application(environ, start_response):
            time.sleep(30)
    '''))
    p = procs.ugu("--master", "--http-socket", f"127.0.0.1:{port}",
                  "--wsgi-file", "app.py", "--listen", "2", "--alarm",
                  "full log:QUEUE", "--lq-alarm", "full", cwd=tmp_path)
    support.wait_for_port(port)
    clients = [socket.create_connection(("127.0.0.1", port))
               for _ in range(8)]
    try:
        for c in clients:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        p.wait_for_log(r'(?m) - ALARM: QUEUE listen queue of socket '
                       r'"127\.0\.0\.1:\d+" \(fd: \d+\) full !!! '
                       r'\(\d+/2\)$')
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("args, said", [
    (["--alarm-backlog", "none"], 'no alarm is named "none"'),
    (["--need-plugin", "php"], "plugin 'php' is not part of ugu"),
    (["--config", "x.lua"], "configurator"),
    (["--ksm"], "does not mark its memory mergeable"),
])
def test_refusals(args, said):
    done = subprocess.run([*UGU, "--socket", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and said in done.stderr, done.stderr


@BOTH
@pytest.mark.parametrize("args, status", [
    (["--need-plugin", "nosuch", "--exit=3"], 1),
    (["--exit=3", "--need-plugin", "nosuch"], 3),
], ids=["need-plugin-first", "exit-first"])
def test_need_plugin_acts_where_it_is_read(request, tmp_path, server, args,
                                           status):
    """A missing plugin ends the start as its line is read: before an
    `exit` after it, never after one before it."""
    done = _run(server, request, args, tmp_path)
    assert done.returncode == status
    assert ('"nosuch"' in done.stderr or "'nosuch'" in done.stderr) == \
        (status == 1)


def test_need_plugins_and_plugins_dir_accepted(tmp_path):
    done = subprocess.run([*UGU, "--need-plugins", "python3,http",
                           "--plugins-dir", str(tmp_path), "--plugin-dir",
                           "/nowhere", "--print", "ok", "--exit=0"],
                          capture_output=True, text=True, timeout=30)
    # exit is immediate: the prints never come.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
