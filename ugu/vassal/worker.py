"""A worker process: `threads` cores accepting on the shared sockets.

The Worker is built in the master before fork and touches nothing
process-wide there; `run()` does the per-process set-up after fork.  Each
core waits on its own epoll with EPOLLEXCLUSIVE, so one connection wakes
one core instead of every core of every worker.  The main thread only
handles signals: SIGHUP finishes the requests in flight and exits,
SIGINT/SIGTERM exit at once, as uWSGI's workers do.
"""

import atexit
import os
import runpy
import select
import signal
import socket
import sys
import threading
import time
import traceback

from ugu import log, proc, protocol, staticanswer
from ugu.link import ToEmperor
from ugu.vassal import app as apps
from ugu.vassal import (appexit, async_worker, autoreload, busyness, catch,
                         errorpages, exceptions, fastcgi, harakiri, hooks,
                         pymodule, reqlog, request, rpc, scgi, sockets,
                         stats, tracebacker, wsgi)
from ugu.vassal.http_socket import serve_http
from ugu.vassal.offload import OffloadEngine, disable_sendfile
from ugu.vassal.recycle import Recycler
from ugu.vassal.scoreboard import LEAVING
from ugu.vassal.transport import RawTransport, recv_some

GRACEFUL = (signal.SIGHUP,)
IMMEDIATE = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)
BUFFER = 65536
# Seconds a core waits before it accepts again after an accept that
# failed for want of a descriptor (or of memory).
ACCEPT_RETRY = 0.05
# A worker's exit codes, as uWSGI's: the end of its loop or an immediate
# stop, and a graceful stop that found the worker idle.  Without a master
# they are the instance's, which supervisors are told to accept.
EXIT_END = 30
EXIT_RELOAD = 17
# A worker that cannot enter its chdir2 folder, as uWSGI's.
EXIT_CHDIR2 = 1


class PipeLines:
    """uWSGI's `SIGPIPE: writing to a closed pipe/socket/fd ...` line.

    uWSGI says it in the thread that wrote, before the write returns, and
    names the request where the worker has one core.  Python runs the
    handler in the main thread once it gets there, which, for a client
    gone mid-response, is mostly after the core has ended the request:
    too late to name it, and after the request's own lines.  So, with a
    single core, the core that failed to write to its client says the
    line itself, before the writer's line, and the handler that follows
    passes; the handler still says the signals of the app's own writes
    (a pipe whose reader is gone), and those of a handler that ran first.
    """

    def __init__(self, config, wid, scoreboard):
        self.wid, self.scoreboard = wid, scoreboard
        self.single_core = config["threads"] == 1 and not config["gevent"]
        self._lock = threading.Lock()
        # Lines a core said before their signal's handler ran.
        self._ahead = 0
        # The request the handler last named, which a core then knows
        # was said.
        self._named = None

    def _running(self):
        if not self.single_core:
            return None
        return self.scoreboard.running(self.wid, 0)

    def handle(self, signum, frame):
        # The line is written with SIGPIPE blocked, and the signal its
        # own write raised (a log whose reader is gone, as with `ugu |
        # head`) is taken back: delivered, it would run this handler
        # again, whose line would raise it again, for ever.  uWSGI's
        # worker spins so at full CPU.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK,
                                         (signal.SIGPIPE,))
        try:
            self._handle()
        finally:
            if signal.SIGPIPE in signal.sigpending():
                signal.sigtimedwait((signal.SIGPIPE,), 0)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _handle(self):
        with self._lock:
            if self._ahead:
                # Signals that came together are handled once.
                self._ahead = 0
                return
            running = self._named = self._running()
        if running is None:
            log.verbose("SIGPIPE: writing to a closed pipe/socket/fd "
                        "(probably the client disconnected) !!!")
            return
        addr, _, request = running[1].partition(" - ")
        self._say(request.rpartition(" ")[2], addr)

    def client_gone(self, ex):
        """A core's write to its client failed with EPIPE, which raised
        the signal: said now, unless the handler said it first."""
        with self._lock:
            running = self._running()
            if running is not None and running == self._named:
                self._named = None
                return
            self._ahead += 1
        self._say(ex.uri, ex.remote_addr)

    @staticmethod
    def _say(uri, addr):
        log.verbose(f"SIGPIPE: writing to a closed pipe/socket/fd (probably "
                    f"the client disconnected) on request {uri} (ip {addr}) "
                    f"!!!")


class Context:
    """What every core of one worker shares."""

    def __init__(self, worker, shared):
        config = worker.config
        self.wid = worker.wid
        self.pid = os.getpid()
        self.apps = shared.apps
        self.static = shared.static
        self.routing = shared.routing
        # None without request routes: the one test a request pays then.
        self.request_routing = (shared.request_routing
                                if shared.request_routing.active else None)
        # None without final routes, likewise.
        self.final_routing = (shared.final_routing
                              if shared.final_routing.active else None)
        self.scoreboard = shared.scoreboard
        self.buffer_size = config["buffer-size"]
        # uWSGI keeps two slots a var, four per max-vars.
        self.max_vars = 2 * config["max-vars"]
        self.socket_timeout = config["socket-timeout"]
        self.harakiri = config["harakiri"]
        self.tcp_nodelay = config["tcp-nodelay"]
        self.reaper = config["reaper"]
        self.log_request = reqlog.request_logger(config, self.wid)
        # Whether the router may repeat a static file's answer
        # (ugu.staticanswer), decided where files are served.
        self.static_offer = None
        if shared.static.docroots:
            from ugu.vassal.staticoffer import Offer
            self.static_offer = Offer.of_worker(config, shared,
                                                self.log_request)
        self.serve_static = (request.serve_static_range
                             if config["honour-range"]
                             else request.serve_static)
        self.exchange = (request.ForwardedExchange
                         if config["log-x-forwarded-for"]
                         else request.Exchange)
        exception_only = config["write-errors-exception-only"]
        self.ignore_write_errors = (config["ignore-write-errors"]
                                    or exception_only)
        # Where the core that failed to write says SIGPIPE (single core).
        self.sigpipe = worker.pipe_lines if worker.pipe_lines and \
            worker.pipe_lines.single_core else None
        self.quiet_writes = config["disable-write-exception"]
        self.head_limit = (config["response-headers-limit"]
                           or wsgi.HEAD_LIMIT)
        # write-errors-tolerance: uWSGI counts one failed write a request,
        # so any tolerance lets the app go on; the iterable's writes heed
        # write-errors-exception-only before it, the write callable's not.
        tolerant = config["write-errors-tolerance"] > 0
        self.write_callable_goes_on = self.quiet_writes or tolerant
        self.iterable_goes_on = tolerant and not exception_only
        self.limit_post = config["limit-post"]
        self.admit_body = request.body_admission(config)
        self.post_buffering = config["post-buffering"]
        self.post_buffering_bufsize = max(config["post-buffering-bufsize"],
                                          self.post_buffering)
        self.threads = config["threads"]
        self.cores = config["gevent"] or self.threads
        self.multithread = self.threads > 1
        self.environ_keys = wsgi.constant_keys(config)
        if shared.env_behaviour == wsgi.HOLY:
            self.run_app = request.run_app_holy
        else:
            self.run_app = request.run_app_cheat
            self.environs = [{} for _ in range(self.cores)]
        self.error_pages = errorpages.ErrorPages(config)
        self.wsgi_strict = config["wsgi-strict"]
        self.accept_buffer = config["wsgi-accept-buffer"]
        self.start_response_nodelay = config["start_response-nodelay"]
        self.answer_exception = (catch.answer if config["catch-exceptions"]
                                 else request.answer_500)
        self.multiprocess = config["processes"] != 1
        self.offload = None
        # A gevent worker's GreenCores (ugu.vassal.async_worker), else None.
        self.green_cores = None
        # The read end of the pipe that wakes the threads to stop, for a
        # wait on an idle connection (ugu.vassal.http11) to end with it.
        self.wake = None
        self.listener_vars = {}     # http-socket: ListenerVars per socket
        # http-socket-modifier1 and -modifier2, as the packet's bytes hold
        # them; None where both are 0, as nearly always.
        modifiers = (config["http-socket-modifier1"] % 256,
                     config["http-socket-modifier2"] % 256)
        self.http_modifiers = modifiers if any(modifiers) else None
        # https-socket-modifier1 and -modifier2, likewise.
        modifiers = (config["https-socket-modifier1"] % 256,
                     config["https-socket-modifier2"] % 256)
        self.https_modifiers = modifiers if any(modifiers) else None
        # fastcgi-modifier1/2 and scgi-modifier1/2, likewise (always set).
        self.fastcgi_modifiers = (config["fastcgi-modifier1"] % 256,
                                  config["fastcgi-modifier2"] % 256)
        self.scgi_modifiers = (config["scgi-modifier1"] % 256,
                               config["scgi-modifier2"] % 256)
        self.proxy_protocol = config["enable-proxy-protocol"]
        self._lock = threading.Lock()
        # This process's requests (max-requests counts them), and those of
        # its scoreboard slot, which go on from the slot's earlier workers
        # as the counts of its apps do.
        self._requests = 0
        self._slot_requests = self.scoreboard.requests(self.wid)
        for app in self.apps.loaded:
            self._count_from_slot(app)
        self.scoreboard.set_apps(self.wid, self.apps.loaded)
        self.apps.serve_in_worker(self._dynamic_app_loaded)
        self._loyal_link = shared.link
        self.recycler = worker.recycler
        # Decided once: a request pays for timing only where the stats
        # server or the busyness cheaper reads it.
        self._running_time = self.scoreboard.running_time(self.wid)
        if busyness.timed(config):
            self.count_request = self._count_timed_request
        self._core_counts = None
        if stats.accounted(config):
            delta, tx, _, avg_rt = self.scoreboard.traffic(self.wid)
            self._traffic = [delta, tx, avg_rt]
            self._core_counts = [self.scoreboard.core_counts(self.wid, core)
                                 for core in range(self.cores)]
            self.count_request = self._count_request_for_stats
        self._exception_reload = exceptions.from_config(config)
        if self._exception_reload:
            self.count_exception = self._count_or_reload

    def _count_from_slot(self, app):
        app.requests = self.scoreboard.app_counts(self.wid, app.id)[0]

    def _dynamic_app_loaded(self, app):
        """A dynamic app (ugu.vassal.app) shows in the stats as this
        worker's configured ones do."""
        self._count_from_slot(app)
        self.scoreboard.set_apps(self.wid, [app])

    def core_id(self, core):
        """environ's uwsgi.core: set, as by uWSGI, where a worker has
        several cores (threads, or gevent's greenlets)."""
        return core if self.cores > 1 else None

    def count_app_request(self, app):
        with self._lock:
            app.requests += 1
            self.scoreboard.set_app_requests(self.wid, app.id, app.requests)

    def describe(self, ex):
        """A request begins: named on the scoreboard, and the worker's
        harakiri deadline set."""
        self.scoreboard.describe(self.wid, ex.core, ex.remote_addr,
                                 ex.method, ex.uri)
        if self.harakiri:
            self.scoreboard.set_harakiri(self.wid, ex.start + self.harakiri)

    def push_harakiri(self):
        """Before each read of a buffered body, as uWSGI's inc_harakiri():
        the worker's deadline goes `harakiri` seconds further, so an
        upload that keeps coming is not counted against the app (and the
        app then has that much more)."""
        deadline = self.scoreboard.harakiri(self.wid)
        if deadline:
            self.scoreboard.set_harakiri(self.wid, deadline + self.harakiri)

    def count_exception(self, app, error, core=None):
        """The app raised `error` (None: a failed write that raises
        nothing in it, under disable-write-exception) on `core`."""
        self._add_exception(app, core)

    def _count_or_reload(self, app, error, core=None):
        """count_exception under reload-on-exception (exceptions.py):
        the worker may end here."""
        if not self._exception_reload.always:
            self._add_exception(app, core)
        if self._exception_reload.wanted(error):
            exceptions.end_worker()

    def _add_exception(self, app, core):
        with self._lock:
            self.scoreboard.add_exception(self.wid, app.id)
        if self._core_counts and core is not None:
            # The core's own count (the metrics'), written by its thread.
            counts = self._core_counts[core]
            counts[5] += 1
            self.scoreboard.set_core_counts(self.wid, core, counts)

    def count_request(self, ex):
        with self._lock:
            self._requests += 1
            self._slot_requests += 1
            ex.worker_requests = self._requests
            ex.total_requests = self.scoreboard.add_to_total()
            self.scoreboard.set_requests(self.wid, self._slot_requests)

    def _count_timed_request(self, ex):
        """count_request, and the microseconds the request took added to
        the worker's running time."""
        micros = int((time.time() - ex.start) * 1_000_000)
        with self._lock:
            self._add_timed(ex, micros)

    def _add_timed(self, ex, micros):
        """Under the lock: the counts and the running time, in one
        scoreboard write."""
        self._requests += 1
        self._slot_requests += 1
        self._running_time += micros
        ex.worker_requests = self._requests
        ex.total_requests = self.scoreboard.add_to_total()
        self.scoreboard.set_account(self.wid, self._slot_requests,
                                    self._running_time)

    def _count_request_for_stats(self, ex):
        """count_request, and what the stats server shows of it, as
        uWSGI's workers account a request."""
        micros = int((time.time() - ex.start) * 1_000_000)
        with self._lock:
            self._add_timed(ex, micros)
            traffic = self._traffic
            traffic[0] = self._requests
            traffic[1] += ex.header_size + ex.body_size
            traffic[2] = (traffic[2] + micros) // 2
            self.scoreboard.set_traffic(self.wid, *traffic)
        # Each core writes only its own counts: no lock.
        counts = self._core_counts[ex.core]
        counts[0] += 1
        counts[1] += ex.static
        counts[2] += ex.via == "offload"
        counts[3] += ex.write_errors
        counts[4] += ex.routed_end
        self.scoreboard.set_core_counts(self.wid, ex.core, counts)

    def request_done(self, ex):
        """After the request's log line, as uWSGI: the worker's harakiri
        deadline is cleared, `reaper` collects the children the app left
        to end as zombies, the first request makes the vassal loyal, and
        max-requests may retire the worker."""
        if self.harakiri:
            self.scoreboard.set_harakiri(self.wid, 0.0)
        if self.scoreboard.user_deadline_set:
            self.scoreboard.set_user_harakiri(self.wid, 0.0)
        if self.reaper:
            for _ in proc.reap():
                pass
        if ex.worker_requests == 1 and self._loyal_link:
            log.log("announcing my loyalty to the Emperor...")
            self._loyal_link.send(ToEmperor.LOYAL)
        if self.recycler.due(ex.worker_requests):
            self.recycler.retire()


def run_script(path, where):
    """Run a Python file as __main__, as uWSGI's Python runs pyrun's:
    its exception's traceback logged; the exit code its SystemExit
    gives (a message is printed, and is 1), else 0.  A file that cannot
    be opened is said in uWSGI's words (with its source line `where`),
    and is 1."""
    try:
        open(path, "rb").close()
    except OSError as e:
        log.log(f'open("{path}"): {e.strerror} [{where}]')
        return 1
    code = 0
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        code = appexit.exit_code(e)
    except BaseException:
        log.app_traceback()
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def core_name(wid, core):
    """A core's thread name, uWSGI's: what an app listing its threads,
    and the tracebacker, show."""
    return f"uWSGIWorker{wid}Core{core}"


class Worker:
    def __init__(self, wid, config, listeners, shared, master=None,
                 at_exit=None):
        self.wid = wid
        self.config = config
        self.listeners = [l for l in listeners
                          if l.proto in sockets.WORKER_PROTOCOLS]
        self.shared = shared
        # The master's pid, for the worker to die with.  Without a master
        # there is none: as in uWSGI, the workers that worker 1 forked
        # live on (and finish their requests) when it ends.
        self.master = master
        # Worker 1 without a master is the instance: what its end must
        # do besides (vacuum), as uWSGI's exit handlers do.
        self.at_exit = at_exit
        # Built where the workers are forked: the master, else the first
        # process, the one uWSGI's workers signal to reload the instance.
        self.instance = os.getpid()
        self._stopping = False
        self._wake_read = self._wake_write = None
        # Whether the last accept failed, and was said (accept_failed).
        self.accept_failing = False
        self.recycler = None
        # What says SIGPIPE (PipeLines), unless ignore-sigpipe.
        self.pipe_lines = None
        # Whether this is the slot's first spawn since the master started
        # (the -once accepting hooks run then only).
        self.first_spawn = True

    def run(self):
        """The worker's life, after fork.  Never returns."""
        proc.reset_signals()
        if self.master and not proc.die_with_parent(self.master):
            os._exit(0)
        if self.master or self.wid > 1:
            # Worker 1 without a master is the process the user started:
            # uWSGI names only the processes it forks.
            proc.set_worker_title(self.config, self.wid)
        if self.config["map-socket"]:
            self.listeners = sockets.map_for_worker(
                sockets.socket_map(self.config, len(self.listeners)),
                self.wid, self.listeners)
        if self.config["cpu-affinity"]:
            proc.set_cpu_affinity(self.wid, self.config["cpu-affinity"])
        if self.config["gevent"]:
            # Before anything else imports socket, threading or the app.
            async_worker.patch()
        self.shared.scoreboard.set_pid(self.wid, os.getpid())
        pymodule.enter_worker(self.wid, self.shared)
        self.shared.hooks.run("post-fork", self._on_fatal_hook())
        if not self.shared.apps and _loads_in_worker(self.config):
            self._load_app()
        self._shell()
        script = self.config["pyrun"] or \
            self.config["python-worker-override"]
        if script:
            self._hijack(script)
        self.recycler = Recycler(self.config, self.wid,
                                 self.shared.scoreboard)
        autoreload.start(self.config, self.wid, self.shared.apps,
                         self.instance)
        tracebacker.start(self.config, self.wid)
        signals = proc.SignalQueue(GRACEFUL + IMMEDIATE + (signal.SIGUSR2,))
        if not (self.config["ignore-sigpipe"]
                or self.config["write-errors-exception-only"]):
            self.pipe_lines = PipeLines(self.config, self.wid,
                                        self.shared.scoreboard)
            signal.signal(signal.SIGPIPE, self.pipe_lines.handle)
        proc.unblock_signals()
        if self.config["chdir2"]:
            self._chdir2(self.config["chdir2"])
        ctx = Context(self, self.shared)
        if self.config["disable-sendfile"]:
            disable_sendfile()
        if self.config["offload-threads"]:
            ctx.offload = OffloadEngine(self.config["offload-threads"],
                                        self.wid)
        # Accepting before the cores start, as uWSGI's worker is before
        # its loop: a request they serve comes from a worker the master
        # (a chain reload) sees accepting.
        self.shared.scoreboard.set_accepting(self.wid)
        cores = self._start_cores(ctx)
        if self.shared.link and self.wid == 1:
            # Worker 1 speaks for the instance, as in uWSGI: the Emperor
            # says a vassal is ready once, not once a worker.
            self.shared.link.send(ToEmperor.ACCEPTING)
        self._accepting_hooks()
        code = self._wait_for_end(signals)
        self._stop_cores(cores, ctx)
        self._exit(code)

    def _shell(self):
        """pyshell, pyshell-oneshot: worker 1 runs the shell and ends;
        until a one-shot shell has ended (see ugu/vassal/pyshell.py)."""
        if self.wid != 1 or self.shared.shell_restored or (
                self.config["pyshell"] is None
                and self.config["pyshell-oneshot"] is None):
            return
        from ugu.vassal import pyshell
        proc.unblock_signals()
        pyshell.run(*pyshell.wanted(self.config))

    def _hijack(self, path):
        """pyrun and python-worker-override: the worker runs the script
        (as __main__, with the uwsgi module and the apps loaded) instead
        of serving, and exits once it ends, with the code of its
        SystemExit (else 0), skipping the app's atexit functions, as
        uWSGI's hijacked worker does.  Under a master, a pyrun worker's
        end is the instance's; an overriding one is respawned."""
        proc.unblock_signals()
        sys.stdout.flush()
        line = 1940 if self.config["pyrun"] else 2128
        os._exit(run_script(path, f"plugins/python/python_plugin.c line "
                                  f"{line}"))

    def _chdir2(self, path):
        """chdir2: the worker's folder once its app has loaded (in the
        master, or here), as uWSGI's workers go there; a failure ends
        the worker with uWSGI's line."""
        log.log(f"chdir() to {path}")
        try:
            os.chdir(path)
        except OSError as e:
            log.log(f"chdir(): {e.strerror} [core/uwsgi.c line 3522]")
            self._exit(EXIT_CHDIR2)

    def _load_app(self):
        try:
            self.shared.apps = apps.init_all(self.config, self.shared.hooks,
                                             self._on_fatal_hook())
        except apps.NoApp as e:
            self._exit(e.exit_code)

    def _on_fatal_hook(self):
        """Under a master a worker's fatal hook asks the master to end
        the instance, as uWSGI's does; without one it exits 1."""
        return hooks.signal_master(self.master) if self.master else None

    def _accepting_hooks(self):
        phases = ["accepting", "accepting-once"]
        if self.wid == 1:
            phases += ["accepting1", "accepting1-once"]
        if not self.first_spawn:
            phases = [p for p in phases if not p.endswith("-once")]
        for phase in phases:
            self.shared.hooks.run(phase, self._on_fatal_hook())

    def _start_cores(self, ctx):
        self._wake_read, self._wake_write = os.pipe()
        ctx.wake = self._wake_read
        if self.config["gevent"]:
            # The thread that runs every greenlet: uWSGI's core 0.
            threading.main_thread().name = core_name(self.wid, 0)
            cores = async_worker.GreenCores(self, ctx, self.config["gevent"],
                                             serve_connection)
            ctx.green_cores = cores
            cores.start()
            if self.shared.uwsgi_signals:
                cores.watch_signals(self.shared.uwsgi_signals)
            return cores
        for listener in self.listeners:
            listener.sock.setblocking(False)
        cores = [threading.Thread(target=self._core_loop, args=(ctx, n),
                                  name=core_name(self.wid, n), daemon=True)
                 for n in range(self.config["threads"])]
        for core in cores:
            core.start()
        return cores

    def _wait_for_end(self, signals):
        """Wait for the end; its exit code."""
        alone = self.config["harakiri"] and not self.master
        while True:
            received, retired = signals.wait(
                harakiri.SELF_CHECK if alone else None, [self.recycler])
            if alone and harakiri.overdue(self.shared.scoreboard, self.wid):
                harakiri.say_alone(self.shared.apps)
                self._exit(harakiri.EXIT_ALONE)
            if any(s in IMMEDIATE for s in received):
                self._exit(EXIT_END, signalled=True)
            if signal.SIGUSR2 in received:
                self._what_am_i_doing()
            if retired:
                return EXIT_END
            if any(s in GRACEFUL for s in received):
                self._leave()
                return EXIT_RELOAD if self._idle_alone() else EXIT_END

    def _exit(self, code, signalled=False):
        """The worker's end, with uWSGI's exit handlers in their order:
        the app's uwsgi.atexit and atexit functions, then the end of the
        instance where this worker is it (`at_exit`)."""
        self._run_atexit(signalled)
        if self.at_exit:
            self.at_exit()
        sys.stdout.flush()
        os._exit(code)

    def _run_atexit(self, signalled):
        """The app's exit functions, as uWSGI's Python runs them at a
        worker's end: none at an end by SIGINT or SIGTERM with
        skip-atexit, in gevent mode or while a request runs (uWSGI skips
        them in async mode and when busy); uwsgi.atexit, then the atexit
        module's, which skip-atexit-teardown leaves out (they run in the
        interpreter's teardown there)."""
        config = self.config
        if config["gevent"] or (signalled and config["skip-atexit"]) or \
                self.shared.scoreboard.busy(self.wid):
            return
        pymodule.worker_exit()
        if not config["skip-atexit-teardown"]:
            atexit._run_exitfuncs()

    def _idle_alone(self):
        """Whether uWSGI would exit at once with its reload code: a
        gevent worker always does; a threaded one lets its loop end; a
        single core does when it is between requests."""
        if self.config["gevent"]:
            return True
        return (self.config["threads"] == 1
                and self.shared.scoreboard.running(self.wid, 0) is None)

    def _leave(self):
        """A graceful end asked for by a signal: said, unless the master
        marked it quiet before (max-worker-lifetime, as uWSGI's)."""
        board = self.shared.scoreboard
        if board.retiring(self.wid) != LEAVING:
            log.log(f"Gracefully killing worker {self.wid} "
                    f"(pid: {os.getpid()})...")
            board.set_retiring(self.wid, LEAVING)

    def _what_am_i_doing(self):
        """SIGUSR2: log the request each core is serving, as uWSGI."""
        board = self.shared.scoreboard
        for core in range(board.cores):
            running = board.running(self.wid, core)
            if running:
                start, text = running
                uri = text.rpartition(" ")[2]
                log.log(f"SIGUSR2: --- uWSGI worker {self.wid} (pid: "
                        f"{os.getpid()}) is managing request {uri} since "
                        f"{time.ctime(start)} ---")

    def _stop_cores(self, cores, ctx):
        self._stopping = True
        os.write(self._wake_write, b"x")
        if self.config["gevent"]:
            cores.stop()
        else:
            if self.config["no-threads-wait"]:
                # As uWSGI's main thread (its core 0) ends the worker
                # without joining the others: their requests are cut.
                cores = cores[:1]
            for core in cores:
                core.join()
        if ctx.offload:
            ctx.offload.stop()

    def _core_loop(self, ctx, core):
        if core == 0:
            # uWSGI's core 0 is its worker's main thread, the one
            # harakiri-verbose looks at; ugu's is this one.
            ctx.scoreboard.set_core_thread(ctx.wid, threading.get_native_id())
        poller = select.epoll()
        by_fd = {}
        for listener in self.listeners:
            fd = listener.sock.fileno()
            # Family, type and protocol as plain ints: socket.accept()
            # converts them to enums on every call, and a socket made from
            # a descriptor without all three asks the kernel for them (two
            # system calls).
            kind = (int(listener.sock.family), int(listener.sock.type),
                    listener.sock.proto)
            by_fd[fd] = listener, kind
            poller.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        poller.register(self._wake_read, select.EPOLLIN)
        # uWSGI signals for this worker: handled by whichever core is idle.
        uwsgi_signals = self.shared.uwsgi_signals
        inbox = {end.fileno(): end
                 for end in (uwsgi_signals.inbox if uwsgi_signals else ())}
        for fd in inbox:
            poller.register(fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
        while not self._stopping:
            for fd, _ in poller.poll():
                found = by_fd.get(fd)
                if found is not None:
                    self._accept(ctx, core, *found)
                elif fd in inbox:
                    uwsgi_signals.receive(inbox[fd])
                else:
                    return

    def _accept(self, ctx, core, listener, kind):
        try:
            fd, address = listener.sock._accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            # Another core took it, or its client left before it was.
            return
        except OSError as e:
            self.accept_failed(e)
            time.sleep(ACCEPT_RETRY)
            return
        self.accept_failing = False
        serve_connection(ctx, core, listener, socket.socket(*kind, fileno=fd),
                         address)

    def accept_failed(self, error):
        """An accept that failed while a connection waits (EMFILE: the
        app holds every descriptor the worker may open): said once until
        an accept succeeds again, when the core clears `accept_failing`;
        the core waits ACCEPT_RETRY before it tries again.  uWSGI's
        worker retries at once, silently, at full CPU; ugu's used to say
        each try, some 200,000 lines a second."""
        if not self.accept_failing:
            self.accept_failing = True
            log.log(f"accept(): {error.strerror} (a connection waits; "
                    f"`max-fd` or `ulimit -n` sets how many files a "
                    f"worker may open)")


def serve_connection(ctx, core, listener, conn, address):
    """Serve a connection accepted from `address` (accept's, which a
    unix socket gives as an empty string), the core busy on the
    scoreboard until the connection ends."""
    if ctx.tcp_nodelay:
        sockets.set_nodelay(conn)
    ctx.scoreboard.begin(ctx.wid, core)
    conn.settimeout(ctx.socket_timeout or None)
    relay = None
    try:
        if listener.tls is not None:
            # https-socket, ssl-socket: served on the end of a socketpair
            # whose other end a relay carries to the client through TLS.
            from ugu.vassal import tls_socket
            relay = tls_socket.accept(conn, listener.tls,
                                      ctx.socket_timeout or None)
            conn = relay and relay.core_end
        if conn is None:
            # The handshake failed: closed already.
            pass
        elif listener.proto in sockets.HTTP_PROTOCOLS:
            serve_http(ctx, core, listener, conn, address)
        elif listener.proto in sockets.CGI_PROTOCOLS:
            serve_cgi(ctx, core, listener.proto, conn)
        else:
            serve_uwsgi(ctx, core, conn)
    except (OSError, ValueError) as e:
        log.log(f"error on request: {e}")
    except Exception:
        # Whatever went wrong, the core lives on to serve the next one.
        log.log("error on request:")
        traceback.print_exc()
    finally:
        # Idle before the client can see the close (a graceful stop then
        # finds the core idle, as uWSGI's would).
        if relay is not None:
            relay.finish()
        ctx.scoreboard.end(ctx.wid, core)
        if conn is not None and conn.fileno() != -1:
            conn.close()


# The FastCGI and SCGI sockets: (module, nph) by kind.
_CGI_SERVERS = {sockets.FASTCGI: (fastcgi, False),
                sockets.FASTCGI_NPH: (fastcgi, True),
                sockets.SCGI: (scgi, False), sockets.SCGI_NPH: (scgi, True)}


def serve_cgi(ctx, core, proto, conn):
    module, nph = _CGI_SERVERS[proto]
    modifiers = (ctx.fastcgi_modifiers if module is fastcgi
                 else ctx.scgi_modifiers)
    module.serve(ctx, core, conn, nph, modifiers, BUFFER)


def serve_uwsgi(ctx, core, conn):
    try:
        parsed = read_uwsgi_request(conn, ctx)
    except TimeoutError:
        # A packet that stalls past socket-timeout: closed, unsaid, as by
        # uWSGI.
        return
    if parsed is None:
        return
    if isinstance(parsed, RpcRequest):
        rpc.serve(conn, parsed.block, parsed.modifier2)
        return
    request_vars, count, size, early_body, modifier2 = parsed
    if not size:
        # uWSGI's Python plugin refuses an empty block; the line still
        # counts it, and the connection just closes.
        log.log("Empty python request. skip.")
        request.account(request.Exchange(ctx, core, None, {}, 0, 0, None))
        return
    length = wsgi.content_length(request_vars)
    transport = RawTransport(conn)
    body = wsgi.SocketBody(conn, early_body, BUFFER)
    ex = ctx.exchange(ctx, core, transport, request_vars, count, size,
                      wsgi.Input(body, length))
    if modifier2 == staticanswer.OFFER:
        # ugu's router: it may repeat a static file's answer, and the
        # request is otherwise one of modifier2 0.
        ex.offered = True
    elif modifier2:
        # Only log-format shows it (a router's http-modifier2).
        ex.modifier2 = modifier2
    request.handle(ex)
    if transport.conn is not None:
        ex.input.drain()


# A uwsgi ping packet (`ping`, `nagios`; ugu/ping.py sends them).
MODIFIER_PING = 100


class RpcRequest:
    """A packet of modifier1 173 (uWSGI's RPC): its block, read whole."""

    def __init__(self, block, modifier2):
        self.block, self.modifier2 = block, modifier2


def read_uwsgi_request(conn, ctx):
    """(vars, vars count, block size, the body's bytes read with the
    block, modifier2), an RpcRequest, or None after logging why (the caller then closes,
    as uWSGI closes on a bad packet).  One recv() brings the whole packet
    of almost every request."""
    data = _recv_at_least(conn, b"", protocol.HEADER_SIZE)
    if len(data) < protocol.HEADER_SIZE:
        return None
    modifier1, size, modifier2 = protocol.decode_header(data)
    if size > ctx.buffer_size:
        log.log(f"invalid request block size: {size} (max "
                f"{ctx.buffer_size})...skip")
        # Reset, as uWSGI resets it: the rest of the block is unread.
        _reset(conn)
        return None
    end = protocol.HEADER_SIZE + size
    # The whole block first, as uWSGI reads it: a refused one then closes
    # with nothing unread, which the peer sees as a close, not a reset.
    data = _recv_at_least(conn, data, end)
    if modifier1 == rpc.MODIFIER_RPC:
        if len(data) < end:
            log.log("Invalid RPC request. skip.")
            return None
        return RpcRequest(data[protocol.HEADER_SIZE:end], modifier2)
    if modifier1 == MODIFIER_PING:
        # uWSGI's ping plugin: its header back, modifier2 1, with the
        # size of the warning message, which ugu's instances never set
        # (no set_warning_message); no request is counted or logged.
        log.log("PING")
        try:
            conn.sendall(protocol.HEADER.pack(MODIFIER_PING, 0, 1))
        except OSError:
            pass
        return None
    if modifier1 not in (protocol.MODIFIER_WSGI,
                         protocol.MODIFIER_WSGI_SCRIPT_NAME):
        log.log(f"-- unavailable modifier requested: {modifier1} --")
        return None
    try:
        if len(data) < end:
            raise protocol.ProtocolError("truncated uwsgi vars block")
        request_vars, count = _decoded_vars(data[protocol.HEADER_SIZE:end])
        if count > ctx.max_vars:
            raise protocol.ProtocolError("max vec size reached",
                                         skip="skip this var")
    except protocol.ProtocolError as e:
        log.log(f"{e}. {e.skip}.")
        return None
    # Modifier 30 is meant to strip SCRIPT_NAME from PATH_INFO, and uWSGI
    # 2.0 on Python 3 does not: apps behind it route on the whole path,
    # so ugu serves it as it serves 0.
    return request_vars, 2 * count, size, data[end:], modifier2


# Vars blocks met before, decoded: a router sends the same block for each
# request a client connection repeats (REMOTE_PORT is the connection's),
# and a look-up and a copy cost a fortieth of a decode.  Up to 512 blocks
# of up to 4 KiB, emptied when full.
_DECODED = {}
_DECODED_LIMIT = 512
_DECODED_BLOCK_MAX = 4096


def _decoded_vars(block):
    """protocol.decode_text's answer, the vars a dict of the request's own
    (the request changes it)."""
    found = _DECODED.get(block)
    if found is None:
        found = protocol.decode_text(block)
        if len(block) <= _DECODED_BLOCK_MAX:
            if len(_DECODED) >= _DECODED_LIMIT:
                _DECODED.clear()
            _DECODED[block] = found
    request_vars, count = found
    return dict(request_vars), count


def _recv_at_least(conn, data, size):
    """data and what the peer sends next, until size bytes or its end."""
    while len(data) < size:
        more = recv_some(conn, BUFFER)
        if not more:
            break
        data += more
    return data


def _reset(conn):
    """Drop the connection with a TCP reset once it is closed."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    b"\x01\x00\x00\x00\x00\x00\x00\x00")


def _loads_in_worker(config):
    """lazy-apps, and gevent: the app must import the patched modules."""
    return config["lazy-apps"] or config["gevent"]
