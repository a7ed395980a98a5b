"""The hooks of the Emperor (emperor-start, as-emperor, as-vassal) and of
the mules and gateways (as-mule, as-gateway), said and failing as uWSGI's.

Each runs the real ugu, and the real uWSGI on the same command line where
both end the same way; the tests wait on log lines, never on a clock.
"""

import re
import signal

import pytest

from tests.support import free_port, wait_for_port
from tests.test_emperor import ENV

APP = """\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""
SHOW = ('echo "cfg=$UWSGI_VASSAL_CONFIG pid=$UWSGI_VASSAL_PID '
        'uid=$UWSGI_VASSAL_UID gid=$UWSGI_VASSAL_GID"')


@pytest.fixture
def court(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "v").mkdir()
    port = free_port()
    (tmp_path / "v" / "a.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\n"
        f"wsgi-file = {tmp_path}/app.py\n")
    return tmp_path, port


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_emperor_hooks_run_as_uwsgi_says_them(start_server, court,
                                                  server):
    tmp_path, port = court
    emperor = start_server(server, [
        "--emperor", str(tmp_path / "v"),
        "--hook-emperor-start", "print:emperor up",
        "--hook-as-emperor", "print:spawned one",
        "--exec-as-emperor", SHOW,
        "--hook-as-vassal", "print:in the vassal",
        "--exec-as-vassal", "echo vassal command"], cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"vassal a\.ini is ready to accept requests")
    wait_for_port(port)
    out = emperor.output()
    assert ("*** starting uWSGI Emperor ***\n"
            'running "print:emperor up" (emperor-start)...\n'
            "emperor up\n") in out
    assert 'running "print:spawned one" (as-emperor)...\nspawned one\n' \
        in out
    found = re.search(r'running "echo "cfg=\$UWSGI_VASSAL_CONFIG .*"" '
                      r'\(as-emperor for vassal "a\.ini" pid: (\d+) uid: '
                      r'(\d+) gid: (\d+)\)\.\.\.\n', out)
    assert found
    pid, uid, gid = found.groups()
    assert f"cfg=a.ini pid={pid} uid={uid} gid={gid}\n" in out
    assert re.search(r'command "echo .*" exited with code: 0\n', out)
    # The vassal's process runs beside the Emperor: lines interleave.
    lines = out.splitlines()
    said = [lines.index(line) for line in (
        'running "print:in the vassal" (as-vassal)...', "in the vassal",
        'running "echo vassal command" (as-vassal)...', "vassal command")]
    assert said == sorted(said)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_failed_as_vassal_command_ends_the_vassal(start_server, court,
                                                    server):
    tmp_path, _ = court
    emperor = start_server(server, [
        "--emperor", str(tmp_path / "v"), "--exec-as-vassal", "exit 3"],
        cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r'running "exit 3" \(as-vassal\)\.\.\.\n'
                         r'command "exit 3" exited with non-zero code: 3\n')
    emperor.wait_for_log(r"\[emperor\] curse the uwsgi instance a\.ini")
    assert "a.ini is ready to accept requests" not in emperor.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_failed_emperor_start_hook_ends_a_lone_emperor(start_server, court,
                                                         server):
    tmp_path, _ = court
    emperor = start_server(server, [
        "--emperor", str(tmp_path / "v"),
        "--hook-emperor-start", f"mkdir:{tmp_path}/no/such"],
        cwd=tmp_path, env=ENV)
    assert emperor.wait() == 1
    assert re.search(r"uwsgi_hook_mkdir\(\): No such file or directory "
                     r"\[core/hooks\.c line 73\]\n.*FATAL hook failed, "
                     r"destroying instance\n", emperor.output())


def test_a_failed_emperor_start_hook_ends_the_master(procs, court):
    """Under a master the Emperor asks it to end the instance."""
    tmp_path, _ = court
    master = procs.ugu("--master", "--emperor", str(tmp_path / "v"),
                       "--hook-emperor-start", f"mkdir:{tmp_path}/no/such",
                       cwd=tmp_path, env=ENV)
    assert master.wait() == 0
    assert re.search(r"FATAL hook failed, destroying instance\n(.*\n)*"
                     r"The Emperor has been buried \(pid: \d+\)\n"
                     r"goodbye to uWSGI\.\n$", master.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_mules_and_gateways_run_their_hooks(start_server, tmp_path, server):
    (tmp_path / "app.py").write_text(APP)
    router, port = free_port(), free_port()
    instance = start_server(server, [
        "--master", "--http", f"127.0.0.1:{router}", "--http-socket",
        f"127.0.0.1:{port}", "--wsgi-file", str(tmp_path / "app.py"),
        "--mule", "--hook-as-mule", "print:mule up",
        "--hook-as-gateway", "print:gateway up"], cwd=tmp_path, env=ENV)
    # Two processes: their lines may interleave.
    for line in (r'running "print:mule up" \(as-mule\)\.\.\.\n',
                 r"(?m)^mule up\n",
                 r'running "print:gateway up" \(as-gateway\)\.\.\.\n',
                 r"(?m)^gateway up\n"):
        instance.wait_for_log(line)
    wait_for_port(router)


def test_a_failed_gateway_hook_ends_the_instance(procs, tmp_path):
    (tmp_path / "app.py").write_text(APP)
    instance = procs.ugu(
        "--master", "--http", f"127.0.0.1:{free_port()}", "--http-socket",
        f"127.0.0.1:{free_port()}", "--wsgi-file", str(tmp_path / "app.py"),
        "--hook-as-gateway", f"mkdir:{tmp_path}/no/such", cwd=tmp_path,
        env=ENV)
    assert instance.wait() == 0
    assert re.search(r"FATAL hook failed, destroying instance\n(.*\n)*"
                     r"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.\n",
                     instance.output())
    assert instance.output().endswith("goodbye to uWSGI.\n")


@pytest.mark.parametrize("option", ["hook-as-emperor", "exec-as-vassal",
                                    "emperor-broodlord"])
def test_emperor_options_without_an_emperor_are_refused(procs, tmp_path,
                                                        option):
    ini = tmp_path / "i.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:0\n{option} = 1\n")
    p = procs.ugu(str(ini), cwd=tmp_path)
    assert p.wait() == 1
    assert f"i.ini:3: option '{option}': only an Emperor acts on it" in \
        p.output()


def test_ctrl_c_still_ends_an_emperor_with_hooks(procs, court):
    tmp_path, _ = court
    emperor = procs.ugu("--emperor", str(tmp_path / "v"),
                        "--hook-as-emperor", "print:x", cwd=tmp_path,
                        env=ENV)
    emperor.wait_for_log(r"vassal a\.ini is ready to accept requests")
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0
