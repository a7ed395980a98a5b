"""`--master --emperor`: a master process that keeps the Emperor alive.

As in uWSGI, the master forks the Emperor as its only child and forks a
new one when it dies (the vassals die with the old one and come back with
the new).  INT and QUIT end the Emperor and then the master; TERM and HUP
end it and re-exec the master, uWSGI 2.0's brutal and graceful reloads,
alike here since there are no workers to be gentle with (die-on-term
swaps TERM and QUIT; exit-on-reload makes a reload an exit).  The Emperor
is always ended with SIGINT, its ragnarok, and waited for.  With `stats`
it serves what uWSGI's serves: a master's document with no socket and
no worker.  The pidfiles are uWSGI's too: safe-pidfile once the Emperor
is spawned, and vacuum takes them away at the end.
"""

import os
import signal
import sys
import time
import traceback

from ugu import fdwait, log, proc, stats
from ugu.options.errors import ConfigError
from ugu.vassal import hygiene

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP,
           signal.SIGUSR1, signal.SIGCHLD)
GRACEFUL_LINE = "...gracefully killing workers..."
BRUTAL_LINE = "...brutally killing workers..."
ENV_RELOADS = "UWSGI_RELOADS"
# An Emperor that dies younger than this is respawned only when it would
# have reached this age, so that a crash at start cannot become a fork loop.
MIN_LIFETIME = 1.0
EMPEROR_CRASHED = 1
# Where reload-mercy is 0, uWSGI's master gives its Emperor this many
# seconds, and two more, to die; the Emperor itself reads 0 as 30 for
# its vassals, in its own process, so that the master never sees it.
DEFAULT_MERCY = 3
EXTRA_MERCY = 2


def run(config, home, reign):
    """Keep `reign()` (the Emperor's loop) running in a child; a reload
    starts again from folder `home`."""
    return Master(config, home, reign).run()


class Master:
    def __init__(self, config, home, reign, clock=time.monotonic):
        self.config = config
        self.reign = reign
        self.clock = clock
        self.mercy = mercy(config)
        # die-on-term swaps the meanings of TERM and QUIT, as in uWSGI.
        brutal, ending = (signal.SIGQUIT, signal.SIGTERM) \
            if config["die-on-term"] else (signal.SIGTERM, signal.SIGQUIT)
        self.shutdown_signals = (signal.SIGINT, ending)
        self.reload_lines = {signal.SIGHUP: GRACEFUL_LINE,
                             brutal: BRUTAL_LINE}
        self.home = home
        self.pid = None       # the Emperor's; None while one is due
        self.born = -MIN_LIFETIME
        self.signals = None
        self.stats = None     # a StatsServer with `stats`

    def run(self):
        proc.trim_heap()
        self.signals = proc.SignalQueue(HANDLED)
        proc.set_master_title(self.config)
        self.spawn()
        log.log("*** Operational MODE: no-workers ***")
        again = "gracefully (RE)" if reloads() else ""
        log.log(f"{again}spawned uWSGI master process (pid: {os.getpid()})")
        if not reloads():
            hygiene.write_safe_pidfiles(self.config)
        if self.config["stats"]:
            self.stats = stats.from_config(self.config, "stats",
                                           stats.instance)
            log.log(f"*** Stats server enabled on {self.config['stats']} "
                    f"fd: {self.stats.fileno()} ***")
        while True:
            signums, ready = self.signals.wait(self.timeout(),
                                               self._stats_files())
            for source in ready:
                self.stats.answer(source)
            self.reap()
            for signum in signums:
                if signum in self.shutdown_signals:
                    return self.shutdown()
                if signum in self.reload_lines:
                    return self.reload(signum)
                if signum == signal.SIGUSR1:
                    self.report()
            if self.pid is None and \
                    self.clock() >= self.born + MIN_LIFETIME:
                self.spawn()

    def timeout(self):
        """Seconds until the Emperor is due again, or a stats client that
        sent no request must be dropped; None: until a signal."""
        waits = []
        if self.pid is None:
            waits.append(self.born + MIN_LIFETIME - self.clock())
        if self.stats and self.stats.deadline() is not None:
            waits.append(self.stats.deadline() - time.monotonic())
        return max(0.0, min(waits)) if waits else None

    def _stats_files(self):
        return self.stats.waiting() if self.stats else []

    def spawn(self):
        parent = os.getpid()
        with proc.signals_blocked(HANDLED):
            self.pid = os.fork()
            if self.pid == 0:
                self._become_emperor(parent)
        self.born = self.clock()

    def _become_emperor(self, parent):
        """In the forked child; never returns."""
        code = EMPEROR_CRASHED
        try:
            self.signals.close()
            if self.stats:
                self.stats.close()
            proc.reset_signals()
            # A Ctrl-C that came since the fork ends this Emperor now,
            # before it has vassals; with our handlers it was lost.
            proc.unblock_signals()
            if proc.die_with_parent(parent):
                proc.set_title(self.config,
                               self.config["emperor-procname"]
                               or "uWSGI Emperor")
                code = self.reign()
        except ConfigError as e:
            # emperor-pidfile, emperor-stats: said as at the start, and
            # the master tries a new Emperor a second later.
            for error in e.errors:
                print(f"ugu: {error}", file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(code)

    def reap(self):
        for pid, _ in proc.reap():
            if pid == self.pid:
                log.verbose("!!! Emperor died !!!")
                self.pid = None

    def shutdown(self):
        log.log("SIGINT/SIGTERM received...killing workers...")
        self.bury()
        log.log("goodbye to uWSGI.")
        return self.end()

    def end(self):
        if self.stats:
            self.stats.close()
        if self.config["vacuum"]:
            hygiene.vacuum(self.config, [])
        return 0

    def reload(self, signum):
        # uWSGI's order: the Emperor is buried before the workers are
        # told, and here there are none.
        self.bury()
        log.log(self.reload_lines[signum])
        if self.config["exit-on-reload"]:
            log.log("uWSGI: GAME OVER (insert coin)")
            return self.end()
        self.reexec()

    def reexec(self):
        log.log("binary reloading uWSGI...")
        proc.return_home(self.home)
        log.log(f"running {sys.executable}")
        self.signals.close()
        env = {**os.environ, ENV_RELOADS: str(reloads() + 1)}
        log.flush_loggers()
        proc.exec_image(sys.executable, sys.orig_argv, env)

    def bury(self):
        pid, self.pid = self.pid, None
        if pid is not None:
            bury(pid, self.mercy)

    def report(self):
        """SIGUSR1: what a uWSGI master without workers prints."""
        log.log_all([*self.config.dump(), "\tworkers total requests: 0",
                     "-----------------", ""])


def reloads():
    value = os.environ.get(ENV_RELOADS, "")
    return int(value) if value.isdigit() else 0


def mercy(config):
    """Seconds a master gives its Emperor to die before SIGKILL."""
    return (config["reload-mercy"] or DEFAULT_MERCY) + EXTRA_MERCY


def bury(pid, seconds):
    """End the Emperor `pid` and wait for it, as uWSGI's master does
    before it ends or reloads: SIGINT (its ragnarok), then SIGKILL once
    `seconds` are gone, said once a second meanwhile."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _reaped(pid):
            break
        log.log("waiting for Emperor death...")
        _wait_a_second(pid)
    else:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    log.log(f"The Emperor has been buried (pid: {pid})")


def _reaped(pid):
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def _wait_a_second(pid):
    """A second, or less if the Emperor dies before."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        time.sleep(1.0)
        return
    try:
        fdwait.readable([fd], 1.0)
    finally:
        os.close(fd)
