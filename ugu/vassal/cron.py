"""The master's cron (uWSGI's `cron`, `unique-cron` and `cron2`): shell
commands run when the local time matches their rule.

    cron = MINUTE HOUR DAY MONTH WEEKDAY COMMAND
    unique-cron = MINUTE HOUR DAY MONTH WEEKDAY COMMAND
    cron2 = [minute=M,hour=H,day=D,month=MO,week=W,unique=1,harakiri=S ]COMMAND

A field is a number to match, -1 for any value, or -N for the values that
N divides (-5 in the minutes: 0, 5, 10, ...); the weekday counts from
Sunday as 0 (7 is Sunday too), the month from 1.  When both the day and
the weekday are numbers, either one matching is enough, as in crontab.

The master looks once a second and starts a command whose rule matches,
unless it started it less than 60 seconds ago: once per matching minute.
The command runs through /bin/sh in a session of its own (the way
daemons.py spawns a daemon), so the master never waits for it; its end
is reaped by the master's loop and said.  A unique one is not started
again while it runs.  `harakiri` (or `cron-harakiri` for every command)
kills a command's whole group after that many seconds.  As in uWSGI, a
command still running when the instance stops or reloads is left to end
on its own.
"""

import os
import re
import signal
import time

from ugu import log, proc
from ugu.options.errors import ConfigError
from ugu.options.kvlist import split_escaped
from ugu.vassal.shell import fork_shell

PREFIX = "[uwsgi-cron]"
ANY = -1
# A rule that matched starts its command again only after this long.
MINUTE = 60
FIELDS = ("minute", "hour", "day", "month", "week")
CRON2_KEYS = (*FIELDS, "unique", "harakiri")
REFUSED = {
    "legion": "legions are not implemented by ugu; remove the key (every "
              "instance then runs the command)",
}
SYNTAX = ("expected MINUTE HOUR DAY MONTH WEEKDAY COMMAND, each field a "
          "number, -1 for any, -N for every N")


class Cron:
    """One command's rule, and the state of its latest run."""

    def __init__(self, command, minute=ANY, hour=ANY, day=ANY, month=ANY,
                 week=ANY, unique=False, mercy=0):
        self.command = command
        self.minute, self.hour, self.day = minute, hour, day
        self.month, self.week = month, week
        self.unique = unique
        # Its own harakiri: 0 follows cron-harakiri, -1 turns it off.
        self.mercy = mercy
        self.pid = None         # its latest run, until reaped
        self.started_at = 0     # whole seconds, as uWSGI counts them
        self.last_job = 0
        self.harakiri_at = 0    # 0: none for this run


def matches(cron, when):
    """Whether the rule matches `when` (a time.struct_time), as uWSGI
    reads its fields."""
    now = {"minute": when.tm_min, "hour": when.tm_hour,
           "day": when.tm_mday, "month": when.tm_mon, "week": when.tm_wday}
    # Python counts Monday as 0; cron, as C's tm_wday, Sunday.
    now["week"] = (now["week"] + 1) % 7
    wanted = {field: _wanted(getattr(cron, field), now[field])
              for field in FIELDS}
    if wanted["week"] == 7:
        wanted["week"] = 0
    same = {field: wanted[field] == now[field] for field in FIELDS}
    if same["minute"] and same["hour"] and same["month"]:
        if cron.day >= 0 and cron.week >= 0:
            return same["day"] or same["week"]
        return same["day"] and same["week"]
    return False


def _wanted(field, now):
    """The value a field asks for at `now`: itself, or `now` for -N when
    N divides it."""
    if field < 0 and now % -field == 0:
        return now
    return field


class Crons:
    """The instance's cron commands: started by the master's tick, their
    ends told by its reaping."""

    def __init__(self, crons, harakiri=0):
        self.crons = crons
        self.harakiri = harakiri    # cron-harakiri
        # Runs that a newer run of the same command replaced.
        self.superseded = proc.Subprocesses()

    @classmethod
    def from_config(cls, config):
        return cls(parse_all(config), config["cron-harakiri"])

    def log_registered(self):
        for cron in self.crons:
            log.log(f'{PREFIX} command "{cron.command}" registered as cron '
                    f'task')

    def tick(self, now):
        """Once a second, with the time in whole seconds."""
        when = time.localtime(now)
        for cron in self.crons:
            if cron.unique and cron.pid is not None:
                continue
            if matches(cron, when) and now - cron.last_job >= MINUTE:
                self._run(cron, now)
                cron.last_job = now
        self._check_harakiri(now)

    def _run(self, cron, now):
        if cron.pid is not None:
            self.superseded.add(cron.pid)
        cron.pid = fork_shell(cron.command)
        cron.started_at = now
        log.verbose(f'{PREFIX} running "{cron.command}" (pid {cron.pid})')
        mercy = cron.mercy or self.harakiri
        cron.harakiri_at = now + mercy if mercy > 0 else 0

    def _check_harakiri(self, now):
        for cron in self.crons:
            if cron.pid is None or not cron.harakiri_at or \
                    cron.harakiri_at >= now:
                continue
            log.log(f'*** HARAKIRI ON CRON "{cron.command}" (pid: '
                    f'{cron.pid}) ***')
            try:
                os.killpg(cron.pid, signal.SIGKILL)
            except ProcessLookupError:
                # Ended meanwhile: its end is reaped and said as any.
                log.verbose(f"{PREFIX} no process left in group {cron.pid}")
            # SIGKILL cannot be refused: said once, its end then reaped.
            cron.harakiri_at = 0

    def died(self, pid, status):
        """Whether the master's child `pid` was a cron command; its end
        is said."""
        if self.superseded.died(pid, status):
            return True
        for cron in self.crons:
            if cron.pid == pid:
                seconds = int(time.time()) - cron.started_at
                log.log(f'{PREFIX} command "{cron.command}" running with '
                        f'pid {pid} exited after {seconds} second(s)')
                cron.pid = None
                return True
        return False


def parse_all(config):
    """The Cron of every cron option, in the config's order; a malformed
    one is refused at its line."""
    return config.parsed(("cron", "unique-cron", "cron2"), parse)


def parse(option, value):
    """The Cron one option line describes."""
    if option == "cron2":
        return _parse_cron2(value)
    fields, pos = [], 0
    for _ in FIELDS:
        # As scanf's %d reads them: blanks, a sign, digits.
        found = re.compile(r"\s*([+-]?\d+)").match(value, pos)
        if not found:
            raise ConfigError(f"invalid cron syntax: {value} ({SYNTAX})",
                              option=option)
        fields.append(int(found.group(1)))
        pos = found.end()
    command = value[pos:].strip()
    if not value[pos:pos + 1].isspace() or not command:
        raise ConfigError(f"invalid cron syntax: {value} ({SYNTAX})",
                          option=option)
    return Cron(command, *fields, unique=option == "unique-cron")


def _parse_cron2(value):
    """`[KEY=VALUE,... ]COMMAND`: the keys are the first word, when it
    has an '='."""
    keys, space, command = value.partition(" ")
    if "=" not in keys:
        if not space and "=" in value:
            raise ConfigError(f"unable to parse cron definition: {value} "
                              f"(the keys need a command after them)",
                              option="cron2")
        keys, command = "", value
    if not command.strip():
        raise ConfigError(f"unable to parse cron definition: {value} (no "
                          f"command)", option="cron2")
    settings = {}
    for item in split_escaped(keys, ","):
        key, _, text = item.partition("=")
        if key in REFUSED:
            raise ConfigError(f"key '{key}': {REFUSED[key]}",
                              option="cron2")
        if key not in CRON2_KEYS:
            raise ConfigError(f"unknown key '{key}' (known: "
                              f"{', '.join(CRON2_KEYS)})", option="cron2")
        if not re.fullmatch(r"\s*[+-]?\d+", text):
            raise ConfigError(f"key '{key}': '{text}' is not a number",
                              option="cron2")
        settings[key] = int(text)
    unique = bool(settings.pop("unique", 0))
    harakiri = settings.pop("harakiri", None)
    # harakiri=0 turns cron-harakiri off for this command.
    mercy = 0 if harakiri is None else harakiri if harakiri > 0 else -1
    return Cron(command, unique=unique, mercy=mercy, **settings)
