"""`touch-reload`, `touch-workers-reload`, `touch-chain-reload`,
`touch-logrotate`, `touch-logreopen`: act when a file's modification time
changes, or when it appears or disappears, as uWSGI does.  The master
polls the files once a second."""

import os

from ugu import log

# option -> (words of uWSGI's log line, master action name); uWSGI says
# nothing of a touch that rotates or reopens the log, but in the log file.
ACTIONS = {
    "touch-reload": ("grace them all", "touched_reload"),
    "touch-logrotate": (None, "want_log_rotation"),
    "touch-logreopen": (None, "want_log_reopen"),
    "touch-workers-reload": ("workers reload", "reload_workers"),
    "touch-chain-reload": ("chain reload", "touched_chain"),
}


def mtime(path):
    """The file's modification time, None while it does not exist."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class TouchWatch:
    def __init__(self, config):
        self.files = []     # [option, path, last mtime]
        for option in ACTIONS:
            for path in config[option]:
                when = mtime(path)
                if when is None:
                    log.log(f"unable to stat() {path}, events will be "
                            f"triggered as soon as the file is created")
                self.files.append([option, path, when])

    def touched(self, chaining=False):
        """Master action names for the files touched since last time;
        a chain reload is not asked for again while one is `chaining`."""
        actions = []
        for entry in self.files:
            option, path, before = entry
            now = mtime(path)
            if now == before:
                continue
            entry[2] = now
            words, action = ACTIONS[option]
            if chaining and option == "touch-chain-reload":
                log.verbose(f"*** {path} has been touched... but chain "
                            f"reload is already running ***")
                continue
            if words:
                log.verbose(f"*** {path} has been touched... {words} "
                            f"!!! ***")
            actions.append(action)
        return actions
