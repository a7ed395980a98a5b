"""The tutorial's steps that end at the command line (TUTORIAL-STEPS.md)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests import support

NO_SOCKET = "The -s/--socket option is missing and stdin is not a socket."


def run(argv, timeout=60):
    """Run a command to its end in the examples folder, stdin from
    /dev/null, with no UWSGI_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env["PYTHONPATH"] = str(support.REPO)
    return subprocess.run(argv, cwd=support.EXAMPLES, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


NO_MASTER = ("*** WARNING: you are running uWSGI without its master "
             "process manager ***")


def step1_lines(argv):
    """The two lines tutorial step 1 shows, in the order logged."""
    result = run([*argv, "--module", "app"])
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).splitlines()
    return [line.strip() for line in lines if line.strip() in
            (NO_MASTER, NO_SOCKET)]


def test_step1_warns_then_exits_1():
    assert step1_lines(support.UGU) == [NO_MASTER, NO_SOCKET]


def test_step1_is_what_uwsgi_does(uwsgi_binary):
    assert step1_lines([uwsgi_binary]) == step1_lines(support.UGU)


def dump(argv, stdin_text):
    """The option lines of a `--show-config` run fed `stdin_text`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env["PYTHONPATH"] = str(support.REPO)
    result = subprocess.run([*argv, "--show-config", "--chdir",
                             "/nonexistent/ugu"], cwd=support.EXAMPLES,
                            env=env, input=stdin_text, capture_output=True,
                            text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    start = lines.index(";uWSGI instance configuration")
    return lines[start:lines.index(";end of configuration") + 1]


def test_ini_from_stdin_as_uwsgi(uwsgi_binary):
    # An unclosed block would take in the options after --ini (uWSGI
    # crashes on the valueless ones).
    text = ("[uwsgi]\nmodule = app\nfrom = %n|%o|%d\nfor = a b\n"
            "k = %(_)\nendfor =\n")
    ours = dump([*support.UGU, "--ini", "-"], text)
    assert ours == dump([uwsgi_binary, "--ini", "-"], text)
    assert "from = |-|" in ours


def show_config_run(argv, procs, site):
    """What a server with show-config logs before its banner, and that
    it then serves."""
    port = support.free_port()
    (site / "sc.ini").write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\n"
                                 f"pythonpath = {support.EXAMPLES}/code\n"
                                 f"module = app\n")
    p = procs.start([*argv, "--ini", "sc.ini", "--show-config"], cwd=site)
    support.wait_for_port(port)
    assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).ok
    lines = p.output().splitlines()
    banner = next(i for i, line in enumerate(lines)
                  if line.startswith("*** Starting uWSGI"))
    return [line.replace(str(port), "PORT") for line in lines[:banner]]


def test_show_config_logs_the_dump_and_runs(procs, tmp_path, uwsgi_binary):
    ours = show_config_run(support.UGU, procs, tmp_path)
    assert ours[1:3] == ["", ";uWSGI instance configuration"]
    assert ours == show_config_run([uwsgi_binary], procs, tmp_path)


@pytest.mark.parametrize("command", ["python -m ugu", "ugu"])
def test_ctrl_c_while_ugu_imports_ends_it_without_a_traceback(tmp_path,
                                                              command):
    """Ctrl-C in the first tenth of a second lands while Python imports
    ugu, in the Emperor and in every vassal it has just started (Ctrl-C
    reaches the whole group).  A module ugu imports is shadowed by one
    that sends its process a terminal's SIGINT at that point; ugu ends as
    it ends on Ctrl-C later, where uWSGI dies of the signal, silently."""
    (tmp_path / "json.py").write_text(
        "import os, signal, time\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(30)\n")
    argv = support.UGU
    if command == "ugu":
        argv = [str(Path(sys.executable).with_name("ugu"))]
        if not Path(argv[0]).exists():
            pytest.skip(f"no ugu command beside {sys.executable}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    env["PYTHONPATH"] = f"{tmp_path}:{support.REPO}"
    # A terminal's process takes SIGINT; one started from a shell's
    # background job (the suite run as `pytest &`) inherits it ignored.
    result = subprocess.run([*argv, "--version"], env=env,
                            stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60,
                            preexec_fn=lambda: signal.signal(
                                signal.SIGINT, signal.SIG_DFL))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
