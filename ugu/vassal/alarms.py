"""uWSGI's alarms: named actions the master takes when a log line
matches a regexp.

`alarm = NAME KIND:ARG` names an alarm of a kind uWSGI 2.0 builds in:
`cmd` runs ARG through /bin/sh with the line on its stdin, `signal`
raises uWSGI signal ARG, `mule` queues the line for mule ARG (0: any
mule), `log` logs it after `ALARM: ARG`.  `log-alarm = NAME[,NAME...]
REGEXP` raises those alarms for every line of the log master (the
master's own, and what every child writes into its pipe) the regexp
matches; rules are tried in order, and a `not-log-alarm` rule that
matches ends the search for that line, whatever alarms it names.  An
alarm raised again with the line it was last raised with waits
`alarm-freq` seconds, so that a repeating line does not flood.
`alarm-backlog = NAME` raises the alarm with uWSGI's message whenever the
master finds a socket's listen queue full.  `alarm-segfault = NAME`
raises it when a process of the instance dies of a segmentation fault.
`alarm-fd = NAME FD[:SIZE] MESSAGE` raises it with MESSAGE whenever the
descriptor FD (one ugu was started with) is readable, once SIZE bytes
(1 by default, 8 for an eventfd) are read from it.  A message longer
than `alarm-msg-size` is not raised by the backlog, a segfault or a
metric's threshold; under `alarm-cheap` log-alarm's lines are cut to it.

uWSGI's segmentation fault handler runs in the dying process, which
logs `!!! uWSGI process PID got Segmentation Fault !!!` and a C
backtrace, and raises the alarm with the backtrace.  ugu's processes
are Python's: the master, which sees the process die of SIGSEGV, logs
that line and raises the alarm with it.

As in uWSGI, the master raises them as it reads the line (or its
threaded-logger thread does); unlike it, the lines the alarms themselves
log (a `log` alarm's, what a `cmd` alarm's command prints) are not
checked, so that an alarm whose regexp matches its own line does not
raise itself forever.
"""

import os
import re
import select
import threading
import time

from ugu import log, pcre, proc
from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi
from ugu.vassal import shell

KINDS = ("cmd", "signal", "mule", "log")
# The most an alarm-fd read asks for (a pipe holds 1 MiB at most).
READ_CAP = 16 << 20
# The rule options, and whether a match ends the search instead.
RULE_OPTIONS = {"log-alarm": False, "not-log-alarm": True}
# Lines uWSGI never checks: the alarm subsystem's own.
OWN_PREFIX = b"[uwsgi-alarm"


class Alarm:
    """One `alarm` line: what it does, and the line it last did it
    for."""

    def __init__(self, name, kind, arg, mules_count):
        self.name, self.kind, self.arg = name, kind, arg
        self.last_line, self.last_run = None, 0
        if kind == "signal":
            # A byte, as uWSGI keeps the number.
            self.number = atoi(arg) % 256
        elif kind == "mule":
            self.number = atoi(arg)
            if not 0 <= self.number <= mules_count:
                log.log(f"[uwsgi-alarm] invalid mule_id ({mules_count} "
                        f"mules available), fallback to 0")
                self.number = 0


class Alarms:
    """The instance's alarms and log-alarm rules, made once in the
    master before its first line."""

    def __init__(self, alarms, rules, freq, backlog=(), segfault=(),
                 fds=(), msg_size=8192, cheap=False):
        self.alarms = alarms
        self.rules = rules          # [(regexp, negate, [Alarm])]
        self.backlog = backlog      # [Alarm] raised for a full listen queue
        self.segfault = segfault    # [Alarm] raised for a segfault
        self.fds = fds              # [AlarmFd] the master watches
        self.freq = freq
        self.msg_size, self.cheap = msg_size, cheap
        # The master's: set by bind, once it has them.
        self.route_signal = self.mules = None
        self.bound = False
        # (alarm, line) to raise once the line is written (and the
        # master bound), as uWSGI's alarm lines follow the line.
        self._due = []
        self.commands = proc.Subprocesses()       # pids of the cmd alarms' shells
        # Where the cmd alarms' commands write: the log master's pipe
        # that no rule checks (None: where the master's commands do).
        self.command_output = None
        # The master's loop and a threaded-logger thread both check.
        self._lock = threading.RLock()
        self._raising = False

    @classmethod
    def from_config(cls, config, mules_count):
        """None without alarms; a ConfigError, naming the line, for a
        syntax uWSGI refuses, a kind ugu does not have, or a rule naming
        no alarm (which uWSGI ignores where no alarm is named at all)."""
        alarms = [_alarm(entry, mules_count)
                  for entry in _entries(config, ("alarm",))]
        rules = [_rule(entry, alarms)
                 for entry in _entries(config, RULE_OPTIONS)]
        backlog = [_named(entry, alarms)
                   for entry in _entries(config, ("alarm-backlog",))]
        segfault = [_named(entry, alarms)
                    for entry in _entries(config, ("alarm-segfault",))]
        fds = _watched_fds([_alarm_fd(entry, alarms) for entry in
                            _entries(config, ("alarm-fd",))])
        if not alarms:
            return None
        return cls(alarms, rules, config["alarm-freq"], backlog, segfault,
                   fds, config["alarm-msg-size"], _cheap(config))

    def watches_lines(self):
        return bool(self.rules)

    def runs_commands(self):
        return any(alarm.kind == "cmd" for alarm in self.alarms)

    def bind(self, route_signal, mules):
        """The master is ready: alarms can route signals and queue mule
        messages; those due so far are raised."""
        self.route_signal, self.mules = route_signal, mules
        self.bound = True
        self.raise_due()

    def check(self, line):
        """The alarms of the rules `line` (bytes, with its end) matches
        are due."""
        if line.startswith(OWN_PREFIX):
            return
        if self.cheap:
            line = line[:self.msg_size]
        with self._lock:
            if self._raising:
                return
            for regexp, negate, alarms in self.rules:
                if not regexp.search(line):
                    continue
                if negate:
                    return
                self._due += [(alarm, line) for alarm in alarms]

    def trigger(self, name, message):
        """Raise the alarm `name` (its first of that name) for `message`
        (bytes), as a metric's threshold does: as for a line, not again
        within alarm-freq seconds for the same message."""
        alarm = next((a for a in self.alarms if a.name == name), None)
        if alarm is not None and len(message) <= self.msg_size:
            self._raise_now([(alarm, message)])

    def raise_backlog(self, message):
        """alarm-backlog's alarms, for a listen queue found full (the
        message without a line end, as uWSGI gives it)."""
        if len(message) <= self.msg_size:
            self._raise_now([(alarm, message) for alarm in self.backlog])

    def raise_segfault(self, message):
        """alarm-segfault's alarms, for a process dead of SIGSEGV."""
        if len(message) <= self.msg_size:
            self._raise_now([(alarm, message) for alarm in self.segfault])

    def read_fd(self, watched):
        """alarm-fd: `watched` (an AlarmFd) is readable: once its bytes
        are read, its alarms are raised with its message.  At its end
        (or an error) it is said, its alarms raised a last time, and it
        is watched no more, as uWSGI's."""
        if watched.read():
            self._raise_now(list(watched.alarms))
        if watched.ended:
            self.fds.remove(watched)

    def _raise_now(self, due):
        with self._lock:
            self._due += due
        self.raise_due()

    def raise_due(self):
        """Raise the alarms due, once the master is bound."""
        with self._lock:
            if not self.bound or self._raising:
                return
            due, self._due = self._due, []
            for alarm, line in due:
                self._raise(alarm, line)

    def _raise(self, alarm, line):
        """Run the alarm, unless it ran for this very line less than
        alarm-freq seconds ago."""
        now = int(time.time())
        if line == alarm.last_line and now - alarm.last_run < self.freq:
            return
        self._raising = True
        try:
            getattr(self, f"_raise_{alarm.kind}")(alarm, line)
        finally:
            self._raising = False
        alarm.last_line, alarm.last_run = line, int(time.time())

    def _raise_cmd(self, alarm, line):
        read, write = os.pipe()
        try:
            # What the pipe takes: as much as uWSGI's log master reads.
            os.set_blocking(write, False)
            os.write(write, line)
        except BlockingIOError:
            pass
        finally:
            os.close(write)
        try:
            self.commands.add(shell.fork_shell(
                alarm.arg, stdin=read, output=self.command_output))
        finally:
            os.close(read)

    def _raise_signal(self, alarm, line):
        self.route_signal(alarm.number)

    def _raise_mule(self, alarm, line):
        if not self.mules:
            return
        queue = self.mules.queues[alarm.number - 1] if alarm.number \
            else self.mules.shared
        queue.send(line)

    def _raise_log(self, alarm, line):
        # The line's bytes as they came, after the alarm's own text.
        text = line[:-1] if line.endswith(b"\n") else line
        if alarm.arg:
            text = alarm.arg.encode() + b" " + text
        log.verbose(f"ALARM: {text.decode('latin-1')}", "latin-1")

    def died(self, pid, status):
        """Whether the master's child `pid` was a cmd alarm's shell."""
        return self.commands.died(pid, status)


class AlarmFd:
    """A descriptor alarm-fd watches, with the alarms it raises, each
    with its line's message: [(Alarm, message)]."""

    def __init__(self, fd, size):
        self.fd, self.size = fd, size
        self.alarms = []
        self.ended = False
        self._got = 0

    def fileno(self):
        return self.fd

    def read(self):
        """Read what is there, up to the bytes still due; whether the
        alarms are due (all read, or the end)."""
        try:
            # At most READ_CAP a read: read() allocates what it is
            # asked for first, and a SIZE the memory cannot hold ended
            # the master (uWSGI's dies of its malloc at the start).
            data = os.read(self.fd, min(self.size - self._got, READ_CAP))
            error = "Success"
        except BlockingIOError:
            return False
        except OSError as e:
            data, error = b"", e.strerror
        if not data:
            log.log(f"[uwsgi-alarm-fd]/read(): {error} "
                    f"[core/alarm.c line 251]")
            log.log(f"[uwsgi-alarm-fd] i will stop monitoring fd "
                    f"{self.fd}")
            self.ended = True
            return True
        self._got += len(data)
        if self._got < self.size:
            return False
        self._got = 0
        return True


def _alarm_fd(entry, alarms):
    """(fd, size, message, alarm) of `NAME FD[:SIZE] MESSAGE`."""
    name, space, rest = entry.value.partition(" ")
    where, space2, message = rest.partition(" ")
    if not space or not space2:
        raise _error(entry, f"invalid alarm-fd syntax: {entry.value} "
                     f"(write it ALARM FD[:SIZE] MESSAGE)")
    fd_text, colon, size_text = where.partition(":")
    if not fd_text.isdigit() or (colon and not size_text.isdigit()):
        raise _error(entry, f"invalid alarm-fd syntax: {entry.value} "
                     f"(FD and SIZE are numbers)")
    alarm = next((a for a in alarms if a.name == name), None)
    if alarm is None:
        raise _error(entry, f"unable to find alarm \"{name}\" (add an "
                     f"`alarm = {name} KIND:ARGS` line)")
    fd = int(fd_text)
    try:
        os.fstat(fd)
    except OSError as e:
        raise _error(entry, f"fd {fd} is not open ({e.strerror}): pass "
                     f"it to ugu open") from None
    try:
        with select.epoll() as poll:
            poll.register(fd, select.EPOLLIN)
    except OSError as e:
        # uWSGI's alarm thread cannot watch it either, and says so.
        raise _error(entry, f"fd {fd} cannot be watched for reading "
                     f"({e.strerror}): a regular file or /dev/null never "
                     f"waits; pass a pipe, a socket or an eventfd") from None
    return fd, max(int(size_text or 1), 1), message.encode(), alarm


def _watched_fds(found):
    """One AlarmFd a descriptor, read by the first line's size; an
    alarm named twice for one descriptor raised once (with the first
    line's message), as uWSGI's."""
    watched = {}
    for fd, size, message, alarm in found:
        if fd not in watched:
            watched[fd] = AlarmFd(fd, size)
        if all(a is not alarm for a, _ in watched[fd].alarms):
            watched[fd].alarms.append((alarm, message))
    for each in watched.values():
        os.set_blocking(each.fd, False)
    return list(watched.values())


def _cheap(config):
    """alarm-cheap, as uWSGI reads its value."""
    value = config["alarm-cheap"]
    return value is not None and \
        value.lower() not in ("false", "off", "no") and value != "0"


def _entries(config, names):
    """The entries of the options `names`, under any of their names."""
    for entry in config.entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt is not None and opt.name in names:
            yield entry


def _alarm(entry, mules_count):
    """The Alarm of `NAME KIND:ARG`."""
    name, space, rest = entry.value.partition(" ")
    kind, colon, arg = rest.partition(":")
    if not space or not colon:
        raise _error(entry, f"invalid alarm syntax: {entry.value} "
                     f"(write it NAME KIND:ARGS, e.g. "
                     f"\"mail cmd:mail -s alarm root\")")
    if kind not in KINDS:
        raise _error(entry, f"invalid alarm: {entry.value} (ugu has the "
                     f"alarm kinds uWSGI 2.0 builds in: "
                     f"{', '.join(KINDS)}; \"{kind}\" is not one)")
    return Alarm(name, kind, arg, mules_count)


def _named(entry, alarms):
    """The first alarm called as alarm-backlog's value (uWSGI raises
    none for a name no alarm has, and says nothing)."""
    alarm = next((a for a in alarms if a.name == entry.value), None)
    if alarm is None:
        raise _error(entry, f"no alarm is named \"{entry.value}\" (add "
                     f"an `alarm = {entry.value} KIND:ARGS` line)")
    return alarm


def _rule(entry, alarms):
    """(regexp, negate, alarms) of `NAME[,NAME...] REGEXP`."""
    names, space, pattern = entry.value.partition(" ")
    if not space:
        raise _error(entry, f"invalid {entry.key} syntax: {entry.value} "
                     f"(write it ALARM[,ALARM...] REGEXP)")
    found = []
    for name in filter(None, names.split(",")):
        # The first alarm of that name, as uWSGI finds it.
        alarm = next((a for a in alarms if a.name == name), None)
        if alarm is None:
            raise _error(entry, f"invalid {entry.key}: {entry.value} "
                         f"(no alarm is named \"{name}\": add an `alarm "
                         f"= {name} KIND:ARGS` line)")
        found.append(alarm)
    try:
        regexp = pcre.compile(pattern.encode())
    except re.error as e:
        raise _error(entry, f"invalid {entry.key}: {entry.value} (the "
                     f"regexp: {e})") from None
    return regexp, RULE_OPTIONS[registry.lookup(entry.key).name], found


def _error(entry, reason):
    return ConfigError(reason, file=entry.file, line=entry.line,
                       option=entry.key)
