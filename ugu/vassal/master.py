"""The vassal's master: owns the sockets and the app, keeps the workers.

Start-up binds every socket and loads the app before the first fork, so
workers share both.  Then one loop: signals (recorded by handlers, handled
here), orders from the emperor, reaping and respawning children, and the
cheaper algorithm once a second.  Signal meanings are uWSGI 2.0's: HUP a
graceful reload, TERM a brutal reload, INT and QUIT a shutdown;
`die-on-term` swaps TERM and QUIT.

A reload re-executes the master with the same arguments, keeping the
listening sockets open (see sockets.py), so no client is refused.
"""

import atexit
import dataclasses
import functools
import importlib
import math
import os
import signal
import sys
import threading
import time

from ugu import log, proc, subscription
from ugu import stats as stats_server
from ugu.http.vars import parse_var
from ugu.link import ToEmperor, ToVassal, VassalLink, detected_line
from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.router import fastrouter, rawrouter, sslrouter
from ugu.router.process import run as run_router
from ugu.vassal import app as apps
from ugu.vassal import (alarms, busyness, cheaper, exceptions, fifo,
                        harakiri, hygiene, idle, logencoders, logroutes,
                        metrics, mules, recycle, report, shell, signals,
                        sockets, stats, waits, zerg)
from ugu.vassal.chain import ChainReload
from ugu.vassal.fifo import MasterFifo
from ugu.vassal.fsmon import FsMonitor
from ugu.vassal.cron import Crons
from ugu.vassal.daemons import Daemons
from ugu.vassal.hooks import Hooks
from ugu.vassal.logmaster import LogMaster, line_pipeline
from ugu.vassal.scoreboard import LEAVING, RETIRING, Scoreboard
from ugu.vassal.subscriber import Subscriber
from ugu.vassal.touch import TouchWatch

EXIT_OK = 0
EXIT_FAILED = 1
RELOADS_ENV = "UWSGI_RELOADS"
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP,
           signal.SIGCHLD, signal.SIGUSR1)
# uWSGI's fork-bomb guard: when more respawns than `processes` follow
# each other within this many seconds, the next one waits forkbomb-delay
# seconds (0: does not), so that a crashing app cannot fork-bomb the
# machine.
RESPAWN_BURST_GAP = 1.0
TICK = 1.0
# The least a mule or a spooler lives before its respawn (see
# Master._mule_died).
MULE_RESPAWN_GAP = 1.0
# What the master imports only where it needs it (the workers' request
# code, the uwsgi module, the routes and static files, carbon, the
# spooler's random names), and what those import: imported ahead where
# a later import could fail or find another module (see _import_ahead).
IMPORTED_AHEAD = ("ugu.vassal.worker", "ugu.vassal.pymodule",
                  "ugu.vassal.websocket", "ugu.routing.engine",
                  "ugu.vassal.static", "ugu.vassal.carbon", "random")


class Shared:
    """What the master prepares once and every worker inherits."""

    def __init__(self, config, link, hooks, alarms):
        self.link = link
        self.hooks = hooks
        self.alarms = alarms    # an alarms.Alarms, or None
        # Set once a pyshell-oneshot shell has ended: worker 1 serves.
        self.shell_restored = False
        self.request_routing = self.routing = self.final_routing = None
        self.static = self.env_behaviour = None
        if _request_options(config):
            self.prepare_requests(config)
        self.scoreboard = _scoreboard(config)
        self.apps = apps.Apps((), config)  # none loaded yet
        self.mules = mules.Mules.from_config(config)
        # In uWSGI's order: the sharedareas, the queue, the caches.
        self.sharedareas = None
        if config["sharedarea"] or config["py-sharedarea"]:
            from ugu.vassal import sharedarea
            self.sharedareas = sharedarea.create_all(config)
        self.queue = None   # a queue.Queue, with `queue`
        if config["queue"] > 0:
            from ugu.vassal import queue
            self.queue = queue.create(config)
        self.caches = None  # a cache.Caches, with `cache` or `cache2`
        if config["cache"] or config["cache2"]:
            from ugu.vassal import cache
            self.caches = cache.create_all(config)
        if config["static-cache-paths"]:
            # A static option: the static files are prepared by now.
            self.static.cache_paths(config, self.caches)
        if config["check-cache"] is not None:
            from ugu.vassal import checkcache
            checkcache.named(config, self.caches)
        self.spoolers = None    # a spooler.Spoolers, with `spooler`
        if config["spooler"] or config["spooler-external"]:
            from ugu.vassal.spooler import Spoolers
            self.spoolers = Spoolers.from_config(config)
        self.uwsgi_signals = None   # made once the sockets are bound
        self.metrics = None     # a metrics.Metrics, made after them
        self.carbon = None      # a carbon.Carbon, with `carbon`
        self.stats_pushers = None   # a StatsPushers, with `stats-push`

    def prepare_requests(self, config):
        """What the workers serve requests with: the routing tables and
        the static files (in uWSGI's order: the routing tables, then the
        mime types), and wsgi-env-behaviour."""
        from ugu.routing.engine import FinalRouter, RequestRouter, \
            ResponseRouter
        from ugu.vassal import wsgi
        from ugu.vassal.static import StaticFiles
        self.request_routing = RequestRouter.from_config(config,
                                                         log=log.log_sent)
        self.routing = ResponseRouter.from_config(
            config, log=log.log_sent,
            after_requests=self.request_routing.active)
        self.final_routing = FinalRouter.from_config(config, log=log.log_sent)
        for line in (self.request_routing.dump()
                     + self.routing.startup_lines(self.final_routing)):
            log.log(line)
        self.static = StaticFiles(config)
        self.env_behaviour = wsgi.env_behaviour(config)


def _request_options(config):
    """Whether an option of the workers' request machinery is set (a
    route, a static file rule, wsgi-env-behaviour): then it is prepared,
    its lines said and its errors refused, before the sockets bind, as
    uWSGI's; else once they are, only where workers will serve (an HTTP
    router alone loads none of it), saying nothing."""
    return config.is_set("wsgi-env-behaviour") or any(
        config.is_set(opt.name) for opt in registry.OPTIONS
        if opt.owner in (registry.ROUTING, registry.STATIC))


def run(config):
    """Run a vassal (master, workers, routers); returns the exit code."""
    try:
        return _run(config)
    except ConfigError as e:
        raise _located(e, config) from None
    except waits.WaitFailed:
        return EXIT_FAILED


def _located(error, config):
    """The error, pointing at the config line that set its option: a
    problem found at start-up (a port taken, a bad value) belongs to the
    file the user must edit, not to "the command line"."""
    if error.file is None and error.option:
        for entry in reversed(config.entries):
            opt = registry.lookup(entry.key)
            if opt and opt.name == error.option:
                error.file, error.line = entry.file, entry.line
                break
    return error


def _run(config):
    link = VassalLink.from_environment()
    start_cwd = os.getcwd()
    reloaded = bool(os.environ.get(RELOADS_ENV))
    if link:
        # Said as uWSGI finds the link, before its config is read: in the
        # Emperor's log, not in the vassal's logto file.
        log.log(detected_line(link.fileno()))
    hooks = Hooks(config)
    if config["unshare"] or config["unshare2"]:
        # Refused before anything starts, as uWSGI reads them.
        from ugu.vassal import privileges
        privileges.unshare_mask(config, "unshare")
        privileges.unshare_mask(config, "unshare2")
    if config["binsh"]:
        shell.use_binsh(config["binsh"])

    def asap():
        # As uWSGI says them, while it reads its options.
        for line in subscription.deprecated_lines(config):
            log.log(line)
        subscription.check_algo(config)
        subscription.sign_check(config)
        # env and unenv first, as uWSGI applies them with its options.
        _apply_env(config)
        hooks.run("asap")
        if config["envdir"]:
            from ugu.vassal import privileges
            privileges.envdirs(config)
        # Before logto or daemonize take the log, as uWSGI sets them up.
        # Refused, where one is wrong, before any file is made and
        # before the lines that announce the encoders.
        log.check_loggers(config)
        logroutes.check(config)
        LogMaster.check_request_routes(config)
        logencoders.chain(config, "log-encoder")
        logencoders.chain(config, "log-req-encoder")
        for line in logencoders.registered_lines(config):
            log.log(line)
    proc.start_log(config, reloaded, under_emperor=bool(link), asap=asap)
    if config["never-swap"]:
        proc.lock_memory()
    if config["flock2"] or config["flock-wait2"]:
        from ugu.vassal import privileges
        privileges.lock_after_log(config)
    # The loggers' paths follow chdir, as uWSGI opens them later.
    if config["chdir"]:
        proc.change_dir(config["chdir"], "chdir")
    log.use_loggers(config, reloaded)
    log.send_requests(logroutes.request_sender(config))
    # From the first line on, as uWSGI's log master is made before its
    # banner: the children's lines go through the same regexps later.
    # Its alarms too see the banner (raised once the master runs).
    raised = alarms.Alarms.from_config(config, mules.count(config))
    watching = raised and raised.watches_lines()
    through = line_pipeline(config, raised)
    if log.stdio_waiting():
        through = log.retrying(through)
    log.write_through(through, raised.raise_due if watching else None)
    _banner(config)
    _thread_stack(config)
    proc.limit_address_space(config)
    proc.set_max_fd(config)
    if config["pidfile"] and not reloaded:
        hygiene.write_pidfile(config["pidfile"])
    if config["abstract-socket"]:
        from ugu import abstract
        abstract.force(True)
    if config["shared-socket"] or config["undeferred-shared-socket"]:
        # Before the jail and the drop of privileges, as uWSGI binds
        # them.
        sockets.bind_shared(config, config["listen"])
    # early-emperor: before the hooks and the privilege drop, as uWSGI's.
    emperor = _start_emperor(config, link) if config["early-emperor"] \
        else None
    _privileged_hooks(config, hooks, start_cwd, reloaded)
    if config["logto2"] and log.log_file_taken(config) and \
            (config["log-reopen"] or not reloaded or
             log.is_udp(config["logto2"])):
        # As uWSGI opens it: as that user, from the folder ugu started in.
        log.logto(config, "logto2", start_cwd)
    if config["chdir"]:
        log.log(f"chdir() to {config['chdir']}")
    if config["pidfile2"] and not reloaded:
        hygiene.write_pidfile(config["pidfile2"], "pidfile2")
    if emperor is None:
        emperor = _start_emperor(config, link)
    daemons = Daemons(config)
    crons = Crons.from_config(config)
    # A vassal always has a master: the emperor talks to it.
    masterless = not config["master"] and not link
    for name in ("vassal-sos", "vassal-sos-backlog"):
        if masterless and config[name]:
            # uWSGI's master is the one that calls; without it, nobody.
            raise ConfigError("the master calls the Emperor for "
                              "reinforcements: set master = true",
                              option=name)
    if masterless and not config["pyrun"]:
        # Before anything can fail, as uWSGI warns (tutorial step 1);
        # not in pyrun's command mode, which needs no master.
        log.log("*** WARNING: you are running uWSGI without its master "
                "process manager ***")
    if config["limit-nproc"] or config["prio"] is not None:
        from ugu.vassal import privileges
        if config["limit-nproc"]:
            privileges.limit_nproc(config)
        if config["prio"] is not None:
            privileges.set_priority(config)
    if config["harakiri"] and not config["post-buffering"]:
        # A slow upload then counts against the harakiri deadline, which
        # is what uWSGI warns about.
        log.log(" *** WARNING: you have enabled harakiri without post "
                "buffering. Slow upload could be rejected on "
                "post-unbuffered webservers *** ")
    if config["vhost"] or config["vhost-host"]:
        log.log("VirtualHosting mode enabled.")
    # Before the sockets, as uWSGI's plugin says its settings.
    busyness.announce(config)
    shared = Shared(config, link, hooks, raised)
    # pyrun's command mode: a script runs in worker 1, on no socket,
    # reading the instance's stdin, as uWSGI's.
    command = bool(config["pyrun"])
    try:
        listeners, pools = ([], []) if command else \
            _bind_all(config, reloaded)
    except zerg.ZergError:
        return EXIT_FAILED
    # Bound with the others (its errors stop the start before a fork),
    # announced once the workers run.
    zerg_server = None
    if config["zerg-server"] is not None and not command:
        zerg_server = zerg.ZergServer(config["zerg-server"],
                                      config["listen"])
    if _drops_at(config) == BOUND:
        _as_root(config, hooks, reloaded)
    if not command and not any(l.sock.fileno() == 0 for l in listeners):
        hygiene.remap_stdin(config)
    # Refused here, where uWSGI's workers exit on a bad line.
    sockets.socket_map(config, len(_worker_sockets(listeners)))
    if not listeners and not command and not pools and not config["udp"]:
        log.log("The -s/--socket option is missing and stdin is not a "
                "socket.")
        return EXIT_FAILED
    if config["udp"]:
        from ugu.vassal import udpserver
        udpserver.check(config["udp"])
    recycle.check(config)
    cheaper.check(config)
    subscriber = Subscriber.from_config(
        config, [l.name for l in _worker_sockets(listeners)])
    # Once the sockets are bound (the first names the instance), as
    # uWSGI's plugin starts.
    if config["stats-push"]:
        from ugu.vassal.statspush import StatsPushers
        shared.stats_pushers = StatsPushers.from_config(config)
    if config["carbon"]:
        from ugu.vassal.carbon import Carbon
        shared.carbon = Carbon.from_config(config,
                                           _worker_sockets(listeners))
    if has_router(config) and not command:
        # Its errors stop the start, before any router is forked.
        router_backends(config, listeners)
        gateway_ids(config, "http")
    for router in _corerouters(config):
        gateway_ids(config, router.NAME)
        corerouter_socket(config, router, listeners)
    meshes = _meshes(config)
    if masterless and has_router(config):
        if config["daemonize2"]:
            # uWSGI's router dies as daemonize2 leaves it behind.
            raise ConfigError("without a master the http router would "
                              "die as the instance goes to the background: "
                              "set master = true, or use daemonize",
                              option="daemonize2")
        _router_without_master(config, listeners, meshes.get("router"))
    for router in _corerouters(config) if masterless else ():
        for index in range(1, config[f"{router.NAME}-processes"] + 1):
            pid = fork_corerouter(config, listeners, router, index, parent=(
                os.getpid() if _worker_sockets(listeners) else None),
                mesh=meshes.get(router.NAME))
            log.log(f"spawned {router.GATEWAY} {index} (pid: {pid})")
    if masterless and (has_router(config) or _corerouters(config)):
        if not _worker_sockets(listeners):
            log.log("...you should enable the master process... really...")
            return _end_without_master(config, listeners)
    _warn_router_to_http_socket(config, listeners)
    if config["post-buffering"] > config["post-buffering-bufsize"]:
        log.log(f"setting request body buffering size to "
                f"{config['post-buffering']} bytes")
    crons.log_registered()
    # Before the app loads, as uWSGI words its start-up.
    log.log(f"*** Operational MODE: {_operational_mode(config, listeners)}"
            f" ***")
    # Then, as uWSGI sets them up, before the app loads (it may use them).
    shared.metrics = metrics.create(config, _worker_sockets(listeners),
                                    cores(config))
    # After the sockets, as uWSGI makes its signal sockets (so the app
    # finds its listening sockets where uWSGI's would be).
    shared.uwsgi_signals = signals.UwsgiSignals.from_config(
        config, shared.mules, not masterless, shared.spoolers)
    if _runs_python(config, listeners, command):
        if shared.static is None:
            shared.prepare_requests(config)
        # The stores the workers' route actions reach.
        from ugu.vassal import routestores
        routestores.install(config, shared.static.types)
        # Before any app can import it, in the process that loads them
        # (the workers inherit it), as uWSGI makes it.
        from ugu.vassal import pymodule
        pymodule.install(config, shared.scoreboard, reloaded,
                         not masterless, shared.mules, shared.spoolers,
                         shared.uwsgi_signals)
        pymodule.set_sockets(
            l.sock.fileno() for l in _worker_sockets(listeners))
        _import_ahead()
    try:
        apps.prepare(config, config["force-cwd"] or start_cwd)
    except apps.NoApp as e:
        return e.exit_code
    apps.import_all(config["shared-import"])
    # Also for no processes, as uWSGI: its master (or first process)
    # loads the app whatever the count.
    if (_worker_sockets(listeners) or command) and not _lazy(config):
        try:
            shared.apps = apps.init_all(config, hooks)
        except apps.NoApp as e:
            return e.exit_code
    if _drops_at(config) == LOADED:
        _as_root(config, hooks, reloaded)
    if config["daemonize2"]:
        _daemonize2(config, link, reloaded)
    if masterless:
        return _run_without_master(config, listeners, shared)
    master = Master(config, listeners, shared, start_cwd, daemons, crons,
                    subscriber, zerg_server, pools, emperor)
    master.meshes = meshes
    return master.run()


def _runs_python(config, listeners, command):
    """Whether Python code of the user's may run in the instance: in its
    workers, mules or spoolers, or through an option of the Python
    plugin's (shared-import, pymodule-alias...).  An HTTP router alone
    runs none, and its processes go without the `uwsgi` module."""
    return bool(
        command or _worker_sockets(listeners) or mules.count(config)
        or config["spooler"]
        or any(config.is_set(opt.name) for opt in registry.OPTIONS
               if opt.owner == registry.PYTHON))


def _start_emperor(config, link):
    """`emperor` beside sockets or routers: uWSGI forks the Emperor here,
    its privileges dropped and nothing bound yet; a Beside, or None."""
    if not config["emperor"]:
        return None
    if config["daemonize2"]:
        # uWSGI's dies with the process daemonize2 leaves.
        raise ConfigError("the Emperor, started before the app loads, "
                          "would die as daemonize2 sends the instance to "
                          "the background: use daemonize",
                          option="daemonize2")
    from ugu.emperor.beside import Beside
    emperor = Beside(config)
    emperor.fork([link.sock] if link else [])
    return emperor


def _privileged_hooks(config, hooks, start_cwd, reloaded):
    """The hooks of the start before privileges drop, and the drop.
    uWSGI runs them from the folder it started in (its chdir comes
    after), pre-jail's at the first start only, and those as root and
    as user only when started as root."""
    if os.getuid() == 0 and (config["uid"] or config["gid"]
                             or _jails(config)):
        _import_ahead()
    os.chdir(start_cwd)
    if not reloaded:
        hooks.run("pre-jail")
    hooks.run("in-jail")
    if config["file-write"]:
        from ugu.vassal import privileges
        privileges.file_write(config)
    if _drops_at(config) == JAILED:
        _as_root(config, hooks, reloaded)
    waits.sockets(config)
    if config["chdir"]:
        proc.change_dir(config["chdir"], "chdir")


# Where the start drops privileges, in uWSGI's order: after the jail's
# hooks, before binding (the sockets then belong to the user the workers
# run as, and a port under 1024 needs another way in); once bound, for
# chown-socket (which needs root to give a socket away) and
# drop-after-init; once the master loaded the apps, for drop-after-apps
# (as root, and a lazy app in each worker, after).
JAILED, BOUND, LOADED = "jailed", "bound", "loaded"


def _drops_at(config):
    if config["drop-after-apps"]:
        return LOADED
    if config["chown-socket"] or config["drop-after-init"]:
        return BOUND
    return JAILED


def _import_ahead():
    """What the master would import later, imported now: before it
    becomes another user or jails itself (Python's files may be out of
    that user's reach, a Python installed under /root, or outside the
    jail), and before the app's folders come first on sys.path (a module
    of the app's would stand in for one of Python's that ugu imports)."""
    for name in IMPORTED_AHEAD:
        importlib.import_module(name)


def _as_root(config, hooks, reloaded):
    """The chroot, the hooks as root, the drop of privileges, the hooks
    as user: those hooks only when started as root, as uWSGI runs them;
    the chroot at the first start only (a reload stays in it)."""
    if _jails(config) and not reloaded:
        _jail(config, hooks)
    as_root = os.getuid() == 0
    if as_root:
        waits.as_root(config)
        hooks.run("as-root")
    hygiene.drop_privileges(config)
    if as_root:
        hooks.run("as-user")


def _jails(config):
    return any(config[option] for option in (
        "unshare", "unshare2", "chroot", "pivot-root", "jailed"))


def _jail(config, hooks):
    """As uWSGI jails itself at the first start: unshare, the post-jail
    hooks (after unshare, or where `jailed` says the instance is in a
    jail already), chroot, pivot-root, unshare2.  As root only: a
    non-root start is refused (uWSGI ignores unshare, pivot-root and
    jailed there)."""
    from ugu.vassal import privileges
    if os.getuid() != 0:
        option = next(option for option in (
            "unshare", "unshare2", "chroot", "pivot-root", "jailed")
            if config[option])
        said = {"chroot": "chroot()", "unshare": "unshare()",
                "unshare2": "unshare()", "pivot-root": "pivot_root()",
                "jailed": "run the post-jail hooks"}[option]
        raise ConfigError(f"cannot {said} as non-root user: start the "
                          f"instance as root, or remove {option}",
                          option=option)
    if config["unshare"]:
        privileges.unshare(config, "unshare")
    if config["unshare"] or config["jailed"]:
        hooks.run("post-jail")
    if config["chroot"]:
        privileges.chroot(config)
    if config["pivot-root"]:
        privileges.pivot_root(config)
    if config["unshare2"]:
        privileges.unshare(config, "unshare2")


def _daemonize2(config, link, reloaded):
    """daemonize2: as daemonize, once the app is loaded, so that a start
    that fails says so where it was started.  The file is opened from
    the folder of chdir, and the pidfile written again, for the new
    pid."""
    if not link and not reloaded:
        log.log("*** daemonizing uWSGI ***")
        proc.daemonize()
    if link or config["log-reopen"] or not reloaded:
        log.logto(config, "daemonize2")
    if config["pidfile"] and not reloaded:
        hygiene.write_pidfile(config["pidfile"])


def cores(config):
    """Cores per worker: its threads, or its greenlets in async mode."""
    return config["gevent"] or config["threads"]


def _lazy(config):
    # gevent patches the worker before its app loads, so it loads there.
    return config["lazy-apps"] or config["gevent"]


def _banner(config):
    log.starting(config["pcre-jit"])
    for names in config["plugins"] + config["need-plugins"]:
        for name in names:
            log.log(f"plugin {name}: built into ugu")


def _thread_stack(config):
    """thread-stacksize (KiB): the stack of every thread made from now
    on (the cores', offload threads'), set before the workers fork, with
    uWSGI's line.  Python refuses a stack under 32 KiB, which uWSGI's
    pthreads take from 16 KiB: said, not left at the default."""
    size = config["thread-stacksize"]
    if not size:
        return
    try:
        threading.stack_size(size * 1024)
    except ValueError:
        raise ConfigError(f"Python's threads need a stack of 32 KiB or "
                          f"more, not {size}: set thread-stacksize = 32 "
                          f"or more", option="thread-stacksize") from None
    log.log(f"threads stack size set to {size}k")


def _scoreboard(config):
    workers, per_worker = config["processes"], cores(config)
    try:
        return Scoreboard(workers, per_worker, apps.capacity(config))
    except (OSError, OverflowError) as e:
        # Workers and cores that pass the memory there is, as uWSGI says
        # it: before anything starts.
        reason = getattr(e, "strerror", None) or str(e)
        option = "processes"
        if per_worker > workers:
            option = "gevent" if config["gevent"] else "threads"
        raise ConfigError(f"unable to allocate the shared memory of "
                          f"{workers} workers of {per_worker} cores: "
                          f"{reason} (lower {option})",
                          option=option) from None


def _apply_env(config):
    proc.apply_env(config)
    # Read here, before a router process would fail on them.
    for item in config["http-var"]:
        parse_var(item)


def _bind_all(config, reloaded):
    """The instance's listeners, and its zergpools."""
    inherited = sockets.inherited_sockets()
    backlog = config["listen"]
    # First, as uWSGI's plugin binds them as it starts.
    pools = zerg.pools(config, inherited)
    wanted = _worker_addresses(config)
    # Certificates first: a bad one stops the instance before it binds.
    contexts = _tls_contexts(config, wanted)
    https = []
    if config["https"]:
        from ugu.router import https as router_https
        https = [router_https.parse(value, config["https-session-context"])
                 for value in config["https"]]
    routers = [(name, None) for name in config["http"]] + https
    if config["http-to-https"]:
        from ugu.router import redirect
        routers += [redirect.parse(value)
                    for value in config["http-to-https"]]
    # As uWSGI: the router's sockets first, and not numbered ("uwsgi
    # socket N" counts the workers' only).
    tuning = sockets.Tuning.from_config(config)
    listeners = []
    for name, context in routers:
        listener = sockets.bind(name, sockets.ROUTER, backlog, inherited,
                                None, tuning)
        listener.tls = context
        listeners.append(listener)
    if config["http-zerg"] and not has_router(config):
        # uWSGI's router then never starts, and the option does nothing.
        raise ConfigError("the HTTP router serves the sockets of an "
                          "http-zerg server beside its own: add `http = "
                          "ADDR` (or remove http-zerg)", option="http-zerg")
    if has_router(config) and config["http-processes"] < 1:
        raise ConfigError("write 1 or more", option="http-processes")
    listeners += zerg.inherited(inherited, True)
    if config["http-zerg"] and not reloaded:
        listeners += zerg.attach_router(config)
    listeners += _bind_subscription_servers(config, inherited)
    for router in COREROUTERS:
        listeners += _bind_corerouter(config, router, backlog, inherited,
                                      tuning)
    # A zerg's sockets come before its own are bound, and are numbered
    # after them, as uWSGI's: only at the first start, a reload keeps
    # them.
    default = sockets.socket_protocol(config["protocol"])
    zergs = zerg.inherited(inherited, False, len(wanted))
    if config["zerg"] and not reloaded:
        zergs = zerg.attach(config, default, len(wanted))
    own = [sockets.bind(name, proto, backlog, inherited, index, tuning)
           for index, (name, proto) in enumerate(wanted)]
    for listener, context in zip(own, contexts):
        listener.tls = context
    listeners += own
    listeners += zergs
    # A listening socket on stdin (an on-demand vassal's, from its
    # Emperor) is one more, numbered after them.
    stdin = sockets.adopt_stdin(default, len(wanted) + len(zergs), inherited,
                                config["skip-zero"])
    if stdin is not None:
        listeners.append(stdin)
    if has_router(config) and not wanted and not zergs \
            and not _http_mappers(config):
        # uWSGI's router with no node forwards to a socket of its own.
        listeners.append(sockets.bind(
            "127.0.0.1:0", sockets.UWSGI, backlog, inherited, 0,
            dataclasses.replace(tuning, defer_accept=0)))
    sockets.close_unused(inherited)
    return listeners, pools


def _http_mappers(config):
    """The options that choose the HTTP router's node of a request."""
    return [option for option in ("http-to", "http-use-pattern",
                                  "http-use-base",
                                  "http-subscription-server")
            if config[option]] + (
        ["http-use-socket"] if config["http-use-socket"] is not None
        else [])


def _check_resubscribe(config, prefix):
    """`prefix`-resubscribe passes on what a subscription server hears:
    refused without one (uWSGI's would do nothing), its addresses
    checked."""
    servers = config[f"{prefix}-resubscribe"]
    bind = config[f"{prefix}-resubscribe-bind"] \
        if registry.lookup(f"{prefix}-resubscribe-bind") else None
    if (servers or bind) and not config[f"{prefix}-subscription-server"]:
        option = f"{prefix}-resubscribe" if servers else \
            f"{prefix}-resubscribe-bind"
        router = "HTTP router" if prefix == "http" else prefix
        raise ConfigError(f"it passes on the announces the {router}'s "
                          f"subscription server hears: add "
                          f"{prefix}-subscription-server (or remove it)",
                          option=option)
    if bind and not servers:
        raise ConfigError(f"it is where the {prefix}-resubscribe "
                          f"announces are sent from: add "
                          f"{prefix}-resubscribe (or remove it)",
                          option=f"{prefix}-resubscribe-bind")
    for server in servers:
        sockets.parse_address(server, f"{prefix}-resubscribe")
    if bind and isinstance(sockets.parse_address(
            bind, f"{prefix}-resubscribe-bind"), str):
        raise ConfigError("write a UDP HOST:PORT to send from",
                          option=f"{prefix}-resubscribe-bind")


def _check_http_mappers(config):
    mappers = _http_mappers(config)
    if len(mappers) > 1:
        raise ConfigError(f"{mappers[0]} and {mappers[1]} both choose the "
                          f"node of a request, and uWSGI's router would "
                          f"use only one: keep one of them",
                          option=mappers[1])


def _bind_subscription_servers(config, inherited):
    """The router's subscription servers, after its listeners, as uWSGI
    binds them."""
    servers = config["http-subscription-server"]
    if servers and not has_router(config):
        raise ConfigError("a subscription server is the HTTP router's: "
                          "add `http = ADDR` for it to serve",
                          option="http-subscription-server")
    if servers and config["http-to"]:
        raise ConfigError("the router sends each request to the nodes "
                          "subscribed for its Host, as uWSGI's does, "
                          "never to http-to: remove http-to (or the "
                          "subscription server)", option="http-to")
    if has_router(config):
        _check_http_mappers(config)
        for address in config["http-fallback"]:
            sockets.parse_address(address, "http-fallback")
    _check_resubscribe(config, "http")
    subscription.check_credentials(config, "http-subscription-server")
    if config["http-stud-prefix"]:
        if not has_router(config):
            raise ConfigError("the HTTP router's clients send the stud "
                              "prefix: add `http = ADDR` for it to serve",
                              option="http-stud-prefix")
        from ugu.router.settings import _stud_prefix
        _stud_prefix(config["http-stud-prefix"])
    if config["http-manage-source"] and not has_router(config):
        raise ConfigError("the HTTP router's SOURCE requests open raw "
                          "sessions: add `http = ADDR` for it to serve",
                          option="http-manage-source")
    if config["http-cheap"] and not has_router(config):
        raise ConfigError("it is the HTTP router's cheap mode: add `http = "
                          "ADDR` for it to serve", option="http-cheap")
    if config["http-cheap"] and not servers:
        raise ConfigError("in cheap mode the HTTP router accepts only once "
                          "a node subscribes, which takes an "
                          "http-subscription-server: add one, or remove "
                          "http-cheap", option="http-cheap")
    found = []
    for name in servers:
        listener = sockets.bind_datagram(name, inherited)
        listener.tls = subscription.Server()
        found.append(listener)
    if config["http-cheap"] and has_router(config):
        log.log("starting uWSGI http in cheap mode")
    return found


# The corerouters (uWSGI's plugins on its corerouter): each module names
# its options' prefix and its processes (NAME, GATEWAY) and runs one.
COREROUTERS = (fastrouter, rawrouter, sslrouter)


def _bind_corerouter(config, router, backlog, inherited, tuning):
    """A corerouter's sockets and subscription servers, as uWSGI binds
    them once the HTTP router's; its settings checked first."""
    name = router.NAME
    # Certificates first: a bad one stops the start before any bind.
    wanted = router.listening(config)
    _check_corerouter(config, router)
    subscription.check_credentials(config, f"{name}-subscription-server")
    if router.UNDEFERRED:
        tuning = dataclasses.replace(tuning, defer_accept=0)
    found = []
    for address, context in wanted:
        listener = sockets.bind(address, name, backlog, inherited, None,
                                tuning)
        listener.tls = context
        found.append(listener)
    found += [sockets.bind_datagram(address, inherited, name)
              for address in config[f"{name}-subscription-server"]]
    if found and config[f"{name}-cheap"]:
        log.log(f"starting {router.GATEWAY} in cheap mode")
    return found


def _check_corerouter(config, router):
    name = router.NAME
    used = [opt.name for opt in registry.OPTIONS
            if opt.owner == name and opt.name not in router.LISTEN
            and config[opt.name] not in (opt.default, None, [], ())]
    if not _runs(config, router):
        if used:
            raise ConfigError(f"it is the {name}'s: add `{name} = "
                              f"{router.ADDRESS}` for it to serve",
                              option=used[0])
        return
    mappers = [option for option in (f"{name}-to", f"{name}-use-pattern",
                                     f"{name}-use-base",
                                     f"{name}-subscription-server")
               if config[option]]
    if config[f"{name}-use-socket"] is not None:
        mappers.append(f"{name}-use-socket")
    if not mappers:
        raise ConfigError(f"the {name} has no node to pass requests to "
                          f"(uWSGI's closes every connection): add "
                          f"{name}-to, {name}-use-pattern, "
                          f"{name}-use-base, {name}-use-socket or "
                          f"{name}-subscription-server", option=name)
    if len(mappers) > 1:
        raise ConfigError(f"{mappers[0]} and {mappers[1]} both choose the "
                          f"node of a request, and uWSGI's {name} "
                          f"would use only one: keep one of them",
                          option=mappers[1])
    if config[f"{name}-cheap"] and \
            not config[f"{name}-subscription-server"]:
        raise ConfigError(f"in cheap mode the {name} accepts only once "
                          f"a node subscribes, which takes a "
                          f"{name}-subscription-server: add one, or "
                          f"remove {name}-cheap", option=f"{name}-cheap")
    if config[f"{name}-processes"] < 1:
        raise ConfigError("write 1 or more", option=f"{name}-processes")
    if registry.lookup(f"{name}-resubscribe"):
        _check_resubscribe(config, name)


def _corerouters(config):
    """The corerouters the config runs."""
    return [router for router in COREROUTERS if _runs(config, router)]


def _runs(config, router):
    return any(config[option] for option in router.LISTEN)


def _worker_addresses(config):
    """(address, kind) of each socket the workers serve, numbered as
    uWSGI numbers them: in the order the config gives them, whatever
    their option.  A `socket` speaks what `protocol` names, but one
    written `uwsgi-socket` speaks uwsgi, as in uWSGI (ugu reads both
    names as one option)."""
    default = sockets.socket_protocol(config["protocol"])
    kinds = {"socket": default, "uwsgi-socket": sockets.UWSGI,
             "http-socket": sockets.HTTP, "http11-socket": sockets.HTTP11,
             "fastcgi-socket": sockets.FASTCGI,
             "fastcgi-nph-socket": sockets.FASTCGI_NPH,
             "https-socket": sockets.HTTPS, "ssl-socket": sockets.SUWSGI,
             "scgi-socket": sockets.SCGI,
             "scgi-nph-socket": sockets.SCGI_NPH}
    wanted = []
    for entry in config.entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt is not None and opt.name in kinds:
            key = entry.key if entry.key in kinds else opt.name
            wanted.append((entry.value, kinds[key]))
    return wanted


# The options that act on every TLS context (ugu.sslcontext).
_TLS_WIDE = ("sni", "sni-regexp", "sni-dir", "ssl-option", "ssl-tmp-dir",
             "ssl-verbose", "ssl-enable-tlsv1", "ssl-enable-sslv3")
# The options whose addresses speak TLS.
_TLS_LISTENERS = ("https", "https-socket", "ssl-socket", "sslrouter",
                  "sslrouter2")


def _tls_contexts(config, wanted):
    """The TLS context of each worker socket in `wanted` (None for one
    that speaks no TLS), its address now the ADDR of its
    `ADDR,CERT,KEY[,CIPHERS[,CA]]`; the options that act on every
    context read first.  ssl is imported only here, where the config has
    a TLS option: it weighs some 5 MB in each process of the tree."""
    if not any(config[name] for name in _TLS_WIDE + _TLS_LISTENERS):
        return [None] * len(wanted)
    from ugu import sslcontext
    sslcontext.configure(config)
    contexts = []
    for index, (value, proto) in enumerate(wanted):
        if proto not in sockets.TLS_PROTOCOLS:
            contexts.append(None)
            continue
        option = sockets.OPTION[proto]
        address, crt, key, ciphers, client_ca = sslcontext.parse(value,
                                                                 option)
        sockets.parse_address(address, option)
        wanted[index] = (address, proto)
        # uWSGI names a worker socket's context by its address.
        contexts.append(sslcontext.server_context(
            address, crt, key, ciphers, client_ca, option=option))
    return contexts


def has_router(config):
    """Whether the instance runs the HTTP router (`http`, `https`,
    `http-to-https`)."""
    return bool(config["http"] or config["https"]
                or config["http-to-https"])


def _worker_sockets(listeners):
    return [l for l in listeners if l.proto not in sockets.GATEWAYS]


def router_backends(config, listeners):
    """Nodes the HTTP router forwards to: http-to, else socket
    http-use-socket or 0 (none with a subscription server or
    http-use-base or -pattern: those name the node of each request)."""
    if config["http-subscription-server"] or config["http-use-base"] \
            or config["http-use-pattern"]:
        return []
    if config["http-to"]:
        return [sockets.parse_address(node, "http-to")
                for node in config["http-to"]]
    number = config["http-use-socket"] or 0
    workers = _worker_sockets(listeners)
    if number >= len(workers):
        raise ConfigError(f"the instance has no socket {number} for the "
                          f"router (its sockets are numbered from 0 to "
                          f"{len(workers) - 1}): write one of those, or "
                          f"add the socket", option="http-use-socket")
    first = workers[number]
    address = first.sock.getsockname()
    if isinstance(address, tuple):
        return [("127.0.0.1", address[1])]
    return [first.name]     # a path, or `@NAME` as written


def _warn_router_to_http_socket(config, listeners):
    """The router forwards uwsgi packets to the first socket; where that
    speaks HTTP no request is ever answered (uWSGI's gets no answer,
    ugu's a 400 each): said once, at start-up."""
    workers = _worker_sockets(listeners)
    if not (has_router(config) and workers and not _http_mappers(config)
            and workers[0].proto in sockets.HTTP_PROTOCOLS):
        return
    first = workers[0]
    if config["protocol"] and first.name in config["socket"]:
        # `protocol` turns every `socket` into HTTP: only http-to helps.
        which, fix = (f"a socket that `protocol = {config['protocol']}` "
                      f"makes speak HTTP"), "set `http-to`"
    else:
        which = f"an {sockets.OPTION[first.proto]}"
        fix = "add `socket = ADDR` before it, or set `http-to`"
    log.log(f"*** WARNING: the http router forwards to the first socket, "
            f"{which}, which does not speak the uwsgi protocol: every "
            f"request through it will fail; {fix} ***")


def _operational_mode(config, listeners):
    processes, threads = config["processes"], config["threads"]
    if config["pyrun"]:
        return "command"
    if not processes or not _worker_sockets(listeners):
        return "no-workers"
    if config["gevent"]:
        return "async" if processes == 1 else "preforking+async"
    if processes == 1:
        return "single process" if threads == 1 else "threaded"
    return "preforking" if threads == 1 else "preforking+threaded"


def _run_without_master(config, listeners, shared):
    """Without a master uWSGI runs worker 1 in the first process, which
    forks the others; nobody respawns a worker that dies, and, as in
    uWSGI, nobody enforces max-worker-lifetime."""
    from ugu.vassal.worker import Worker
    count, threads = config["processes"], config["threads"]
    if config["pyrun"]:
        # Command mode: this process is worker 1, which runs the script
        # and exits with its code.
        log.log(f"spawned uWSGI worker 1 (and the only) (pid: "
                f"{os.getpid()}, cores: {threads})")
        Worker(1, config, listeners, shared).run()
    if not count:
        # No worker to be: uWSGI exits at once.
        return _end_without_master(config, listeners, shared.hooks)
    if count == 1:
        log.log(f"spawned uWSGI worker 1 (and the only) (pid: "
                f"{os.getpid()}, cores: {threads})")
    else:
        log.log(f"spawned uWSGI worker 1 (pid: {os.getpid()}, cores: "
                f"{threads})")
    for wid in range(2, count + 1):
        worker = Worker(wid, config, listeners, shared)
        pid = os.fork()
        if pid == 0:
            worker.run()
        log.log(f"spawned uWSGI worker {wid} (pid: {pid}, cores: {threads})")
    if not os.environ.get(RELOADS_ENV):
        hygiene.write_safe_pidfiles(config)
    # Worker 1 is the instance here: its end is the instance's.
    Worker(1, config, listeners, shared, at_exit=functools.partial(
        _end_without_master, config, listeners, shared.hooks)).run()


def _end_without_master(config, listeners, hooks=None):
    """The instance ends without a master: uWSGI's exit handlers run the
    atexit hooks, where given (a router alone exits before uWSGI sets
    them), then vacuum (the workers' sockets only: a router may be
    serving on)."""
    if hooks:
        hooks.run("as-user-atexit")
    if config["vacuum"]:
        hygiene.vacuum(config, _worker_sockets(listeners))
    return EXIT_OK


def _router_without_master(config, listeners, mesh=None):
    """Where no master will, uWSGI forks its router at once.  The router
    dies with the process that forked it, unless that one has no workers
    to be and exits (0, after a warning) first: the router then serves
    on alone, orphaned, until it is signalled."""
    alone = not _worker_sockets(listeners)
    for index in range(1, config["http-processes"] + 1):
        pid = fork_router(config, listeners, index,
                          parent=None if alone else os.getpid(), mesh=mesh)
        log.log(f"spawned uWSGI http {index} (pid: {pid})")


def _meshes(config):
    """The links between the processes of each router that runs more
    than one beside a subscription server (ugu.router.mesh), by the
    kind of their Child ("router" for the HTTP router's)."""
    wanted = []
    if has_router(config) and config["http-subscription-server"]:
        wanted.append(("router", config["http-processes"]))
    for router in _corerouters(config):
        if config[f"{router.NAME}-subscription-server"]:
            wanted.append((router.NAME, config[f"{router.NAME}-processes"]))
    wanted = [(kind, count) for kind, count in wanted if count > 1]
    if not wanted:
        return {}
    from ugu.router.mesh import Mesh
    return {kind: Mesh(count) for kind, count in wanted}


def fork_router(config, listeners, index, parent=None, logmaster=None,
                master=False, mesh=None, watchdog=None):
    """Fork router `index` serving every router address (`http`,
    `https`, `http-to-https`); its pid.  It dies with `parent` (a pid,
    ours) where one is given, the `master` where that is it."""
    own = [l for l in listeners if l.proto == sockets.ROUTER]
    addresses = [(l.sock, l.tls) for l in own]
    backends = router_backends(config, listeners)
    ids = (f"uWSGI http {index}", *gateway_ids(config, "http"))
    return _fork_gateway(
        config, lambda: run_router(config, addresses, backends, index, mesh,
                                   [l.name for l in own], ids),
        parent, logmaster, master, watchdog)


def fork_corerouter(config, listeners, router, index, parent=None,
                    logmaster=None, master=False, mesh=None, watchdog=None):
    """Fork process `index` of the corerouter `router` (its module); its
    pid.  It dies with `parent` (a pid, ours) where one is given, the
    `master` where that is it."""
    own = [l for l in listeners if l.proto == router.NAME]
    ids = (f"{router.GATEWAY} {index}", *gateway_ids(config, router.NAME))
    to = corerouter_socket(config, router, listeners)
    return _fork_gateway(
        config, lambda: router.run(config, own, index, mesh, ids, to),
        parent, logmaster, master, watchdog)


def corerouter_socket(config, router, listeners):
    """The address of the instance's socket `ROUTER-use-socket` names,
    as ROUTER-to would write it, or None where it is unset;
    ConfigError for a socket the instance lacks."""
    option = f"{router.NAME}-use-socket"
    number = config[option]
    if number is None:
        return None
    workers = _worker_sockets(listeners)
    if number >= len(workers):
        raise ConfigError(f"the instance has no socket {number} for the "
                          f"{router.NAME} ({len(workers)} bound): write "
                          f"the number of one, or add the socket",
                          option=option)
    address = workers[number].sock.getsockname()
    if isinstance(address, tuple):
        return f"127.0.0.1:{address[1]}"
    return workers[number].name


def gateway_ids(config, prefix):
    """(uid, gid) a router's processes drop to (`http-uid`,
    `fastrouter-gid`...), each 0 where unset; ConfigError for a name
    the system does not know, or for ids the instance cannot take any
    more (its `uid` dropped root first)."""
    uid = gid = 0
    if prefix not in ("http", "fastrouter"):
        # uWSGI 2.0 gives only these two routers ids of their own.
        return uid, gid
    if config[f"{prefix}-gid"]:
        gid = hygiene.lookup_id(config[f"{prefix}-gid"], "gid",
                                f"{prefix}-gid")
    if config[f"{prefix}-uid"]:
        uid = hygiene.lookup_id(config[f"{prefix}-uid"], "uid",
                                f"{prefix}-uid")
    if os.getuid() != 0 and (uid and uid != os.getuid()
                             or gid and gid != os.getgid()):
        option = f"{prefix}-uid" if uid else f"{prefix}-gid"
        raise ConfigError(f"the router's processes are forked by an "
                          f"instance that no longer runs as root (uid "
                          f"{os.getuid()}), which cannot take other ids: "
                          f"start it as root, or remove {option}",
                          option=option)
    return uid, gid


def _fork_gateway(config, run, parent, logmaster, master=False,
                  watchdog=None):
    """Fork a gateway process that runs `run`, then exits; its pid.  It
    dies with `parent` (a pid, ours) where one is given; `watchdog`: its
    harakiri's (ugu.router.watchdog), or None."""
    pid = os.fork()
    if pid == 0:
        proc.reset_signals()
        if watchdog is not None:
            from ugu.router import watchdog as module
            module.mine = watchdog
        if logmaster:
            logmaster.attach()
        if parent is None or proc.die_with_parent(parent):
            _as_gateway(config, parent if master else None)
            run()
        os._exit(0)
    return pid


def _as_gateway(config, master):
    """hook-as-gateway, in a gateway process after its fork: a fatal
    failure asks the `master` (a pid) to end the instance, as uWSGI's;
    without one, the process exits 1."""
    if config["hook-as-gateway"]:
        from ugu.vassal import hooks
        hooks.Hooks(config).run("as-gateway", on_fatal=(
            hooks.signal_master(master) if master else None))


# The gateways' kinds of Child, and their names in uWSGI's lines.
_GATEWAYS = {"router": "uWSGI http", "zergpool": "uWSGI zergpool",
             **{router.NAME: router.GATEWAY for router in COREROUTERS}}
_BY_NAME = {router.NAME: router for router in COREROUTERS}


class Child:
    """A process the master keeps: a worker, a mule, a spooler or a
    router."""

    def __init__(self, kind, number, pid):
        self.kind, self.number, self.pid = kind, number, pid
        self.born = time.monotonic()
        self.stopping = False   # asked to stop: do not respawn
        self.recycling = False  # asked to stop: respawn at once
        self.quiet = False      # ... and say nothing when it has stopped
        self.harakiri_tries = 0  # harakiri signals sent it so far
        self.watchdog = None     # a router's harakiri deadline
        # A mule or spooler asked to reload (touch-mules-reload,
        # touch-spoolers-reload): when it is SIGKILLed if still alive.
        self.no_mercy_at = None


class Master:
    def __init__(self, config, listeners, shared, start_cwd, daemons,
                 crons, subscriber=None, zerg_server=None, pools=(),
                 emperor=None):
        self.config = config
        self.gateway_harakiri = any(
            config[f"{prefix}-harakiri"] > 0
            for prefix in ("http", "fastrouter", "rawrouter", "sslrouter"))
        # The Emperor this instance runs beside it (emperor/beside.py).
        self.emperor = emperor
        # The instance's subscriptions to routers (`subscribe-to`), or None.
        self.subscriber = subscriber
        # The links between a router's processes (see _meshes).
        self.meshes = {}
        self.listeners = listeners
        self.shared = shared
        self.start_cwd = start_cwd
        self.children = {}          # pid -> Child
        self.respawn_at = {}        # (kind, number) -> monotonic time
        self.cheaper = cheaper.Cheaper(config) if config["cheaper"] \
            else None
        self.backlog = 0            # the longest worker socket queue
        # Cheap mode: no worker until a connection waits (`cheap`, `idle`).
        self.cheap = config["cheap"]
        self.idle = idle.IdleWatch(config["idle"]) if config["idle"] \
            else None
        self.going_cheap = None     # SIGKILL time of workers gone idle
        self.pending_exit = None    # "shutdown" | "reload" once decided
        # A graceful shutdown buries its workers without a line: uWSGI's
        # gracefully_kill_them_all waits for them itself.
        self.bury_quietly = False
        self.next_beat = 0.0        # when the emperor hears from us next
        # vassal-sos: the ticks every worker was busy, and the time of
        # the last call for reinforcements.
        self.overloaded = 0
        self.last_sos = 0
        self.signals = None
        self.unix_signals = {}      # signum -> method (unix_signal hooks)
        self.exit_code = EXIT_OK
        self.chain = ChainReload(self)
        self.daemons = daemons
        self.crons = crons
        self.touch = None           # a TouchWatch once the first spawn
        self.fsmon = None           # a FsMonitor, with fs-reload
        # reloadfd.ReloadFd each, with reload-on-fd, brutal-reload-on-fd.
        self.reload_fds = []
        self.fifo = None
        self.stats = None           # a StatsServer with `stats`
        self.zerg_server = zerg_server  # a ZergServer, `zerg-server`
        self.udp = None             # a UdpServer, with `udp`
        self.pools = pools          # ZergPools, served by a child
        self.spawns = {}            # wid -> (spawns, time of the last)
        self.harakiri_kills = {}    # wid -> workers harakiri killed there
        self.graceful = harakiri.Graceful.from_config(config)
        self.logmaster = None
        # The log master where this loop copies its pipe (not a thread).
        self.logpipe = None
        self._last_respawn = -math.inf
        self._respawn_burst = 0

    # -- life cycle -------------------------------------------------------
    def run(self):
        proc.trim_heap()
        proc.set_master_title(self.config)
        self.signals = proc.SignalQueue(HANDLED)
        if self.config["master-fifo"]:
            self.fifo = MasterFifo(self.config["master-fifo"])
        # Before the first fork: every child writes into its pipe.
        self.logmaster = LogMaster.from_config(self.config, self.start_cwd,
                                               self.shared.alarms)
        if self.shared.alarms:
            if self.logmaster:
                self.shared.alarms.command_output = \
                    self.logmaster.alarm_output()
            self.shared.alarms.bind(self.route_signal, self.shared.mules)
        if self.logmaster:
            shell.send_output_to(self.logmaster.output())
            if self.logmaster.threaded:
                self.logmaster.start_thread()
            else:
                self.logpipe = self.logmaster
        reloads = int(os.environ.get(RELOADS_ENV, "0"))
        verb = "gracefully (RE)spawned" if reloads else "spawned"
        log.log(f"{verb} uWSGI master process (pid: {os.getpid()})")
        if self.shared.link and not reloads:
            self.shared.link.send(ToEmperor.SPAWNED)
        # Every slot lists the master's apps until its worker lists its
        # own, as uWSGI's stats show a slot the cheaper never filled.
        for wid in range(1, self.config["processes"] + 1):
            self.shared.scoreboard.set_apps(wid, self.shared.apps.loaded)
        self._spawn_initial()
        if not reloads:
            hygiene.write_safe_pidfiles(self.config)
        if self.shared.metrics:
            self.shared.metrics.announce()
        if self.shared.caches:
            self.shared.caches.announce()
        cheaper.announce(self.config)
        self.daemons.spawn_all()
        if self.subscriber:
            self.subscriber.subscribe_all()
        # Only now, as uWSGI's master loop first looks at them: a missing
        # file is said after the spawn lines.
        self.touch = TouchWatch(self.config, self.route_signal)
        self.fsmon = FsMonitor.from_config(self.config)
        if self.config["reload-on-fd"] or self.config["brutal-reload-on-fd"]:
            from ugu.vassal import reloadfd
            self.reload_fds = reloadfd.from_config(self.config)
        self.shared.hooks.watch_touches()
        if self.zerg_server:
            # Once the workers run, as uWSGI's master starts it.
            self.zerg_server.announce(
                lambda: [l.sock.fileno()
                         for l in _worker_sockets(self.listeners)])
        if self.config["udp"]:
            from ugu.vassal.udpserver import UdpServer
            self.udp = UdpServer.bind(self.config["udp"])
        if self.config["stats"]:
            self.stats = stats_server.from_config(
                self.config, "stats", lambda: stats.document(self))
            log.log(f"*** Stats server enabled on {self.config['stats']} "
                    f"fd: {self.stats.fileno()} ***")
        self.shared.hooks.run("master-start", on_fatal=self.begin_shutdown,
                              master=self)
        return self._loop()

    def _spawn_initial(self):
        # Before the workers, as uWSGI spawns them, also in cheap mode.
        spoolers = self.shared.spoolers
        for index in spoolers.run_here() if spoolers else ():
            self.spawn_spooler(index)
        if self.cheap:
            log.log(idle.CHEAP_LINE)
        elif self.config["pyrun"]:
            # Command mode: worker 1 alone, which runs the script.
            self.spawn_worker(1)
        elif _worker_sockets(self.listeners):
            first = self.config["processes"]
            if self.cheaper:
                first = self.cheaper.initial
            for wid in range(1, first + 1):
                self.spawn_worker(wid)
        # Also in cheap mode: uWSGI's mules wait for no connection.
        for mule_id in range(1, len(self.shared.mules or ()) + 1):
            self.spawn_mule(mule_id)
        if has_router(self.config):
            # Each router process serves every `http` and `https`
            # address.
            for index in range(1, self.config["http-processes"] + 1):
                self.spawn_router(index)
        for router in _corerouters(self.config):
            for index in range(1, self.config[f"{router.NAME}-processes"]
                               + 1):
                self.spawn_corerouter(router, index)
        if self.pools:
            # After the router, as uWSGI's gateways are registered.
            self.spawn_zergpool()

    def _loop(self):
        # check-interval: how often the master checks its workers, the
        # touched files and the rest (uWSGI's default, 1 s, for 0).
        every = self.config["check-interval"] or TICK
        next_tick = time.monotonic() + every
        uwsgi_signals = self.shared.uwsgi_signals
        signal_ends = []
        while self.pending_exit is None:
            due = [next_tick, *self.respawn_at.values()]
            if uwsgi_signals:
                uwsgi_signals.tick(self.active_workers)
                due += [uwsgi_signals.next_due() or next_tick]
                signal_ends = uwsgi_signals.master_ends()
            timeout = max(0.0, min(due) - time.monotonic())
            received, ready = self.signals.wait(
                timeout, self._link_fds() + signal_ends)
            if uwsgi_signals:
                uwsgi_signals.serve(ready, self.active_workers)
            if self.logpipe in ready:
                self.logpipe.drain()
            for signum in received:
                self.handle_signal(signum)
            woken = [s for s in self._cheap_socks() if s in ready]
            alarm_fds = self.shared.alarms.fds if self.shared.alarms else ()
            if woken and self.pending_exit is None:
                self.leave_cheap_mode()
            if self.stats:
                for source in ready:
                    if source not in (self.fifo, self.shared.link,
                                      self.logpipe, self.fsmon,
                                      self.zerg_server, self.udp,
                                      *alarm_fds, *woken,
                                      *signal_ends, *self.reload_fds):
                        self.stats.answer(source)
            if self.zerg_server in ready:
                self.zerg_server.answer()
            if self.udp in ready:
                self.udp.answer()
            for watched in [f for f in alarm_fds if f in ready]:
                self.shared.alarms.read_fd(watched)
            if self.fifo in ready:
                fifo.dispatch(self, self.fifo.commands())
            if self.shared.link in ready:
                self.handle_emperor_message()
            if self.fsmon in ready:
                self.handle_fs_event()
            if self.reload_fds:
                self._reload_fds_ready(ready)
            if self.pending_exit is not None:
                # The children that die from now on are buried by finish(),
                # each with its line, also those quicker than this loop.
                break
            self.reap()
            self.respawn_due()
            if self.shared.metrics:
                self.shared.metrics.update_load(
                    self.active_workers(), self.shared.scoreboard.busy)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + every
                self.tick()
        return self.finish()

    def _link_fds(self):
        fds = [f for f in (self.shared.link, self.fifo, self.logpipe,
                           self.fsmon, self.zerg_server, self.udp) if f]
        fds += self.reload_fds
        if self.shared.alarms:
            fds += self.shared.alarms.fds
        if self.stats:
            fds += self.stats.waiting()
        return fds + self._cheap_socks()

    def _reload_fds_ready(self, ready):
        """reload-on-fd, brutal-reload-on-fd: a descriptor ready reloads
        (read as uWSGI reads it); one that ended is dropped."""
        from ugu.vassal import reloadfd
        for watch in [w for w in self.reload_fds if w in ready]:
            if reloadfd.ready(watch):
                if self.pending_exit is None:
                    self.begin_reload(graceful=watch.graceful)
                reloadfd.drain(watch)
            if watch.fd < 0:
                self.reload_fds.remove(watch)

    def _cheap_socks(self):
        """The worker sockets, watched while cheap mode waits for a
        connection (not while the idle workers are still going)."""
        if not self.cheap or self.going_cheap is not None:
            return []
        return [l.sock for l in _worker_sockets(self.listeners)]

    # -- spawning -------------------------------------------------------
    def _fork(self, run, pools=False):
        """Fork a child that writes into the log master's pipe (if any)
        and runs `run`, which never returns; its pid.  No signal of the
        master's runs the master's handler in the child meanwhile.  Only
        the zergpool process (`pools`) keeps the zergpools' sockets."""
        with proc.signals_blocked(HANDLED):
            pid = os.fork()
            if pid == 0:
                if self.zerg_server:
                    # Else a child that outlives the master would keep
                    # the zergs' connections open, and unanswered.
                    self.zerg_server.close()
                if not pools:
                    for pool in self.pools:
                        pool.close()
                if self.logmaster:
                    self.logmaster.attach()
                run()
        return pid

    def spawn_worker(self, wid, respawn=False):
        from ugu.vassal.worker import Worker
        if self.cheaper:
            self.cheaper.filled(wid)
        spawns = self.spawns.get(wid, (0, 0))[0]
        self.spawns[wid] = (spawns + 1, int(time.time()))
        self.shared.scoreboard.renew(wid, *self.spawns[wid])
        worker = Worker(wid, self.config, self.listeners, self.shared,
                        master=os.getpid())
        worker.first_spawn = not spawns
        pid = self._fork(worker.run)
        self.children[pid] = Child("worker", wid, pid)
        if respawn:
            log.log(f"Respawned uWSGI worker {wid} (new pid: {pid})")
        else:
            log.log(f"spawned uWSGI worker {wid} (pid: {pid}, cores: "
                    f"{cores(self.config)})")

    def spawn_mule(self, mule_id):
        from ugu.vassal import pymodule
        master = os.getpid()
        pid = self._fork(lambda: mules.run(
            self.shared.mules, mule_id, self.config, master, self.listeners,
            pymodule.enter_mule, pymodule.message_hook,
            self.shared.uwsgi_signals, self.shared.hooks))
        self.children[pid] = Child("mule", mule_id, pid)
        # A respawned mule is told as a new one, as uWSGI tells it.
        log.log(f"spawned uWSGI mule {mule_id} (pid: {pid})")

    def spawn_spooler(self, index):
        from ugu.vassal import pymodule, spooler
        master = os.getpid()
        pid = self._fork(lambda: spooler.run(
            self.shared.spoolers, index, self.config, master, self.listeners,
            pymodule.enter_spooler, pymodule.spooler_function,
            self.shared.uwsgi_signals))
        # Known at once to the workers, which wake it and list it.
        self.shared.spoolers.set_state(index, pid=pid)
        self.children[pid] = Child("spooler", index, pid)
        log.log(f"spawned the uWSGI spooler on dir "
                f"{self.shared.spoolers.dirs[index]} with pid {pid}")

    def spawn_router(self, index, respawn=False):
        watchdog = self._watchdog("http")
        pid = fork_router(self.config, self.listeners, index,
                          parent=os.getpid(), logmaster=self.logmaster,
                          master=True, mesh=self.meshes.get("router"),
                          watchdog=watchdog)
        self.children[pid] = Child("router", index, pid)
        self.children[pid].watchdog = watchdog
        verb = "respawned" if respawn else "spawned"
        log.log(f"{verb} uWSGI http {index} (pid: {pid})")

    def _watchdog(self, prefix):
        """A router process's harakiri deadline (PREFIX-harakiri), or
        None where it has none."""
        seconds = self.config[f"{prefix}-harakiri"]
        if seconds <= 0:
            return None
        from ugu.router.watchdog import Watchdog
        return Watchdog(seconds)

    def spawn_corerouter(self, router, index, respawn=False):
        watchdog = self._watchdog(router.NAME)
        pid = fork_corerouter(self.config, self.listeners, router, index,
                              parent=os.getpid(), logmaster=self.logmaster,
                              master=True,
                              mesh=self.meshes.get(router.NAME),
                              watchdog=watchdog)
        self.children[pid] = Child(router.NAME, index, pid)
        self.children[pid].watchdog = watchdog
        verb = "respawned" if respawn else "spawned"
        log.log(f"{verb} {router.GATEWAY} {index} (pid: {pid})")

    def spawn_emperor(self):
        parent = os.getpid()
        closing = [l.sock for l in self.listeners]
        if self.shared.link:
            closing.append(self.shared.link.sock)
        self.emperor.forked(self._fork(
            lambda: self.emperor.reign(parent, closing)))

    def spawn_zergpool(self, respawn=False):
        parent = os.getpid()

        def run():
            proc.reset_signals()
            if proc.die_with_parent(parent):
                _as_gateway(self.config, parent)
                zerg.serve_pools(self.config, self.pools)
            os._exit(0)
        pid = self._fork(run, pools=True)
        self.children[pid] = Child("zergpool", 1, pid)
        verb = "respawned" if respawn else "spawned"
        log.log(f"{verb} uWSGI zergpool 1 (pid: {pid})")

    def workers(self):
        return [c for c in self.children.values() if c.kind == "worker"]

    def active_workers(self):
        """The wids of the workers alive and not being stopped or
        cheaped (uWSGI's active-workers signal target)."""
        return {c.number for c in self.workers() if not c.stopping}

    def route_signal(self, signum):
        self.shared.uwsgi_signals.route(signum, self.active_workers)

    def worker(self, wid):
        found = [c for c in self.workers() if c.number == wid]
        return found[0] if found else None

    def recycle(self, child, signum=signal.SIGHUP, quiet=False):
        """Stop a worker to respawn it at once (a planned exit); a quiet
        one logs nothing of it, the worker told so on the scoreboard."""
        child.recycling, child.quiet = True, quiet
        if quiet:
            self.shared.scoreboard.set_retiring(child.number, LEAVING)
        self._kill(child.pid, signum)

    def reload_workers(self, brutal=False):
        for child in self.workers():
            if child.stopping or child.recycling:
                continue
            if brutal:
                # As uWSGI: said, and the worker's end then reported as
                # any death (DAMN) before its respawn.
                log.verbose(f"killing worker {child.number} (pid: "
                            f"{child.pid})")
                self._kill(child.pid, signal.SIGINT)
            else:
                self.recycle(child)

    def reload_mules(self):
        """touch-mules-reload: each mule is sent SIGHUP, and respawned
        at once, unsaid, when it ends; one alive past mule-reload-mercy
        is SIGKILLed, as uWSGI's master curses them."""
        for child in self.children.values():
            if child.kind == "mule" and not child.stopping and \
                    child.no_mercy_at is None:
                child.no_mercy_at = (time.monotonic()
                                     + self.config["mule-reload-mercy"])
                self._kill(child.pid, signal.SIGHUP)

    def reload_spoolers(self):
        """touch-spoolers-reload: as uWSGI's master, SIGHUP, which the
        spoolers ignore, then SIGKILL at its next check (a spooler's
        mercy is 0 there), and the respawn of any spooler that died;
        the task it ran stays in its folder and runs again."""
        for child in self.children.values():
            if child.kind == "spooler" and not child.stopping and \
                    child.no_mercy_at is None:
                child.no_mercy_at = time.monotonic()
                self._kill(child.pid, signal.SIGHUP)

    def _without_mercy(self):
        """The mules and spoolers asked to reload and still alive past
        their mercy: SIGKILLed, said as uWSGI says it (its spooler's
        number is the spooler's own here, not uWSGI's count of mules
        plus one), from 1."""
        now = time.monotonic()
        for child in self.children.values():
            if child.no_mercy_at is not None and not child.stopping \
                    and child.no_mercy_at < now:
                number = child.number + (child.kind == "spooler")
                log.verbose(f"{child.kind} {number} (pid: {child.pid}) "
                            f"is taking too much time to die...NO MERCY "
                            f"!!!")
                child.no_mercy_at = math.inf
                self._kill(child.pid, signal.SIGKILL)

    def touched_reload(self):
        self.begin_reload(graceful=True)

    def touched_chain(self):
        self.chain.start()

    def want_log_rotation(self):
        """At the next tick; as uWSGI, without a logto file, nothing."""
        if self.logmaster:
            self.logmaster.rotate_due = True

    def want_log_reopen(self):
        if self.logmaster:
            self.logmaster.reopen_due = True

    def cheaper_more(self):
        """The master fifo's `+`: one more worker at the cheaper's next
        check (nothing without a cheaper, as in uWSGI)."""
        if self.cheaper:
            self.cheaper.delta += 1

    def cheaper_fewer(self):
        if self.cheaper:
            self.cheaper.delta -= 1

    def toggle_subscriptions(self):
        """The master fifo's `S`: block the subscription packets, or let
        them go again."""
        if self.subscriber:
            self.subscriber.toggle_block()

    def print_stats(self):
        report.print_stats(self.config, self.shared.scoreboard,
                           self.shared.apps)

    # -- events -----------------------------------------------------------
    def handle_signal(self, signum):
        bound = self.unix_signals.get(signum)
        if bound:
            bound()
            return
        if signum == signal.SIGCHLD:
            return
        if signum == signal.SIGUSR1:
            self.print_stats()
        elif signum == signal.SIGHUP:
            self.begin_reload(graceful=True)
        elif signum == self.brutal_reload_signal:
            self.begin_reload(graceful=False)
        else:
            self.begin_shutdown()

    def unix_signal(self, signum, function):
        """A unix_signal hook: `signum` runs the method `function` from
        now on, in place of the meaning the master gives it."""
        self.signals.add(signum)
        self.unix_signals[signum] = getattr(self, function)

    # uWSGI's master functions, by their names in uWSGI (what a
    # unix_signal hook names; see hooks.MASTER_FUNCTIONS).
    def gracefully_kill_them_all(self):
        self.begin_shutdown(graceful=True,
                            reason="graceful shutdown triggered...")

    def kill_them_all(self):
        self.begin_shutdown()

    def grace_them_all(self):
        self.begin_reload(graceful=True)

    def reap_them_all(self):
        self.begin_reload(graceful=False)

    @property
    def brutal_reload_signal(self):
        # die-on-term swaps the meanings of TERM and QUIT, as in uWSGI.
        return signal.SIGQUIT if self.config["die-on-term"] else \
            signal.SIGTERM

    def handle_emperor_message(self):
        message = self.shared.link.receive()
        hooks = self.shared.hooks
        if message is None:
            log.log("lost connection with my emperor !!!")
            hooks.run("emperor-lost")
            self.begin_shutdown()
        elif message == ToVassal.RELOAD:
            log.verbose(f"received message {message} from emperor")
            hooks.run("emperor-reload")
            self.begin_reload(graceful=True)
        elif message in (ToVassal.STOP, ToVassal.GRACEFUL_STOP):
            log.verbose(f"received message {message} from emperor")
            hooks.run("emperor-stop")
            self.begin_shutdown(graceful=message == ToVassal.GRACEFUL_STOP)
        else:
            log.log(f"ignoring unknown message {message} from the emperor")

    def handle_fs_event(self):
        found = self.fsmon.event()
        if found and found[2] is not None:
            self.route_signal(found[2])
        elif found:
            self.begin_reload(graceful=found[1])

    def reap(self):
        for pid, status in proc.reap():
            if self.emperor and self.emperor.died(pid):
                self.respawn_at[("emperor", 1)] = self.emperor.respawn_at()
                continue
            child = self.children.pop(pid, None)
            if child is not None and os.WIFSIGNALED(status) and \
                    os.WTERMSIG(status) == signal.SIGSEGV:
                self._segfault(pid)
            if child is None:
                if not (self.touch.died(pid, status) or
                        self.crons.died(pid, status) or
                        self._alarm_died(pid, status)):
                    self._daemon_died(pid)
                continue
            if self.shared.caches:
                # A worker or mule killed holding a cache's lock.
                self.shared.caches.died(pid)
            if self.shared.metrics:
                self.shared.metrics.died(pid)
            if child.kind in _GATEWAYS:
                self._router_died(child)
            elif child.kind == "mule":
                self._mule_died(child)
            elif child.kind == "spooler":
                self._spooler_died(child)
            else:
                self._worker_died(child, status)
        self.cheap_mode_reached()

    def _segfault(self, pid):
        """uWSGI's dying process says so, and raises alarm-segfault's
        alarms: here its master does, with that line."""
        line = f"!!! uWSGI process {pid} got Segmentation Fault !!!"
        log.log(line)
        if self.shared.alarms:
            self.shared.alarms.raise_segfault(f"{line}\n".encode())

    def _alarm_died(self, pid, status):
        return self.shared.alarms and self.shared.alarms.died(pid, status)

    def _daemon_died(self, pid):
        control = self.daemons.died(pid)
        if control:
            # A control daemon's end is the instance's, as in uWSGI.
            self.begin_shutdown(graceful=True,
                                reason="graceful shutdown triggered...")
            log.log(f'daemon "{control.command}" (pid: {pid}) annihilated')

    def _worker_died(self, child, status):
        from ugu.vassal import pymodule
        pymodule.worker_died(child.pid)
        if self.config["pyrun"] and not child.stopping:
            self._command_done(child)
            return
        if child.stopping:
            if self.cheaper and self.cheaper.is_cheaped(child.number):
                log.log(f"worker {child.number} killed successfully "
                        f"(pid: {child.pid})")
                log.log(f"uWSGI worker {child.number} cheaped.")
            return
        leaving = self.shared.scoreboard.retiring(child.number)
        if child.recycling or leaving:
            # Stopped by the master, or retired: said, as uWSGI says it;
            # left on a signal of someone else's: nothing to add.
            if child.recycling and not child.quiet or leaving == RETIRING:
                log.log(f"worker {child.number} killed successfully "
                        f"(pid: {child.pid})")
            self._respawn(child)
            return
        code, killer = proc.describe_exit(status)
        if self._shell_ended(child, code):
            self._respawn(child)
            return
        if code == apps.EXIT_NO_APP:
            self._app_failed(child)
            return
        if code == exceptions.EXIT_EXCEPTION:
            log.log(f"... monitored exception detected, respawning worker "
                    f"{child.number} (pid: {child.pid})...")
            self._respawn(child)
            return
        how = f", killed by signal {killer}" if killer else ""
        log.log(f"DAMN ! worker {child.number} (pid: {child.pid}) died"
                f"{how} :( trying respawn ...")
        self._respawn(child)

    def _shell_ended(self, child, code):
        """A pyshell's end, as uWSGI's master reads it: respawned into
        the shell without a word, or (one-shot) restored to serve."""
        if self.config["pyshell"] is None and \
                self.config["pyshell-oneshot"] is None:
            return False
        from ugu.vassal import pyshell
        if code == pyshell.EXIT_DE_HIJACKED:
            log.log(f"...restoring worker {child.number} (pid: "
                    f"{child.pid})...")
            self.shared.shell_restored = True
            return True
        return code == pyshell.EXIT_QUIET

    def _command_done(self, child):
        """pyrun's script has ended, and the instance with it, as
        uWSGI's: the worker buried, the other children stopped, then
        goodbye (exit 0, whatever the script's code)."""
        log.log(f"worker {child.number} buried after "
                f"{int(time.monotonic() - child.born)} seconds")
        self._kill_spoolers()
        self.daemons.stop(reloading=False)
        self._stop_children(signal.SIGINT)
        self.pending_exit = "shutdown"

    def _app_failed(self, child):
        """A lazy worker's app did not load: with need-app the instance
        gives up, else the worker tries again, in uWSGI's words."""
        oops = (f"OOPS ! failed loading app in worker {child.number} "
                f"(pid {child.pid})")
        if self.config["need-app"]:
            log.log(oops)
            log.verbose("need-app requested, destroying the instance...")
            self.exit_code = apps.EXIT_NO_APP
            self.begin_shutdown()
            return
        log.log(f"{oops} :( trying again...")
        self._respawn(child)

    def _respawn(self, child):
        """Respawn the worker now, or after forkbomb-delay seconds once
        more respawns than `processes` came each within RESPAWN_BURST_GAP
        of the one before, as uWSGI counts them."""
        now = time.monotonic()
        if now - self._last_respawn <= RESPAWN_BURST_GAP:
            self._respawn_burst += 1
        else:
            self._respawn_burst = 0
        self._last_respawn = now
        delay = 0.0
        wait = self.config["forkbomb-delay"]
        if self._respawn_burst > self.config["processes"]:
            self._respawn_burst = 0
            if wait > 0:
                log.log(f"worker respawning too fast !!! i have to sleep a "
                        f"bit ({wait} seconds)...")
                delay = float(wait)
        self.respawn_at[("worker", child.number)] = now + delay

    def _mule_died(self, child):
        """Respawned, as uWSGI's master respawns a mule that ends: at
        once, or a second after its birth (a script that ends at once
        must not fork without rest)."""
        if child.stopping:
            return
        if child.no_mercy_at is not None:
            # Reloaded (touch-mules-reload): back at once, unsaid.
            self.respawn_at[("mule", child.number)] = time.monotonic()
            return
        log.log(f"OOOPS mule {child.number} (pid: {child.pid}) "
                f"crippled...trying respawn...")
        self.respawn_at[("mule", child.number)] = max(
            time.monotonic(), child.born + MULE_RESPAWN_GAP)

    def _spooler_died(self, child):
        """Respawned as a mule is (uWSGI's at once: see _mule_died)."""
        if child.stopping:
            return
        board = self.shared.spoolers
        board.set_state(child.number, pid=0, running=0, deadline=0,
                        respawns=board.state(child.number).respawns + 1)
        log.log("OOOPS the spooler is no more...trying respawn...")
        self.respawn_at[("spooler", child.number)] = max(
            time.monotonic(), child.born + MULE_RESPAWN_GAP)

    def _router_died(self, child):
        if child.watchdog is not None:
            child.watchdog.close()
        if not child.stopping:
            self.respawn_at[(child.kind, child.number)] = time.monotonic()

    def respawn_due(self):
        now = time.monotonic()
        for key, when in list(self.respawn_at.items()):
            if when <= now:
                del self.respawn_at[key]
                kind, number = key
                if kind == "worker":
                    self.spawn_worker(number, respawn=True)
                elif kind == "mule":
                    self.spawn_mule(number)
                elif kind == "spooler":
                    self.spawn_spooler(number)
                elif kind in _BY_NAME:
                    self.spawn_corerouter(_BY_NAME[kind], number,
                                          respawn=True)
                elif kind == "zergpool":
                    self.spawn_zergpool(respawn=True)
                elif kind == "emperor":
                    self.spawn_emperor()
                else:
                    self.spawn_router(number, respawn=True)

    def tick(self):
        self.heartbeat()
        self.check_overload()
        if self.subscriber:
            self.subscriber.tick()
        if self.config["spooler-harakiri"] and self.shared.spoolers:
            self.check_spoolers()
        if self.idle and not self.cheap:
            self.check_idle()
        self.check_workers()
        if self.config["mule-harakiri"]:
            self.check_mules()
        if self.gateway_harakiri:
            self.check_gateways()
        if self.config["touch-mules-reload"] or \
                self.config["touch-spoolers-reload"]:
            self._without_mercy()
        self.daemons.tick()
        self.crons.tick(int(time.time()))
        if self.shared.caches:
            self.shared.caches.tick()
        if self.shared.queue:
            self.shared.queue.tick()
        self.check_listen_queues()
        if self.shared.metrics:
            self.shared.metrics.collect(self, int(time.time()),
                                        self.shared.alarms)
        if self.shared.carbon:
            self.shared.carbon.tick(self)
        if self.shared.stats_pushers:
            self.shared.stats_pushers.tick(self, int(time.time()))
        for action in self.touch.touched(chaining=self.chain.running):
            getattr(self, action)()
        self.shared.hooks.run_touched()
        if self.logmaster:
            self.logmaster.tick()
        self.chain.tick()
        if self.going_cheap is not None:
            self.hasten_cheap_mode()
        if not self.cheaper or self.cheap:
            return
        change = self.cheaper.decide(self.workers(),
                                     self.shared.scoreboard, self.respawn_at,
                                     self.backlog, recycle.resident)
        for wid in change.spawn:
            self.spawn_worker(wid)
        for child in change.stop:
            # Quietly: uWSGI's cheaped worker says nothing of its end.
            child.stopping = True
            self.shared.scoreboard.set_retiring(child.number, LEAVING)
            self._kill(child.pid, signal.SIGHUP)

    # -- cheap mode ---------------------------------------------------
    def check_idle(self):
        busy = any(self.shared.scoreboard.busy(w.number)
                   for w in self.workers() if not w.stopping)
        if not self.idle.expired(self.shared.scoreboard.total(), busy):
            return
        self.cheap = True
        if self.config["die-on-idle"]:
            if self.shared.link:
                self.shared.link.send(ToEmperor.STOP_ME)
            else:
                self.begin_shutdown()
            return
        self.respawn_at = {key: when for key, when in self.respawn_at.items()
                           if key[0] != "worker"}
        for child in self.workers():
            child.stopping = True
            self._kill(child.pid, signal.SIGINT)
        self.going_cheap = time.monotonic() + idle.IDLE_MERCY
        self.cheap_mode_reached()

    def hasten_cheap_mode(self):
        """SIGKILL for the workers still there IDLE_MERCY seconds after
        they were told to go."""
        if time.monotonic() >= self.going_cheap:
            for child in self.workers():
                self._kill(child.pid, signal.SIGKILL)

    def cheap_mode_reached(self):
        """Said once the last worker has gone, as uWSGI says it."""
        if self.going_cheap is not None and not self.workers():
            self.going_cheap = None
            log.log(idle.CHEAP_LINE)

    def leave_cheap_mode(self):
        """A connection waits: the workers come back (the cheaper's
        floor of them with the cheaper on)."""
        self.cheap = False
        needed = self.config["cheaper"] or self.config["processes"]
        for wid in range(1, needed + 1):
            self.spawn_worker(wid, respawn=wid in self.spawns)

    def check_gateways(self):
        """http-harakiri and the corerouters', once a second: SIGKILL for
        a router process whose loop is stuck past its deadline (the
        master then respawns it)."""
        now = time.time()
        for child in list(self.children.values()):
            if child.watchdog is not None and child.watchdog.overdue(now):
                log.log(f"*** HARAKIRI ON GATEWAY {_GATEWAYS[child.kind]} "
                        f"{child.number} (pid: {child.pid}) ***")
                self._kill(child.pid, signal.SIGKILL)

    def check_mules(self):
        """mule-harakiri, once a second: SIGKILL for a mule stuck in a
        signal handler (the master then respawns it)."""
        uwsgi_signals = self.shared.uwsgi_signals
        for mule_id, signum in uwsgi_signals.overdue_mules(time.time()):
            for child in self.children.values():
                if child.kind == "mule" and child.number == mule_id:
                    log.log(f"*** HARAKIRI ON MULE {mule_id} HANDLING SIGNAL "
                            f"{signum} (pid: {child.pid}) ***")
                    self._kill(child.pid, signal.SIGKILL)

    def check_workers(self):
        """harakiri, the evil memory checks and max-worker-lifetime, once
        a second (a user harakiri, which an app sets, too)."""
        look = None
        if self.config["py-tracebacker"]:
            from ugu.vassal import tracebacker
            look = tracebacker.harakiri_look(self.config)
        for child, signum in harakiri.check(
                self.workers(), self.shared.scoreboard,
                self.config["harakiri-verbose"], self.graceful, look):
            self._kill(child.pid, signum)
            if child.harakiri_tries == 1:
                # As uWSGI counts them: once a worker, graceful or not.
                self.harakiri_kills[child.number] = \
                    self.harakiri_kills.get(child.number, 0) + 1
        if self.config["evil-reload-on-as"] or \
                self.config["evil-reload-on-rss"]:
            self.check_evil_memory()
        for child in self.workers():
            if recycle.lifetime_over(child, self.config) and \
                    not child.recycling:
                seconds = int(time.monotonic() - child.born)
                log.log(f"worker {child.number} lifetime reached, it was "
                        f"running for {seconds} second(s)")
                self.recycle(child, quiet=True)

    def check_spoolers(self):
        """spooler-harakiri: SIGKILL to a spooler whose task runs past
        its deadline; its death is then told and it is respawned, as
        uWSGI's."""
        board = self.shared.spoolers
        for index in range(len(board)):
            found = board.state(index)
            if found.pid > 0 and 0 < found.deadline < time.time():
                log.log(f"*** HARAKIRI ON THE SPOOLER (pid: {found.pid}) "
                        f"***")
                board.set_state(index, deadline=0)
                self._kill(found.pid, signal.SIGKILL)

    def check_evil_memory(self):
        """SIGKILL to a worker past an evil limit: its death is then told
        as any other (DAMN) and it is respawned, as in uWSGI."""
        for child in self.workers():
            lines = [] if child.stopping else recycle.evil(child,
                                                           self.config)
            for line in lines:
                log.log(line)
            if lines:
                self._kill(child.pid, signal.SIGKILL)

    def check_listen_queues(self):
        """uWSGI's alarm line, once a second while a worker socket's
        listen queue is full: the workers do not keep up.  The longest
        queue is kept for the cheaper's backlog algorithm."""
        self.backlog = 0
        queues = self.shared.metrics.queues if self.shared.metrics else {}
        for index, listener in enumerate(_worker_sockets(self.listeners)):
            found = sockets.listen_queue(listener)
            if found:
                self.backlog = max(self.backlog, found[0])
                queues[index] = found[0]
            if found and 0 < found[0] >= found[1]:
                waiting, size = found
                full = (f'listen queue of socket "{listener.name}" (fd: '
                        f'{listener.sock.fileno()}) full !!! '
                        f'({waiting}/{size})')
                log.verbose(f"*** uWSGI {full} ***")
                if self.shared.alarms:
                    self.shared.alarms.raise_backlog(full.encode())
        least = self.config["vassal-sos-backlog"]
        if least > 0 and self.shared.link and self.backlog >= least:
            log.verbose(f"asking Emperor for reinforcements (backlog: "
                        f"{self.backlog})...")
            self.shared.link.send(ToEmperor.SOS)

    def check_overload(self):
        """vassal-sos = N: while every worker is busy, call the Emperor
        for reinforcements, at most once in N seconds; without an
        Emperor, say there is none, as uWSGI."""
        busy = sum(1 for c in self.workers() if not c.stopping
                   and self.shared.scoreboard.busy(c.number))
        if busy < self.config["processes"]:
            return
        self.overloaded += 1
        every, now = self.config["vassal-sos"], int(time.time())
        if not every or now - self.last_sos <= every:
            return
        log.verbose(f"asking Emperor for reinforcements (overload: "
                    f"{self.overloaded})...")
        self.sos()
        self.last_sos = now

    def sos(self):
        """Call the Emperor for reinforcements (also the fifo's B)."""
        if self.shared.link:
            self.shared.link.send(ToEmperor.SOS)
        else:
            log.log("[broodlord] instance not governed by an Emperor !!!")

    def heartbeat(self):
        """`heartbeat = N`: tell the emperor every N s that we are alive."""
        every = self.config["heartbeat"]
        if self.shared.link and every and time.monotonic() >= self.next_beat:
            self.shared.link.send(ToEmperor.HEARTBEAT)
            self.next_beat = time.monotonic() + every

    # -- endings ----------------------------------------------------------
    def begin_shutdown(self, graceful=False, reason=None):
        # As uWSGI: before anything is said or stopped.
        if self.subscriber:
            self.subscriber.unsubscribe_all()
        if reason:
            log.verbose(reason)
        elif graceful:
            log.log("...gracefully killing workers...")
        else:
            log.log("SIGINT/SIGTERM received...killing workers...")
        self._kill_spoolers()
        self.daemons.stop(reloading=False)
        self._stop_children(signal.SIGHUP if graceful else signal.SIGINT)
        self.pending_exit = "shutdown"
        self.bury_quietly = graceful

    def begin_reload(self, graceful):
        if graceful and self.config["lazy"]:
            # uWSGI's lazy mode: the master stays, its workers are told.
            self.reload_workers()
            return
        # As uWSGI: the daemons are stopped, the routers and the Emperor
        # buried, before the workers are told.
        self.daemons.stop(reloading=True)
        self._kill_spoolers()
        self._bury_gateways()
        if self.emperor:
            self.emperor.bury()
        how = "gracefully" if graceful else "brutally"
        log.log(f"...{how} killing workers...")
        if self.subscriber and (not graceful
                                or self.subscriber.on_graceful_reload):
            self.subscriber.unsubscribe_all()
        self._stop_children(signal.SIGHUP if graceful else signal.SIGTERM)
        self.pending_exit = "reload"

    def _kill_spoolers(self):
        """uWSGI's spoolers end at once, in uWSGI's words: SIGKILL (a
        task cut short stays in its folder, and runs again)."""
        self.respawn_at = {key: when for key, when in self.respawn_at.items()
                           if key[0] != "spooler"}
        for child in self.children.values():
            if child.kind == "spooler" and not child.stopping:
                child.stopping = True
                self._kill(child.pid, signal.SIGKILL)
                log.log(f"killing the spooler with pid {child.pid}")

    def _bury_gateways(self):
        """Kill each router and wait for it, said as it is buried."""
        for pid, child in list(self.children.items()):
            if child.kind in _GATEWAYS:
                self._kill(pid, signal.SIGKILL)
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                self._buried(self.children.pop(pid), None)

    def _stop_children(self, worker_signal):
        self.respawn_at.clear()
        for child in self.children.values():
            if child.kind == "spooler":
                continue
            child.stopping = True
            # Mules are told as the workers are, as in uWSGI; routers
            # hold no request state worth waiting for.
            signum = signal.SIGKILL if child.kind in _GATEWAYS else \
                worker_signal
            self._kill(child.pid, signum)
        if self.emperor:
            # Then waited for, as uWSGI's master does before any other.
            self.emperor.bury()

    def _kill(self, pid, signum):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def finish(self):
        if self.emperor:
            self.emperor.bury()
        self._bury_children()
        if self.subscriber:
            self.subscriber.close()
        if self.shared.carbon:
            self.shared.carbon.cleanup(self)
        if self.logmaster:
            self.logmaster.catch_up()
        if self.shared.caches:
            self.shared.caches.close()
        if self.shared.queue:
            self.shared.queue.close()
        if self.fifo:
            self.fifo.close()
        if self.fsmon:
            self.fsmon.close()
        if self.stats:
            self.stats.close()
        if self.pending_exit != "reload":
            log.log("goodbye to uWSGI.")
        elif self.config["exit-on-reload"]:
            # Where uWSGI would re-exec: it exits 0 instead, unsaid but
            # for this line, then ends as at a shutdown.
            log.log("uWSGI: GAME OVER (insert coin)")
        else:
            self._reexec()
        self.shared.hooks.run("as-user-atexit")
        if self.config["vacuum"]:
            hygiene.vacuum(self.config, self.listeners)
            hygiene.vacuum_stats(self.config)
            if self.config["py-tracebacker"]:
                from ugu.vassal import tracebacker
                tracebacker.vacuum(self.config)
        hygiene.restore_terminal_modes()
        # The app's atexit functions ran in the workers; uWSGI's master
        # does not run them (the master loaded the app, but it serves no
        # request).
        atexit._clear()
        return self.exit_code

    def _bury_children(self):
        started = time.monotonic()
        # Only worker-reload-mercy: uWSGI 2.0's reload-mercy is for the
        # Emperor and leaves its workers' graceful ends alone.  The mules
        # have their own.
        deadlines = {
            "worker": started + self.config["worker-reload-mercy"],
            "mule": started + self.config["mule-reload-mercy"]}
        while self.children or self.daemons.alive():
            for kind, deadline in deadlines.items():
                if deadline <= time.monotonic():
                    self._no_mercy(kind)
                    # SIGKILL cannot be refused: wait for the deaths, once.
                    deadlines[kind] = math.inf
            remaining = min(deadlines.values()) - time.monotonic()
            ready = self.signals.wait(
                max(0.0, min(remaining, TICK, self.daemons.wait_time())),
                self._logpipe())[1]
            # A child's last lines before its death is told.
            if ready:
                self.logpipe.drain()
            for pid, _ in proc.reap():
                if not self.daemons.reaped(pid):
                    self._buried(self.children.pop(pid, None), started)
            self.daemons.check_stop()

    def _logpipe(self):
        return [self.logpipe] if self.logpipe else []

    def _buried(self, child, started):
        if child is None:
            return
        if child.kind in _GATEWAYS:
            log.log(f'gateway "{_GATEWAYS[child.kind]} {child.number}" has '
                    f"been buried (pid: {child.pid})")
        elif child.kind == "mule":
            log.log(f"mule {child.number} (pid: {child.pid}) annihilated")
        elif child.kind == "spooler":
            log.log(f"spooler (pid: {child.pid}) annihilated")
        elif not self.bury_quietly:
            seconds = int(time.monotonic() - started)
            log.log(f"worker {child.number} buried after {seconds} seconds")

    def _no_mercy(self, kind):
        """SIGKILL for the children past their mercy: the mules past
        mule-reload-mercy, the others past worker-reload-mercy."""
        for child in self.children.values():
            if (child.kind == "mule") != (kind == "mule"):
                continue
            log.verbose(f"{kind} {child.number} (pid: {child.pid}) is "
                        f"taking too much time to die...NO MERCY !!!")
            self._kill(child.pid, signal.SIGKILL)

    def _reexec(self):
        self.shared.hooks.run("as-user-atexit")
        log.log("binary reloading uWSGI...")
        # force-cwd: where uWSGI starts again, whatever the folder.
        proc.return_home(self.config["force-cwd"] or self.start_cwd)
        sockets.log_kept(self.listeners)
        sockets.export_for_reload(
            self.listeners,
            [pair for pool in self.pools for pair in pool.exported()]
            + sockets.shared_for_reload())
        if self.shared.link:
            os.set_inheritable(self.shared.link.fileno(), True)
        os.environ[RELOADS_ENV] = str(int(os.environ.get(RELOADS_ENV, "0"))
                                      + 1)
        self.signals.close()
        log.log(f"running {proc.EXECUTABLE}")
        sys.stdout.flush()
        sys.stderr.flush()
        log.flush_loggers()
        proc.exec_image(proc.EXECUTABLE,
                        [*proc.python_m_ugu(), *proc.ARGV[1:]], os.environ)
