"""`py-autoreload N`: reload the instance when a loaded module's file
changes, as uWSGI's Python plugin does (for development).

Each worker runs a thread that wakes every N seconds and looks at the
file of every module in `sys.modules` (a `.pyc` as its `.py`), but those
`py-auto-reload-ignore` names.  The first look at a file records its
mtime in whole seconds; the first later look that finds another one logs
uWSGI's line and sends SIGHUP to the master, a graceful reload of the
whole instance, and the thread ends.  Without a master the signal goes to
the instance's first process, worker 1, which then ends gracefully, as in
uWSGI.  A lazy worker that loaded no app looks once it has one (a dynamic
app), as uWSGI's.
"""

import os
import signal
import sys
import threading
import time

from ugu import log

# uWSGI's name for the thread, which an app listing its threads sees.
THREAD_NAME = "uWSGIAutoReloader"
# Extensions whose last letter is dropped to name the source file.
_COMPILED = ("pyc", "pyd", "pyo")


def start(config, wid, apps, instance):
    """Start the worker's reloader thread when `py-autoreload` asks for
    one; `instance` is the pid told to reload."""
    every = config["py-autoreload"]
    if not every:
        return
    watch = ModuleWatch(config["py-auto-reload-ignore"])
    awaited = apps if config["lazy-apps"] else None
    threading.Thread(target=_run, args=(every, watch, wid, awaited,
                                        instance),
                     name=THREAD_NAME, daemon=True).start()


def _run(every, watch, wid, awaited, instance):
    """`awaited`: the lazy worker's Apps, none looked at until one is
    loaded; None where the apps came from the master."""
    if wid == 1:
        log.log("Python auto-reloader enabled")
    while True:
        time.sleep(every)
        if awaited is not None and not awaited:
            continue
        path = watch.modified()
        if path is not None:
            log.log(f"[uwsgi-python-reloader] module/file {path} has been "
                    f"modified")
            os.kill(instance, signal.SIGHUP)
            return


class ModuleWatch:
    """The mtimes of the loaded modules' files, as first seen."""

    def __init__(self, ignore):
        self.ignore = frozenset(ignore)
        self.mtimes = {}

    def modified(self):
        """The first file found changed since its first look, or None."""
        # A copy: the app's threads may import while this runs.
        for name, module in list(sys.modules.items()):
            if name in self.ignore:
                continue
            path = source_file(module)
            if path is None:
                continue
            try:
                mtime = int(os.stat(path).st_mtime)
            except (OSError, ValueError):
                # Gone, or a name stat() cannot take: not watched, as in
                # uWSGI.
                continue
            if self.mtimes.setdefault(path, mtime) != mtime:
                return path
        return None


def source_file(module):
    """The file a module came from, or None (a built-in, a namespace
    package, an object in sys.modules that is no module)."""
    try:
        path = module.__file__
    except Exception:
        # Any object may sit in sys.modules, and its attribute lookup
        # may run any code; uWSGI skips one that fails.
        return None
    if not isinstance(path, str):
        return None
    _, dot, extension = path.rpartition(".")
    if dot and extension in _COMPILED:
        return path[:-1]
    return path
