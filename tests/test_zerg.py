"""Zerg mode: a zerg server hands its sockets to zergs over a unix socket.

ugu's zergs attach to uWSGI's zerg servers and uWSGI's zergs to ugu's:
the message is uWSGI's.  Each instance here runs an app that answers with
its own name, so a request shows who served it.
"""

import os
import re
import signal
import socket
import textwrap

import pytest

from tests import support

APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [os.environ["WHO"].encode()]
''')

SPAWNED = r"spawned uWSGI worker 1 \(pid"


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "who.py"
    path.write_text(APP)
    return path


def instance(start_server, server, app, who, *args, **kw):
    return start_server(server, ["--master", "--processes", "1",
                                 "--wsgi-file", str(app), "--env",
                                 f"WHO={who}", *args], **kw)


def who(port):
    raw = support.uwsgi_request(port)
    return support.split_response(raw)[2].decode()


def zerg_server(start_server, server, app, tmp_path, port):
    """A zerg server with a TCP and a unix worker socket."""
    srv = instance(start_server, server, app, "server", "--socket",
                   f"127.0.0.1:{port}", "--socket",
                   str(tmp_path / "w.sock"), "--zerg-server",
                   str(tmp_path / "zs.sock"))
    srv.wait_for_log(r"\*\*\* Zerg server enabled on .*zs.sock \*\*\*")
    return srv


@pytest.mark.parametrize("server, zerg", [("ugu", "ugu"), ("ugu", "uwsgi"),
                                          ("uwsgi", "ugu")])
def test_a_zerg_serves_the_servers_sockets_also_once_it_is_gone(
        start_server, app, tmp_path, server, zerg):
    port = support.free_port()
    srv = zerg_server(start_server, server, app, tmp_path, port)
    z = instance(start_server, zerg, app, "zerg", "--zerg",
                 str(tmp_path / "zs.sock"))
    z.wait_for_log(SPAWNED)
    lines = z.output()
    assert re.search(rf"^uwsgi zerg socket 0 attached to INET address "
                     rf"127.0.0.1:{port} fd \d+$", lines, re.M)
    assert re.search(rf"^uwsgi zerg socket 1 attached to UNIX address "
                     rf"{tmp_path}/w.sock fd \d+$", lines, re.M)
    assert lines.index("zerg sockets attached") > \
        lines.index("attached to UNIX")
    srv.stop()
    assert {who(port) for _ in range(3)} == {"zerg"}


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_no_server_stops_the_start_and_fallback_binds_its_own(
        start_server, app, tmp_path, server):
    missing = tmp_path / "none.sock"
    alone = instance(start_server, server, app, "zerg", "--zerg",
                     str(missing))
    assert alone.wait() == 1
    assert f"--- unable to connect to zerg server {missing} ---" in \
        alone.output()
    port = support.free_port()
    z = instance(start_server, server, app, "zerg", "--zerg", str(missing),
                 "--zerg-fallback", "--socket", f"127.0.0.1:{port}")
    z.wait_for_log(SPAWNED)
    assert "zerg sockets attached" not in z.output()
    assert who(port) == "zerg"


def test_a_zerg_also_binds_its_own_sockets_numbered_first(
        procs, app, tmp_path, start_server):
    port, own = support.free_port(), support.free_port()
    zerg_server(start_server, "ugu", app, tmp_path, port)
    z = instance(start_server, "ugu", app, "zerg", "--socket",
                 f"127.0.0.1:{own}", "--zerg", str(tmp_path / "zs.sock"))
    z.wait_for_log(SPAWNED)
    lines = z.output()
    assert re.search(rf"uwsgi zerg socket 1 attached to INET address "
                     rf"127.0.0.1:{port} fd", lines)
    assert lines.index("zerg sockets attached") < \
        lines.index(f"uwsgi socket 0 bound to TCP address 127.0.0.1:{own}")
    assert who(own) == "zerg"


def test_a_server_that_never_answers_is_given_up(start_server, app,
                                                 tmp_path):
    """uWSGI's zerg waits for ever on a server that accepts and says
    nothing (a stopped master); ugu's for socket-timeout seconds."""
    path = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(str(path))
        mute.listen(4)
        z = instance(start_server, "ugu", app, "zerg", "--zerg", str(path),
                     "--socket-timeout", "1")
        assert z.wait(timeout=10) == 1
    assert f"zerg server {path} sent nothing in 1 seconds" in z.output()
    assert "--- invalid data received from zerg-server ---" in z.output()


def test_a_reload_keeps_the_zergs_sockets(start_server, app, tmp_path):
    """uWSGI's zerg closes them as it re-executes, and exits where it has
    no other socket."""
    port = support.free_port()
    srv = zerg_server(start_server, "ugu", app, tmp_path, port)
    z = instance(start_server, "ugu", app, "zerg", "--zerg",
                 str(tmp_path / "zs.sock"))
    z.wait_for_log(SPAWNED)
    srv.stop()
    z.send_signal(signal.SIGHUP)
    z.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
    z.wait_for_log(SPAWNED, count=2)
    assert re.search(rf"uwsgi zerg socket 0 inherited INET address "
                     rf"127.0.0.1:{port} fd \d+", z.output())
    assert who(port) == "zerg"


def test_vacuum_leaves_the_servers_socket_files(start_server, app,
                                                tmp_path):
    port = support.free_port()
    zerg_server(start_server, "ugu", app, tmp_path, port)
    z = instance(start_server, "ugu", app, "zerg", "--vacuum", "--zerg",
                 str(tmp_path / "zs.sock"))
    z.wait_for_log(SPAWNED)
    z.stop()
    assert "VACUUM: unix socket" not in z.output()
    assert (tmp_path / "w.sock").exists()


def test_a_server_back_while_zergs_hold_its_port_cannot_bind(
        start_server, app, tmp_path):
    """As uWSGI's: the zergs keep the address; the new server stops."""
    port = support.free_port()
    srv = zerg_server(start_server, "ugu", app, tmp_path, port)
    z = instance(start_server, "ugu", app, "zerg", "--zerg",
                 str(tmp_path / "zs.sock"))
    z.wait_for_log(SPAWNED)
    srv.stop()
    again = instance(start_server, "ugu", app, "server", "--socket",
                     f"127.0.0.1:{port}", "--zerg-server",
                     str(tmp_path / "zs.sock"))
    assert again.wait() == 1
    assert "Address already in use" in again.output()
    assert who(port) == "zerg"


def test_a_zerg_server_comes_back_for_new_zergs(start_server, app,
                                                tmp_path):
    """The server's own socket file is stale once it is gone: the next
    server binds it again, and the next zerg attaches to that one."""
    port = support.free_port()
    srv = zerg_server(start_server, "ugu", app, tmp_path, port)
    srv.stop()
    again = zerg_server(start_server, "ugu", app, tmp_path, port)
    z = instance(start_server, "ugu", app, "zerg", "--zerg",
                 str(tmp_path / "zs.sock"))
    z.wait_for_log("zerg sockets attached")
    z.wait_for_log(SPAWNED)
    again.stop()
    assert who(port) == "zerg"


def test_zergs_of_an_emperors_vassal(procs, app, tmp_path):
    """The zerg server runs as a vassal, the zerg as another; each writes
    its lines into the Emperor's log."""
    port = support.free_port()
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    common = [("master", "true"), ("processes", "1"),
              ("wsgi-file", str(app))]
    support.write_ini(vassals / "server.ini", uwsgi=[
        *common, ("env", "WHO=server"), ("socket", f"127.0.0.1:{port}"),
        ("zerg-server", str(tmp_path / "zs.sock"))])
    emperor = procs.ugu("--emperor", str(vassals), cwd=tmp_path)
    emperor.wait_for_log(r"\*\*\* Zerg server enabled on")
    support.write_ini(vassals / "zerg.ini", uwsgi=[
        *common, ("env", "WHO=zerg"), ("zerg", str(tmp_path / "zs.sock"))])
    emperor.wait_for_log("zerg sockets attached")
    emperor.wait_for_log(SPAWNED, count=2)
    (vassals / "server.ini").unlink()
    emperor.wait_for_log(r"vassal server.ini is ready to be shut down|"
                         r"\[emperor\] removed uwsgi instance server.ini")
    assert support.wait_until(lambda: who(port) == "zerg")


@pytest.mark.parametrize("value", ["127.0.0.1:9", ""])
def test_zerg_server_wants_a_unix_socket(procs, app, value):
    p = procs.ugu("--master", "--wsgi-file", str(app), "--socket",
                  f"127.0.0.1:{support.free_port()}", "--zerg-server",
                  value)
    assert p.wait() == 1
    assert "zerg-server" in p.output()
    assert "unix socket" in p.output()


@pytest.mark.parametrize("server, router", [("ugu", "ugu"),
                                            ("uwsgi", "ugu"),
                                            ("ugu", "uwsgi")])
def test_the_http_router_serves_a_zerg_servers_sockets(
        start_server, app, tmp_path, server, router):
    port, node, own = (support.free_port() for _ in range(3))
    srv = zerg_server(start_server, server, app, tmp_path, port)
    backend = instance(start_server, "ugu", app, "backend", "--socket",
                       f"127.0.0.1:{node}")
    backend.wait_for_log(SPAWNED)
    r = start_server(router, ["--master", "--http", f"127.0.0.1:{own}",
                              "--http-zerg", str(tmp_path / "zs.sock"),
                              "--http-to", f"127.0.0.1:{node}"])
    r.wait_for_log(r"spawned uWSGI http 1")
    assert re.search(rf"^uWSGI http bound on 127.0.0.1:{port} fd \d+$",
                     r.output(), re.M)
    srv.stop()
    for address in (port, own):
        assert support.get_body(address, "/") == b"backend"


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_http_zerg_without_its_server_stops_the_start(start_server,
                                                      tmp_path, server):
    r = start_server(server, ["--master", "--http",
                              f"127.0.0.1:{support.free_port()}",
                              "--http-zerg", str(tmp_path / "none.sock"),
                              "--http-to", "127.0.0.1:9"])
    assert r.wait() == 1
    assert "--- unable to connect to zerg server ---" in r.output()


def test_http_zerg_without_the_router_is_refused(procs, tmp_path):
    """uWSGI starts no router then, and the option does nothing."""
    p = procs.ugu("--http-zerg", str(tmp_path / "zs.sock"), "--socket",
                  f"127.0.0.1:{support.free_port()}")
    assert p.wait() == 1
    assert "add `http = ADDR`" in p.output()


@pytest.mark.parametrize("zerg", ["ugu", "uwsgi"])
def test_a_zergpool_hands_its_own_sockets(start_server, app, tmp_path,
                                          zerg):
    port = support.free_port()
    pool = tmp_path / "zp.sock"
    p = start_server("ugu", ["--master", "--zergpool",
                             f"{pool}:127.0.0.1:{port},{tmp_path}/pw.sock"])
    p.wait_for_log(r"spawned uWSGI zergpool 1 \(pid: \d+\)")
    lines = p.output()
    assert f"zergpool {pool} bound to TCP socket 127.0.0.1:{port} (fd: " \
        in lines
    assert f"zergpool {pool} bound to UNIX socket {tmp_path}/pw.sock" \
        in lines
    assert "*** Operational MODE: no-workers ***" in lines
    z = instance(start_server, zerg, app, "zerg", "--zerg", str(pool))
    z.wait_for_log(SPAWNED)
    assert who(port) == "zerg"


def test_a_zergpool_reload_keeps_the_address_its_zergs_hold(
        start_server, app, tmp_path):
    """uWSGI binds the pool's addresses again after its exec, which the
    zergs' sockets make fail: the instance stops."""
    port = support.free_port()
    pool = tmp_path / "zp.sock"
    p = start_server("ugu", ["--master", "--zergpool",
                             f"{pool}:127.0.0.1:{port}"])
    p.wait_for_log(r"spawned uWSGI zergpool 1")
    first = instance(start_server, "ugu", app, "first", "--zerg", str(pool))
    first.wait_for_log(SPAWNED)
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
    p.wait_for_log(r"spawned uWSGI zergpool 1", count=2)
    first.stop()
    second = instance(start_server, "ugu", app, "second", "--zerg",
                      str(pool))
    second.wait_for_log(SPAWNED)
    assert who(port) == "second"


def test_a_dead_zergpool_process_is_respawned(start_server, tmp_path):
    pool = tmp_path / "zp.sock"
    p = start_server("ugu", ["--master", "--zergpool",
                             f"{pool}:127.0.0.1:{support.free_port()}"])
    pid = int(p.wait_for_log(r"spawned uWSGI zergpool 1 \(pid: (\d+)\)")
              .group(1))
    os.kill(pid, signal.SIGKILL)
    p.wait_for_log(r"respawned uWSGI zergpool 1 \(pid: \d+\)")


@pytest.mark.parametrize("value", ["nocolon", ":127.0.0.1:9", "/zp.sock:"])
def test_a_zergpool_without_path_and_addresses_is_refused(procs, value):
    p = procs.ugu("--zergpool", value)
    assert p.wait() == 1
    assert f"invalid zergpool syntax: {value}" in p.output()


@pytest.mark.parametrize("option", ["fastrouter-zerg", "rawrouter-zerg",
                                    "sslrouter-zerg"])
def test_the_routers_ugu_lacks_name_http_zerg_instead(procs, option):
    p = procs.ugu(f"--{option}", "/zs.sock")
    assert p.wait() == 1
    assert "http-zerg = PATH" in p.output()
