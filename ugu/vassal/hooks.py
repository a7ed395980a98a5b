"""uWSGI's hooks: at named moments of the instance's life (phases),
`exec-PHASE` runs a shell command and `hook-PHASE` an ACTION:ARGS of
uWSGI's table (core/hooks.c), each said in uWSGI's words before it runs.

A phase's hooks run before its commands.  A failure in a phase that uWSGI
calls fatal ends the instance: a hook's with "FATAL hook failed", a
command's with its exit status, both as uWSGI says them.  Every phase runs
once per process where uWSGI's does, never on a request's path.

Actions that need uWSGI's C side (call:, mount:, rpc:, alarm:...) are
refused at start-up, naming the option and the actions ugu has.
`unix_signal`, which uWSGI's recipes use to make SIGTERM graceful, binds
a signal of the master to one of uWSGI's master functions that ugu's
master has: it is taken in hook-master-start, where the master runs it.
"""

import grp
import os
import pwd
import re
import signal
import socket
import stat
import sys

from ugu import log, proc
from ugu.options.errors import ConfigError, FatalExit
from ugu.vassal import shell
from ugu.vassal.touch import mtime

EXIT_FAILED = 1
# The process ugu started as: a fatal exit there goes through the
# command line (see _exit_failed).
_STARTED_AS = os.getpid()

# Option suffix -> (the phase's name in uWSGI's lines, whether a failed
# hook ends the instance).
PHASES = {
    "asap": ("asap", True),
    "pre-jail": ("pre-jail", True),
    "in-jail": ("in-jail", True),
    "post-jail": ("post-jail", True),
    "as-root": ("as root", True),
    "as-user": ("as user", True),
    "as-user-atexit": ("atexit", False),
    "pre-app": ("pre app", True),
    "post-app": ("post app", True),
    "post-fork": ("post-fork", True),
    "accepting": ("accepting", True),
    "accepting-once": ("accepting-once", True),
    "accepting1": ("accepting1", True),
    "accepting1-once": ("accepting1-once", True),
    "master-start": ("master-start", True),
    "touch": ("touch", False),
    "emperor-stop": ("emperor-stop", False),
    "emperor-reload": ("emperor-reload", False),
    "emperor-lost": ("emperor-lost", False),
    "as-mule": ("as-mule", True),
    "as-gateway": ("as-gateway", True),
    # The Emperor's: as it starts, after each spawn, and in the vassal's
    # process before its exec.
    "emperor-start": ("emperor-start", True),
    "as-emperor": ("as-emperor", False),
    "as-vassal": ("as-vassal", True),
}
# The phases that have an exec-PHASE option; a failed command ends the
# instance but at exit.  exec-as-emperor is the Emperor's own (see
# run_as_emperor).
EXEC_PHASES = ("asap", "pre-jail", "in-jail", "post-jail", "as-root",
               "as-user", "as-user-atexit", "pre-app", "post-app",
               "as-vassal")
# exec-PHASE's commands said with the process's ids, as uWSGI says them.
_SAID_WITH_IDS = ("as-user", "as-user-atexit")


# The system's own, taken before a gevent worker's monkey-patch: a hook
# blocks its process until the command ends, as uWSGI's does, and
# gevent's waits on its hub, which a worker's hooks run outside of.
_posix_spawn, _waitpid = os.posix_spawn, os.waitpid


def run_command(command, env=None):
    """Run `command` through /bin/sh (or binsh) and wait for it; its exit
    status as uWSGI reads it (WEXITSTATUS: a command killed by a signal
    counts 0).  The shell starts with no signal blocked and SIGPIPE at its
    default, in `env` where given, else in ours."""
    sys.stdout.flush()
    sys.stderr.flush()
    sh = shell.SHELL
    pid = _posix_spawn(sh, [sh, "-c", command],
                       os.environ if env is None else env,
                       setsigmask=(),
                       setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    return os.WEXITSTATUS(_waitpid(pid, 0)[1])


def _said_failed(command, code):
    log.log(f'command "{command}" exited with non-zero code: {code}')


def _error(what, e, line):
    """A failed system call, as uWSGI's uwsgi_error() says it."""
    log.log(f"{what}: {e.strerror} [core/hooks.c line {line}]")


def _split(arg, action, syntax="<file> <string>"):
    path, space, rest = arg.partition(" ")
    if not space:
        log.log(f"invalid hook {action} syntax, must be: {syntax}")
        return None
    return path, rest


def _exec(arg):
    code = run_command(arg)
    if code:
        _said_failed(arg, code)
    return code


def _safeexec(arg):
    _exec(arg)
    return 0


def _chdir(arg):
    try:
        os.chdir(arg)
    except OSError as e:
        _error("uwsgi_hook_chdir()", e, 65)
        return -1
    return 0


def _mkdir(arg):
    try:
        os.mkdir(arg, 0o777)
    except OSError as e:
        _error("uwsgi_hook_mkdir()", e, 73)
        return -1
    return 0


def _putenv(arg):
    # putenv() of a name without '=' removes it (glibc).
    key, eq, value = arg.partition("=")
    if eq:
        os.environ[key] = value
    else:
        os.environ.pop(key, None)
    return 0


def _unlink(arg):
    try:
        os.unlink(arg)
    except OSError as e:
        _error("uwsgi_hook_unlink()/unlink()", e, 120)
        return -1
    return 0


def _write_file(arg, action, flags, lines, newline=False):
    """write, writen, append, appendn: TEXT into FILE (a newline after
    it for the -n forms)."""
    found = _split(arg, action)
    if found is None:
        return -1
    path, text = found
    return _put(path, (text + "\n" if newline else text).encode(),
                flags, lines, action)


def _put(path, data, flags, lines, action):
    """Write `data` into the file; `lines` are those of uWSGI's open and
    write errors in core/hooks.c."""
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        _error(f'open("{path}")', e, lines[0])
        return -1
    try:
        os.write(fd, data)
    except OSError as e:
        _error(f"uwsgi_hook_{action}()/write()", e, lines[1])
        return -1
    finally:
        os.close(fd)
    return 0


_TRUNCATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND


def _appendn(arg):
    # appendn with no text appends a newline alone.
    path, space, text = arg.partition(" ")
    return _put(path, (text + "\n").encode(), _APPEND, (248, 270),
                "appendn")


def _writefifo(arg):
    """A fifo nobody reads is no failure: uWSGI lets ENXIO pass."""
    found = _split(arg, "writefifo")
    if found is None:
        return -1
    path, text = found
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as e:
        _error(f'open("{path}")', e, 134)
        return 0 if e.errno in (19, 6) else -1    # ENODEV, ENXIO
    try:
        os.write(fd, text.encode())
    except OSError as e:
        _error("uwsgi_hook_writefifo()/write()", e, 145)
        return -1
    finally:
        os.close(fd)
    return 0


def _creat(arg):
    try:
        os.close(os.open(arg, _TRUNCATE, 0o666))
    except OSError as e:
        _error(f'open("{arg}")', e, 180)
        return -1
    return 0


def _chmod(arg):
    found = _split(arg, "chmod", "<file> <mode>")
    if found is None:
        return -1
    path, mode = found
    # uWSGI reads three octal digits, the last three of four.
    digits = mode[-3:] if len(mode) > 3 else mode
    if len(mode) < 3 or not all(c in "01234567" for c in digits):
        log.log(f"invalid hook chmod mask: {mode}")
        return -1
    try:
        os.chmod(path, int(digits, 8))
    except OSError as e:
        _error("uwsgi_hook_chmod()/chmod()", e, 300)
        return -1
    return 0


def _sticky(arg):
    try:
        mode = os.stat(arg).st_mode
    except OSError as e:
        _error("uwsgi_hook_sticky()/stat()", e, 308)
        return -1
    try:
        os.chmod(arg, stat.S_IMODE(mode) | stat.S_ISVTX)
    except OSError as e:
        _error("uwsgi_hook_sticky()/chmod()", e, 312)
        return -1
    return 0


def _chown(arg):
    """chown FILE USER GROUP, by name."""
    parts = arg.split(" ", 2)
    if len(parts) < 3:
        log.log("invalid hook chown syntax, must be: <file> <uid> <gid>")
        return -1
    path, user, group = parts
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        log.log(f"unable to find uid {user}")
        return -1
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        log.log(f"unable to find gid {group}")
        return -1
    return _do_chown(path, uid, gid, "uwsgi_hook_chown()/chown)", 354)


def _chown2(arg):
    """chown2 FILE UID GID, by number."""
    parts = arg.split(" ", 2)
    if len(parts) < 3:
        log.log("invalid hook chown2 syntax, must be: <file> <uid> <gid>")
        return -1
    path, uid, gid = parts
    for name, value in (("uid", uid), ("gid", gid)):
        if not value.isdigit():
            log.log(f"invalid hook chown2 syntax, {name} must be a number")
            return -1
    return _do_chown(path, int(uid), int(gid), "uwsgi_hook_chown2()/chown)",
                     393)


def _do_chown(path, uid, gid, what, line):
    try:
        os.chown(path, uid, gid)
    except OSError as e:
        _error(what, e, line)
        return -1
    return 0


def _hostname(arg):
    try:
        socket.sethostname(arg)
    except OSError:
        return -1
    return 0


def _print(arg):
    log.log(arg)
    return 0


def _exit(arg):
    # As uWSGI's atoi() of a value longer than one character: `exit:3`
    # exits 0.
    code = int(arg) if len(arg) > 1 and arg.isdigit() else 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


ACTIONS = {
    "cd": _chdir, "chdir": _chdir, "mkdir": _mkdir, "putenv": _putenv,
    "chmod": _chmod, "chown": _chown, "chown2": _chown2, "sticky": _sticky,
    "exec": _exec, "safeexec": _safeexec, "create": _creat,
    "creat": _creat,
    "write": lambda a: _write_file(a, "write", _TRUNCATE, (162, 169)),
    "writen": lambda a: _write_file(a, "writen", _TRUNCATE, (222, 232),
                                    True),
    "append": lambda a: _write_file(a, "append", _APPEND, (197, 204)),
    "appendn": _appendn, "writefifo": _writefifo, "unlink": _unlink,
    "hostname": _hostname, "exit": _exit, "print": _print, "log": _print,
}


# uWSGI's master functions (its own signal handlers, which uWSGI finds
# by their C name) that a unix_signal hook may name -> the Master method
# that does the same in ugu.
MASTER_FUNCTIONS = {
    "gracefully_kill_them_all": "gracefully_kill_them_all",
    "kill_them_all": "kill_them_all",
    "grace_them_all": "grace_them_all",
    "reap_them_all": "reap_them_all",
    "stats": "print_stats",
}
# The phase whose hooks the master runs, and so may bind its signals.
MASTER_PHASE = "master-start"
_ATOI = re.compile(r"\s*[+-]?[0-9]+")


def _unix_signal(arg, master):
    """unix_signal SIGNUM FUNCTION: from now on the master runs FUNCTION
    when it gets SIGNUM.  A number no handler can take is said in the
    line of uWSGI's failed sigaction(), and the hook still succeeds, as
    uWSGI's does."""
    number, space, name = arg.partition(" ")
    if not space:
        log.log("invalid unix_signal syntax, must be <signum> <func>")
        return -1
    found = _ATOI.match(number)     # C's atoi(): 0 where no digits lead
    try:
        master.unix_signal(int(found[0]) if found else 0,
                           MASTER_FUNCTIONS[name])
    except (OSError, ValueError):
        log.log("sigaction(): Invalid argument [core/utils.c line 1958]")
    return 0


MASTER_ACTIONS = {"unix_signal": _unix_signal}


class Hook:
    """One hook-PHASE value: ACTION:ARGS, a `!` before the action keeping
    the value out of the log (uWSGI's private hook)."""

    def __init__(self, value, option, in_master=False):
        action, colon, self.arg = value.partition(":")
        if not colon:
            raise ConfigError(f"'{value}' is not ACTION:ARGS (uWSGI: "
                              f"invalid hook syntax, must be hook:args)",
                              option=option)
        self.private = action.startswith("!")
        self.action = action.removeprefix("!")
        if self.action in MASTER_ACTIONS:
            _check_master_action(self.action, self.arg, option, in_master)
        elif self.action not in ACTIONS:
            raise ConfigError(
                f"hook action '{self.action}' is not one ugu has (those "
                f"that call C functions, mount, or use uWSGI's alarms, "
                f"RPC or waits are not); ugu has "
                f"{', '.join(sorted([*ACTIONS, *MASTER_ACTIONS]))}",
                option=option)
        self.value = value

    def run(self, phase_word, master=None):
        if self.private:
            log.log(f"running --- PRIVATE HOOK --- ({phase_word})...")
        else:
            log.log(f'running "{self.value}" ({phase_word})...')
        if self.action in MASTER_ACTIONS:
            return MASTER_ACTIONS[self.action](self.arg, master)
        return ACTIONS[self.action](self.arg)


def _check_master_action(action, arg, option, in_master):
    """unix_signal only where the master runs it, naming a function ugu's
    master has (a value without its space fails when it runs, in
    uWSGI's line)."""
    if not in_master:
        raise ConfigError(f"hook action '{action}' binds a signal of "
                          f"ugu's master: write it in hook-{MASTER_PHASE}",
                          option=option)
    number, space, name = arg.partition(" ")
    if space and name not in MASTER_FUNCTIONS:
        raise ConfigError(
            f"unix_signal names '{name}', which ugu's master does not have "
            f"(uWSGI finds any of its C functions by name); ugu's has "
            f"{', '.join(MASTER_FUNCTIONS)}", option=option)


class Hooks:
    """Every phase's hooks and commands, read once at start-up."""

    def __init__(self, config):
        self.hooks = {phase: [Hook(value, f"hook-{phase}",
                                   phase == MASTER_PHASE)
                              for value in config[f"hook-{phase}"]]
                      for phase in PHASES if phase != "touch"}
        self.commands = {phase: config[f"exec-{phase}"]
                         for phase in EXEC_PHASES}
        self.touches = [_touch_hook(value) for value in config["hook-touch"]]

    def run(self, phase, on_fatal=None, master=None):
        """Run the phase's hooks, then its commands.  A fatal failure
        calls `on_fatal` (what ends the instance from where the phase
        runs), or exits 1 where none is given.  `master`: the Master
        that runs the phase, for the actions that bind its signals."""
        word, fatal = PHASES[phase]
        for hook in self.hooks[phase]:
            if hook.run(word, master) and fatal:
                log.verbose("FATAL hook failed, destroying instance")
                if on_fatal is None:
                    _exit_failed()
                # As uWSGI: the phase's other hooks and commands are left.
                on_fatal()
                return
        for command in self.commands.get(phase, ()):
            if phase in _SAID_WITH_IDS:
                log.log(f'running "{command}" (as uid: {os.getuid()} gid: '
                        f'{os.getgid()}) ...')
            else:
                log.log(f'running "{command}" ({word})...')
            code = run_command(command)
            if code:
                _said_failed(command, code)
                if phase != "as-user-atexit":
                    _exit_failed()

    def has(self, phase):
        return bool(self.hooks[phase] or self.commands.get(phase))

    def run_as_emperor(self, commands, name, pid, uid, gid):
        """In the Emperor, a vassal just spawned: the as-emperor hooks
        (a failure ends nothing), then each exec-as-emperor command with
        the vassal's config, pid, uid and gid in its environment, said
        with its exit code, as uWSGI's."""
        self.run("as-emperor")
        env = dict(os.environ, UWSGI_VASSAL_CONFIG=name,
                   UWSGI_VASSAL_PID=str(pid), UWSGI_VASSAL_UID=str(uid),
                   UWSGI_VASSAL_GID=str(gid))
        for command in commands:
            log.log(f'running "{command}" (as-emperor for vassal "{name}" '
                    f'pid: {pid} uid: {uid} gid: {gid})...')
            code = run_command(command, env)
            log.log(f'command "{command}" exited with code: {code}')

    def watch_touches(self):
        """Start watching the hook-touch files (the master, once):
        uWSGI's line for a file not there yet."""
        for touch in self.touches:
            touch[2] = mtime(touch[0])
            if touch[2] is None:
                log.log(f"unable to stat() {touch[0]}, events will be "
                        f"triggered as soon as the file is created")

    def run_touched(self):
        """The hook of each hook-touch file touched (changed, created or
        removed) since the last look."""
        for touch in self.touches:
            path, hook, before = touch
            now = mtime(path)
            if now != before:
                touch[2] = now
                hook.run(PHASES["touch"][0])


def _touch_hook(value):
    """hook-touch's FILE ACTION:ARGS -> [path, Hook, last mtime]."""
    path, space, hook = value.partition(" ")
    if not space:
        raise ConfigError(f"'{value}' is not FILE ACTION:ARGS",
                          option="hook-touch")
    return [path, Hook(hook, "hook-touch"), None]


def _exit_failed():
    """Exit 1: in the process ugu started as (or the daemon daemonize
    made of it), through the command line, for fallback-config to follow
    as it follows uWSGI's exit; elsewhere at once."""
    if os.getpid() in (_STARTED_AS, proc.daemon_pid()):
        raise FatalExit(EXIT_FAILED)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_FAILED)


def signal_master(master):
    """What a fatal hook does in a worker under a master: ask it, as
    uWSGI's worker does, to destroy the instance."""
    return lambda: os.kill(master, signal.SIGINT)
