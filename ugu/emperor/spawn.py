"""Start one vassal: `python -P -m ugu --ini NAME` (or the
`emperor-wrapper` given, with the same arguments), bound to the Emperor.

The child gets its end of a socketpair as fd 3, named in UWSGI_EMPEROR_FD;
/dev/null as stdin; the Emperor's stdout and stderr, so vassal logs reach
the Emperor's terminal; and no other fd.  It asks the kernel for SIGKILL
when the Emperor dies, so even a kill -9 of the Emperor leaves no vassal.
Its environment has each `UWSGI_VASSAL_X` renamed `UWSGI_X`, which sets
option X for the vassals and not for the Emperor.
"""

import fcntl
import os
import socket
import sys
import traceback
from dataclasses import dataclass

from ugu import link, log, proc
from ugu.emperor.monitor import config_option
from ugu.options.sources import EXEC as EXEC_SCHEME

LINK_FD = 3
EXEC_FAILED = 127
# Not for a vassal: it is a fresh start, not a reload, and systemd's notify
# socket belongs to the Emperor.
PRIVATE_ENV = ("UWSGI_RELOADS", "NOTIFY_SOCKET")
VASSAL_ENV = "UWSGI_VASSAL_"
BROOD_ENV = "UWSGI_BROODLORD_NUM"
# What a zerg's name adds to its vassal's (emperor-broodlord).
ZERG_SUFFIX = ":zerg"
# Emperor option -> the vassal option each of its values is passed with.
BEFORE = (("vassals-inherit-before", "inherit"),
          ("vassals-include-before", "include"), ("vassal-set", "set"))
AFTER = (("vassals-inherit", "inherit"), ("vassals-include", "include"))


@dataclass(frozen=True)
class Templates:
    """The argv every vassal gets around its own config, as uWSGI builds
    it: templates and `--set`s before the config file, templates after;
    and the program it runs, where `emperor-wrapper` names one."""
    before: tuple = ()
    after: tuple = ()
    wrapper: str | None = None
    # emperor-wrapper-override and -fallback: tried before and after it.
    overrides: tuple = ()
    fallbacks: tuple = ()
    # emperor-magic-exec: an executable file is run for its config.
    magic_exec: bool = False
    # vassals-start-hook: a program run with the vassal's name first.
    start_hook: str | None = None
    # safe-fd: descriptors the vassal keeps, beside its link and stdio.
    safe_fds: tuple = ()

    @classmethod
    def from_config(cls, config):
        return cls(_args(config, BEFORE), _args(config, AFTER),
                   config["emperor-wrapper"],
                   tuple(config["emperor-wrapper-override"]),
                   tuple(config["emperor-wrapper-fallback"]),
                   config["emperor-magic-exec"],
                   config["vassals-start-hook"], tuple(config["safe-fd"]))


def _args(config, pairs):
    args = []
    for emperor_option, vassal_option in pairs:
        for value in config[emperor_option]:
            args += [f"--{vassal_option}", value]
    return tuple(args)


def vassal_argv(name, templates=Templates(), cwd="."):
    return [*program(templates), *vassal_args(name, templates, cwd)]


def program(templates):
    """The argv's start that runs a vassal: the wrapper, or this ugu."""
    return [templates.wrapper] if templates.wrapper else \
        proc.python_m_ugu()


def vassal_args(name, templates=Templates(), cwd="."):
    """What follows the program in a vassal's argv.  A zerg's name is its
    vassal's file and the section to read, `FILE:zerg`: the option is
    the file's."""
    source = name
    path = name.split(":", 1)[0] if name.endswith(ZERG_SUFFIX) else name
    if templates.magic_exec and \
            os.access(os.path.join(cwd, name), os.R_OK | os.X_OK):
        # uWSGI hands the shell the name as it is: a bare one is looked
        # up in PATH, not in the vassals' folder.
        source = EXEC_SCHEME + name
    return [*templates.before, f"--{config_option(path)}", source,
            *templates.after]


def spawn(name, cwd, templates=Templates(), owner=None, home=None,
          stdin=None, brood=None, hooks=None):
    """Fork and exec the vassal, as `owner` ((uid, gid)) if given; return
    (pid, our end of its link).  `home` is the monitor's folder, given to
    the start hook as UWSGI_VASSALS_DIR; `stdin` an fd (an on-demand
    socket) the vassal gets as its stdin, instead of /dev/null; `brood`
    a zerg's number, as uWSGI's UWSGI_BROODLORD_NUM; `hooks` the
    Emperor's (vassal/hooks.py), whose as-vassal ones run before the
    exec."""
    ours, theirs = socket.socketpair()
    args = vassal_args(name, templates, cwd)
    env = vassal_env(os.environ)
    if brood is not None:
        env[BROOD_ENV] = str(brood)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        _become_vassal(args, cwd, env, (theirs.fileno(), stdin), parent,
                       (name, owner), templates, home, hooks)
    theirs.close()
    ours.setblocking(False)
    return pid, ours


def vassal_env(environ):
    env = {k: v for k, v in environ.items()
           if k not in PRIVATE_ENV and not k.startswith(VASSAL_ENV)}
    for key, value in environ.items():
        if key.startswith(VASSAL_ENV):
            env["UWSGI_" + key[len(VASSAL_ENV):]] = value
    env[link.ENV_FD] = str(LINK_FD)
    return env


def _become_vassal(args, cwd, env, fds, parent, identity, templates,
                   home, hooks=None):
    """In the forked child; never returns."""
    try:
        proc.reset_signals()
        if proc.die_with_parent(parent):
            _drop_privileges(*identity)
            os.chdir(cwd)
            _arrange_fds(*fds, safe=templates.safe_fds)
            if templates.start_hook:
                run_hook("start", templates.start_hook, identity[0], home)
            if hooks:
                # A failure exits 1, before the exec, as uWSGI's.
                hooks.run("as-vassal")
            _exec(args, env, templates)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(EXEC_FAILED)


def run_hook(kind, program, name, home):
    """vassals-start-hook or -stop-hook: run `program NAME` (no shell,
    found in PATH) and wait for it; it cannot stop what goes on."""
    log.log(f"[emperor] running vassal {kind}-hook: {program} {name}")
    import subprocess
    env = dict(os.environ)
    if home:
        env["UWSGI_VASSALS_DIR"] = home
    try:
        status = subprocess.run([program, name], env=env).returncode
    except OSError as e:
        # uWSGI's forked child says it and exits 1.
        log.log(f"execvp(): {e.strerror}")
        status = 1
    # A hook killed by a signal reads as 0, as uWSGI's WEXITSTATUS.
    log.log(f"[emperor] {name} {kind}-hook returned {max(status, 0)}")


def _exec(args, env, templates=Templates()):
    """Become the vassal's program (found in PATH, as uWSGI's execvp):
    each emperor-wrapper-override first, then the wrapper (or ugu), then
    each emperor-wrapper-fallback; or say why not, in uWSGI's words."""
    for wrapper in templates.overrides:
        log.log(f"[emperor] trying to use {wrapper} as binary wrapper ...")
        _try_exec([wrapper, *args], env)
    argv = [*program(templates), *args]
    error = _try_exec(argv, env)
    log.log(f"execvp(): {error.strerror}")
    log.log(f"[emperor] binary path: {argv[0]}")
    log.log("[emperor] is the uwsgi binary in your system PATH ?")
    for wrapper in templates.fallbacks:
        log.log(f"[emperor] trying to use {wrapper} as binary fallback ...")
        _try_exec([wrapper, *args], env)


def _try_exec(argv, env):
    """Exec argv; the OSError if it failed."""
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as e:
        return e


def _drop_privileges(name, owner):
    """`emperor-tyrant`: become the config file's owner, for good."""
    if owner is None:
        return
    uid, gid = owner
    log.log(f"[emperor-tyrant] dropping privileges to {uid} {gid} for "
            f"instance {name}")
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _arrange_fds(link_fd, stdin=None, safe=()):
    # Lift them clear of fds 0-3 first, so no dup2() below hits them.
    high = fcntl.fcntl(link_fd, fcntl.F_DUPFD, LINK_FD + 1)
    if stdin is None:
        stdin = os.open(os.devnull, os.O_RDONLY)
    stdin = fcntl.fcntl(stdin, fcntl.F_DUPFD, LINK_FD + 1)
    os.dup2(stdin, 0)
    os.dup2(high, LINK_FD)
    os.close(stdin)
    os.close(high)
    # Every other descriptor closes, but those safe-fd names: they stay
    # open through the exec.
    start = LINK_FD + 1
    for fd in sorted(set(safe)):
        if fd < start:
            continue
        os.closerange(start, fd)
        start = fd + 1
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass    # not open: nothing to keep
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))
