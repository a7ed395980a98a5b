"""Where config text comes from: a file, stdin (`-`) or a command's output
(`exec://COMMAND`), as uWSGI reads config files and `@(...)` references.

The text is the source's bytes read as UTF-8, any other byte kept as a
surrogate (a file saved in Latin-1 still starts), so that `as_sent` gives
back the bytes uWSGI would use where a value meets the wire.
"""

import os
import sys

EXEC = "exec://"
# What a `-` source read from stdin, to be read again (optimize).
_stdin_read = []


def is_local_file(spec):
    return spec != "-" and not spec.startswith(EXEC)


def read_source(spec):
    """The text of `spec`; OSError (or ValueError) when it cannot be
    read."""
    if spec == "-":
        text = sys.stdin.read()
        _stdin_read.append(text)
        return text
    if spec.startswith(EXEC):
        return _command_output(spec[len(EXEC):])
    # newline="": a CR stays in the text, where a `%` may eat it.
    with open(spec, encoding="utf-8", errors="surrogateescape",
              newline="") as f:
        return f.read()


def stdin_again():
    """Give stdin back what the config sources read from it, for the
    process optimize starts in this one to read the same config: a
    memory file in its place, holding that text."""
    if not _stdin_read:
        return
    fd = os.memfd_create("ugu-stdin")
    os.write(fd, "".join(_stdin_read).encode(sys.stdin.encoding,
                                             "surrogateescape"))
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, 0)
    os.close(fd)


def _command_output(command):
    # Run by the shell, as uWSGI does; its exit status is not checked
    # either, only its output counts.
    import subprocess
    result = subprocess.run(command, shell=True, stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    return result.stdout.decode("utf-8", "surrogateescape")


def as_sent(text):
    """Config text as the latin-1 str of the bytes it was written as: the
    form of a request var, a PEP 3333 header and a request log line, in
    which ugu matches, adds and writes what a config says, as uWSGI does
    with the bytes themselves."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def as_written(text):
    """as_sent's text back as the config held it (for a message)."""
    return text.encode("latin-1").decode("utf-8", "surrogateescape")
