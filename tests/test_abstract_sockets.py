"""`@NAME` addresses: unix sockets in Linux's abstract namespace, for the
workers (`socket`, `http-socket`), the HTTP router (`http`, `http-to`)
and py-tracebacker, beside the real uWSGI.  Clients here connect to the
kernel's name uWSGI binds, NUL, NAME, NUL: a client of uWSGI's reaches
ugu's."""

import re
import socket
import subprocess

import pytest

from tests import support

APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
'''
BOTH = pytest.mark.parametrize("server", ["ugu", "uwsgi"])
ANNOUNCE = "setting abstract socket mode (warning: only Linux supports this)\n"


def _name(what):
    """A name no other test (nor run) binds at the same time."""
    return f"@ugu-{what}-{support.free_port()}"


def _kernel(address):
    return f"\0{address[1:]}\0"


def _http_get(address):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(_kernel(address))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return support.read_to_eof(s)


@BOTH
@pytest.mark.parametrize("http_to", [True, False])
def test_workers_and_router_on_abstract_sockets(start_server, tmp_path,
                                                server, http_to):
    """Each is announced, then bound under its name; chmod-socket has no
    file to change (no lazy line), vacuum none to remove; the router
    reaches its node by `http-to`, or as socket 0 without it."""
    (tmp_path / "app.py").write_text(APP)
    router, node, http = _name("r"), _name("u"), _name("h")
    ini = support.write_ini(tmp_path / "abstract.ini", uwsgi=[
        ("http", router), *([("http-to", node)] if http_to else []),
        ("socket", node), ("http-socket", http), ("vacuum", "true"), ("master", "true"), ("wsgi-file", "app.py")])
    # A bare `chmod-socket` (the lazy mode, which says so on a path):
    # on the command line, where uWSGI reads no value.
    p = start_server(server, ["--ini", str(ini), "--chmod-socket"],
                     cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI http 1")
    p.wait_for_log(r"spawned uWSGI worker 1")
    log = p.output()
    assert f"{ANNOUNCE}uWSGI http bound on {router} fd " in log
    assert f"{ANNOUNCE}uwsgi socket 0 bound to UNIX address {node} fd " \
        in log
    assert f"{ANNOUNCE}uwsgi socket 1 bound to UNIX address {http} fd " \
        in log
    assert "chmod() socket" not in log
    for address in (http, router):
        answer = support.wait_until(lambda: _http_get(address),
                                    what=f"an answer on {address}")
        assert answer.startswith(b"HTTP/1.") and b" 200 OK\r\n" in answer
        assert answer.endswith(b"hello")
    assert p.stop() == 0 or server == "uwsgi"
    assert "VACUUM: unix socket" not in p.output()
    assert "unlink" not in p.output()
    assert not list(tmp_path.glob("@*"))


@BOTH
def test_chown_socket_stops_on_an_abstract_socket(procs, tmp_path, server,
                                                  request):
    """There is no file to give: uWSGI's chown() fails and it stops;
    ugu's start stops too, saying why."""
    (tmp_path / "app.py").write_text(APP)
    argv = ["--socket", _name("chown"), "--chown-socket", "0:0",
            "--wsgi-file", "app.py"]
    if server == "ugu":
        p = procs.ugu(*argv, cwd=tmp_path)
    else:
        p = procs.start([request.getfixturevalue("uwsgi_binary"), *argv],
                        cwd=tmp_path)
    assert p.wait(30) == 1
    assert ANNOUNCE in p.output()
    assert "bound to UNIX address" not in p.output()
    if server == "ugu":
        assert "option 'chown-socket': chown() @ugu-chown-" in p.output()
        assert "an abstract socket has no file to chown" in p.output()


@BOTH
def test_reload_keeps_an_abstract_socket(start_server, tmp_path, server):
    (tmp_path / "app.py").write_text(APP)
    address = _name("reload")
    p = start_server(server, ["--http-socket", address, "--master",
                              "--wsgi-file", "app.py"], cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    # Served once first: a worker signalled before its handlers are set
    # misses the reload, and uWSGI's master then waits out its mercy.
    assert _http_get(address).endswith(b"hello")
    p.send_signal(1)    # SIGHUP: a graceful reload
    p.wait_for_log(rf"uwsgi socket 0 inherited UNIX address {address} "
                   rf"fd \d+\n")
    p.wait_for_log(r"spawned uWSGI worker 1", count=2)
    assert _http_get(address).endswith(b"hello")


@BOTH
def test_py_tracebacker_on_an_abstract_socket(start_server, tmp_path,
                                              server):
    """Announced as uWSGI does, and read by `--connect-and-read` of the
    other server: the name each binds is the other's."""
    (tmp_path / "app.py").write_text(APP)
    prefix = _name("tb")
    p = start_server(server, ["--http-socket", f"127.0.0.1:"
                              f"{support.free_port()}", "--wsgi-file",
                              "app.py", "--py-tracebacker", prefix],
                     cwd=tmp_path)
    p.wait_for_log(re.escape(f"{ANNOUNCE}python tracebacker for worker 1 "
                             f"available on {prefix}1\n"))
    other = [support.reference_uwsgi()[0]] if server == "ugu" \
        else support.UGU
    read = subprocess.run([*other, "--connect-and-read", f"{prefix}1"],
                          capture_output=True, text=True, timeout=30)
    assert read.returncode == 0, read.stderr
    assert read.stderr.startswith("*** uWSGI Python tracebacker output ***")


@BOTH
def test_backslash_zero_names_the_same_socket(start_server, tmp_path,
                                              server):
    """uWSGI reads `\\0NAME` (a backslash and a zero) as `@NAME`: the
    same kernel name, said as written, and no file."""
    (tmp_path / "app.py").write_text(APP)
    name = _name("bs")[1:]
    p = start_server(server, ["--http-socket", f"\\0{name}",
                              "--wsgi-file", "app.py"], cwd=tmp_path)
    p.wait_for_log(re.escape(f"{ANNOUNCE}uwsgi socket 0 bound to UNIX "
                             f"address \\0{name} fd "))
    assert _http_get(f"@{name}").endswith(b"hello")
    assert list(tmp_path.iterdir()) == [tmp_path / "app.py"]


@pytest.mark.parametrize("option", ["socket", "http-socket", "http"])
@pytest.mark.parametrize("long_name", ["@" + "n" * 120, "/tmp/" + "p" * 120])
def test_a_name_too_long_for_a_unix_socket_says_so(procs, tmp_path, option,
                                                   long_name):
    """uWSGI says `invalid socket name`; ugu names the limit, not None."""
    (tmp_path / "app.py").write_text(APP)
    p = procs.ugu(f"--{option}", long_name, "--socket", _name("long"),
                  "--wsgi-file", "app.py", cwd=tmp_path)
    assert p.wait(30) == 1
    assert (f"option '{option}': cannot bind {long_name}: AF_UNIX path too "
            "long (Linux keeps a unix socket's name, @NAME's too, in 108 "
            "bytes: choose a shorter one)") in p.output()


@BOTH
def test_abstract_socket_makes_every_bound_path_a_name(start_server,
                                                       tmp_path, server):
    """abstract-socket: each unix socket bound (a worker socket, the
    router's, the stats server) is abstract, its path the name and
    without the NUL after it that @NAME's counts.  A file at the path is
    not the socket's: uWSGI's vacuum removes it all the same, ugu's
    leaves it (see README)."""
    (tmp_path / "app.py").write_text(APP)
    http, router, stats, rstats = (_name(what)[1:] for what in "hrst")
    (tmp_path / http).write_text("not a socket")
    p = start_server(server, [
        "--http-socket", http, "--http", router, "--http-to", http,
        "--stats", stats, "--http-stats", rstats, "--abstract-socket",
        "--vacuum", "--master", "--wsgi-file", "app.py"], cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    p.wait_for_log(r"spawned uWSGI http 1")
    log = p.output()
    assert f"{ANNOUNCE}uwsgi socket 0 bound to UNIX address {http} fd " \
        in log
    assert f"{ANNOUNCE}uWSGI http bound on {router} fd " in log
    # The master enables its stats once it runs, after those lines.
    p.wait_for_log(re.escape(f"{ANNOUNCE}*** Stats server enabled on "
                             f"{stats} fd"))
    p.wait_for_log(re.escape(f"{ANNOUNCE}*** http stats server enabled "
                             f"on {rstats} fd"))
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(f"\0{rstats}")
        assert b'"static_nodes"' in support.read_to_eof(s)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(f"\0{http}")
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert support.read_to_eof(s).endswith(b"hello")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(f"\0{stats}")
        assert b'"workers"' in support.read_to_eof(s)
    p.stop()
    assert (tmp_path / http).exists() == (server == "ugu")
    assert not (tmp_path / router).exists()
