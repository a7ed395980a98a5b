"""The `attach-daemon` family of options, read into Daemon records.

    attach-daemon = COMMAND
    attach-control-daemon = COMMAND          (its end ends the instance)
    smart-attach-daemon = PIDFILE[,FREQ] COMMAND
    smart-attach-daemon2 = PIDFILE[,FREQ] COMMAND
    attach-daemon2 = cmd=COMMAND,pidfile=...,freq=...,...

attach-daemon2's list is uWSGI's key=value list: items split at commas, a
backslash keeping the next character as it is (`\\,` is a comma inside a
value).  A flag key (control, daemonize, stdin, notifypid) is on when it
is present, as in uWSGI, whatever its value: one that reads as off is
refused rather than taken as on.  Keys ugu does not implement, and unknown
keys, are refused by name.
"""

import re
import signal

from ugu.options.errors import ConfigError
from ugu.options.kvlist import split_escaped

# Pidfile checks a smart daemon's first pidfile may take to appear.
DEFAULT_FREQ = 10
OPTIONS = ("attach-daemon", "attach-control-daemon", "smart-attach-daemon",
           "smart-attach-daemon2", "attach-daemon2")

# attach-daemon2 key -> Daemon setting (uWSGI's aliases included).
KEYS = {
    "command": "command", "cmd": "command", "exec": "command",
    "freq": "freq", "pidfile": "pidfile", "control": "control",
    "daemonize": "daemonize", "daemon": "daemonize", "touch": "touch",
    "stopsignal": "stop_signal", "stop_signal": "stop_signal",
    "reloadsignal": "reload_signal", "reload_signal": "reload_signal",
    "stdin": "honour_stdin", "uid": "uid", "gid": "gid", "chdir": "chdir",
    "max_throttle": "max_throttle", "notifypid": "notifypid",
}
FLAGS = ("control", "daemonize", "honour_stdin", "notifypid")
NUMBERS = ("freq", "stop_signal", "reload_signal", "uid", "gid",
           "max_throttle")
REFUSED = {
    "ns_pid": "a daemon in a PID namespace of its own is not implemented "
              "by ugu; remove the key (or run the command through "
              "`unshare --pid --fork`)",
}
_OFF = ("0", "false", "no", "off")


class Daemon:
    """One daemon's settings, and the state of its current process."""

    def __init__(self, command, pidfile=None, freq=DEFAULT_FREQ,
                 daemonize=False, control=False, stop_signal=signal.SIGTERM,
                 reload_signal=0, honour_stdin=False, uid=0, gid=0,
                 chdir=None, max_throttle=0, notifypid=False, touch=()):
        self.command = command
        self.pidfile = pidfile      # set for a smart daemon
        self.freq = freq
        self.daemonize = daemonize  # the master detaches it
        self.control = control      # its end ends the instance
        self.stop_signal = stop_signal
        self.reload_signal = reload_signal  # 0: stop_signal at reloads
        self.honour_stdin = honour_stdin
        self.uid, self.gid = uid, gid       # 0: the master's
        self.chdir = chdir
        self.max_throttle = max_throttle    # 0: uWSGI's 300 s
        self.notifypid = notifypid  # smart: signalled at reload and exit
        self.touch = tuple(touch)
        self.pid = None         # plain: the shell, our child, until reaped;
                                # smart: the pid its pidfile names
        self.group = None       # plain: its process group, until empty
        self.respawns = 0       # spawns so far (uWSGI's count)
        self.last_spawn = None  # whole seconds, as uWSGI compares them
        self.monitored = False  # smart: its pidfile was found good
        self.has_daemonized = False  # smart: the shell we forked exited
        self.pidfile_checks = 0


def from_config(config):
    """The daemons of the config's daemon options, in the config's
    order; a malformed one is refused at its line."""
    return config.parsed(OPTIONS, parse)


def parse(option, value):
    """The Daemon one option line describes."""
    if option == "attach-daemon":
        return Daemon(value)
    if option == "attach-control-daemon":
        return Daemon(value, control=True)
    if option == "attach-daemon2":
        return _keyval_daemon(value)
    # smart-attach-daemon[2] = PIDFILE[,FREQ] COMMAND
    target, _, command = value.partition(" ")
    if not command:
        raise ConfigError(f"invalid smart-attach-daemon syntax: {value} "
                          f"(expected PIDFILE COMMAND)", option=option)
    pidfile, comma, freq = target.partition(",")
    return Daemon(command, pidfile,
                  _number(freq, option) if comma else DEFAULT_FREQ,
                  daemonize=option == "smart-attach-daemon2")


def _keyval_daemon(value):
    option = "attach-daemon2"
    settings = {}
    for item in split_escaped(value, ","):
        key, eq, text = item.partition("=")
        if not eq:
            raise ConfigError(f"invalid --{option} keyval syntax: '{item}' "
                              f"is not KEY=VALUE", option=option)
        if key in REFUSED:
            raise ConfigError(f"key '{key}': {REFUSED[key]}", option=option)
        if key not in KEYS:
            raise ConfigError(f"unknown key '{key}' (known: "
                              f"{', '.join(sorted(KEYS))})", option=option)
        settings[KEYS[key]] = _typed(KEYS[key], key, text, option)
    if not settings.get("command"):
        raise ConfigError(f"--{option}: you need to specify a 'command' key",
                          option=option)
    return Daemon(**settings)


def _typed(setting, key, text, option):
    if setting in FLAGS:
        if text.lower() in _OFF:
            raise ConfigError(f"key '{key}' is on whatever its value, as in "
                              f"uWSGI: remove it to leave it off",
                              option=option)
        return True
    if setting in NUMBERS:
        return _number(text, option)
    if setting == "touch":
        return [path for path in split_escaped(text, ";") if path]
    return text


def _number(text, option):
    if not re.fullmatch(r"\d+", text.strip()):
        raise ConfigError(f"'{text}' is not a number", option=option)
    return int(text)
