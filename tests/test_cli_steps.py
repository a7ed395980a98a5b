"""The tutorial's steps that end at the command line (TUTORIAL-STEPS.md)."""

import os
import subprocess

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


def test_step1_module_without_socket_exits_1():
    result = run([*support.UGU, "--module", "app"])
    assert result.returncode == 1
    assert NO_SOCKET in result.stdout + result.stderr


def test_step1_is_what_uwsgi_does(uwsgi_binary):
    result = run([uwsgi_binary, "--module", "app"])
    assert result.returncode == 1
    assert NO_SOCKET in result.stdout + result.stderr
