"""A command run through /bin/sh in a session of its own, as uWSGI runs
the commands of its daemons, crons and touch-exec: the master can then
signal the whole process group the shell starts."""

import os
import signal

from ugu import log, proc

SHELL = "/bin/sh"
# In a log master: its pipe, where a command's output goes, as a child's
# does (None: the command writes where this process does).
_output = None


def use_binsh(paths):
    """binsh: the first of these shells that is an executable file runs
    the commands from now on; /bin/sh where none is, as uWSGI falls
    back."""
    global SHELL
    SHELL = next((path for path in paths if os.path.isfile(path)
                  and os.access(path, os.X_OK)), "/bin/sh")


def send_output_to(fd):
    global _output
    _output = fd


def fork_shell(command, before_session=None, in_session=None,
               failure=None, stdin=None, output=None):
    """Fork a child that runs `command` through /bin/sh in a session of
    its own, so that its pid is also the process group of all the shell
    starts; returns that pid.  The child first resets the master's signal
    handlers and closes its descriptors (sockets, pipes, log files), then
    calls `before_session()`, starts the session, calls `in_session()`
    and runs the shell, its stdin the descriptor `stdin` where given,
    its stdout and stderr `output` (else where send_output_to said).
    What fails there is logged, `failure` after it, and the child exits
    1."""
    # Until the child has its own handlers, a signal must not run the
    # master's.
    with proc.signals_blocked(signal.valid_signals()):
        pid = os.fork()
        if pid == 0:
            _run_shell(command, before_session, in_session, failure, stdin,
                       output)
    return pid


def _run_shell(command, before_session, in_session, failure, stdin,
               output):
    """The forked child of fork_shell.  Never returns."""
    try:
        proc.reset_signals()
        proc.unblock_signals()
        if output is None:
            output = _output
        if output is not None:
            log.take_stdio(output)
        if stdin is not None:
            os.dup2(stdin, 0)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        if before_session:
            before_session()
        os.setsid()
        if in_session:
            in_session()
        os.execv(SHELL, [SHELL, "-c", command])
    except OSError as e:
        log.log(str(e))
        if failure:
            log.log(failure)
    finally:
        os._exit(1)
