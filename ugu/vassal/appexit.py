"""An app's SystemExit ends its process, as under uWSGI.

uWSGI's Python prints whatever a request, a signal handler or a pyrun
script raised with CPython's own printing, and that printing ends the
process on a SystemExit: the app's atexit functions run, then the
process exits with the exception's code.  A worker so ended is
respawned by its master with uWSGI's "DAMN ! worker N (pid: P) died"
line; one whose core thread died instead would stay, and never answer
again.
"""

import atexit
import os
import sys


def exit_code(error):
    """The process's exit code for a SystemExit, as CPython's: 0 for
    none, the number given, else 1 with the code printed as a message."""
    code = error.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def end_process(error):
    """End this process for the app's SystemExit, after its atexit
    functions."""
    code = exit_code(error)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
