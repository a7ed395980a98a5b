"""uWSGI's log master: the master alone writes the log, so that it can
rotate or reopen the `logto` file for every process at once (`log-maxsize`,
`touch-logrotate`, `touch-logreopen`, the `L` and `l` of `master-fifo`),
and drop or keep lines by regexp (`log-drain`, `log-filter`).  `log-master`
asks for it alone.  Its children (workers, mules, the router, daemons and
the commands it runs) write their messages, request lines and prints into
a pipe instead, which the master copies to its own log as it comes; the
master writes its own lines there directly, through the same regexps.
`log-route` turns it on too, to send the lines it matches to named
loggers instead (see logroutes).  So does `log-encoder`: then every
line, the master's and those of the pipe, is rewritten by the encoders
(see logencoders) once the regexps have let it through.  So does
`log-alarm`: every line, before the regexps, may raise alarms (see
alarms), once it is written.  With `threaded-logger`, a thread of the master
copies the pipe, rather than its loop, so that a slow log never holds the
loop up; rotating the file takes turns with it.  So does a logger
without a name whose file a reload could not open: the master alone
tries it again, as lines come (see log.retry_loggers).

Off unless one of these options asks for it; then each line a child
writes costs the master a read and a write, as in uWSGI.
"""

import contextlib
import os
import re
import select
import threading
import time

from ugu import fdwait, log
from ugu.options.errors import ConfigError
from ugu.vassal import logencoders, logroutes, shell

READ_SIZE = 65536
# The most a drain reads: more than a full pipe holds (what was written
# before it), but a bound, so that children that keep the pipe full (a
# daemon printing without end) cannot hold the master's loop, and its
# signals, for ever; the pipe, still readable, is drained again at the
# loop's next turn.
DRAIN_READS = 16
# A line with its end, or the unended rest.
_LINE = re.compile(rb"[^\n]*\n|[^\n]+")
# The options that name the file, the one opened last first.
FILE_OPTIONS = ("daemonize2", "logto2", "daemonize", "logto")


class LogMaster:
    def __init__(self, config, start_cwd, has_file, alarms=None):
        # As uWSGI names the file in its lines: as written.  It is opened
        # again from the folder it was first opened from, whatever chdir
        # did since: where ugu started, but for daemonize2's.  Without a
        # file (the terminal, a logger) there is nothing to rotate.
        self.path = self.where = None
        if has_file:
            option = log_file_option(config)
            self.path = config[option]
            folder = os.getcwd() if option == "daemonize2" else start_cwd
            self.where = os.path.join(folder, self.path)
        self.maxsize = config["log-maxsize"]
        self.alarms = alarms
        self.backupname = config["log-backupname"]
        # Asked for by touch-logrotate, touch-logreopen, the fifo.
        self.rotate_due = self.reopen_due = False
        self._pipe = _Pipe(line_pipeline(config, alarms))
        self._pipes = [self._pipe]
        # What cmd alarms write: a pipe of its own, logged as the
        # children's are but never checked for alarms, so that a
        # command that prints what its rule matches does not raise
        # itself again without end.  Both pipes are then watched
        # through one epoll descriptor.
        self._alarm_pipe = self._poll = None
        if alarms and alarms.watches_lines() and alarms.runs_commands():
            self._alarm_pipe = _Pipe(line_pipeline(config))
            self._pipes.append(self._alarm_pipe)
            self._poll = select.epoll()
            for pipe in self._pipes:
                self._poll.register(pipe.read, select.EPOLLIN)
        self.threaded = config["threaded-logger"]
        self.by_message = log.by_message()
        # Held while the pipe is copied or the file rotated, where a
        # thread copies it.
        self._turn = threading.Lock() if self.threaded else \
            contextlib.nullcontext()

    @classmethod
    def from_config(cls, config, start_cwd, alarms=None):
        """A LogMaster where the config asks for one (`alarms`: those of
        the instance, an alarms.Alarms or None), else None."""
        has_file = _has_file(config)
        asked = config["log-master"] or config["log-drain"] or \
            config["log-filter"] or config["log-encoder"] or \
            config["log-route"] or config["threaded-logger"] or \
            (alarms and alarms.watches_lines()) or log.stdio_waiting()
        if asked or (_rotates(config) and has_file):
            return cls(config, start_cwd, has_file, alarms)
        return None

    @staticmethod
    def check_request_routes(config):
        """Refuse log-req-route where the log master would rotate the
        file that the request lines no route takes go to: the workers
        write them there themselves, and would go on in the old file."""
        if config["log-req-route"] and not config["req-logger"] and \
                _rotates(config) and _has_file(config):
            raise ConfigError("request lines that no log-req-route takes "
                              "go to the logto file, which ugu's workers "
                              "write to themselves and would not follow "
                              "once it is rotated or reopened: add "
                              "`req-logger = file:PATH` for them",
                              option="log-req-route")

    def fileno(self):
        """What is readable once a pipe is."""
        return self._poll.fileno() if self._poll else self._pipe.read

    def attach(self):
        """In a freshly forked child: its fd 1 and 2 write into the
        pipe."""
        log.take_stdio(self._pipe.write)
        os.close(self._pipe.read)
        if self._poll:
            self._poll.close()
            os.close(self._alarm_pipe.read)
            os.close(self._alarm_pipe.write)
        # The master looks at the lines, and the child's commands write
        # where it does: into the pipe.
        log.write_through(None)
        shell.send_output_to(None)

    def output(self):
        """The pipe's end a command the master runs writes into."""
        return self._pipe.write

    def alarm_output(self):
        """The pipe's end a cmd alarm's command writes into (None: the
        other pipe's, where no rule could match what it writes)."""
        return self._alarm_pipe.write if self._alarm_pipe else None

    def start_thread(self):
        """threaded-logger: from now on a thread copies the pipe."""
        threading.Thread(target=self._copy_forever, name="logger",
                         daemon=True).start()

    def _copy_forever(self):
        while True:
            fdwait.readable([self.fileno()])
            with self._turn:
                self.drain()

    def catch_up(self):
        """Copy what the children wrote so far, whoever copies the pipe:
        their last lines before the master's last."""
        with self._turn:
            self.drain()

    def drain(self):
        """Copy what the children wrote so far into the log."""
        for pipe in self._pipes:
            self._drain(pipe)

    def _drain(self, pipe):
        for _ in range(DRAIN_READS):
            try:
                data = os.read(pipe.read, READ_SIZE)
            except BlockingIOError:
                return
            if pipe.lines is not None:
                data = pipe.lines(pipe.whole_lines(data))
            # A logger a reload could not open is tried again.
            log.retry_loggers()
            if self.by_message:
                for line in _LINE.findall(data):
                    _write_all(line)
            else:
                _write_all(data)
            if self.alarms:
                self.alarms.raise_due()

    def tick(self):
        """Once a second, as uWSGI's master looks: rotate the file once
        it is larger than log-maxsize, or if asked, else reopen it if
        asked."""
        if self.path is None or not (
                self.maxsize or self.rotate_due or self.reopen_due):
            return
        try:
            size = os.lseek(2, 0, os.SEEK_CUR)
        except OSError as e:
            # Not a file (logto = /dev/stdout, a fifo): no size to go by.
            log.log(f"uwsgi_check_logrotate()/lseek(): {e.strerror}")
            return
        with self._turn:
            if (self.maxsize and size > self.maxsize) or self.rotate_due:
                self.rotate(size)
            elif self.reopen_due:
                self.reopen(size)
        self.rotate_due = self.reopen_due = False

    def rotate(self, size):
        """Rename the file (to log-backupname, else PATH.TIMESTAMP) and
        go on in a new, empty one."""
        stamp = int(time.time())
        name = self.backupname or f"{self.path}.{stamp}"
        target = self.backupname or f"{self.where}.{stamp}"
        log.raw(f"{time.ctime()} - logsize: {size}, triggering rotation "
                f"to {name}...")
        try:
            os.rename(self.where, target)
        except OSError as e:
            log.log(f"unable to rotate log: rename(): {e.strerror}")
            return
        self._open(os.O_TRUNC)

    def reopen(self, size):
        """Open the path again (logrotate moved the file away)."""
        log.raw(f"[{int(time.time())}] logsize: {size}, triggering "
                f"log-reopen...")
        if self._open(os.O_APPEND):
            log.raw(f"[{int(time.time())}] {self.path} reopened.")

    def _open(self, flag):
        """The master's fd 1 and 2 become the file at the path; where it
        cannot be opened, they stay on the old one, which says why."""
        try:
            fd = os.open(self.where, os.O_RDWR | os.O_CREAT | flag,
                         log.LOG_FILE_MODE)
        except OSError as e:
            log.log(f"open(\"{self.where}\"): {e.strerror}")
            return False
        log.move_log(fd)
        return True


class _Pipe:
    """A pipe into the log master, and what its lines become in the log
    (`lines`: see line_pipeline)."""

    def __init__(self, lines):
        self.lines = lines
        # A line a child has not ended yet.
        self._partial = b""
        self.read, self.write = os.pipe()
        os.set_blocking(self.read, False)

    def whole_lines(self, data):
        """The whole lines of `data` (after what came before); an unended
        line waits for its end, unless it is already longer than a
        read."""
        data = self._partial + data
        end = data.rfind(b"\n") + 1
        if not end and len(data) >= READ_SIZE:
            end = len(data)
        self._partial = data[end:]
        return data[:end]


def _rotates(config):
    """Whether the config asks for the logto file to be rotated or
    reopened."""
    # uWSGI's master-fifo reopens its master's file alone, without a log
    # master: the workers' lines would stay in the old file.
    return bool(config["log-maxsize"] or config["touch-logrotate"] or
                config["touch-logreopen"] or config["master-fifo"])


def _has_file(config):
    """Whether the messages go to a logto file: not where a logger
    without a name takes every message, leaving it empty."""
    return log_file_option(config) is not None and \
        not log.unnamed_loggers(config, "logger")


def log_file_option(config):
    """The option naming the file the log goes to, the one opened last;
    None where there is none, or where that one is a UDP address (which
    has no size, and nothing to rotate or reopen: uWSGI's lseek() on it
    fails, every second, and its rotation goes no further)."""
    option = next((name for name in FILE_OPTIONS if config[name]), None)
    if option is None or log.is_udp(config[option]):
        return None
    return option


def line_pipeline(config, alarms=None):
    """What lines (bytes, each with its line end) become in the log:
    those log-drain and log-filter let through and no log-route sends
    to a named logger (see logroutes), each rewritten by the log-encoder
    chain; None where none of these is set.  Every line is first shown
    to the log-alarm rules of `alarms`, as uWSGI checks them before its
    regexps.

    uWSGI's pipe keeps each write apart, and encodes a write as one
    message; a write of several lines (ugu's master writes some so) is
    encoded line by line here, since the pipe keeps no bounds."""
    shown = line_filter(config)
    encoders = logencoders.chain(config, "log-encoder")
    routes = logroutes.routes(config, "log-route", "log-encoder")
    watched = alarms if alarms and alarms.watches_lines() else None
    if shown is None and not encoders and not routes and watched is None:
        return None

    # Where the head of a line longer than a read went (whether it was
    # shown, the routes that took it): its rest goes there too, not
    # where its own bytes would send it.
    head = None

    def through(data):
        nonlocal head
        kept = []
        for line in _LINE.findall(data):
            if watched:
                watched.check(line)
            if head is None:
                head = (shown is None or shown(line),
                        logroutes.matching(routes, line))
            show, taken = head
            if line.endswith(b"\n"):
                head = None
            if show and not logroutes.send(taken, line):
                kept.append(logencoders.encode(encoders, line))
        return b"".join(kept)
    return through


def line_filter(config):
    """Whether a line (bytes, with its line end) is written, by
    log-drain (never those it matches) then log-filter (only those one
    of its regexps matches); None where neither is set."""
    drains = [logroutes.regexp(p, "log-drain") for p in config["log-drain"]]
    keeps = [logroutes.regexp(p, "log-filter") for p in config["log-filter"]]
    if not drains and not keeps:
        return None

    def shown(line):
        if any(r.search(line) for r in drains):
            return False
        return not keeps or any(r.search(line) for r in keeps)
    return shown


def _write_all(data):
    while data:
        try:
            written = os.write(2, data)
        except OSError:
            # A full disk must not stop the master: the lines are lost,
            # as a worker's would be.
            return
        data = data[written:]
