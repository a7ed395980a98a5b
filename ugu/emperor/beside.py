"""The Emperor as one part of an instance that serves on its own.

In uWSGI 2.0 `emperor` does not make the process an Emperor and nothing
else: where the instance also has sockets or routers, the Emperor is
forked as a child, once the privileges are dropped and before the
sockets are bound, and the instance goes on to load its app and spawn its
workers.  A master respawns an Emperor that dies, and ends it (SIGINT,
then SIGKILL when it takes too long) whenever it stops or reloads its
workers; without a master the Emperor dies with worker 1.

Without anything to serve, the process is the Emperor (emperor.py), or
with `master` a master that keeps one (master.py); there an app's
options would be read and ignored, so they are refused (`refuse_app`).
"""

import os
import sys
import time
import traceback

from ugu import log, proc
from ugu.emperor import master
from ugu.options import registry
from ugu.options.errors import ConfigError

# The options that give an instance something to serve: with one of them
# the Emperor runs beside it.  The worker sockets (as master.py's
# _worker_addresses reads them), the routers' addresses, zerg ones.
SERVING = ("socket", "http-socket", "http11-socket", "fastcgi-socket",
           "fastcgi-nph-socket", "scgi-socket", "scgi-nph-socket",
           "http", "https", "http-to-https", "fastrouter", "rawrouter",
           "sslrouter", "sslrouter2", "zerg", "zergpool")
# What a lone Emperor, or a master that keeps one, would read and then
# never use: the app and its workers.
APP_OPTIONS = ("module", "wsgi-file", "eval", "paste", "ini-paste",
               "ini-paste-logged", "pecan", "pyrun", "mount", "callable",
               "processes", "threads")


def serves(config):
    """Whether the instance has sockets or routers of its own, beside
    the Emperor."""
    return any(config[name] for name in SERVING)


def refuse_app(config):
    """An Emperor with nothing to serve loads no app and runs no worker
    (uWSGI's ignores those options): refused, at the line that set one."""
    for entry in config.entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt is not None and opt.name in APP_OPTIONS:
            raise ConfigError(
                "an Emperor with no socket serves no app and runs no "
                "worker, and uWSGI's would ignore it: add a socket (socket, "
                "http-socket, http, ...) for the instance to serve beside "
                "the Emperor, or move it to a vassal's file",
                file=entry.file, line=entry.line, option=opt.name)


class Beside:
    """The Emperor child of an instance: forked, respawned, buried."""

    def __init__(self, config):
        from ugu.emperor import monitor, spawn
        self.config = config
        # Made here, so that a bad pattern stops the instance at start.
        self.monitors = [monitor.monitor_for(spec, config["emperor-nofollow"])
                         for spec in config["emperor"]]
        self.templates = spawn.Templates.from_config(config)
        self.mercy = master.mercy(config)
        self.pid = None
        self.born = 0.0

    def fork(self, closing=()):
        """Fork the Emperor; it dies with this process, and closes the
        `closing` sockets first."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self.reign(parent, closing)
        self.forked(pid)

    def forked(self, pid):
        self.pid, self.born = pid, time.monotonic()

    def respawn_at(self):
        """When a dead Emperor comes back: at once, or a second after its
        birth, so that one failing at its start never fork-loops."""
        return max(time.monotonic(), self.born + master.MIN_LIFETIME)

    def reign(self, parent, closing):
        """In the forked child, `parent`'s: never returns."""
        from ugu.emperor.emperor import Emperor
        code = master.EMPEROR_CRASHED
        try:
            proc.reset_signals()
            proc.unblock_signals()
            for f in closing:
                f.close()
            # After a reload the instance's sockets are not yet taken
            # from the environment: neither they nor their table are
            # the Emperor's (a vassal would take its link for one).
            from ugu.vassal.sockets import inherited_sockets
            for fd in inherited_sockets().values():
                os.close(fd)
            if proc.die_with_parent(parent):
                proc.set_title(self.config,
                               self.config["emperor-procname"]
                               or "uWSGI Emperor")
                code = Emperor(self.config, self.monitors, self.templates,
                               master_pid=parent if self.config["master"]
                               else None).run()
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(code)

    def died(self, pid):
        """Whether `pid`, reaped, was the Emperor: said, as uWSGI."""
        if self.pid is None or pid != self.pid:
            return False
        log.verbose("!!! Emperor died !!!")
        self.pid = None
        return True

    def bury(self):
        """End the Emperor and wait for it, as uWSGI's master does before
        it ends or reloads."""
        pid, self.pid = self.pid, None
        if pid is not None:
            master.bury(pid, self.mercy)
