"""`touch-reload`, `touch-workers-reload`, `touch-mules-reload`,
`touch-spoolers-reload`, `touch-chain-reload`, `touch-logrotate`,
`touch-logreopen`, `touch-exec`: act when a file's modification time
changes, or when it appears or disappears, as uWSGI does.  The master
polls the files once a second.

`touch-exec = FILE COMMAND` runs COMMAND through /bin/sh (in a session of
its own, never waited for); without a command, uWSGI runs FILE itself.
`touch-signal = FILE SIGNAL` raises a uWSGI signal (signals.py).
"""

import os

from ugu import log, proc
from ugu.vassal import signals
from ugu.vassal.shell import fork_shell

# option -> (words of uWSGI's log line, master action name); uWSGI says
# nothing of a touch that rotates or reopens the log, but in the log file.
ACTIONS = {
    "touch-reload": ("grace them all", "touched_reload"),
    "touch-logrotate": (None, "want_log_rotation"),
    "touch-logreopen": (None, "want_log_reopen"),
    "touch-workers-reload": ("workers reload", "reload_workers"),
    "touch-mules-reload": ("mules reload", "reload_mules"),
    "touch-spoolers-reload": ("spoolers reload", "reload_spoolers"),
    "touch-chain-reload": ("chain reload", "touched_chain"),
    # Said by TouchWatch once the command runs, or the signal raised.
    "touch-exec": (None, None),
    "touch-signal": (None, None),
}


def mtime(path):
    """The file's modification time, None while it does not exist."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class TouchWatch:
    def __init__(self, config, raise_signal=None):
        # [option, path, last mtime, command (touch-signal's number)]
        self.files = []
        self.commands = proc.Subprocesses()   # pids of touch-exec commands running
        # The master's router of uWSGI signals (touch-signal).
        self.raise_signal = raise_signal
        for option in ACTIONS:
            for value in config[option]:
                path, command = value, None
                if option == "touch-exec":
                    path, _, command = value.partition(" ")
                    command = command or path
                elif option == "touch-signal":
                    path, command = signals.touch_signal(value)
                when = mtime(path)
                if when is None:
                    log.log(f"unable to stat() {path}, events will be "
                            f"triggered as soon as the file is created")
                self.files.append([option, path, when, command])

    def touched(self, chaining=False):
        """Master action names for the files touched since last time;
        a chain reload is not asked for again while one is `chaining`."""
        actions = []
        for entry in self.files:
            option, path, before, command = entry
            now = mtime(path)
            if now == before:
                continue
            entry[2] = now
            words, action = ACTIONS[option]
            if chaining and option == "touch-chain-reload":
                log.verbose(f"*** {path} has been touched... but chain "
                            f"reload is already running ***")
                continue
            if option == "touch-signal":
                self.raise_signal(command)
                log.verbose(f"[uwsgi-touch-signal] raising {command}")
                continue
            if command:
                self._run(command)
                continue
            if words:
                log.verbose(f"*** {path} has been touched... {words} "
                            f"!!! ***")
            actions.append(action)
        return actions

    def _run(self, command):
        self.commands.add(fork_shell(command))
        log.verbose(f"[uwsgi-touch-exec] running {command}")

    def died(self, pid, status):
        """Whether the master's child `pid` was a touch-exec command."""
        return self.commands.died(pid, status)

