"""The Emperor: one loop that keeps a process running per vassal file.

Each pass scans the monitors and acts on what changed (spawn, reload,
stop), then waits in one select for a signal, a message from a vassal, or
the next moment something is due: the next scan (`emperor-freq`), the
deadline of a vassal told to die, or of one whose heartbeats are
overdue.  A file watcher (watch.py) and the stats server
wake it too.  Signal handlers only queue the signal; SIGCHLD just wakes
the loop, which reaps on every pass.

A dead vassal's record is dropped; the next pass finds its file again and
spawns it anew, unless the blacklist (throttle.py) holds it back (then a
later scan does, as in uWSGI: a failing vassal comes back every
emperor-freq seconds at best), or it exited with EXIT_EXILE, which parks
it until its file changes.
"""

import os
import signal
import time

from ugu import log, proc
from ugu import stats as stats_server
from ugu.emperor import master, monitor, ondemand, spawn, stats
from ugu.emperor.throttle import Blacklist, Verdict
from ugu.emperor.vassal import State, Vassal
from ugu.emperor.watch import Watcher
from ugu.link import ToEmperor, ToVassal
from ugu.vassal import hygiene, privileges, waits
from ugu.options import registry
from ugu.options.errors import ConfigError

BANNER = "*** starting uWSGI Emperor ***"
# A vassal exiting with this asks not to be respawned (uWSGI's "exile").
EXIT_EXILE = 26
HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP,
           signal.SIGUSR1, signal.SIGURG, signal.SIGCHLD)
# uWSGI 2.0's Emperor ends on all three, unlike its master.
RAGNAROK_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
NEWS = {
    ToEmperor.SPAWNED: "has been spawned",
    ToEmperor.ACCEPTING: "is ready to accept requests",
    ToEmperor.LOYAL: "is now loyal",
}
# The hooks an Emperor runs (ugu/vassal/hooks.py runs them).
HOOK_OPTIONS = ("hook-emperor-start", "hook-as-emperor", "exec-as-emperor",
                "hook-as-vassal", "exec-as-vassal")
# What uWSGI's master, or the instance, runs beside its Emperor, and
# ugu's Emperor does not.
NOT_RUN = ("touch-reload", "touch-chain-reload", "touch-workers-reload",
           "touch-mules-reload", "touch-spoolers-reload", "touch-exec",
           "touch-signal", "fs-reload", "fs-brutal-reload", "fs-signal",
           "master-fifo", "reload-on-fd", "brutal-reload-on-fd",
           "attach-daemon", "attach-daemon2", "attach-control-daemon",
           "smart-attach-daemon", "smart-attach-daemon2", "cron", "cron2",
           "unique-cron", "spooler", "spooler-external", "mule", "mules",
           "farm", "enable-metrics", "metric", "metrics-dir", "stats-push",
           "carbon", "udp", "subscribe-to", "subscribe2", "zerg-server",
           "cache", "cache2", "queue", "sharedarea", "add-cache-item",
           "load-file-in-cache", "load-file-in-cache-gzip", "shared-socket",
           "undeferred-shared-socket", "unshare", "unshare2", "chroot",
           "pivot-root")
# Seconds a vassal told to stop has before SIGKILL, where reload-mercy is
# 0, as uWSGI's Emperor reads it (its master gives the Emperor 3 + 2).
VASSALS_MERCY = 30
# The status of a start that waited in vain (wait-for-*), as uWSGI's.
EXIT_FAILED = 1
VERDICTS = {
    Verdict.BAD_BEHAVING: "[emperor] unloyal bad behaving vassal found: "
                          "{} throttling it...",
    Verdict.MAX_THROTTLE: "[emperor] maximum throttle level for vassal {} "
                          "reached !!!",
}


def run(config):
    """Reign over the `emperor` patterns; with `master`, from a child of a
    master that keeps an Emperor alive.  Returns the exit code."""
    try:
        return _run(config)
    except waits.WaitFailed:
        return EXIT_FAILED


def _run(config):
    _refuse_what_it_lacks(config)
    reloaded = master.reloads() > 0
    home = _start(config, reloaded)
    monitors = [monitor.monitor_for(spec, config["emperor-nofollow"], home)
                for spec in config["emperor"]]
    if any(isinstance(m, monitor.GlobMonitor) for m in monitors):
        # As uWSGI's glob monitor does at its start.
        os.chdir(home)
    templates = spawn.Templates.from_config(config)
    if config["master"]:
        return master.run(config, home, lambda: Emperor(
            config, monitors, templates, master_pid=os.getppid()).run())
    if config["emperor-procname"]:
        # uWSGI names a lone Emperor so even without auto-procname.
        proc.name_process(config, config["emperor-procname"])
    status = Emperor(config, monitors, templates).run()
    if config["vacuum"]:
        hygiene.vacuum(config, [])
    return status


def _refuse_what_it_lacks(config):
    for name in NOT_RUN:
        if config[name]:
            raise ConfigError("ugu's Emperor does not run it yet, uWSGI's "
                              "master beside its Emperor does: set it in a "
                              "vassal's file, or give this instance a "
                              "socket to serve, beside which the Emperor "
                              "runs", option=name)
    for name in ("log-maxsize", "touch-logrotate", "touch-logreopen"):
        if config[name]:
            raise ConfigError("ugu rotates and reopens a vassal's logto "
                              "file, not the Emperor's yet: set it in the "
                              "vassals, or let logrotate copytruncate the "
                              "Emperor's file", option=name)
    for name in ("log-master", "log-drain", "log-filter", "log-encoder",
                 "log-req-encoder", "threaded-logger", "log-route",
                 "log-req-route"):
        if config[name]:
            raise ConfigError("ugu's log master runs in vassals, not in "
                              "the Emperor yet: set it in the vassals' "
                              "files", option=name)
    for name in ("alarm", "log-alarm", "not-log-alarm"):
        if config[name]:
            raise ConfigError("ugu's alarms run in vassals, not in the "
                              "Emperor yet: set them in the vassals' files",
                              option=name)
    for opt in registry.OPTIONS:
        if (opt.name.startswith(("exec-", "hook-"))
                or opt.name in ("import", "shared-import")) and \
                opt.name not in HOOK_OPTIONS and config[opt.name]:
            raise ConfigError("ugu's Emperor runs only its own hooks ("
                              f"{', '.join(HOOK_OPTIONS)}) and imports "
                              "nothing, its vassals do: set it in their "
                              "files (or with vassal-set)", option=opt.name)
    if config["daemonize2"]:
        # uWSGI's Emperor starts before daemonize2 detaches the master,
        # which leaves the Emperor behind.
        raise ConfigError("the Emperor has no app to load first: use "
                          "daemonize", option="daemonize2")


def _start(config, reloaded):
    """What an instance does at its start, in uWSGI's order, up to the
    Emperor's; returns the folder its glob patterns match from."""
    proc.start_log(config, reloaded=reloaded)
    # The vassals inherit them, as uWSGI's.
    proc.apply_env(config)
    if config["envdir"]:
        privileges.envdirs(config)
    if config["never-swap"]:
        proc.lock_memory()
    if config["flock2"] or config["flock-wait2"]:
        privileges.lock_after_log(config)
    # At a reload a logger's file that cannot be opened (its folder
    # gone) is waited for, as uWSGI's opens it at its first line: the
    # Emperor's lines try it again, and the vassals spawned after take it.
    log.use_loggers(config, reloaded)
    if log.stdio_waiting():
        log.write_through(log.retrying(None))
    log.starting(config["pcre-jit"])
    if config["pidfile"] and not reloaded:
        hygiene.write_pidfile(config["pidfile"])
    if config["file-write"]:
        privileges.file_write(config)
    if os.getuid() == 0:
        waits.as_root(config)
    # As uWSGI's, the Emperor reigns once uid and gid are taken, and its
    # vassals run as that user too.
    hygiene.drop_privileges(config)
    waits.sockets(config)
    if config["logto2"] and log.log_file_taken(config):
        log.logto(config, "logto2")
    # uWSGI's glob monitors match from the folder it started in (or
    # force-cwd), whatever chdir says; chdir moves the rest.
    home = config["force-cwd"] or os.getcwd()
    if config["force-cwd"] and not os.path.isdir(home):
        raise ConfigError(f"{home} is not a folder: the Emperor's glob "
                          "patterns match from there", option="force-cwd")
    if config["chdir"]:
        log.log(f"chdir() to {config['chdir']}")
        proc.change_dir(config["chdir"], "chdir")
    if config["pidfile2"] and not reloaded:
        hygiene.write_pidfile(config["pidfile2"], "pidfile2")
    if not config["master"]:
        log.log("*** WARNING: you are running uWSGI without its master "
                "process manager ***")
    if config["limit-nproc"]:
        privileges.limit_nproc(config)
    if config["prio"] is not None:
        privileges.set_priority(config)
    proc.limit_address_space(config)
    proc.set_max_fd(config)
    return home


class Emperor:
    def __init__(self, config, monitors, templates=spawn.Templates(),
                 clock=time.monotonic, master_pid=None):
        self.config = config
        # The master that keeps this Emperor (a pid), if any: a fatal
        # emperor-start hook asks it to end the instance.
        self.master_pid = master_pid
        self.hooks = None   # a vassal.hooks.Hooks, where one is set
        if any(config[name] for name in HOOK_OPTIONS):
            from ugu.vassal.hooks import Hooks
            self.hooks = Hooks(config)
        self.monitors = monitors
        self.templates = templates
        self.clock = clock
        # A zero frequency would make the loop spin.
        self.freq = max(1, config["emperor-freq"])
        self.tolerance = config["emperor-curse-tolerance"]
        self.mercy = config["reload-mercy"] or VASSALS_MERCY
        self.required_heartbeat = config["emperor-required-heartbeat"]
        self.tyrant = config["emperor-tyrant"]
        # uWSGI takes the owner from the stat the monitor made, a link's
        # own with emperor-nofollow, or from lstat with tyrant-nofollow.
        self.owner_of = os.lstat if config["emperor-nofollow"] or \
            config["emperor-tyrant-nofollow"] else os.stat
        self.stop_order = ToVassal.GRACEFUL_STOP if \
            config["emperor-graceful-shutdown"] else ToVassal.STOP
        self.stop_hook = config["vassals-stop-hook"]
        self.on_demand = ondemand.Finder.from_config(config)
        self.backlog = config["listen"]
        self.sleepers = {}     # name -> ondemand.Sleeper, waiting on it
        self.blacklist = None
        if not config["emperor-no-blacklist"]:
            self.blacklist = Blacklist(config["emperor-throttle"] / 1000,
                                       config["emperor-max-throttle"] / 1000)
        self.vassals = {}      # key (name) -> Vassal, live processes only
        # emperor-broodlord: the most zergs at once, and how many were
        # spawned so far (each zerg's UWSGI_BROODLORD_NUM).
        self.broodlord = config["emperor-broodlord"]
        self.broods = 0
        self.exiled = {}       # name -> mtime it exited EXIT_EXILE with
        self.ending = False
        self.ended_at = None   # the clock's reading at the ragnarok
        self.signals = None
        self.watcher = None
        self.stats = None      # a StatsServer (ugu/stats.py)

    def run(self):
        log.log(BANNER)
        self.open()
        if self.hooks:
            self.hooks.run("emperor-start", on_fatal=self.fatal())
        try:
            while not self.ending or self.vassals:
                if not self.ending:
                    self.scan()
                self.wait(self.timeout())
        finally:
            self.close()
        log.verbose("The Emperor is buried.")
        return 0

    def open(self):
        if self.config["emperor-pidfile"]:
            proc.write_pidfile(self.config["emperor-pidfile"],
                               "emperor-pidfile")
        address = self.config["emperor-stats"]
        if address:
            self.stats = stats_server.from_config(
                self.config, "emperor-stats", lambda: stats.document(self))
            log.log(f"*** Emperor stats server enabled on {address} fd: "
                    f"{self.stats.fileno()} ***")
        self.watcher = Watcher.create()
        self.signals = proc.SignalQueue(HANDLED)

    def fatal(self):
        """What a fatal emperor-start hook does: as uWSGI, ask the master
        to end the instance (the Emperor goes on until it is ended);
        without one, exit 1 (None: the hooks' default)."""
        if self.master_pid is None:
            return None
        return lambda: os.kill(self.master_pid, signal.SIGINT)

    def close(self):
        self.signals.close()
        for sleeper in self.sleepers.values():
            sleeper.close()
        for vassal in self.vassals.values():
            if vassal.on_demand is not None:
                vassal.on_demand.close()
        for resource in (self.watcher, self.stats):
            if resource is not None:
                resource.close()

    # scanning

    def scan(self):
        if self.watcher:
            # Before the scan, so a file made in between is seen by it.
            self.watcher.watch({d for m in self.monitors
                                for d in m.directories()})
        known = {name: v.mtime for name, v in self.vassals.items()
                 if not v.zerg}
        known.update(self.exiled)
        known.update({name: s.mtime for name, s in self.sleepers.items()})
        scanned = monitor.scan_all(self.monitors)
        for event in monitor.diff(known, scanned):
            match event:
                case monitor.Added(found):
                    self.enthrone(found)
                case monitor.Changed(found):
                    self.changed(found)
                case monitor.Removed(name):
                    self.removed(name)
        self.orphan_zergs({f.name for f in scanned})

    def enthrone(self, found):
        due = self.blacklist.due(found.name) if self.blacklist else 0.0
        if due > self.clock():
            # Tried again at a later scan, as uWSGI's: not at `due`.
            return
        owner = self.owner(found)
        if owner is False:
            return
        socket_name = self.on_demand and self.on_demand.socket_name(found)
        if socket_name:
            self.sleep(found, socket_name, owner)
            return
        self.start(found.name, found.cwd, found.mtime, found.monitor, owner)

    def start(self, name, cwd, mtime, spec, owner, sleeper=None,
              zerg=False):
        """Spawn a vassal; from `sleeper`, with its socket as stdin."""
        brood = self.broods + 1 if zerg else None
        try:
            pid, link = spawn.spawn(
                name, cwd, self.templates, owner, self.home(spec),
                stdin=sleeper.fileno() if sleeper else None, brood=brood,
                hooks=self.hooks)
        except OSError as e:
            # Out of processes or fds: the next scan tries again.
            log.verbose(f"[emperor] cannot spawn {name}: {e.strerror}")
            return False
        vassal = Vassal(
            name, pid, link, mtime, monitor=spec,
            owner=owner or (os.getuid(), os.getgid()), on_demand=sleeper,
            cwd=cwd, zerg=zerg, key=f"{name}#{pid}" if zerg else name)
        if zerg:
            self.broods = brood
        self.vassals[vassal.key] = vassal
        if self.hooks:
            self.hooks.run_as_emperor(self.config["exec-as-emperor"], name,
                                      pid, *self.ids(name, cwd, owner))
        return True

    def ids(self, name, cwd, owner):
        """The uid and gid a vassal is said with: its file's, as uWSGI
        takes them (the owner it runs as, in tyrant mode)."""
        if owner:
            return owner
        path = name.removesuffix(spawn.ZERG_SUFFIX)
        try:
            st = os.stat(os.path.join(cwd, os.path.basename(path)))
        except OSError:
            return os.getuid(), os.getgid()
        return st.st_uid, st.st_gid

    # broodlord

    def sos(self, vassal):
        """A vassal calls for reinforcements: in broodlord mode, and while
        fewer zergs than emperor-broodlord live, a zerg of its own, from
        its file's [zerg] section (uWSGI names it FILE:zerg)."""
        zergs = sum(1 for v in self.vassals.values() if v.zerg)
        if not self.broodlord or zergs >= self.broodlord:
            return
        log.verbose(f"[emperor] going in broodlord mode: launching zergs "
                    f"for {vassal.name}")
        name = vassal.name + spawn.ZERG_SUFFIX
        if self.blacklist and self.blacklist.due(name) > self.clock():
            return
        owner = vassal.owner if self.tyrant else None
        self.start(name, vassal.cwd, int(time.time()), vassal.monitor,
                   owner, zerg=True)

    def orphan_zergs(self, names):
        """Stop the zergs whose vassal's file is gone, as uWSGI's scan
        does (a zerg is not reloaded when the file changes)."""
        for vassal in list(self.vassals.values()):
            if vassal.zerg and vassal.state is State.RUNNING and \
                    vassal.name[:-len(spawn.ZERG_SUFFIX)] not in names:
                self.stop(vassal, self.clock() + self.tolerance)

    # on demand

    def sleep(self, found, socket_name, owner):
        try:
            sock = ondemand.bind(socket_name, self.backlog)
        except OSError as e:
            # As uWSGI's; the next scan tries again.
            log.log(f"emperor_add()/bind(): {e.strerror}")
            return
        self.sleepers[found.name] = ondemand.Sleeper(
            found.name, sock, socket_name, found.mtime, found.cwd,
            found.monitor, owner)
        ondemand.detected(found.name, socket_name)

    def wake(self, sleeper):
        """A first connection came: start the vassal on it."""
        del self.sleepers[sleeper.name]
        if not self.start(sleeper.name, sleeper.cwd, sleeper.mtime,
                          sleeper.monitor, sleeper.owner, sleeper):
            self.sleepers[sleeper.name] = sleeper

    def back_to_sleep(self, vassal, asked):
        sleeper = vassal.on_demand
        sleeper.mtime = vassal.mtime
        self.sleepers[vassal.name] = sleeper
        if asked:
            ondemand.back(vassal.name, sleeper.socket_name)
        else:
            ondemand.detected(vassal.name, sleeper.socket_name)

    def home(self, spec):
        """The folder of the monitor `spec` names, for the hooks."""
        for m in self.monitors:
            if m.spec == spec:
                return m.home()
        return None

    def owner(self, found):
        """`emperor-tyrant`: (uid, gid) of the vassal's file; False for a
        file root may own, which uWSGI refuses to run.  None otherwise."""
        if not self.tyrant:
            return None
        try:
            st = self.owner_of(found.path)
        except OSError:
            return False    # gone: the next scan stops it
        if st.st_uid == 0 or st.st_gid == 0:
            log.log(f"[emperor-tyrant] invalid permissions for vassal "
                    f"{found.name}")
            return False
        return st.st_uid, st.st_gid

    def changed(self, found):
        if found.name in self.sleepers:
            self.sleepers[found.name].mtime = found.mtime
            log.verbose(f'[emperor] updated configuration for "on demand" '
                        f'instance {found.name}')
            return
        if found.name in self.exiled:
            del self.exiled[found.name]
            self.enthrone(found)
            return
        vassal = self.vassals[found.name]
        if vassal.state is State.RUNNING:
            vassal.reloaded(found.mtime)
            self.reload(vassal)

    def removed(self, name):
        if name in self.sleepers:
            self.sleepers.pop(name).close()
            log.verbose(f"[emperor] stop the uwsgi instance {name}")
            log.verbose(f"[emperor] removed uwsgi instance {name}")
        elif name in self.exiled:
            del self.exiled[name]
        elif self.vassals[name].state is State.RUNNING:
            self.stop(self.vassals[name], self.clock() + self.tolerance)

    # orders

    def reload(self, vassal):
        log.verbose(f"[emperor] reload the uwsgi instance {vassal.name}")
        vassal.send(ToVassal.RELOAD)

    def stop(self, vassal, deadline):
        log.verbose(f"[emperor] stop the uwsgi instance {vassal.name}")
        vassal.send(self.stop_order)
        vassal.doom(State.STOPPING, deadline)

    def curse(self, vassal):
        log.verbose(f"[emperor] curse the uwsgi instance {vassal.name} "
                    f"(pid: {vassal.pid})")
        vassal.stamps["cursed"] = int(time.time())
        if not vassal.asleep:
            # One going back to sleep keeps the deadline it has.
            vassal.doom(State.CURSED, self.clock() + self.tolerance)

    # waiting

    def timeout(self):
        """Seconds until something is due; None: until a signal."""
        now = self.clock()
        moments = [v.deadline for v in self.vassals.values()
                   if v.deadline is not None]
        moments += [v.beat + self.required_heartbeat
                    for v in self.vassals.values() if v.beat is not None]
        if not self.ending:
            moments.append(now + self.freq)
        if self.stats is not None and self.stats.deadline() is not None:
            # The stats server keeps time.monotonic(), moments self.clock().
            moments.append(now + self.stats.deadline() - time.monotonic())
        return max(0.0, min(moments) - now) if moments else None

    def wait(self, timeout):
        waiting = [v for v in self.vassals.values() if v.link is not None]
        if self.watcher is not None:
            waiting.append(self.watcher)
        if self.stats is not None:
            waiting += self.stats.waiting()
        waiting += list(self.sleepers.values())
        signums, ready = self.signals.wait(timeout, waiting)
        for source in ready:
            self.answer(source)
        self.reap()
        self.punish_overdue()
        self.punish_silent()
        for signum in signums:
            self.handle(signum)

    def answer(self, source):
        if source is self.watcher:
            # Every wake-up scans; the events only had to wake us.
            self.watcher.changed()
        elif isinstance(source, Vassal):
            self.listen(source)
        elif isinstance(source, ondemand.Sleeper):
            self.wake(source)
        else:
            self.stats.answer(source)

    def listen(self, vassal):
        data, eof = vassal.receive()
        for byte in data:
            self.hear(vassal, byte)
        if eof:
            vassal.close_link()
            if vassal.state is State.RUNNING or vassal.asleep:
                self.curse(vassal)

    def hear(self, vassal, byte):
        news = vassal.hear(byte)
        if news is ToEmperor.HEARTBEAT:
            vassal.beat = self.clock()
        elif news is ToEmperor.STOP_ME:
            if vassal.state is State.RUNNING and vassal.on_demand:
                log.verbose(f"[emperor] bringing back instance "
                            f"{vassal.name} to on-demand mode")
                vassal.send(self.stop_order)
                vassal.doom(State.STOPPING, self.clock() + self.tolerance)
                vassal.asleep = True
            elif vassal.state is State.RUNNING:
                self.stop(vassal, self.clock() + self.tolerance)
        elif news is ToEmperor.SOS:
            if vassal.state is State.RUNNING:
                self.sos(vassal)
        elif news is not None:
            log.verbose(f"[emperor] vassal {vassal.name} {NEWS[news]}")
        if news is ToEmperor.LOYAL and self.blacklist:
            self.blacklist.forgive(vassal.name)

    # deaths

    def reap(self):
        by_pid = {v.pid: v for v in self.vassals.values()}
        for pid, status in proc.reap():
            if pid in by_pid:
                self.bury(by_pid[pid], status)

    def bury(self, vassal, status):
        if vassal.link is not None:
            # Its last words (loyalty, say) may still wait on the link.
            self.listen(vassal)
        unexpected = vassal.state is State.RUNNING
        if vassal.state is State.RUNNING:
            self.curse(vassal)
        vassal.close_link()
        del self.vassals[vassal.key]
        # A zerg has no file to be found again by: it is not parked.
        exiled = proc.describe_exit(status)[0] == EXIT_EXILE and \
            not vassal.zerg
        if vassal.asleep and not self.ending:
            # Its record lives on in uWSGI: nothing is removed.
            self.back_to_sleep(vassal, asked=True)
            return
        if self.stop_hook:
            spawn.run_hook("stop", self.stop_hook, vassal.name,
                           self.home(vassal.monitor))
        log.verbose(f"[emperor] removed uwsgi instance {vassal.name}")
        if exiled:
            self.exiled[vassal.name] = vassal.mtime
        if vassal.on_demand is not None:
            if unexpected and not exiled and not self.ending:
                # Waits again on its socket, as uWSGI adds it anew.
                self.back_to_sleep(vassal, asked=False)
            else:
                vassal.on_demand.close()
        if self.blacklist and not vassal.loyal and not self.ending:
            self.throttle(vassal.name)

    def throttle(self, name):
        for verdict in self.blacklist.failed(name, self.clock()):
            log.verbose(VERDICTS[verdict].format(name))

    def punish_overdue(self):
        now = self.clock()
        for vassal in self.vassals.values():
            if vassal.deadline is not None and vassal.deadline <= now:
                log.verbose(f"[emperor] NO MERCY for vassal {vassal.name} !!!")
                os.kill(vassal.pid, signal.SIGKILL)
                # Unreaped, its pid cannot be reused; waitpid will come.
                vassal.deadline = None

    def punish_silent(self):
        """Kill a vassal whose heartbeats stopped; it is then respawned as
        any vassal that died.  One that never beat is never suspected."""
        now = self.clock()
        for vassal in self.vassals.values():
            if vassal.beat is not None and \
                    now - vassal.beat > self.required_heartbeat:
                log.log(f"[emperor] vassal {vassal.name} sent no heartbeat "
                        f"in last {self.required_heartbeat} seconds, "
                        "brutally respawning it...")
                vassal.beat = None
                os.kill(vassal.pid, signal.SIGKILL)

    # signals

    def handle(self, signum):
        if signum in RAGNAROK_SIGNALS:
            self.ragnarok()
        elif signum == signal.SIGHUP:
            self.reload_all()
        elif signum == signal.SIGUSR1:
            self.report()
        elif signum == signal.SIGURG and self.blacklist:
            log.verbose("[emperor] cleaning up blacklist ...")
            self.blacklist.clear()

    def ragnarok(self):
        now = self.clock()
        if self.ending:
            # uWSGI counts in whole seconds since the first.
            left = self.mercy - int(now - self.ended_at)
            log.log(f"[emperor] *** RAGNAROK ALREADY EVOKED (mercyless in "
                    f"{left} seconds)***")
            return
        self.ending, self.ended_at = True, now
        log.log("[emperor] *** RAGNAROK EVOKED ***")
        for sleeper in self.sleepers.values():
            sleeper.close()
        self.sleepers.clear()
        deadline = now + self.mercy
        for vassal in self.vassals.values():
            if vassal.state is State.RUNNING:
                self.stop(vassal, deadline)

    def reload_all(self):
        for vassal in self.vassals.values():
            if vassal.state is State.RUNNING:
                self.reload(vassal)

    def report(self):
        for v in self.vassals.values():
            log.log(f"vassal instance {v.name} (last modified {v.mtime}) "
                    f"status {v.status} loyal {int(v.loyal)} zerg "
                    f"{int(v.zerg)}")
