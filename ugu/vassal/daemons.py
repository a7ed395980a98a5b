"""External daemons the master keeps beside its workers (uWSGI's
`attach-daemon`): a queue consumer or a scheduler that should live and die
with the app.

Each daemon runs its command through /bin/sh in a session of its own, so
the master can signal the whole process group the shell starts.  The
master respawns one that dies; a respawn within THROTTLE_WINDOW seconds of
the previous spawn is held back, by a sleep in the new child before it
runs the command, so the master itself never waits for a daemon.  A
shutdown or a reload of the instance stops every daemon; a reload of the
workers alone (touch, fifo, chain) leaves them running.
"""

import os
import signal
import time
from pathlib import Path

from ugu import log, proc

SHELL = "/bin/sh"
PREFIX = "[uwsgi-daemons]"
THROTTLE_WINDOW = 3     # seconds
MAX_THROTTLE = 300      # seconds: uWSGI's cap, against endless sleeps
# Seconds a daemon may take to stop, where `reload-mercy` is not set.
DEFAULT_MERCY = 3
# How often a stopping daemon is asked again, as uWSGI asks.
STOP_REPEAT = 1.0


class Daemon:
    """One `attach-daemon` command and the process group running it."""

    def __init__(self, command):
        self.command = command
        self.pid = None         # the shell, our child, until reaped
        self.group = None       # its process group, until found empty
        self.respawns = 0       # spawns so far (uWSGI's count)
        self.last_spawn = None  # whole seconds, as uWSGI compares them

    def throttle(self, now):
        """Seconds the next spawn waits: uWSGI's rule, where the more
        spawns so far, the longer a quick death holds the next one back."""
        if self.last_spawn is None:
            return 0
        since = now - self.last_spawn
        if since > THROTTLE_WINDOW:
            return 0
        return min(max(self.respawns - since, 1), MAX_THROTTLE)


class Daemons:
    """The instance's daemons: spawned after the workers, respawned by
    the master's loop, stopped by its shutdown and reload paths."""

    def __init__(self, config):
        self.config = config
        self.daemons = [Daemon(command)
                        for command in config["attach-daemon"]]
        self.honour_stdin = config["daemons-honour-stdin"]
        self.mercy = config["reload-mercy"] or DEFAULT_MERCY
        self.kill_at = None     # monotonic time, once stopping
        self.next_ask = None

    # -- running ----------------------------------------------------------
    def spawn_all(self):
        for daemon in self.daemons:
            self.spawn(daemon)

    def spawn(self, daemon):
        now = int(time.monotonic())
        throttle = daemon.throttle(now)
        parent = os.getpid()
        # Until the child has its own handlers, a signal must not run the
        # master's.
        with proc.signals_blocked(signal.valid_signals()):
            pid = os.fork()
            if pid == 0:
                self._run_in_child(daemon, throttle, parent)
        daemon.pid = daemon.group = pid
        daemon.respawns += 1
        daemon.last_spawn = now

    def _run_in_child(self, daemon, throttle, parent):
        """The forked child: its own session, only stdio kept, then the
        shell.  Never returns."""
        try:
            proc.reset_signals()
            proc.unblock_signals()
            proc.set_title(self.config, "uWSGI external daemon")
            # The master's sockets, pipes and log files are not the
            # daemon's.
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            if not self.honour_stdin:
                _stdin_from_devnull()
            os.setsid()
            if not proc.die_with_parent(parent):
                os._exit(0)
            if throttle:
                log.log(f'{PREFIX} throttling "{daemon.command}" for '
                        f'{throttle} seconds')
                time.sleep(throttle)
            again = "re" if daemon.respawns else ""
            log.log(f'{PREFIX} {again}spawning "{daemon.command}" (uid: '
                    f'{os.getuid()} gid: {os.getgid()})')
            os.execv(SHELL, [SHELL, "-c", daemon.command])
        except OSError as e:
            log.log(str(e))
            log.log(f'{PREFIX} unable to spawn "{daemon.command}"')
        finally:
            os._exit(1)

    def died(self, pid):
        """Respawn the daemon whose shell `pid` was, if it was one."""
        daemon = self._by_pid(pid)
        if daemon is not None:
            self.spawn(daemon)

    def _by_pid(self, pid):
        for daemon in self.daemons:
            if daemon.pid == pid:
                return daemon
        return None

    # -- stopping ---------------------------------------------------------
    def stop(self):
        """Ask every daemon to end; the master then waits, with `alive()`
        and `check_stop()`, for up to `reload-mercy` seconds (3 if unset),
        and then kills what is left."""
        for daemon in self.daemons:
            if daemon.pid is not None:
                log.log(f"{PREFIX} stopping daemon (pid: {daemon.pid}): "
                        f"{daemon.command}")
        self.kill_at = time.monotonic() + self.mercy
        self._ask_again()

    def alive(self):
        return any(d.pid is not None or d.group is not None
                   for d in self.daemons)

    def reaped(self, pid):
        """Whether the stopping master's `pid` was a daemon's shell."""
        daemon = self._by_pid(pid)
        if daemon is None:
            return False
        daemon.pid = None
        return True

    def wait_time(self):
        """Seconds until `check_stop()` has something to do."""
        if not self.alive():
            return STOP_REPEAT
        return max(0.0, min(self.next_ask, self.kill_at) - time.monotonic())

    def check_stop(self):
        """Forget the groups found empty; ask the others again each
        second, and kill them once the mercy is over."""
        now = time.monotonic()
        for daemon in self.daemons:
            if daemon.pid is None and daemon.group is not None and \
                    not _group_alive(daemon.group):
                daemon.group = None
        if now >= self.kill_at:
            self._no_mercy()
        elif now >= self.next_ask:
            self._ask_again()

    def _ask_again(self):
        for daemon in self.daemons:
            if daemon.group is not None:
                _signal_group(daemon.group, signal.SIGTERM)
        self.next_ask = time.monotonic() + STOP_REPEAT

    def _no_mercy(self):
        for daemon in self.daemons:
            if daemon.group is None:
                continue
            log.log(f"{PREFIX} daemon did not die in time, killing (pid: "
                    f"{daemon.group}): {daemon.command}")
            _signal_group(daemon.group, signal.SIGKILL)
            # SIGKILL cannot be refused: only the shell is left to reap.
            daemon.group = None


def _stdin_from_devnull():
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _group_alive(pgid):
    """Whether a process that is not a zombie is left in the group: the
    shell may be gone while what it started runs on."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
