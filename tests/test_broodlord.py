"""Broodlord mode: a vassal calls its Emperor for reinforcements
(vassal-sos while every worker is busy, vassal-sos-backlog while its
listen queue is long), and an Emperor with emperor-broodlord answers with
a zerg, from the [zerg] section of that vassal's file, which attaches to
the vassal's zerg server and serves its socket.

Each runs on ugu and on the real uWSGI alike; the app's one worker is held
busy until the test touches a file, so no test waits on a clock.
"""

import os
import re
import socket
import stat

import pytest

from tests.support import free_port, http10_get, wait_for_port, wait_until
from tests.test_emperor import ENV

APP = """\
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/hold":
        while not os.path.exists({release!r}):
            time.sleep(0.02)
    start_response("200 OK", [("Content-Type", "text/plain")])
    brood = os.environ.get("UWSGI_BROODLORD_NUM", "-")
    return [("brood " + brood).encode()]
"""


@pytest.fixture
def brood(tmp_path):
    """An app whose /hold waits for tmp_path/release; a vassal folder."""
    release = tmp_path / "release"
    (tmp_path / "app.py").write_text(APP.format(release=str(release)))
    (tmp_path / "vassals").mkdir()
    return tmp_path, release


def _vassal(tmp_path, port, extra="", zerg=True):
    text = (f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmaster = true\n"
            f"processes = 1\nwsgi-file = {tmp_path}/app.py\n{extra}")
    if zerg:
        text += (f"zerg-server = {tmp_path}/zerg.sock\n\n[zerg]\n"
                 f"zerg = {tmp_path}/zerg.sock\nprotocol = http\n"
                 f"master = true\n"
                 f"processes = 1\nwsgi-file = {tmp_path}/app.py\n")
    path = tmp_path / "vassals" / "v.ini"
    path.write_text(text)
    return path


def _hold(port):
    """A request the one worker serves until the release file exists."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"GET /hold HTTP/1.0\r\n\r\n")
    return conn


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_busy_vassal_gets_one_zerg_from_its_zerg_section(
        start_server, brood, server):
    tmp_path, release = brood
    port = free_port()
    ini = _vassal(tmp_path, port, "vassal-sos = 1\n")
    emperor = start_server(server, ["--emperor", str(tmp_path / "vassals"),
                                    "--emperor-broodlord", "1"],
                           cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"vassal v\.ini is ready to accept requests")
    wait_for_port(port)
    held = _hold(port)
    emperor.wait_for_log(r"asking Emperor for reinforcements \(overload: "
                         r"\d+\)\.\.\.")
    emperor.wait_for_log(r"\[emperor\] going in broodlord mode: launching "
                         r"zergs for v\.ini\n")
    emperor.wait_for_log(r"vassal v\.ini:zerg is ready to accept requests")
    # The vassal's worker is held: the zerg answers, its number set.
    assert http10_get(port).endswith(b"brood 1")
    # Still overloaded, it calls again; the one zerg allowed lives.
    emperor.wait_for_log(r"asking Emperor for reinforcements", count=2)
    release.touch()
    held.close()
    out = emperor.output()
    assert len(re.findall(r"vassal v\.ini:zerg has been spawned", out)) == 1
    # Its vassal's file gone, the zerg goes with it.
    ini.unlink()
    emperor.wait_for_log(r"stop the uwsgi instance v\.ini:zerg")
    emperor.wait_for_log(r"removed uwsgi instance v\.ini:zerg")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_long_listen_queue_calls_for_reinforcements(start_server, brood,
                                                      server):
    tmp_path, release = brood
    port = free_port()
    _vassal(tmp_path, port, "vassal-sos-backlog = 2\n", zerg=False)
    emperor = start_server(server, ["--emperor", str(tmp_path / "vassals")],
                           cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"vassal v\.ini is ready to accept requests")
    wait_for_port(port)
    held = _hold(port)
    waiting = [socket.create_connection(("127.0.0.1", port))
               for _ in range(3)]
    emperor.wait_for_log(r"asking Emperor for reinforcements \(backlog: "
                         r"[23]\)\.\.\.")
    # No broodlord: the Emperor lets it call.
    assert "going in broodlord mode" not in emperor.output()
    release.touch()
    for conn in (held, *waiting):
        conn.close()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_an_emperor_the_call_goes_unanswered(start_server, brood,
                                                     server):
    tmp_path, release = brood
    port = free_port()
    ini = _vassal(tmp_path, port, "vassal-sos = 1\n", zerg=False)
    instance = start_server(server, ["--ini", str(ini)], cwd=tmp_path,
                            env=ENV)
    wait_for_port(port)
    held = _hold(port)
    instance.wait_for_log(r"asking Emperor for reinforcements \(overload: "
                          r"\d+\)\.\.\.\n\[broodlord\] instance not governed "
                          r"by an Emperor !!!\n")
    release.touch()
    held.close()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_fifo_b_calls_for_reinforcements(start_server, brood, server):
    tmp_path, _ = brood
    port = free_port()
    ini = _vassal(tmp_path, port, f"master-fifo = {tmp_path}/fifo\n",
                  zerg=False)
    instance = start_server(server, ["--ini", str(ini)], cwd=tmp_path,
                            env=ENV)
    wait_for_port(port)
    # uWSGI makes its fifo after binding: opened before, it would be a
    # plain file the "B" goes into.
    wait_until(lambda: stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)
               if (tmp_path / "fifo").exists() else False, what="the fifo")
    with open(tmp_path / "fifo", "w") as fifo:
        fifo.write("B")
    instance.wait_for_log(r"\[broodlord\] instance not governed by an "
                          r"Emperor !!!\n")


def test_a_call_for_reinforcements_needs_a_master(procs, tmp_path):
    p = procs.ugu("--http-socket", f"127.0.0.1:{free_port()}",
                  "--vassal-sos-backlog", "4", cwd=tmp_path)
    assert p.wait() == 1
    assert ("option 'vassal-sos-backlog': the master calls the Emperor "
            "for reinforcements: set master = true") in p.output()
