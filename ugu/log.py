"""Log lines shaped like uWSGI's.

Tutorials, log parsers and monitoring grep for uWSGI's exact wording, so the
lifecycle lines and the request line keep it, the word "uWSGI" included.
Every line is one `os.write`, so lines from several processes sharing a
file or a pipe never interleave mid-line.

Two streams, as in uWSGI: general messages (fd 2, or a `logger`) and
request lines (fd 2, or a `req-logger`).  `logto` points fd 1 and 2 at a
file, so that both streams and the app's prints land there; `logdate`
prefixes general messages (never request lines, nor what the app
prints) with the date.  A logger may have a name (`logger = NAME
file:PATH`): then it takes only the lines a route sends it (see
vassal/logroutes).
"""

import os
import re
import sys
import time
import traceback

from ugu import UWSGI_VERSION, __version__
from ugu.options.errors import ConfigError
from ugu.options.kvlist import split_escaped

_MESSAGES_FD = 2
_requests_fd = 2
# The descriptors that are copies of the log as it was before the
# loggers (named stdio loggers, and _requests_fd where request lines go
# there): a file opened for the log later (logto2, daemonize2) takes
# them over too, as uWSGI's.
_log_copies = []
# Whether a logger without a name took fd 1 and 2 (use_loggers).
_logger_has_stdio = False
# Whether that logger sends each write as a message of its own (see
# netlog), so that a log master writes its lines one by one.
_by_message = False
# In a log master under log-drain, log-filter or log-encoder: what one of
# its own writes (bytes) becomes in the log.  None everywhere else.
_through = None
# Called after each of those writes (the log-alarms due then), or None.
_then = None
# With a req-logger and log-req-encoder, or log-req-route: a function
# that writes a request line (bytes, with its newline) where it goes,
# encoded.  None everywhere else: request lines go to _requests_fd.
_send_request = None
# logdate: whether general messages carry the date, and the strftime
# format of the date (None: ctime's), which verbose lines use too.
_dated = False
_date_format = None
# uWSGI formats the date into a buffer of this many bytes: a longer one
# leaves the prefix without a date.
_DATE_ROOM = 64
# A `logger` line's name, before a space: letters and digits, as uWSGI
# tells a name apart from a logger written without one.
_NAMED = re.compile(r"([A-Za-z0-9]+) (.*)", re.DOTALL)
# The named loggers' descriptors, by name.
_named = {}
# The `file:` loggers a reload could not open (their folder gone): the
# path of each, with the descriptors it is to take over, which meanwhile
# write to /dev/null.  As uWSGI's file logger, which opens its file as it
# writes its first line and tries again at each line until it can, their
# lines are dropped, and the file is tried again as lines come (see
# retry_loggers), by every process on its own.
_waiting = {}
# uWSGI's mode for the files it logs to (before the umask).
LOG_FILE_MODE = 0o640
# What `logdate = VALUE` takes for the bare option (ctime's date), as
# uWSGI compares them, ignoring case; any other value is a format.
_CTIME_WORDS = ("true", "1", "on", "yes")


def log(message):
    """A general message, as uWSGI prints it: one line, or several
    written at once (the date, with logdate, prefixes the first)."""
    if _dated:
        message = f"{_date()} - {message}"
    _write(_MESSAGES_FD, message)


def log_sent(message):
    """log(), for a message held as the latin-1 str of its bytes (a
    route's `log:` line, made of the rule's text and request vars):
    written as those bytes."""
    if _dated:
        message = f"{_date()} - {message}"
    _write(_MESSAGES_FD, message, "latin-1")


def starting(pcre_jit=False):
    """The first line of every uWSGI instance, vassal or Emperor; after
    it, with pcre-jit, the line of a uWSGI whose PCRE has no JIT: ugu's
    regexps are Python's, which has none."""
    log(f"*** Starting uWSGI {UWSGI_VERSION} (ugu {__version__}) on "
        f"[{time.ctime()}] ***")
    if pcre_jit:
        log("pcre jit disabled")


def log_all(messages):
    """General messages in one write, each dated with logdate, so that
    no other process's line comes between them."""
    if _dated:
        messages = [f"{_date()} - {m}" for m in messages]
    _write(_MESSAGES_FD, "\n".join(messages))


def verbose(message, encoding="utf-8"):
    """A line of uWSGI's verbose logger: always dated, with logdate's
    format where it gives one (`encoding`: as log_sent's, "latin-1" for
    a message held as the str of its bytes)."""
    _write(_MESSAGES_FD, f"{_date()} - {message}", encoding)


def _date():
    if _date_format is None:
        return time.ctime()
    text = time.strftime(_date_format)
    return text if len(text.encode()) < _DATE_ROOM else ""


def use_logdate(value):
    """`logdate` (or `log-date`): None leaves messages undated."""
    global _dated, _date_format
    if value is None:
        return
    _dated = True
    if value.lower() not in _CTIME_WORDS:
        _date_format = value


def logdate_format():
    """logdate's strftime format, or None (no logdate, or ctime's)."""
    return _date_format


def request_writer(line_of):
    """A function that logs a finished request with line_of(request)."""
    # The line's fields are the request's bytes as latin-1 text (PEP
    # 3333): they go out as the bytes that came in, as uWSGI's do.
    if _send_request is None and _requests_fd not in _waiting_fds():
        def write(r):
            _write(_requests_fd, line_of(r), "latin-1")
        return write
    # A req-logger waiting for its file is tried again at each line.
    sender = _send_request or _send_to_requests

    def write_sent(r):
        sender((line_of(r) + "\n").encode("latin-1", "backslashreplace"))
    return write_sent


def plain_request_sink():
    """(device, inode) of the file or pipe request lines are written to
    as they are (no req-logger thread, encoder or file still to open in
    between), else None: the router's static answers (ugu.staticanswer)
    write their lines there only when the worker's go to the same."""
    if _send_request is not None or _through is not None or \
            _then is not None or _requests_fd in _waiting_fds():
        return None
    try:
        st = os.fstat(_requests_fd)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def write_request_line(line):
    """A request line written as the worker's are, where they go."""
    _write(_requests_fd, line, "latin-1")


def _send_to_requests(line):
    send(_requests_fd, line)


def send_requests(send):
    """From now on, request lines are send(line) (bytes, with its
    newline) rather than written to the request log as they are."""
    global _send_request
    _send_request = send


def requests_fd():
    """Where request lines go that nothing else sends elsewhere: the
    req-logger, or the log."""
    return _requests_fd


def raw(line):
    """A line as it is, never dated: uWSGI writes its lines about
    rotating the log file so."""
    _write(_MESSAGES_FD, line)


def write_through(through, then=None):
    """From now on, what this process writes (bytes) goes out as
    through(data) (None: as it is), then() called once it is out."""
    global _through, _then
    _through, _then = through, then


def _write(fd, line, encoding="utf-8"):
    # Every request line comes here: one call, nothing more when off.
    data = (line + "\n").encode(encoding, "backslashreplace")
    if _through is not None:
        data = _through(data)
    try:
        if data:
            os.write(fd, data)
    except OSError:
        # A closed log stream must not take a request down with it.
        pass
    if _then is not None:
        _then()


def send(fd, data):
    """_write, for bytes already encoded."""
    if _waiting:
        retry_loggers()
    try:
        os.write(fd, data)
    except OSError:
        # As in _write: the request goes on.
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
# The import machinery's own files, not the libraries beside them in the
# importlib package (importlib.metadata, importlib.resources), which an
# app calls as any other library.
_IMPORTLIB = os.path.join(os.path.dirname(os.path.abspath(
    traceback.__file__)), "importlib")
_IMPORT_MACHINERY = {os.path.join(_IMPORTLIB, name) for name in (
    "__init__.py", "_bootstrap.py", "_bootstrap_external.py")}


def _keep_app_frames(error, seen):
    if error is None or id(error) in seen:
        return
    seen.add(id(error))
    error.stack = traceback.StackSummary.from_list(app_frames(error.stack))
    _keep_app_frames(error.__cause__, seen)
    _keep_app_frames(error.__context__, seen)


def app_frames(stack):
    """The frames of a stack that are the app's: not ugu's, nor those of
    the import machinery that ran it."""
    return [frame for frame in stack if app_file(frame.filename)]


def app_file(filename):
    """Whether code in `filename` is the app's (or a library's it
    uses): not ugu's, nor the import machinery's."""
    return not (filename.startswith(_UGU) or filename in _IMPORT_MACHINERY
                or filename.startswith("<frozen importlib"))


def open_logger(spec, option, config, reloaded=False):
    """A file descriptor for a logger spec: file:PATH, fd:N, stdio, or
    one of the loggers that send each message over a socket (see
    netlog), which the config's log-master-bufsize and rsyslog options
    tune.
    A file that cannot be opened stops the start; at a reload, where
    the instance must go on serving, it is said, and waited for (see
    _waiting) on a descriptor to /dev/null."""
    plugin, _, arg = spec.partition(":")
    if plugin == "file" and arg:
        path = _logfile_path(arg, option)
        try:
            return _open_log_file(path)
        except OSError as e:
            if not reloaded:
                raise ConfigError(f"cannot open log file {path}: "
                                  f"{e.strerror}", option=option) from None
            log(f"cannot open log file {path} ({option}): {e.strerror}: "
                "its lines are dropped until it can be opened")
            fd = os.open(os.devnull, os.O_WRONLY)
            _waiting.setdefault(path, []).append(fd)
            return fd
    if plugin == "fd" and arg.isdigit():
        return _open_fd(spec, int(arg), option)
    if plugin == "stdio":
        return 1
    if plugin in ("socket", "rsyslog", "syslog"):
        from ugu import netlog
        return netlog.open_logger(plugin, arg or None, spec, option, config)
    raise ConfigError(f"logger '{spec}' is not supported by ugu (use "
                      "file:PATH, fd:N, stdio, socket:ADDR, rsyslog:ADDR "
                      "or syslog)", option=option)


def flush_loggers():
    """Before the process ends or execs: the loggers that send over a
    socket send what they have (see netlog)."""
    netlog = sys.modules.get("ugu.netlog")
    if netlog is not None:
        netlog.flush()


def _open_log_file(path):
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                   LOG_FILE_MODE)


def _waiting_fds():
    return [fd for fds in _waiting.values() for fd in fds]


def retry_loggers():
    """Open the files of the loggers a reload could not open, where they
    can be now: each takes over its descriptors, in this process."""
    for path, fds in list(_waiting.items()):
        try:
            fd = _open_log_file(path)
        except OSError:
            continue
        for target in fds:
            os.dup2(fd, target, inheritable=os.get_inheritable(target))
        os.close(fd)
        del _waiting[path]


def retrying(through):
    """write_through's `through` (or None) for a master whose logger
    without a name waits for its file: tried again at each line first."""
    def retried(data):
        retry_loggers()
        return data if through is None else through(data)
    return retried


def by_message():
    """Whether the logger of fd 1 and 2 takes each write as a message:
    then lines are written one at a time, as uWSGI's processes write
    them."""
    return _by_message


def stdio_waiting():
    """Whether the logger without a name waits for its file: then only
    the log master, which copies every line, can try it again."""
    return 2 in _waiting_fds()


def _open_fd(spec, fd, option):
    """An fd: logger's descriptor, which must be one ugu was started
    with: uWSGI writes to one that is not open and loses every line."""
    try:
        os.fstat(fd)
    except OSError as e:
        raise ConfigError(f"logger '{spec}': fd {fd} is not open "
                          f"({e.strerror}): pass it to ugu open, or "
                          "log to file:PATH", option=option) from None
    return fd


def _logfile_path(arg, option):
    """The file a `file:` logger writes to: its argument, or, where that
    has an `=` (as uWSGI tells them apart), the `logfile` key of a
    key=value list.  uWSGI's other keys rotate the file, which ugu's
    logger does not do: they are refused, as are keys uWSGI ignores."""
    if "=" not in arg:
        return arg
    path = None
    for item in split_escaped(arg, ","):
        key, eq, value = item.partition("=")
        if key in ("maxsize", "backupname"):
            raise ConfigError(f"key '{key}': ugu's file: logger does not "
                              "rotate its file; `logto = PATH` with "
                              "`log-maxsize` (and `log-backupname`) does, "
                              "for messages", option=option)
        if not eq or key != "logfile":
            raise ConfigError(f"file: logger: '{item}' is not "
                              "logfile=PATH (write file:PATH, or "
                              "file:logfile=PATH)", option=option)
        path = value
    if not path:
        raise ConfigError("file: logger: the logfile key names no file",
                          option=option)
    return path


def start(config):
    """A vassal's or Emperor's first lines, in uWSGI's order: the config
    files read (undated: logdate is an option of theirs), then what the
    options said while being read."""
    for line in config.announce_lines():
        log(line)
    use_logdate(config["logdate"])
    for line in config.reading_lines():
        log(line)


def logto(config, option, folder=""):
    """Point fd 1 and 2 at the file the option names, created or appended
    to (emptied, with log-truncate), as uWSGI's logto: messages, request
    lines and the app's prints go there, from this process and every one
    it forks or re-executes.  A relative path is taken from `folder`."""
    path = config[option]
    if is_udp(path):
        _take_log(_udp_log(path, option, config))
        return
    path = os.path.join(folder, path)
    how = os.O_TRUNC if config["log-truncate"] else os.O_APPEND
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | how, LOG_FILE_MODE)
    except OSError as e:
        raise ConfigError(f"cannot open log file {path}: {e.strerror}",
                          option=option) from None
    _take_log(fd)
    if config["logfile-chmod"] is not None:
        try:
            os.chmod(path, config["logfile-chmod"])
        except OSError as e:
            # As uWSGI: said, and the instance goes on.
            log(f"chmod(): {e.strerror} [core/logging.c line 295]")


def _take_log(fd):
    for copy in _log_copies:
        os.dup2(fd, copy, inheritable=False)
    if _logger_has_stdio:
        # The logger keeps the messages, as in uWSGI.
        os.close(fd)
    else:
        take_stdio(fd)


def is_udp(value):
    """Whether a logto (logto2, daemonize) value is, to uWSGI, a UDP
    address rather than a file: where it has a colon."""
    return ":" in value


def _udp_log(value, option, config):
    """The descriptor of a log sent to HOST:PORT over UDP (an IPv4
    address, or a name resolved to one; the port as atoi reads it), as
    uWSGI's logto sends it: every write, one line of the log, is a
    datagram (see netlog.open_udp)."""
    import socket
    from ugu import netlog
    from ugu.options.expand import atoi
    host, _, port = value.partition(":")
    if not host or not port:
        raise ConfigError(f"'{value}' is no UDP address: write HOST:PORT",
                          option=option)
    try:
        address = socket.gethostbyname(host)
    except OSError:
        raise ConfigError(f"cannot resolve '{host}' to an IPv4 address "
                          "to log to", option=option) from None
    return netlog.open_udp((address, atoi(port) % 65536), config, option)


def move_log(fd):
    """fd becomes the log: fd 1 and 2, and the copies of the log that
    named stdio loggers and request lines write to."""
    for copy in _log_copies:
        os.dup2(fd, copy, inheritable=False)
    take_stdio(fd)


def take_stdio(fd):
    """fd becomes fd 1 and 2 (and is closed, if it was another)."""
    sys.stdout.flush()
    sys.stderr.flush()
    for target in (1, 2):
        if fd != target:
            os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def split_logger(spec):
    """(name, logger) of a `logger` or `req-logger` line: the name is
    None where it has none."""
    named = _NAMED.fullmatch(spec)
    return named.groups() if named else (None, spec)


def unnamed_loggers(config, option):
    """The option's loggers that have no name: those that take every
    line no route sent elsewhere."""
    return [spec for spec in config[option]
            if split_logger(spec)[0] is None]


def logger_names(config):
    """The names of the config's `logger` lines."""
    return [name for name, _ in map(split_logger, config["logger"])
            if name is not None]


def log_file_taken(config):
    """Whether a logto file gets lines beside the loggers: where no
    logger without a name takes the messages, where request lines that
    no log-req-route takes go to the log (no req-logger), or where a
    named logger is stdio."""
    named_stdio = any(name is not None and logger.partition(":")[0] ==
                      "stdio"
                      for name, logger in map(split_logger,
                                              config["logger"]))
    return not unnamed_loggers(config, "logger") or named_stdio or \
        bool(config["log-req-route"] and not config["req-logger"])


def routed_names(config):
    """The names of the loggers log-route and log-req-route send lines
    to."""
    return {spec.partition(" ")[0]
            for option in ("log-route", "log-req-route")
            for spec in config[option]}


def named_logger(name):
    """The descriptor of the logger of that name (use_loggers opened
    it)."""
    return _named[name]


def check_loggers(config):
    """Refuse the `logger` and `req-logger` lines ugu cannot follow,
    before any is opened."""
    for option in ("logger", "req-logger"):
        unnamed = unnamed_loggers(config, option)
        for spec in unnamed:
            if " " in spec.partition(":")[0]:
                # uWSGI reads a name before the space only where it has
                # letters and digits alone, and otherwise looks for a
                # kind of logger with a space in it.
                raise ConfigError(f"logger '{spec}': a logger's name is "
                                  "made of letters and digits only, as in "
                                  "uWSGI (write NAME file:PATH)",
                                  option=option)
        if len(unnamed) > 1:
            raise ConfigError("ugu supports one logger of each kind "
                              "without a name; keep a single line",
                              option=option)
    for spec in config["req-logger"]:
        name, _ = split_logger(spec)
        if name is not None:
            # uWSGI 2.0 skips it, and its log-req-route looks the name
            # up among the `logger` lines: it never writes a line there.
            raise ConfigError(f"req-logger '{spec}': uWSGI never writes "
                              f"to a named req-logger; write `logger = "
                              f"{spec}` and `log-req-route = {name} "
                              f"REGEX`, whose names are those of `logger` "
                              f"lines", option="req-logger")
    names = logger_names(config)
    for name in set(names):
        if names.count(name) > 1:
            raise ConfigError(f"two loggers are named '{name}': give "
                              "each its own name", option="logger")


def use_loggers(config, reloaded=False):
    """Point both streams at the config's loggers, and open its named
    loggers, which only routes write to (`reloaded`: at a reload, a file
    that cannot be opened is waited for rather than fatal).

    Messages take over fd 1 and 2 as well, so that the app's prints and
    tracebacks land in the same file, as with uWSGI's log pipe.
    """
    global _requests_fd, _logger_has_stdio, _by_message
    check_loggers(config)
    _open_named(config, reloaded)
    if config["log-req-route"] and not config["req-logger"]:
        # As uWSGI: request lines no route takes go to the log as it was
        # before any logger (logto2 and daemonize2 take it later), not to
        # the loggers of messages.
        _requests_fd = os.dup(2)
        _log_copies.append(_requests_fd)
    unnamed = unnamed_loggers(config, "logger")
    if unnamed:
        fd = open_logger(unnamed[0], "logger", config, reloaded)
        take_stdio(fd)
        for fds in _waiting.values():
            if fd in fds:
                fds[:] = [1, 2]
        _logger_has_stdio = True
        _by_message = unnamed[0].partition(":")[0] in (
            "socket", "rsyslog", "syslog")
    if config["req-logger"]:
        _requests_fd = open_logger(config["req-logger"][0], "req-logger",
                                   config, reloaded)


def _open_named(config, reloaded):
    routed = routed_names(config)
    for spec in config["logger"]:
        name, logger = split_logger(spec)
        if name is None:
            continue
        if name not in routed:
            # As uWSGI, which opens a logger as it first writes to it,
            # leaves a logger no route names unopened (said at start-up).
            continue
        fd = open_logger(logger, "logger", config, reloaded)
        if fd == 1:
            # stdio: the log as it was before any logger took fd 1.
            fd = os.dup(fd)
            _log_copies.append(fd)
        _named[name] = fd


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


def request_line_micros(r):
    """request_line under log-micros: the response time in microseconds
    (measured as the line is written), as uWSGI's.  A line of its own,
    not a parameter of request_line, which every request runs."""
    micros = max(int((time.time() - r.start) * 1e6), 0)
    via = f"via {r.via}() " if r.via else ""
    return (f"[pid: {r.pid}|app: {r.app_id}|req: {r.app_requests}/"
            f"{r.total_requests}] {r.remote_addr} ({r.remote_user}) "
            f"{{{r.vars_count} vars in {r.vars_size} bytes}} "
            f"[{_ctime(r.start)}] {r.method} {r.uri} => generated "
            f"{r.body_size} bytes in {micros} micros {via}({r.protocol} "
            f"{r.status}) {r.header_count} headers in {r.header_size} bytes "
            f"({r.switches} switches on core {r.core})")


# (second, its ctime text): formatting the date is a third of the request
# line's cost, and a busy worker logs many requests within one second.
_last_ctime = (None, "")


def ctime(when):
    """The request line's date: time.ctime(), made once a second."""
    return _ctime(when)


def _ctime(when):
    global _last_ctime
    second, text = _last_ctime
    if second != int(when):
        second = int(when)
        text = time.ctime(second)
        _last_ctime = (second, text)
    return text
