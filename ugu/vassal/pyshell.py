"""`pyshell` and `pyshell-oneshot`: worker 1 runs an interactive Python
shell on the instance's stdin (kept, as honour-stdin keeps it) once its
apps are loaded, in the namespace of `__main__`, with the uwsgi module,
instead of serving, as uWSGI's Python plugin hijacks it.  Given a value,
the worker runs that code instead of reading stdin.

When the shell ends (end of input, or the code has run) the worker
exits with a code its master knows: `pyshell`'s is respawned without a
word, into the shell again; `pyshell-oneshot`'s is "restored" and from
then on serves as the others do.  An `exit()` in the shell ends the
worker with its code, any other death of a worker.

Imported only where one of them is configured.
"""

import code
import importlib
import os
import sys

# uWSGI's exit codes for the two ends, which its master reads.
EXIT_QUIET = 29
EXIT_DE_HIJACKED = 173
# What uWSGI's Python names the shell's input in tracebacks.
FILENAME = "uwsgi"


def wanted(config):
    """The shell's code ('' for the interactive one) and whether it is
    the one-shot kind; None without either option."""
    if config["pyshell-oneshot"] is not None:
        return config["pyshell-oneshot"], True
    if config["pyshell"] is not None:
        return config["pyshell"], False
    return None


def run(text, oneshot):
    """Run the shell, then end the process with the code of its end."""
    main = sys.modules["__main__"].__dict__
    try:
        ok = _run_code(text, main) if text else _interact(main)
    except SystemExit as e:
        sys.stdout.flush()
        os._exit(_exit_code(e))
    sys.stdout.flush()
    sys.stderr.flush()
    if oneshot:
        os._exit(EXIT_DE_HIJACKED)
    os._exit(EXIT_QUIET if ok else 0)


def _run_code(text, namespace):
    """As Python runs a string: its traceback printed; False then."""
    try:
        exec(compile(text, "<string>", "exec"), namespace)
    except SystemExit:
        raise
    except BaseException:
        code.InteractiveInterpreter(namespace).showtraceback()
        return False
    return True


def _interact(namespace):
    """Read statements from stdin until its end, each run as typed, the
    prompts (`>>> `, `... `) on stderr as Python's own shell writes them
    where stdin is no terminal."""
    try:
        # Line editing, where stdin is a terminal, as uWSGI loads it.
        importlib.import_module("readline")
    except ImportError:
        pass
    console = code.InteractiveConsole(namespace, filename=FILENAME)
    more = False
    while True:
        sys.stderr.write("... " if more else ">>> ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            sys.stderr.write("\n")
            sys.stderr.flush()
            return True
        more = console.push(line.rstrip("\n"))


def _exit_code(e):
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1
