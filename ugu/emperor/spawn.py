"""Start one vassal: `python -m ugu --ini NAME`, bound to the Emperor.

The child gets its end of a socketpair as fd 3, named in UWSGI_EMPEROR_FD;
/dev/null as stdin; the Emperor's stdout and stderr, so vassal logs reach
the Emperor's terminal; and no other fd.  It asks the kernel for SIGKILL
when the Emperor dies, so even a kill -9 of the Emperor leaves no vassal.
"""

import fcntl
import os
import socket
import sys
import traceback

from ugu import link, proc

LINK_FD = 3
EXEC_FAILED = 127
# Not for a vassal: it is a fresh start, not a reload, and systemd's notify
# socket belongs to the Emperor.
PRIVATE_ENV = ("UWSGI_RELOADS", "NOTIFY_SOCKET")


def vassal_argv(name):
    return [sys.executable, "-m", "ugu", "--ini", name]


def spawn(name, cwd):
    """Fork and exec the vassal; return (pid, our end of its link)."""
    ours, theirs = socket.socketpair()
    argv = vassal_argv(name)
    env = _vassal_env()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _become_vassal(argv, cwd, env, theirs.fileno(), parent)
    theirs.close()
    ours.setblocking(False)
    return pid, ours


def _vassal_env():
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
    env[link.ENV_FD] = str(LINK_FD)
    return env


def _become_vassal(argv, cwd, env, link_fd, parent):
    """In the forked child; never returns."""
    try:
        proc.reset_signals()
        proc.die_with_parent()
        # The Emperor may have died before prctl() took hold.
        if os.getppid() == parent:
            os.chdir(cwd)
            _arrange_fds(link_fd)
            os.execve(argv[0], argv, env)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(EXEC_FAILED)


def _arrange_fds(link_fd):
    # Lift the link clear of fds 0-3 first, so no dup2() below hits it.
    high = fcntl.fcntl(link_fd, fcntl.F_DUPFD, LINK_FD + 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(high, LINK_FD)
    os.closerange(LINK_FD + 1, os.sysconf("SC_OPEN_MAX"))
