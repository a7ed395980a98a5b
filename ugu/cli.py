"""argv -> Config -> emperor, vassal, or one of the informational modes.

Configuration errors are printed one a line, each naming the file, line
and option, and exit with status 1, as uWSGI exits on a bad config.
"""

import json
import os
import signal
import sys

from ugu import UWSGI_VERSION, __version__, link, proc
from ugu.options import registry, sources
from ugu.options.errors import ConfigError, ConfigExit, FatalExit
from ugu.options.resolve import resolve

EXIT_CONFIG = 1
# The status that starts fallback-config, the one of a failed start.
EXIT_FALLBACK = 1
# Set in the environment of the process `optimize` starts again under
# Python's -O flags, so that it does so once only.
OPTIMIZE_ENV = "UGU_OPTIMIZE_RESTART"
# The fallback-config files started so far in a chain of fallbacks, kept
# in the environment across the exec of each: one is not started twice.
FALLBACK_ENV = "UGU_FALLBACK_CHAIN"
# The options that signal the instance a pidfile names, then exit.
PIDFILE_SIGNALS = {"stop": signal.SIGINT, "reload": signal.SIGHUP}
# Options only an Emperor acts on: refused where there is none.
EMPEROR_ONLY = ("hook-emperor-start", "hook-as-emperor", "exec-as-emperor",
                "hook-as-vassal", "exec-as-vassal", "emperor-broodlord",
                "early-emperor")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    proc.hold_ignored_signals()
    pid, fallback = os.getpid(), None
    # Not the app's: gone before anything reads the environment.
    restarted = os.environ.pop(OPTIMIZE_ENV, None) is not None
    chain = _chain(os.environ.pop(FALLBACK_ENV, None))
    try:
        config = resolve(argv, again=restarted)
        fallback = config["fallback-config"]
        _match_optimize(config, restarted, argv, chain)
        status = _dispatch(config)
    except ConfigExit as e:
        _say_reading(e.announce)
        status, fallback = e.status, e.fallback
    except FatalExit as e:
        status = e.status
    except ConfigError as e:
        announce = getattr(e, "announce", None)
        if announce is not None:
            # Raised while the config was read, before the start said it.
            _say_reading(announce)
        for error in e.errors:
            print(f"ugu: {error}", file=sys.stderr)
        # One raised once the config is read (a socket that cannot be
        # bound) falls back to the fallback-config that config named.
        status = EXIT_CONFIG
        fallback = getattr(e, "fallback", fallback)
    except BrokenPipeError:
        # A reader that stopped early (`ugu --help | head`) is no error;
        # what is still buffered goes nowhere instead of to a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 0
    # Only the process ugu started as, or the one daemonize made of it:
    # their other children never return here.
    if fallback and status == EXIT_FALLBACK and \
            os.getpid() in (pid, proc.daemon_pid()):
        _fall_back(fallback, status, chain)
    return status


def _say_reading(announce):
    """Where the reading of the config ended the start: what uWSGI says
    before that, as it finds its Emperor's link and reads the files."""
    sys.stdout.flush()
    fd = link.environment_fd()
    if fd is not None:
        print(link.detected_line(fd), file=sys.stderr)
    for line in announce:
        print(line, file=sys.stderr)


def _chain(text):
    try:
        chain = json.loads(text or "[]")
    except ValueError:
        return []
    return [path for path in chain if isinstance(path, str)] \
        if isinstance(chain, list) else []


def _fall_back(path, status, chain):
    """fallback-config: the instance ended with status 1, so ugu starts
    again in its place, with that file alone, as uWSGI does at exit;
    unless that file was started already in this chain of fallbacks
    (a file naming itself, two naming each other), which uWSGI would
    start again without end."""
    from ugu import log
    command = proc.python_m_ugu()
    log.verbose(f"!!! {command[0]} (pid: {os.getpid()}) exited with "
                f"status {status} !!!")
    started = os.path.realpath(path)
    if started in map(os.path.realpath, chain):
        steps = " -> ".join([*chain, path])
        print(f"ugu: option 'fallback-config': {path} failed already in "
              f"this chain of fallbacks ({steps}): not started again; name "
              f"another file, or make this one start", file=sys.stderr)
        return
    log.verbose(f"!!! Fallback config to {path} !!!")
    sys.stdout.flush()
    sys.stderr.flush()
    env = dict(os.environ, **{FALLBACK_ENV: json.dumps([*chain, path])})
    os.execve(command[0], [*command, path], env)


def _match_optimize(config, restarted, argv, chain):
    """optimize: uWSGI sets Python's optimisation level before its
    interpreter starts, so every module is compiled at it (asserts
    skipped, docstrings dropped, `__debug__` false, sys.flags.optimize
    set).  A running Python cannot change it: ugu starts itself again,
    in the same process, under as many -O flags, before doing anything
    (the config is read again there)."""
    level = config["optimize"]
    if level is None or level == sys.flags.optimize or \
            config["help"] or config["version"]:
        return
    if restarted:
        raise ConfigError(f"Python started with -{'O' * level} runs at "
                          f"optimisation level {sys.flags.optimize}: "
                          f"start ugu with that Python yourself",
                          option="optimize")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONOPTIMIZE"}
    env[OPTIMIZE_ENV] = "1"
    if chain:
        env[FALLBACK_ENV] = json.dumps(chain)
    flags = [f"-{'O' * level}"] if level else []
    python, *rest = proc.python_m_ugu()
    sources.stdin_again()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(python, [python, *flags, *rest, *argv], env)


def _dispatch(config):
    for text in config["print"]:
        # Once the files are read, before anything starts, as uWSGI
        # prints them.
        print(text)
    sys.stdout.flush()
    if config["help"]:
        _say(help_text())
        return 0
    if config["version"]:
        _say(f"ugu {__version__} (uWSGI {UWSGI_VERSION} compatible)")
        return 0
    if config["dump-options"]:
        from ugu.inventory import option_names
        _say("\n".join(option_names()))
        return 0
    if config["connect-and-read"]:
        from ugu.stats import read_from
        return read_from(config["connect-and-read"])
    if config["ping"]:
        from ugu.ping import ping
        return ping(config["ping"], config["ping-timeout"])
    if config["nagios"]:
        from ugu.ping import nagios
        return nagios(config["socket"], config["socket-timeout"])
    for option, signum in PIDFILE_SIGNALS.items():
        if config[option]:
            from ugu.proc import signal_pidfile
            return signal_pidfile(config[option], signum, option)
    if config["umask"] is not None:
        # Before any file or socket is made, as uWSGI sets it while it
        # reads the option; the vassals an Emperor starts inherit it.
        os.umask(config["umask"])
    if config["emperor"]:
        from ugu.emperor import beside
        if not beside.serves(config):
            beside.refuse_app(config)
            from ugu.emperor.emperor import run as run_emperor
            return run_emperor(config)
        # Else the instance runs it beside its own sockets, as uWSGI's.
    else:
        _refuse_emperor_only(config)
    from ugu.vassal.master import run as run_vassal
    return run_vassal(config)


def _refuse_emperor_only(config):
    """Refused at the line that sets one (uWSGI's would ignore it)."""
    if not any(config[name] for name in EMPEROR_ONLY):
        return
    for entry in config.entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt is not None and opt.name in EMPEROR_ONLY:
            raise ConfigError("only an Emperor acts on it, and this "
                              "instance runs none: set it beside `emperor` "
                              "in the Emperor's config", file=entry.file,
                              line=entry.line, option=opt.name)


def _say(text):
    """Print and flush: a closed pipe is met here, not at exit."""
    print(text)
    sys.stdout.flush()


def help_text():
    lines = ["Usage: ugu [options...] [config files (.ini .yaml .yml .xml "
             ".json .js)...]"]
    for opt in registry.OPTIONS:
        names = "|".join(f"--{n}" for n in (opt.name, *opt.aliases))
        if opt.short:
            names = f"-{opt.short}|{names}"
        lines.append(f"    {names:<39} {opt.help}")
    return "\n".join(lines)
