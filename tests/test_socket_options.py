"""The listening sockets' options (so-keepalive, reuse-port, freebind,
so-send-timeout, tcp-fast-open, close-on-exec and close-on-exec2), the
connections' tcp-nodelay, chown-socket, and
the processes' limit-as, honour-stdin and cpu-affinity, each read back
from the running processes (getsockopt on their descriptors, stat,
/proc), beside the real uWSGI."""

import ctypes
import grp
import json
import os
import pty
import pwd
import re
import shutil
import socket
import stat
import struct
import tempfile
import termios
import textwrap
import urllib.request
from pathlib import Path

import pytest

from tests import support

# An app that reads back the options of its worker's sockets: the
# listening one, and the connection it is answering (the TCP socket
# whose local port is SERVER_PORT).
INSPECT_APP = textwrap.dedent('''
    import fcntl, json, os, socket, struct

    def _options(fd):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            if sock.family != socket.AF_INET:
                return None, None
            get = sock.getsockopt
            timeout = get(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)
            tcp = socket.IPPROTO_TCP
            flags = fcntl.fcntl(fd, fcntl.F_GETFD)
            return str(sock.getsockname()[1]), {
                "listening": get(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
                "keepalive": get(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                "reuse_port": get(socket.SOL_SOCKET, socket.SO_REUSEPORT),
                "freebind": get(socket.SOL_IP, 15),
                "send_timeout": struct.unpack("ll", timeout)[0],
                "cloexec": bool(flags & fcntl.FD_CLOEXEC),
                "nodelay": get(tcp, socket.TCP_NODELAY),
                "fast_open": get(tcp, socket.TCP_FASTOPEN),
            }
        finally:
            sock.close()

    def application(environ, start_response):
        found = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink(f"/proc/self/fd/{name}")
            except FileNotFoundError:
                continue  # listdir's own descriptor, closed since
            if link.startswith("socket:"):
                port, options = _options(int(name))
                if options is None:
                    continue
                if options.pop("listening"):
                    found["listener"] = options
                elif port == environ["SERVER_PORT"]:
                    found["connection"] = options
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(found).encode()]
''')

STDIN_APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        worker = os.readlink("/proc/self/fd/0")
        master = os.readlink(f"/proc/{os.getppid()}/fd/0")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{worker} {master}".encode()]
''')

HELLO_APP = textwrap.dedent('''
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
''')

_libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438
O_CLOEXEC = 0o2000000


@pytest.fixture
def site():
    # World-readable, so that a worker that dropped root can read the app.
    folder = Path(tempfile.mkdtemp(prefix="ugu-sockopt-"))
    folder.chmod(0o755)
    for name, text in (("sockopts_app.py", INSPECT_APP),
                       ("stdin_app.py", STDIN_APP), ("app.py", HELLO_APP)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o644)
    yield folder
    shutil.rmtree(folder)


def _start(start_server, server, site, pairs, argv=(), **kw):
    ini = support.write_ini(site / "vassal.ini", uwsgi=[
        ("master", "true"), *pairs])
    p = start_server(server, ["--ini", str(ini), *argv], cwd=site, **kw)
    p.wait_for_log(r"spawned uWSGI worker 1")
    return p


def _get(port, path="/"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=10) as response:
        return response.read().decode()


def _inspect(start_server, server, site, options):
    port = support.free_port()
    p = _start(start_server, server, site, [
        ("http-socket", f"127.0.0.1:{port}"), ("wsgi-file", "sockopts_app.py"),
        *options])
    support.wait_for_port(port)
    found = json.loads(_get(port))
    p.stop()
    return found


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_tcp_options_on_the_socket_and_its_connections(start_server, site,
                                                       server):
    """Set on the listening socket before it binds; Linux copies them
    to each connection accepted."""
    found = _inspect(start_server, server, site, [
        ("so-keepalive", "true"), ("reuse-port", "true"),
        ("freebind", "true"), ("so-write-timeout", "7"),
        ("close-on-exec", "true"), ("close-on-exec2", "true")])
    tuned = {"keepalive": 1, "reuse_port": 1, "freebind": 1,
             "send_timeout": 7, "cloexec": True, "nodelay": 0,
             "fast_open": 0}
    assert found == {"listener": tuned, "connection": tuned}


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_tcp_options_off_by_default(start_server, site, server):
    found = _inspect(start_server, server, site, [])
    for options in found.values():
        assert (options["keepalive"], options["reuse_port"],
                options["freebind"], options["send_timeout"],
                options["nodelay"], options["fast_open"]) == (0,) * 6


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_tcp_nodelay_and_fast_open(start_server, site, server):
    """TCP_FASTOPEN's queue is the listening socket's (the connections
    have none of their own); TCP_NODELAY is set on each connection as
    it is accepted (a listening socket would not pass it on)."""
    port = support.free_port()
    p = _start(start_server, server, site, [
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", "sockopts_app.py"), ("tcp-nodelay", "true"),
        ("tcp-fast-open", "7")])
    p.wait_for_log(rf"TCP_FASTOPEN enabled on 127.0.0.1:{port}\n"
                   rf"uwsgi socket 0 bound to TCP address 127.0.0.1:{port}")
    support.wait_for_port(port)
    found = json.loads(_get(port))
    assert (found["listener"]["nodelay"], found["listener"]["fast_open"],
            found["connection"]["nodelay"],
            found["connection"]["fast_open"]) == (0, 7, 1, 0)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_tcp_nodelay_on_a_unix_socket_says_it_cannot(start_server, site,
                                                     server):
    """uWSGI tries it on every connection, a unix one too, and says so
    on each; the request is served all the same."""
    sock = site / "app.sock"
    p = _start(start_server, server, site, [
        ("http-socket", str(sock)), ("wsgi-file", "app.py"),
        ("tcp-nodelay", "true")])
    for _ in range(2):
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(str(sock))
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert support.read_to_eof(client).endswith(b"hello")
    p.wait_for_log(r"uwsgi_tcp_nodelay\(\)/setsockopt\(\): Operation not "
                   r"supported \[core/socket.c line 1901\]\n\[pid", count=2)


def _fd_of(pid, fd):
    """A copy of another process's descriptor (pidfd_getfd, as root),
    and whether it has FD_CLOEXEC there."""
    pidfd = os.pidfd_open(pid)
    try:
        copy = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    if copy < 0:
        pytest.skip(f"pidfd_getfd: {os.strerror(ctypes.get_errno())}")
    info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
    flags = int(re.search(r"flags:\s+([0-7]+)", info).group(1), 8)
    return socket.socket(fileno=copy), bool(flags & O_CLOEXEC)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_router_socket_tuned_too_and_reload_keeps_it(start_server, site,
                                                     server):
    """The router's socket is bound as uWSGI binds every TCP socket;
    close-on-exec2 holds until a reload, whose exec needs the sockets
    open (uWSGI clears the flag for it, and nothing sets it again)."""
    port, node = support.free_port(), support.free_port()
    p = _start(start_server, server, site, [
        ("http", f"127.0.0.1:{port}"), ("socket", f"127.0.0.1:{node}"),
        ("wsgi-file", "app.py"), ("so-keepalive", "true"),
        ("so-send-timeout", "3"), ("close-on-exec2", "true"),
        ("tcp-fastopen", "5")])
    bound = p.wait_for_log(rf"TCP_FASTOPEN enabled on 127.0.0.1:{port}\n"
                           rf"uWSGI http bound on 127.0.0.1:{port} fd (\d+)")
    sock, cloexec = _fd_of(p.pid, int(bound.group(1)))
    with sock:
        assert sock.getsockname()[1] == port
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN) == 5
        timeout = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)
        assert struct.unpack("ll", timeout)[0] == 3
    assert cloexec
    support.wait_for_port(port)
    assert _get(port) == "hello"
    p.send_signal(1)  # SIGHUP
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    p.wait_for_log(r"spawned uWSGI worker 1", count=2)
    worker_socket = p.wait_for_log(
        rf"uwsgi socket 0 inherited INET address 127.0.0.1:{node} fd (\d+)")
    sock, cloexec = _fd_of(p.pid, int(worker_socket.group(1)))
    sock.close()
    assert not cloexec


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stats_socket_tuned_as_every_socket(start_server, site, server):
    """uWSGI binds the stats server's TCP socket as any other, with the
    `listen` queue, but no deferred accept (its clients send nothing)."""
    stats = support.free_port()
    p = _start(start_server, server, site, [
        ("http-socket", f"127.0.0.1:{support.free_port()}"),
        ("wsgi-file", "app.py"), ("stats", f"127.0.0.1:{stats}"),
        ("so-keepalive", "true"), ("so-send-timeout", "3"),
        ("reuse-port", "true"), ("freebind", "true"),
        ("tcp-fast-open", "5"), ("listen", "77")])
    bound = p.wait_for_log(
        rf"TCP_FASTOPEN enabled on 127.0.0.1:{stats}\n"
        rf"\*\*\* Stats server enabled on 127.0.0.1:{stats} fd: (\d+) ")
    sock, _ = _fd_of(p.pid, int(bound.group(1)))
    with sock:
        get = sock.getsockopt
        assert sock.getsockname()[1] == stats
        assert get(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert get(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        assert get(socket.SOL_IP, 15) == 1    # IP_FREEBIND
        assert get(socket.IPPROTO_TCP, socket.TCP_FASTOPEN) == 5
        assert get(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
        timeout = get(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)
        assert struct.unpack("ll", timeout)[0] == 3
        # A listening socket's queue size, as Linux reports it.
        info = get(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        assert struct.unpack_from("8B6I", info)[13] == 77


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("mode", ["640", "true"])
def test_stats_unix_socket_gets_chmod_socket(start_server, site, server,
                                             mode):
    """chmod-socket applies to the stats server's unix socket too (its
    bare form with uWSGI's lazy line); chown-socket does not."""
    path = site / f"stats-{mode}.sock"
    pairs = [("http-socket", f"127.0.0.1:{support.free_port()}"),
             ("wsgi-file", "app.py"), ("stats", path)]
    # The bare option on the command line: uWSGI's INI wants a value.
    argv = ["--chmod-socket"] if mode == "true" else \
        [f"--chmod-socket={mode}"]
    p = _start(start_server, server, site, pairs, argv=argv)
    lazy = "chmod() socket to 666 for lazy and brave users\n"
    p.wait_for_log(rf"\*\*\* Stats server enabled on {path} fd: ")
    assert stat.S_IMODE(path.stat().st_mode) == \
        (0o640 if mode == "640" else 0o666)
    assert (f"{lazy}*** Stats server enabled" in p.output()) == \
        (mode == "true")


def _root_only():
    if os.geteuid() != 0:
        pytest.skip("chown-socket's tests run as root (to give sockets "
                    "away)")


def _nobody():
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


# ugu only: the reference uWSGI's Python lives under /root, which a
# worker running as nobody cannot read.
def test_chown_socket_binds_as_root_then_drops(start_server, site):
    """A folder only root may write: the socket is bound there (before
    uid and gid drop root), given to nobody, and served by a worker
    running as nobody."""
    server = "ugu"
    _root_only()
    uid, gid = _nobody()
    sock = site / "app.sock"
    p = _start(start_server, server, site, [
        ("http-socket", str(sock)), ("wsgi-file", "app.py"),
        ("chown-socket", "nobody:nogroup"), ("uid", "nobody"),
        ("gid", "nogroup")])
    assert (sock.stat().st_uid, sock.stat().st_gid) == (uid, gid)
    p.wait_for_log(rf"uwsgi socket 0 bound to UNIX address {sock} fd \d+\n"
                   rf"(?:.*\n)*?setgid\(\) to {gid}\n(?:.*\n)*?"
                   rf"setuid\(\) to {uid}")
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(sock))
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        raw = support.read_to_eof(client)
    assert raw.startswith(b"HTTP/1.") and raw.endswith(b"hello")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_chown_socket_user_alone_keeps_the_group(start_server, site,
                                                  server):
    _root_only()
    uid, _ = _nobody()
    sock = site / "app.sock"
    _start(start_server, server, site, [
        ("socket", str(sock)), ("wsgi-file", "app.py"),
        ("chown-socket", str(uid))])
    assert (sock.stat().st_uid, sock.stat().st_gid) == (uid, os.getgid())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("owner, said", [
    ("nosuchuser", "unable to find user nosuchuser"),
    ("nobody:nosuchgroup", "unable to find group nosuchgroup")])
def test_chown_socket_to_a_name_not_there_stops(procs, site, request,
                                                server, owner, said):
    """After the bind (its file is left), in uWSGI's words, exit 1."""
    _root_only()
    sock = site / "app.sock"
    ini = support.write_ini(site / "vassal.ini", uwsgi=[
        ("master", "true"), ("socket", str(sock)), ("wsgi-file", "app.py"),
        ("chown-socket", owner)])
    argv = [request.getfixturevalue("uwsgi_binary")] \
        if server == "uwsgi" else support.UGU
    p = procs.start([*argv, "--ini", str(ini)], cwd=site)
    assert p.wait() == 1
    assert said in p.output()
    assert "uwsgi socket 0 bound" not in p.output()
    assert sock.exists()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_limit_as(start_server, site, server):
    port = support.free_port()
    p = _start(start_server, server, site, [
        ("http-socket", f"127.0.0.1:{port}"), ("wsgi-file", "app.py"),
        ("limit-as", "2048")])
    p.wait_for_log(r"limiting address space of processes\.\.\.\n(?:.*\n)*?"
                   r"your process address space limit is 2147483648 bytes "
                   r"\(2048 MB\)\n")
    support.wait_for_port(port)
    assert _get(port) == "hello"
    for pid in [p.pid, *support.children_of(p.pid)]:
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert re.search(r"Max address space\s+2147483648\s+2147483648",
                         limits)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("honour", [False, True])
def test_stdin_is_dev_null_unless_honour_stdin(start_server, site, server,
                                               honour):
    port = support.free_port()
    reader, writer = os.pipe()
    try:
        _start(start_server, server, site, [
            ("http-socket", f"127.0.0.1:{port}"),
            ("wsgi-file", "stdin_app.py"),
            *([("honour-stdin", "true")] if honour else [])],
            stdin=reader)
        support.wait_for_port(port)
        worker, master = _get(port).split()
    finally:
        os.close(reader)
        os.close(writer)
    expected = re.compile(r"pipe:\[\d+\]") if honour else \
        re.compile(re.escape(os.devnull))
    assert expected.fullmatch(worker) and expected.fullmatch(master)


TTY_APP = textwrap.dedent('''
    import termios

    def application(environ, start_response):
        modes = termios.tcgetattr(0)
        modes[3] &= ~termios.ECHO
        termios.tcsetattr(0, termios.TCSANOW, modes)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"echo off"]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_honour_stdin_sets_the_terminal_back_at_exit(start_server, site,
                                                      server):
    """An app that turns the terminal's echo off: the master that kept
    the terminal sets its modes back as it ends."""
    (site / "tty_app.py").write_text(TTY_APP)
    port = support.free_port()
    controller, terminal = pty.openpty()
    try:
        p = _start(start_server, server, site, [
            ("http-socket", f"127.0.0.1:{port}"),
            ("wsgi-file", "tty_app.py"), ("honour-stdin", "true")],
            stdin=terminal)
        support.wait_for_port(port)
        assert _get(port) == "echo off"
        assert not termios.tcgetattr(terminal)[3] & termios.ECHO
        assert p.stop() == 0
        assert termios.tcgetattr(terminal)[3] & termios.ECHO
    finally:
        os.close(controller)
        os.close(terminal)


def _cpu_mapping(start_server, site, server):
    """{worker id: (the CPUs its line names, the CPUs it may run on)}."""
    p = _start(start_server, server, site, [
        ("socket", "127.0.0.1:0"), ("wsgi-file", "app.py"),
        ("processes", "3"), ("cpu-affinity", "3")])
    mapping = {}
    for wid in (1, 2, 3):
        said = p.wait_for_log(rf"mapping worker {wid} to CPUs: ([\d ]+)\n")
        pid = int(p.wait_for_log(
            rf"spawned uWSGI worker {wid} \(pid: (\d+)").group(1))
        status = Path(f"/proc/{pid}/status").read_text()
        allowed = re.search(r"Cpus_allowed_list:\s+(\S+)", status).group(1)
        mapping[wid] = (said.group(1), allowed)
    return mapping


def test_cpu_affinity_maps_workers_as_uwsgi(start_server, site):
    """Worker N from CPU (N - 1) * 3 on, wrapping round the CPUs (0 1 0,
    1 0 1, 0 1 0 on two): the same lines and masks as uWSGI's."""
    ours = _cpu_mapping(start_server, site, "ugu")
    cpus = os.cpu_count()
    for wid, (said, allowed) in ours.items():
        first = (wid - 1) * 3
        assert said.split() == [str((first + i) % cpus) for i in range(3)]
        wanted = sorted({int(cpu) for cpu in said.split()})
        assert allowed == _cpu_list(wanted)
    assert ours == _cpu_mapping(start_server, site, "uwsgi")


def _cpu_list(cpus):
    """The kernel's form of a CPU set: 0-2,5."""
    runs = []
    for cpu in cpus:
        if runs and runs[-1][1] == cpu - 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


SETENV_APP = textwrap.dedent('''
    import ctypes
    ctypes.CDLL(None).setenv(b"UGU_C_ONLY", b"set in C", 1)

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"first"]
''')

GETENV_APP = textwrap.dedent('''
    import os
    seen = os.environ.get("UGU_C_ONLY", "unseen")

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [seen.encode()]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("reload_env, seen", [(False, "unseen"),
                                              (True, "set in C")])
def test_reload_os_env_before_each_app(start_server, site, server,
                                       reload_env, seen):
    """A variable the first app sets through the C library reaches the
    second app's os.environ only with reload-os-env (one interpreter:
    uWSGI gives each mount a fresh one otherwise, ugu never)."""
    (site / "setenv_app.py").write_text(SETENV_APP)
    (site / "getenv_app.py").write_text(GETENV_APP)
    port = support.free_port()
    _start(start_server, server, site, [
        ("http-socket", f"127.0.0.1:{port}"), ("single-interpreter", "true"),
        ("mount", "/first=setenv_app.py"), ("mount", "/second=getenv_app.py"),
        ("manage-script-name", "true"),
        *([("reload-os-env", "true")] if reload_env else [])])
    support.wait_for_port(port)
    assert _get(port, "/first") == "first"
    assert _get(port, "/second") == seen


BUFFERS_APP = textwrap.dedent('''
    import json, os, socket

    def application(environ, start_response):
        found = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink(f"/proc/self/fd/{name}")
            except FileNotFoundError:
                continue  # listdir's own descriptor, closed since
            if not link.startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
            with sock:
                if sock.family != socket.AF_INET or \\
                        sock.type != socket.SOCK_STREAM:
                    continue
                get = sock.getsockopt
                kind = ("listener" if get(socket.SOL_SOCKET,
                                          socket.SO_ACCEPTCONN)
                        else "connection")
                if kind == "connection" and \\
                        str(sock.getsockname()[1]) != environ["SERVER_PORT"]:
                    continue
                found[kind] = [get(socket.SOL_SOCKET, socket.SO_SNDBUF),
                               get(socket.SOL_SOCKET, socket.SO_RCVBUF)]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(found).encode()]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_socket_buffers_on_every_socket_bound(start_server, site, server):
    """socket-sndbuf and socket-rcvbuf on the workers' socket, its
    connections and the router's socket; Linux doubles the sizes."""
    (site / "buffers_app.py").write_text(BUFFERS_APP)
    (site / "buffers_app.py").chmod(0o644)
    port, router = support.free_port(), support.free_port()
    p = _start(start_server, server, site, [
        ("http-socket", f"127.0.0.1:{port}"), ("http", f"127.0.0.1:{router}"),
        ("http-to", f"127.0.0.1:{port}"), ("wsgi-file", "buffers_app.py"),
        ("socket-sndbuf", "40000"), ("socket-rcvbuf", "50000")])
    bound = p.wait_for_log(rf"uWSGI http bound on 127.0.0.1:{router} "
                           rf"fd (\d+)")
    support.wait_for_port(port)
    assert json.loads(_get(port)) == {"listener": [80000, 100000],
                                      "connection": [80000, 100000]}
    sock, _ = _fd_of(p.pid, int(bound.group(1)))
    with sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 80000
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 100000


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_address_in_use_is_said_in_uwsgi_s_lines(start_server, tmp_path,
                                                   server):
    """Log watchers look for uWSGI's lines of a failed bind; ugu's own
    line, naming the option and the fix, comes after them."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        name = f"127.0.0.1:{taken.getsockname()[1]}"
        p = start_server(server, ["--socket", name, "--master"],
                         cwd=tmp_path)
        p.wait(timeout=20)
    assert re.search(rf"probably another instance of uWSGI is running on "
                     rf"the same address \({re.escape(name)}\)\.\n"
                     rf"bind\(\): Address already in use \[core/socket\.c "
                     rf"line 769\]\n", p.output())
