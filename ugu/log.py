"""Log lines shaped like uWSGI's.

Tutorials, log parsers and monitoring grep for uWSGI's exact wording, so the
lifecycle lines and the request line keep it, the word "uWSGI" included.
Every line is one `os.write`, so lines from several processes sharing a
file or a pipe never interleave mid-line.

Two streams, as in uWSGI: general messages (fd 2, or a `logger`) and
request lines (fd 2, or a `req-logger`).
"""

import os
import sys
import time
import traceback

from ugu import UWSGI_VERSION, __version__
from ugu.options.errors import ConfigError

_MESSAGES_FD = 2
_requests_fd = 2


def log(message):
    """A general message line, as uWSGI prints it."""
    _write(_MESSAGES_FD, message)


def starting():
    """The first line of every uWSGI instance, vassal or Emperor."""
    log(f"*** Starting uWSGI {UWSGI_VERSION} (ugu {__version__}) on "
        f"[{time.ctime()}] ***")


def verbose(message):
    """A line of uWSGI's verbose logger: prefixed with the ctime."""
    _write(_MESSAGES_FD, f"{time.ctime()} - {message}")


def request_writer(line_of):
    """A function that logs a finished request with line_of(request)."""
    def write(r):
        # The line's fields are the request's bytes as latin-1 text (PEP
        # 3333): they go out as the bytes that came in, as uWSGI's do.
        _write(_requests_fd, line_of(r), "latin-1")
    return write


def _write(fd, line, encoding="utf-8"):
    data = (line + "\n").encode(encoding, "backslashreplace")
    try:
        os.write(fd, data)
    except OSError:
        # A closed log stream must not take a request down with it.
        pass


def app_traceback():
    """The exception being handled, as uWSGI logs an app's: the frames of
    the app's code and what it called, not those of ugu or of the import
    machinery that ran it (a module not found is then one line)."""
    error = traceback.TracebackException(*sys.exc_info())
    _keep_app_frames(error, set())
    sys.stderr.write("".join(error.format()))
    sys.stderr.flush()


_UGU = os.path.dirname(os.path.abspath(__file__)) + os.sep
_IMPORTLIB = os.path.dirname(os.path.abspath(traceback.__file__)) + \
    f"{os.sep}importlib{os.sep}"


def _keep_app_frames(error, seen):
    if error is None or id(error) in seen:
        return
    seen.add(id(error))
    error.stack = traceback.StackSummary.from_list(
        [frame for frame in error.stack if _app_frame(frame.filename)])
    _keep_app_frames(error.__cause__, seen)
    _keep_app_frames(error.__context__, seen)


def _app_frame(filename):
    return not (filename.startswith((_UGU, _IMPORTLIB))
                or filename.startswith("<frozen importlib"))


def open_logger(spec, option):
    """A file descriptor for a logger spec: file:PATH, fd:N or stdio."""
    plugin, _, arg = spec.partition(":")
    if plugin == "file" and arg:
        try:
            return os.open(arg, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                           0o644)
        except OSError as e:
            raise ConfigError(f"cannot open log file {arg}: {e.strerror}",
                              option=option) from None
    if plugin == "fd" and arg.isdigit():
        return int(arg)
    if plugin == "stdio":
        return 1
    raise ConfigError(f"logger '{spec}' is not supported by ugu (use "
                      "file:PATH, fd:N or stdio)", option=option)


def use_loggers(config):
    """Point both streams at the config's loggers.

    Messages take over fd 1 and 2 as well, so that the app's prints and
    tracebacks land in the same file, as with uWSGI's log pipe.
    """
    global _requests_fd
    for name in ("logger", "req-logger"):
        if len(config[name]) > 1:
            raise ConfigError("ugu supports one logger of each kind; "
                              "keep a single line", option=name)
    if config["logger"]:
        fd = open_logger(config["logger"][0], "logger")
        sys.stdout.flush()
        sys.stderr.flush()
        for target in (1, 2):
            if fd != target:
                os.dup2(fd, target)
        if fd > 2:
            os.close(fd)
    if config["req-logger"]:
        _requests_fd = open_logger(config["req-logger"][0], "req-logger")


def request_line(r):
    """uWSGI's default request log line for a finished request: `req:`
    is its app's requests so far in this worker, then the whole
    instance's."""
    via = f"via {r.via}() " if r.via else ""
    return (f"[pid: {r.pid}|app: {r.app_id}|req: {r.app_requests}/"
            f"{r.total_requests}] {r.remote_addr} ({r.remote_user}) "
            f"{{{r.vars_count} vars in {r.vars_size} bytes}} "
            f"[{_ctime(r.start)}] {r.method} {r.uri} => generated "
            f"{r.body_size} bytes in {r.msecs} msecs {via}({r.protocol} "
            f"{r.status}) {r.header_count} headers in {r.header_size} bytes "
            f"({r.switches} switches on core {r.core})")


# (second, its ctime text): formatting the date is a third of the request
# line's cost, and a busy worker logs many requests within one second.
_last_ctime = (None, "")


def _ctime(when):
    global _last_ctime
    second, text = _last_ctime
    if second != int(when):
        second = int(when)
        text = time.ctime(second)
        _last_ctime = (second, text)
    return text
