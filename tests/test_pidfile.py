"""safe-pidfile and safe-pidfile2, beside the real uWSGI: the master's pid
once its first workers are spawned, at the first start only, and vacuum's
lines for them; `stop` and `reload`, which signal the pid a file holds.
"""

import re
import signal
import subprocess
import textwrap

import pytest

from tests import support
from tests.support import free_port, write_ini

APP = textwrap.dedent('''
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')


_get = support.http10_get


def _pid_in(path):
    """The pid in the file, once there: both servers log "writing
    pidfile" before they create it, and uWSGI's workers write it again
    (truncated first) as they start."""
    return int(support.wait_until(
        lambda: path.exists() and path.read_text().strip(),
        what=f"a pid in {path}"))


def _instance(start_server, server, tmp_path, *pairs):
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"), *pairs])
    return start_server(server, ["--ini", str(ini)], cwd=tmp_path), port


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_safe_pidfiles_once_the_workers_are_spawned(start_server, tmp_path,
                                                    server):
    """Both files hold the master's pid, written after the first workers'
    spawn and before the master-start hooks; a reload leaves them
    alone; vacuum removes them after the pidfile, in uWSGI's lines."""
    safe, safe2 = tmp_path / "safe.pid", tmp_path / "safe2.pid"
    p, port = _instance(
        start_server, server, tmp_path, ("master", "true"),
        ("processes", 1), ("pidfile", tmp_path / "plain.pid"),
        ("safe-pidfile", safe), ("safe-pidfile2", safe2),
        ("vacuum", "true"), ("hook-master-start", "print:MASTER START"))
    p.wait_for_log(r"(?m)^MASTER START$")
    assert re.search(rf"spawned uWSGI worker 1 .*\n(?:.*\n)*?"
                     rf"writing pidfile to {safe2}\n(?:.*\n)*?"
                     rf"writing pidfile to {safe}\n(?:.*\n)*?"
                     rf"MASTER START\n", p.output()), p.output()
    assert _pid_in(safe) == _pid_in(safe2) == p.pid
    support.wait_for_port(port)
    assert _get(port).endswith(b"ok")
    safe.unlink()
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"(?m)^MASTER START$", count=2)
    assert not safe.exists()
    safe.write_text("kept\n")
    # Workers that have served: uWSGI's may miss a signal before.
    assert _get(port).endswith(b"ok")
    assert p.stop() == 0
    assert re.search(r"VACUUM: pidfile removed\.\n"
                     r"VACUUM: safe pidfile removed\.\n"
                     r"VACUUM: safe pidfile2 removed\.\n", p.output())
    assert not safe.exists() and not safe2.exists()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_safe_pidfile_without_a_master(start_server, tmp_path, server):
    """Without a master: the pid of the process that is worker 1."""
    safe = tmp_path / "safe.pid"
    p, port = _instance(start_server, server, tmp_path,
                        ("safe-pidfile", safe))
    p.wait_for_log(rf"writing pidfile to {safe}\n")
    support.wait_for_port(port)
    assert _pid_in(safe) == p.pid


# -- stop and reload: signalling the instance a pidfile names ---------------

def _command(server, uwsgi_binary):
    return support.UGU if server == "ugu" else [uwsgi_binary]


def _run(argv, cwd):
    # In a session of its own: uWSGI reads a pidfile without a number as
    # pid 0, and would signal the test's own process group.
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                          timeout=30, start_new_session=True,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_reload_then_stop_signal_the_pidfiles_instance(
        start_server, tmp_path, server, uwsgi_binary):
    """`--reload PIDFILE` reloads the master gracefully and `--stop
    PIDFILE` stops it; each command exits 0 at once, whatever other
    options it is given."""
    pidfile = tmp_path / "app.pid"
    p, port = _instance(start_server, server, tmp_path, ("master", "true"),
                        ("pidfile", pidfile))
    support.wait_until(pidfile.exists, what=f"{pidfile}")
    pid = _pid_in(pidfile)
    # Each signal only once a worker has served: one signalled before it
    # is ready holds uWSGI's master for its mercy.
    support.http10_get(port)
    command = _command(server, uwsgi_binary)
    assert _run([*command, "--reload", str(pidfile), "--http-socket",
                 f"127.0.0.1:{port}"], tmp_path).returncode == 0
    p.wait_for_log(rf"gracefully \(RE\)spawned uWSGI master process "
                   rf"\(pid: {pid}\)")
    p.wait_for_log(r"spawned uWSGI worker 1", count=2)
    support.http10_get(port)
    assert _run([*command, "--stop", str(pidfile)], tmp_path).returncode == 0
    assert p.wait() == 0
    assert "goodbye to uWSGI." in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stop_says_what_it_cannot_signal(tmp_path, server, uwsgi_binary):
    """A missing pidfile or a pid with no process: uWSGI's lines and exit
    statuses."""
    command = _command(server, uwsgi_binary)
    missing = _run([*command, "--stop", "no.pid"], tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.endswith('open("no.pid"): No such file or '
                                   'directory [core/io.c line 525]\n')
    # A pid above the kernel's pid_max, so no process has it.
    (tmp_path / "gone.pid").write_text("99999999\n")
    gone = _run([*command, "--stop", "gone.pid"], tmp_path)
    assert gone.returncode == 255
    assert gone.stderr.endswith("signal_pidfile()/kill(): No such process "
                                "[core/uwsgi.c line 1707]\n")


@pytest.mark.parametrize("text", ["", "\n", "abc\n", "0\n", "-1\n",
                                  "4294967295\n", "99999999999999999999\n"])
def test_stop_refuses_a_pidfile_without_a_process_id(tmp_path, text):
    """uWSGI reads these as pid 0 (or -1, a number past its C int
    wrapping there) and signals its own process group, or every process
    it may; ugu names the file instead."""
    (tmp_path / "bad.pid").write_text(text)
    result = _run([*support.UGU, "--stop", "bad.pid"], tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        "ugu: command line: option 'stop': bad.pid holds no process id: "
        "name the pidfile the instance writes (its `pidfile` option)\n")
