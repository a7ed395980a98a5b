"""Where config text comes from: a file, stdin (`-`) or a command's output
(`exec://COMMAND`), as uWSGI reads config files and `@(...)` references.
"""

import subprocess
import sys

EXEC = "exec://"


def is_local_file(spec):
    return spec != "-" and not spec.startswith(EXEC)


def read_source(spec):
    """The text of `spec`; OSError (or ValueError) when it cannot be
    read."""
    if spec == "-":
        return sys.stdin.read()
    if spec.startswith(EXEC):
        return _command_output(spec[len(EXEC):])
    # newline="": a CR stays in the text, where a `%` may eat it.
    with open(spec, encoding="utf-8", errors="surrogateescape",
              newline="") as f:
        return f.read()


def _command_output(command):
    # Run by the shell, as uWSGI does; its exit status is not checked
    # either, only its output counts.
    result = subprocess.run(command, shell=True, stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    return result.stdout.decode("utf-8", "surrogateescape")
