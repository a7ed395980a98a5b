"""External daemons the master keeps beside its workers (uWSGI's
`attach-daemon` family): a queue consumer or a scheduler that should live
and die with the app.

Each daemon runs its command through /bin/sh in a session of its own, so
the master can signal the whole process group the shell starts.  A plain
daemon is the master's child: it is respawned when it exits (a control
daemon's end ends the instance instead, gracefully), and stopped by a
shutdown or a reload of the instance; a reload of the workers alone
(touch, fifo, chain) leaves it running.  A respawn within THROTTLE_WINDOW
seconds of the previous spawn is held back by a sleep in the new child
before it runs the command, so the master itself never waits for a
daemon.

A smart daemon (`smart-attach-daemon`) is watched through its pidfile
instead, once a second, and spawned again when the pid there is gone; as
in uWSGI it outlives reloads and the instance itself.  With
`smart-attach-daemon2` the command stays in the foreground and the master
detaches it and writes the pidfile.  `attach-daemon2` describes either
kind with keys (daemon_options.py).
"""

import os
import re
import signal
import time
from pathlib import Path

from ugu import log, proc
from ugu.vassal import daemon_options
from ugu.vassal.shell import fork_shell
from ugu.vassal.touch import mtime

PREFIX = "[uwsgi-daemons]"
THROTTLE_WINDOW = 3     # seconds
MAX_THROTTLE = 300      # seconds: uWSGI's cap, against endless sleeps
# Seconds a daemon may take to stop, where `reload-mercy` is not set.
DEFAULT_MERCY = 3
# How often a stopping daemon is asked again, as uWSGI asks.
STOP_REPEAT = 1.0


def throttle(daemon, now):
    """Seconds the daemon's next spawn waits: uWSGI's rule, where the more
    spawns so far, the longer a quick death holds the next one back."""
    if daemon.last_spawn is None:
        return 0
    since = now - daemon.last_spawn
    if since > THROTTLE_WINDOW:
        return 0
    return min(max(daemon.respawns - since, 1),
               daemon.max_throttle or MAX_THROTTLE)


class Daemons:
    """The instance's daemons: spawned after the workers, respawned by
    the master's loop, stopped by its shutdown and reload paths."""

    def __init__(self, config):
        self.config = config
        self.daemons = daemon_options.from_config(config)
        self.smart = [d for d in self.daemons if d.pidfile]
        self.honour_stdin = config["daemons-honour-stdin"]
        self.mercy = config["reload-mercy"] or DEFAULT_MERCY
        self.touched_at = {}    # (daemon index, path) -> last mtime
        self.reloading = False  # once stopping: for a reload
        self.kill_at = None     # monotonic time, once stopping
        self.next_ask = None

    # -- running ----------------------------------------------------------
    def spawn_all(self):
        for daemon in self.daemons:
            pid = daemon.pidfile and read_pidfile(daemon.pidfile)
            if pid:
                # Left running by an earlier instance: watched, not spawned.
                daemon.pid = pid
                log.log(f'{PREFIX} found valid/active pidfile for '
                        f'"{daemon.command}" (pid: {pid})')
            else:
                self.spawn(daemon)
        # As uWSGI's master loop first looks at them: after the spawns.
        for index, daemon in enumerate(self.daemons):
            for path in daemon.touch:
                when = mtime(path)
                if when is None:
                    log.log(f"unable to stat() {path}, events will be "
                            f"triggered as soon as the file is created")
                self.touched_at[index, path] = when

    def spawn(self, daemon):
        now = int(time.monotonic())
        wait = throttle(daemon, now)
        parent = os.getpid()
        pid = fork_shell(
            daemon.command,
            before_session=lambda: self._prepare(daemon),
            in_session=lambda: self._hold(daemon, wait, parent),
            failure=f'{PREFIX} unable to spawn "{daemon.command}"')
        daemon.pid = pid
        if not daemon.pidfile:
            daemon.group = pid
        daemon.monitored = daemon.has_daemonized = False
        daemon.pidfile_checks = 0
        daemon.respawns += 1
        daemon.last_spawn = now

    def _prepare(self, daemon):
        """In the child, before its session starts."""
        proc.set_title(self.config, "uWSGI external daemon")
        if daemon.chdir:
            os.chdir(daemon.chdir)
        if daemon.gid:
            os.setgid(daemon.gid)
        if daemon.uid:
            os.setuid(daemon.uid)
        if daemon.daemonize:
            if os.fork():
                os._exit(0)
            _write_pidfile(daemon.pidfile)
        if not (self.honour_stdin or daemon.honour_stdin):
            _stdin_from_devnull()

    def _hold(self, daemon, wait, parent):
        """In the child's session, before the shell: the throttle's sleep
        (the master can stop the group meanwhile), then the spawn line."""
        # A smart daemon is meant to outlive the master.
        if not daemon.pidfile and not proc.die_with_parent(parent):
            os._exit(0)
        if wait:
            log.log(f'{PREFIX} throttling "{daemon.command}" for '
                    f'{wait} seconds')
            time.sleep(wait)
        again = "re" if daemon.respawns else ""
        log.log(f'{PREFIX} {again}spawning "{daemon.command}" (uid: '
                f'{os.getuid()} gid: {os.getgid()})')

    def died(self, pid):
        """A child of the master that is no worker has exited: a plain
        daemon is respawned, a smart one's shell has done its job.  Returns
        a control daemon that died: the instance must then end."""
        daemon = self._by_pid(pid)
        if daemon is None:
            return None
        if self.kill_at is not None:
            # Stopping (the control daemon's end): buried, not respawned.
            daemon.pid = None
        elif daemon.pidfile:
            daemon.has_daemonized = True
        elif daemon.control:
            daemon.pid = None
            return daemon
        else:
            self.spawn(daemon)
        return None

    def _by_pid(self, pid):
        for daemon in self.daemons:
            if daemon.pid == pid:
                return daemon
        return None

    def tick(self):
        """Once a second: the pidfiles and the touch files."""
        self._check_pidfiles()
        self._check_touches()

    def _check_pidfiles(self):
        """Respawn a smart daemon whose pid is gone, follow one whose
        pidfile names a new pid, as uWSGI does."""
        for daemon in self.smart:
            pid = read_pidfile(daemon.pidfile)
            if pid is None:
                self._pidfile_missing(daemon)
            elif pid != daemon.pid:
                log.log(f'{PREFIX} found changed pid for "{daemon.command}" '
                        f'(old_pid: {daemon.pid} new_pid: {pid})')
                daemon.pid = pid
            else:
                daemon.monitored = True

    def _pidfile_missing(self, daemon):
        if daemon.monitored:
            self.spawn(daemon)
            return
        # Just spawned: its pidfile may take `freq` checks to appear.
        daemon.pidfile_checks += 1
        if daemon.pidfile_checks < daemon.freq:
            return
        if not daemon.has_daemonized:
            log.verbose(f'{PREFIX} "{daemon.command}" (pid: {daemon.pid}) '
                        f'did not daemonize !!!')
            daemon.pidfile_checks = 0
        else:
            log.log(f'{PREFIX} found changed pidfile for "{daemon.command}" '
                    f'(old_pid: {daemon.pid} new_pid: -1)')
            self.spawn(daemon)

    def _check_touches(self):
        """A daemon whose touch file changed is sent its stop signal: a
        plain one is then respawned, a smart one found gone."""
        for (index, path), before in self.touched_at.items():
            daemon = self.daemons[index]
            if daemon.pid is None:
                continue
            now = mtime(path)
            if now == before:
                continue
            self.touched_at[index, path] = now
            log.verbose(f'*** {path} has been touched... reloading daemon '
                        f'"{daemon.command}" (pid: {daemon.pid}) !!! ***')
            if not _signal_group(daemon.pid, daemon.stop_signal):
                _signal(daemon.pid, daemon.stop_signal)

    # -- stopping ---------------------------------------------------------
    def stop(self, reloading):
        """Ask every plain daemon to end; the master then waits, with
        `alive()` and `check_stop()`, for up to `reload-mercy` seconds (3
        if unset), and then kills what is left.  A smart daemon is left
        running, told only where it asked (notifypid)."""
        self.reloading = reloading
        for daemon in self.daemons:
            if daemon.group is not None:
                log.log(f"{PREFIX} stopping daemon (pid: {daemon.group}): "
                        f"{daemon.command}")
            elif daemon.notifypid and daemon.pid:
                signum = daemon.stop_signal
                if reloading:
                    signum = daemon.reload_signal or signal.SIGHUP
                _signal_group(daemon.pid, signum)
        self.kill_at = time.monotonic() + self.mercy
        self._ask_again()

    def alive(self):
        return any(d.group is not None for d in self.daemons)

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
            if daemon.group is None:
                continue
            signum = daemon.stop_signal
            if self.reloading and daemon.reload_signal:
                signum = daemon.reload_signal
            _signal_group(daemon.group, signum)
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


def read_pidfile(path):
    """The live pid a pidfile names, else None; a pidfile that cannot be
    opened is said, in uWSGI's words."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        log.log(f'open("{path}"): {e.strerror} [core/daemons.c line 161]')
        return None
    # Its leading number, as atoi() reads it.
    found = re.match(r"\s*\+?(\d+)", text)
    pid = int(found.group(1)) if found else 0
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        # Gone, or another user's: uWSGI's kill(pid, 0) fails alike.
        return None
    return pid


def _write_pidfile(path):
    log.log(f"writing pidfile to {path}")
    try:
        Path(path).write_text(f"{os.getpid()}\n")
    except OSError:
        # As uWSGI: said, and the daemon runs all the same.
        log.log("could not write pidfile.")


def _stdin_from_devnull():
    fd = os.open(os.devnull, os.O_RDONLY)
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)


def _signal_group(pgid, signum):
    """Whether the group could be signalled."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal(pid, signum):
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError) as e:
        log.log(f"[uwsgi-daemon/touch] kill(): {e.strerror}")


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
