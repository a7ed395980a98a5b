"""The `uwsgi` module that uWSGI's Python plugin gives the apps it runs.

uWSGI makes it in the process that loads the apps (the master, or each
worker under lazy-apps), before the first app is imported, so
`import uwsgi` works in the app's module and in its requests; the
workers inherit it.  ugu does the same: `install()` puts a fresh module
in sys.modules as `uwsgi`, and `enter_worker()` runs in each worker
after fork.  The emperor, the router process and a vassal that runs no
Python of the user's (an HTTP router alone) never run an app, and have
none.  `install()` also puts ugu/appmodules at the end of
sys.path, for ugu's own `uwsgidecorators` (see that file).

Its values are those uWSGI's gives, with their types: Python 3's uWSGI
makes its strings bytes (version, hostname, opt's values, magic_table),
and opt keeps the last value of a repeated option (its check for a key
seen before looks for a bytes key among str ones, and never finds it).

The functions that need the current request (env, request_id,
set_logvar, connection_fd...) find it on the caller's own stack: the
frames of the worker's request code below the app hold the exchange,
the environ and the connection (in a worker of one core, on the core's
stack when another thread calls).  So a request pays nothing for the
module, used or not; a call pays a walk up a stack.  As in uWSGI,
outside a request they raise SystemError (see `_request_frame`).

What uWSGI's module has and ugu lacks the subsystem for (metrics,
legions...), or has only when configured (the spooler, the sharedarea,
the queue), is not in the module: reading such a name raises `Lacking`, an AttributeError naming the function and what ugu
lacks.  Being an AttributeError, hasattr() answers False and
getattr(uwsgi, name, None) None, so an app that probes for a feature
takes its fallback, and one that calls it fails on that line, saying
why.
"""

import mmap
import operator
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import types

import _multiprocessing
import setproctitle

from ugu import UWSGI_VERSION, fdwait, log
from ugu.options import sources
from ugu.vassal import (cacheapi, metrics, mules, pyargs, queue, rpc,
                        rwlocks, sharedarea, signals, spooler)

# uWSGI's version_info: base, major, minor, revision, custom.
VERSION_INFO = (*map(int, UWSGI_VERSION.split(".")), 0, b"")
# _multiprocessing.SemLock's kind for a plain (non-recursive) lock.
_SEMAPHORE = 1
# The pid of the process holding a user lock (0: none), one for each,
# shared by all.
_HOLDER = struct.Struct("<i")
_NO_REQUEST = "you can call uwsgi api function only from the main callable"
# Modules ugu gives apps beside `uwsgi` (uwsgidecorators).
APP_MODULES = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "appmodules")


class Lacking(AttributeError):
    """A name of uWSGI's module whose subsystem ugu does not have."""


def _names(prefix, suffixes):
    return " ".join(prefix + suffix for suffix in suffixes.split())


# What ugu lacks -> the names of uWSGI 2.0's module (its Python 3 build's
# dir()) that need it.
_LACKING_GROUPS = {
    # As uWSGI's module has them only with a spooler.
    "spooler configured (add `spooler = DIR` to the config)":
        "spool send_to_spooler set_spooler_frequency spooler_jobs "
        "spooler_pid spooler_pids spooler_get_task spoolers",
    "way for the app to raise an alarm (log-alarm rules raise them: "
    "print a line one matches)": "alarm",
    "sharedarea configured (add `sharedarea = PAGES` to the config)":
        " ".join(sharedarea.FUNCTIONS),
    "queue configured (add `queue = SLOTS` to the config)":
        " ".join(queue.FUNCTIONS) + " queue_size",
    "async loop engine of uWSGI's (its gevent workers run without one)":
        "async_sleep async_connect green_schedule suspend wait_fd_read "
        "wait_fd_write ready_fd",
    "legions": "i_am_the_lord lord_scroll scrolls",
    "internal routing from Python": "route",
    "version of this function yet": (
        "accepting set_warning_message logsize listen_queue "),
    "symbols of the binary to import from (apps import from files)":
        "SymbolsImporter SymbolsZipImporter ZipImporter",
}
LACKING = {name: what for what, names in _LACKING_GROUPS.items()
           for name in names.split()}


class _State:
    """What the module's functions read of the process they run in."""

    def __init__(self, config, scoreboard, master, mules, spoolers,
                 uwsgi_signals):
        self.config = config
        self.scoreboard = scoreboard
        self.mules = mules      # a mules.Mules, or None
        self.spoolers = spoolers    # a spooler.Spoolers, or None
        # A signals.UwsgiSignals, or None without a master.
        self.signals = uwsgi_signals
        self.wid = 0
        self.mule_id = 0
        self.spooler = None     # in a spooler process, its index
        # The process a reload or stop is asked of (the first process
        # without a master, as uWSGI's workers[0]), and masterpid()'s.
        self.instance = os.getpid()
        self.master = os.getpid() if master else 0
        # uWSGI's user locks 0 to `locks`, shared by every worker: made
        # before fork, each with the pid of its holder, so that the
        # master can free it when the holder dies (uWSGI's lock is a
        # robust mutex).
        self.locks = [
            _multiprocessing.SemLock(
                _SEMAPHORE, 1, 1,
                f"/ugu-lock-{os.getpid()}-{id(self)}-{number}", True)
            for number in range(config["locks"] + 1)]
        self.holder = mmap.mmap(-1, _HOLDER.size * len(self.locks))
        self.forced_log = None
        # chunked.Settings, read at the first chunked_read.
        self.chunked = None
        self.shared = None      # a worker's master.Shared
        self.single_core = not config["gevent"] and config["threads"] == 1
        # websocket.Settings, read at the first websocket call.
        self.websockets = None


_state = None
_module = None


def install(config, scoreboard, reloaded, master, mules=None,
            spoolers=None, uwsgi_signals=None):
    """Make the `uwsgi` module of this instance, importable from now on:
    in the process that loads the apps, before it loads them (`master`:
    whether that process is a master)."""
    global _state, _module
    _state = _State(config, scoreboard, master, mules, spoolers,
                    uwsgi_signals)
    module = types.ModuleType("uwsgi")
    module.__dict__.update(_values(config, reloaded))
    module.__dict__.update(_FUNCTIONS)
    if spoolers:
        module.__dict__.update(_SPOOLER_FUNCTIONS)
        module.spoolers = tuple(folder.encode() for folder in spoolers.dirs)
    if sharedarea.configured():
        module.__dict__.update(sharedarea.FUNCTIONS)
    if queue.configured():
        module.__dict__.update(queue.FUNCTIONS)
        module.queue_size = queue.size()
    rpc.install(config["rpc-max"])
    module.__getattr__ = _missing
    sys.modules["uwsgi"] = _module = module
    # Last: a uwsgidecorators installed for the app (uWSGI's) comes first.
    if APP_MODULES not in sys.path:
        sys.path.append(APP_MODULES)


def _values(config, reloaded):
    values = {
        "version": UWSGI_VERSION.encode(),
        "version_info": VERSION_INFO,
        "hostname": socket.gethostname().encode(),
        "numproc": config["processes"],
        # uWSGI 2.0.28 and later always run with threads enabled.
        "has_threads": 1,
        "cores": config["gevent"] or config["threads"],
        "loop": None,
        "opt": options(config),
        "sockets": [],
        "magic_table": {key.encode(): value.encode()
                        for key, value in sorted(config.magic.items())
                        if value},
        "unbit": None,
        "buffer_size": config["buffer-size"],
        "started_on": int(time.time()),
        "applications": None,
        "is_a_reload": reloaded,
        "SPOOL_OK": spooler.SPOOL_OK,
        "SPOOL_RETRY": spooler.SPOOL_RETRY,
        "SPOOL_IGNORE": spooler.SPOOL_IGNORE,
    }
    if config["mode"] is not None:
        values["mode"] = config["mode"].encode()
    if config["pidfile"]:
        values["pidfile"] = config["pidfile"].encode()
    return values


def options(config):
    """uwsgi.opt: each option as written (a short one by its long name),
    str keys and bytes values, True for a flag given without one; a
    repeated option keeps its last value, in its first place."""
    found = {}
    for entry in config.exported:
        if entry.placeholder:
            continue
        # The bytes as written: a file in Latin-1 was read with its
        # non-UTF-8 bytes kept as surrogates.
        found[entry.key] = True if entry.bare else entry.value.encode(
            "utf-8", "surrogateescape")
    return found


def set_sockets(fds):
    """uwsgi.sockets: the descriptors of the instance's bound sockets."""
    _module.sockets = list(fds)


def enter_worker(wid, shared):
    """In worker `wid`, after fork: its id and the apps it serves (or will
    load), then the app's post_fork_hook, as uWSGI calls it in each
    worker."""
    _state.wid = wid
    _state.shared = shared
    if _state.signals:
        _state.signals.enter_worker(wid, _state.scoreboard,
                                    _state.config["harakiri"])
    _call_hook("post_fork_hook")


def enter_mule(mule_id):
    """In mule `mule_id`, after fork: its id, then the app's
    post_fork_hook, as uWSGI calls it in mules too."""
    _state.mule_id = mule_id
    if _state.signals:
        _state.signals.enter_mule(mule_id)
    _call_hook("post_fork_hook")


def enter_spooler(index):
    """In spooler process `index`, after fork, as enter_mule."""
    _state.spooler = index
    _call_hook("post_fork_hook")


def spooler_function():
    """The app's uwsgi.spooler, for a spooler's tasks."""
    return _module.__dict__.get("spooler")


def message_hook():
    """The app's uwsgi.mule_msg_hook, for a bare mule's messages."""
    return _module.__dict__.get("mule_msg_hook")


def worker_exit():
    """A worker ends: the app's atexit hook (the worker decides when)."""
    _call_hook("atexit")


def _call_hook(name):
    hook = _module.__dict__.get(name)
    if hook is None:
        return
    try:
        hook()
    except Exception:
        # As uWSGI: the traceback is logged, the process goes on.
        log.app_traceback()


def _missing(name):
    if name == "env":
        return _environ()
    if name in LACKING:
        raise Lacking(f"uwsgi.{name} is not available: ugu has no "
                      f"{LACKING[name]}")
    raise AttributeError(f"module 'uwsgi' has no attribute '{name}'")


def _request_frame(code):
    """The frame of `code` (a function of the worker's request code) that
    is serving the caller's request: on the caller's stack, whatever
    thread or greenlet it runs in."""
    frame = _find_frame(code)
    if frame is None:
        raise SystemError(_NO_REQUEST)
    return frame


def _find_frame(code):
    """The caller's frame of `code`; in a worker of a single core, also
    one in another thread (the core's), as uWSGI finds that core's
    request from any thread of the app's."""
    found = _frame_below(sys._getframe(2), code)
    if found is None and _state.single_core:
        for frame in sys._current_frames().values():
            found = found or _frame_below(frame, code)
    return found


def _frame_below(frame, code):
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    return frame


# The worker's request code is imported where a function needs it: the
# processes that serve no request (a router's master) never load it.
def _exchange():
    from ugu.vassal.request import run_app
    return _request_frame(run_app.__code__).f_locals["ex"]


def _connection():
    from ugu.vassal.worker import serve_connection
    return _request_frame(serve_connection.__code__).f_locals["conn"]


def _environ():
    """uwsgi.env: uWSGI sets it for each request of a worker without
    threads, and never with them."""
    if _state.config["threads"] < 2:
        from ugu.vassal.request import run_app
        frame = _find_frame(run_app.__code__)
        if frame is not None:
            return frame.f_locals["environ"]
    raise AttributeError("module 'uwsgi' has no attribute 'env'")


# -- the functions ----------------------------------------------------------
def worker_id():
    return _state.wid


def masterpid():
    return _state.master


def total_requests():
    """The instance's requests that have ended (this one is counted when
    its log line is written)."""
    return _state.scoreboard.total()


def request_id():
    """The requests the worker's slot has served before this one."""
    ex = _exchange()
    return ex.ctx.scoreboard.requests(ex.ctx.wid)


def reload():
    """A graceful reload of the instance, as SIGHUP asks for it."""
    os.kill(_state.instance, signal.SIGHUP)
    return True


def stop():
    """uWSGI's stop(): SIGQUIT to the master, a shutdown in 2.0."""
    os.kill(_state.instance, signal.SIGQUIT)
    return True


def log_line(message):
    """uwsgi.log(): a line in the log, as the server's own."""
    if not isinstance(message, str):
        raise TypeError(f"log() argument must be str, not "
                        f"{type(message).__name__}")
    log.log(message)
    return True


def set_logvar(key, value):
    """A value for `%(key)` in log-format, for this request's line."""
    _exchange().set_logvar(_line_text(key), _line_text(value))


def get_logvar(key):
    found = (_exchange().logvars or {}).get(_line_text(key))
    return None if found is None else found.encode("latin-1")


def _line_text(value):
    """A str or bytes as the log line's text, whose latin-1 is the bytes
    uWSGI would write: a str's UTF-8, a bytes as it is."""
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"a str or bytes is required, not "
                        f"{type(value).__name__}")
    return bytes(value).decode("latin-1")


def log_this_request():
    """This request gets its line even under disable-logging."""
    from ugu.vassal import reqlog
    ex = _exchange()
    if _state.forced_log is None:
        _state.forced_log = reqlog.forced_logger(_state.config, _state.wid)
    ex.log = lambda: ex.write_log(_state.forced_log)


def connection_fd():
    return _connection().fileno()


def disconnect():
    """The client's connection closes now, as uWSGI closes it: what the
    app writes after it is a write error (EBADF)."""
    _connection().close()


def cl():
    """The request body's length, as its CONTENT_LENGTH gave it."""
    ex = _exchange()
    return ex.input.length if ex.input is not None else 0


def mem():
    """(rss, vsz) of this process, in bytes."""
    from ugu.vassal.reqlog import process_memory
    vsz, rss = process_memory()
    return rss, vsz


def micros():
    return time.time_ns() // 1000


def setprocname(name):
    if not isinstance(name, str):
        raise TypeError(f"setprocname() argument must be str, not "
                        f"{type(name).__name__}")
    setproctitle.setproctitle(name)


def workers():
    """A dict for each worker, with the keys and types of uWSGI's."""
    return tuple(_worker(wid)
                 for wid in range(1, _state.config["processes"] + 1))


def _worker(wid):
    board = _state.scoreboard
    pid, spawns, last_spawn = board.spawn(wid)
    delta, tx, running_time, avg_rt = board.traffic(wid)
    apps = tuple(_app(wid, *app) for app in board.apps_of(wid))
    return {
        "id": wid if spawns or pid else 0, "pid": pid,
        "requests": board.requests(wid), "delta_requests": delta,
        "signals": (_state.signals.worker_signals(wid)[0]
                    if _state.signals else 0),
        "exceptions": sum(app["exceptions"] for app in apps),
        "status": b"busy" if board.busy(wid) else b"idle",
        # As uWSGI's: measured only under memory-report or
        # reload-on-rss, which ugu's workers do not store.
        "rss": 0, "vsz": 0,
        "running_time": running_time, "last_spawn": last_spawn,
        "respawn_count": max(spawns - 1, 0), "tx": tx, "avg_rt": avg_rt,
        "apps": apps,
    }


def _app(wid, app_id, startup_time, mountpoint):
    requests, exceptions = _state.scoreboard.app_counts(wid, app_id)
    loaded = _state.shared.apps.loaded if _state.shared else []
    found = [app.callable for app in loaded if app.id == app_id]
    return {
        "id": app_id, "modifier1": 0, "mountpoint": mountpoint.encode(),
        "startup_time": startup_time,
        # Addresses, as uWSGI's: the one interpreter, the app's callable
        # (as this process holds it).
        "interpreter": id(sys.modules["__main__"]),
        "callable": id(found[0]) if found else 0,
        "requests": requests, "exceptions": exceptions, "chdir": b"",
    }


def _lock_number(number):
    """The user lock `number` names (0 to `locks`)."""
    if _state.spooler is not None:
        raise ValueError("The spooler cannot lock/unlock resources")
    if not 0 <= number < len(_state.locks):
        raise ValueError("Invalid lock number")
    return _state.locks[number]


def lock(number=0):
    found = _lock_number(number)
    if rwlocks.cooperative():
        # A gevent worker: the holder may be a greenlet of this process,
        # which must run to unlock (uWSGI's worker hangs there).
        rwlocks.wait_turns(lambda: found.acquire(False))
    else:
        found.acquire()
    _HOLDER.pack_into(_state.holder, _HOLDER.size * number, os.getpid())


def unlock(number=0):
    found = _lock_number(number)
    # uWSGI's mutex ignores the unlock of a lock that is not held.
    if found._is_zero():
        _release(number)


def _release(number):
    _HOLDER.pack_into(_state.holder, _HOLDER.size * number, 0)
    _state.locks[number].release()


def worker_died(pid):
    """In the master: a worker ended; the locks it held, if any, are
    free again, as uWSGI's robust mutex is to its next locker."""
    for number in range(len(_state.locks)):
        if _HOLDER.unpack_from(_state.holder,
                               _HOLDER.size * number)[0] == pid:
            _release(number)


def is_locked(number=0):
    found = _lock_number(number)
    if not found.acquire(False):
        return True
    found.release()
    return False


# -- mules ------------------------------------------------------------------
def mule_id():
    return _state.mule_id


def mule_msg(message, mule=None):
    """Queue a message for a mule: any free one, mule N (0: any), or one
    of farm b"NAME" (as uWSGI's Python 3 module, a farm's name is bytes:
    a str is an invalid mule).  False when the queue refuses it."""
    message = _message(message, "mule_msg")
    found = _state.mules
    if not found:
        raise ValueError("no mule configured")
    if mule is None or (isinstance(mule, int) and mule == 0):
        return found.shared.send(message)
    if isinstance(mule, bytes):
        farm = found.farm(mule.decode("latin-1"))
        if farm is None:
            raise ValueError("unknown farm")
        return farm.queue.send(message)
    if not isinstance(mule, int):
        raise ValueError("invalid mule")
    if not 1 <= mule <= len(found):
        # uWSGI writes to no queue there, and says so.
        log.log("mule_send_msg(): Bad file descriptor [core/mule.c line 28]")
        return False
    return found.queues[mule - 1].send(message)


def _message(message, function):
    """A message as uWSGI's module takes it: bytes, or a str (its
    UTF-8); Python refuses it any other buffer, as one that could
    change."""
    if isinstance(message, str):
        return message.encode()
    if isinstance(message, bytes):
        return bytes(message)
    try:
        memoryview(message)
    except TypeError:
        raise TypeError(f"a bytes-like object is required, not "
                        f"'{type(message).__name__}'") from None
    raise TypeError(f"{function}() argument 1 must be read-only "
                    f"bytes-like object, not {type(message).__name__}")


def _in_mule(what):
    if not _state.mule_id:
        raise ValueError(f"you can receive {what} messages only in a mule "
                         f"!!!")


def mule_get_msg(signals=True, farms=True,
                 buffer_size=mules.MESSAGE_BUFFER, timeout=-1):
    """The next message for this mule (its own, any mule's, and its
    farms' unless `farms` is None or False), cut to `buffer_size`; b""
    once `timeout` seconds pass.  Unless `signals` is None or False,
    a uWSGI signal for the mule is handled while it waits, and then the
    answer is None, as uWSGI's."""
    _in_mule("mule")
    ends = _state.mules.inbox(_state.mule_id,
                              farms=farms is not None and farms is not False)
    handled = signals is not None and signals is not False
    return mules.receive(ends, buffer_size,
                         None if timeout < 0 else timeout,
                         _state.signals if handled else None)


def farm_msg(farm, message):
    """Queue a message for a mule of farm `farm` (a str here); nothing
    for a farm not there, as in uWSGI."""
    if not isinstance(farm, str):
        raise TypeError(f"farm_msg() argument 1 must be str, not "
                        f"{type(farm).__name__}")
    message = _message(message, "farm_msg")
    found = _state.mules.farm(farm) if _state.mules else None
    if found is not None:
        try:
            found.queue.send_end.send(message)
        except OSError as e:
            log.log(f"write(): {e.strerror} "
                    f"[plugins/python/uwsgi_pymodule.c line 1235]")


def farm_get_msg():
    """The next message for the farms of this mule (waits for ever in a
    mule of none, as uWSGI's)."""
    _in_mule("farm")
    ends = [farm.queue.receive_end
            for farm in _state.mules.farms_of(_state.mule_id)]
    return mules.receive(ends, mules.MESSAGE_BUFFER)


def in_farm(name=None):
    """True in a mule of a farm (of farm `name`), else None."""
    if not _state.mule_id:
        return None
    for farm in _state.mules.farms_of(_state.mule_id):
        if name is None or farm.name == name:
            return True
    return None


# -- the spooler ------------------------------------------------------------
def i_am_the_spooler():
    return True if _state.spooler is not None else None


def spool(*args, **kwargs):
    """Spool a task (a dict of bytes, or keyword arguments, which
    Python 3 makes str keys and uWSGI refuses); its file, as bytes."""
    task = args[0] if args else (kwargs or None)
    return spooler.spool(_state.spoolers, task,
                         _state.config["spooler-quiet"])


def set_spooler_frequency(seconds):
    """The spoolers' scan period from their next wait, for all of
    them."""
    if not isinstance(seconds, int):
        raise TypeError(f"'{type(seconds).__name__}' object cannot be "
                        f"interpreted as an integer")
    _state.spoolers.set_frequency(seconds)
    return True


def spooler_jobs():
    return spooler.jobs(_state.spoolers)


def spooler_pid():
    return _state.spoolers.pids()[0]


def spooler_pids():
    return _state.spoolers.pids()


def spooler_get_task(path):
    """The dict the spooler function would get for the task file at
    `path` (a str), or None."""
    if not isinstance(path, str):
        raise TypeError(f"spooler_get_task() argument 1 must be str, not "
                        f"{type(path).__name__}")
    return spooler.read_task(path)


_SPOOLER_FUNCTIONS = {f.__name__: f for f in (
    spool, set_spooler_frequency, spooler_jobs, spooler_pid, spooler_pids,
    spooler_get_task)}
_SPOOLER_FUNCTIONS["send_to_spooler"] = spool

# -- uWSGI signals (signals.py) -------------------------------------------
def _signum(value):
    return operator.index(value) & 0xFF


def _framework(what):
    """The instance's signals; without a master, uWSGI refuses `what`."""
    if _state.signals is None:
        raise ValueError(f"unable to {what}")
    return _state.signals


def register_signal(signum, who, handler):
    """Run `handler(signum)` where `who` names ("", "worker", "workers",
    "workerN", "active-workers", "mule", "mules", "muleN", "farmN",
    "farm_NAME") when the signal is raised."""
    signum = _signum(signum)
    if not isinstance(who, str):
        raise TypeError(f"register_signal() argument 2 must be str, not "
                        f"{type(who).__name__}")
    if _state.signals is None:
        log.log("you cannot register signals without a master")
    if not _framework("register signal").register(signum, who, handler):
        raise ValueError("unable to register signal")


def raise_signal(signum, remote=None):
    """uwsgi.signal(): the master routes the number to its target."""
    signum = _signum(signum)
    if remote is not None:
        # uWSGI's remote signals speak its modifier 110, which ugu does
        # not serve nor send.
        raise OSError(f"unable to deliver signal {signum} to node {remote}: "
                      f"ugu sends no remote signals")
    if _state.signals is None:
        signals.send(None, signum)
    else:
        _state.signals.raise_signal(signum)


def signal_registered(signum):
    signum = _signum(signum)
    if _state.signals and _state.signals.registered(signum):
        return True
    return None


def add_timer(signum, seconds):
    """Raise the signal every `seconds`, from the master."""
    signum, seconds = _signum(signum), operator.index(seconds)
    table = _framework("add timer").table
    if not table.add(signals.TIMER, signum, seconds):
        raise ValueError("unable to add timer")


def add_rb_timer(signum, seconds, iterations=0):
    """add_timer, `iterations` times (0: for ever)."""
    signum, seconds = _signum(signum), operator.index(seconds)
    iterations = operator.index(iterations)
    table = _framework("add rb_timer").table
    if not table.add(signals.RB_TIMER, signum, seconds, iterations):
        raise ValueError("unable to add rb_timer")


def add_cron(signum, minute, hour, day, month, week):
    """Raise the signal when the local time matches, as the cron
    option's fields read (-1 any, -N every N)."""
    fields = [operator.index(f) for f in (minute, hour, day, month, week)]
    table = _framework("add cron").table
    if not table.add(signals.CRON, _signum(signum), *fields):
        raise ValueError("unable to add cron")
    return True


def add_file_monitor(signum, filename):
    """Raise the signal when the file (or an entry of the directory)
    changes, as inotify tells the master.  Without a master, as uWSGI's,
    it is kept where nobody looks."""
    signum = _signum(signum)
    if not isinstance(filename, str):
        raise TypeError(f"add_file_monitor() argument 2 must be str, not "
                        f"{type(filename).__name__}")
    if _state.signals and \
            not _state.signals.table.add_file_monitor(signum,
                                                      filename.encode()):
        raise ValueError("unable to add file monitor")


def signal_wait(*signum):
    """In a request: wait for a signal for this worker (that one, if
    given), run its handler, and answer b"" (signal_received() then
    gives its number)."""
    wanted = _signum(signum[0]) if signum else None
    ex = _exchange()
    ex.signal_received = -1
    found = _state.signals
    if found is None or not found.inbox:
        raise SystemError("error waiting for signal")
    while True:
        for end in fdwait.readable(found.inbox):
            received = found.receive(end)
            if received and (wanted is None or wanted in received):
                ex.signal_received = received[-1] if wanted is None \
                    else wanted
                return b""


def signal_received():
    return getattr(_exchange(), "signal_received", 0)


# -- RPC (rpc.py) -------------------------------------------------------------
def register_rpc(*args, **kwargs):
    """Register `function` under `name` (a str) in this process's table
    (the master's: every worker's)."""
    name, function, _ = pyargs.parse("register_rpc", args, kwargs, "sO|B",
                                     (0,))
    if _state.mule_id or _state.spooler is not None:
        where = None
    else:
        where = f"worker {_state.wid}" if _state.wid else "master"
    if not rpc.table().register(name, function, where):
        raise ValueError("unable to register rpc function")
    return True


def rpc_list(*args):
    return rpc.table().names()


def call(*args):
    """A function of this process's table, by name (bytes), with bytes
    arguments; its bytes, or None."""
    if not args:
        raise ValueError(rpc._FAILED)
    return _rpc_call(None, args[0], args[1:])


def rpc_call(*args):
    """uwsgi.rpc(node, name, *args): `node` a "HOST:PORT" or a unix
    socket's path (str or bytes), or anything else (None, "") for this
    process's table."""
    if len(args) < 2:
        raise ValueError(rpc._FAILED)
    node = args[0]
    if isinstance(node, bytes):
        node = node.decode("latin-1")
    elif not isinstance(node, str):
        node = None
    return _rpc_call(node or None, args[1], args[2:])


def _rpc_call(node, name, args):
    # uWSGI's Python 3 module wants bytes for the name and each argument;
    # past 255 arguments it overruns its array (ugu refuses).
    if not isinstance(name, bytes) or len(args) > rpc.MAX_ARGS or \
            not all(isinstance(arg, bytes) for arg in args):
        raise ValueError(rpc._FAILED)
    if node is None:
        return rpc.table().call(name, args)
    return rpc.call_node(node, name, args,
                         _state.config["socket-timeout"] or None)


# -- chunked input (chunked.py) ---------------------------------------------
def _chunks():
    ex = _exchange()
    if ex.chunked_input is None:
        from ugu.vassal import chunked
        if _state.chunked is None:
            _state.chunked = chunked.Settings(_state.config)
        ex.chunked_input = chunked.reader(ex, _state.chunked)
    return ex.chunked_input


def chunked_read(timeout=0):
    """The request body's next chunk (b"" after the last), waiting up to
    `timeout` seconds for it (0: chunked-input-timeout, -1: for ever)."""
    if not isinstance(timeout, int):
        raise TypeError(f"'{type(timeout).__name__}' object cannot be "
                        f"interpreted as an integer")
    return _chunks().read(timeout)


def chunked_read_nb():
    """The next chunk if it came whole, else None (b"" after the
    last)."""
    return _chunks().read(wait=False)


# -- websockets (websocket.py) ----------------------------------------------
def _websocket():
    """The request's websocket, made by its first websocket call (as in
    uWSGI, a receive needs no handshake before it)."""
    from ugu.vassal import websocket
    ex = _exchange()
    if ex.websocket is None:
        if _state.websockets is None:
            _state.websockets = websocket.Settings(_state.config)
        ex.websocket = websocket.WebSocket(ex, _state.websockets)
    return ex.websocket


def websocket_handshake(*args):
    """Answer the request with 101.  Its arguments (key, origin, proto:
    str or bytes, positional and each optional, as uWSGI takes them)
    stand for the request's Sec-WebSocket-Key, Origin and
    Sec-WebSocket-Protocol; one left out or empty, the request's."""
    if len(args) > 3:
        raise TypeError(f"websocket_handshake() takes at most 3 arguments "
                        f"({len(args)} given)")
    given = [_message(value, "websocket_handshake") for value in args]
    key, origin, proto = given + [b""] * (3 - len(given))
    ws = _websocket()
    request_vars = ws.ex.vars
    if not ws.handshake(
            key or _var(request_vars, "HTTP_SEC_WEBSOCKET_KEY"),
            origin or _var(request_vars, "HTTP_ORIGIN"),
            proto or _var(request_vars, "HTTP_SEC_WEBSOCKET_PROTOCOL")):
        raise OSError("unable to complete websocket handshake")


def _var(request_vars, key):
    return request_vars.get(key, "").encode("latin-1")


def websocket_recv():
    """The next message (bytes), waiting for it."""
    message = _websocket().receive()
    if message is None:
        raise OSError("unable to receive websocket message")
    return message


def websocket_recv_nb():
    """The next message, or b"" when none has come."""
    message = _websocket().receive(wait=False)
    if message is None:
        raise OSError("unable to receive websocket message")
    return message


def websocket_send(message):
    """Send a text message (a str goes as its UTF-8)."""
    message = _message(message, "websocket_send")
    from ugu.vassal.websocket import TEXT
    if not _websocket().send(TEXT, message):
        raise OSError("unable to send websocket message")


def websocket_send_binary(message):
    message = _message(message, "websocket_send_binary")
    from ugu.vassal.websocket import BINARY
    if not _websocket().send(BINARY, message):
        raise OSError("unable to send websocket binary message")


# -- descriptors, files and request vars -----------------------------------
def close(fd):
    """Close a descriptor the app has (connect()'s)."""
    try:
        os.close(operator.index(fd))
    except OSError:
        pass    # as uWSGI: the result of close() is not looked at


def connect(address, timeout=0):
    """A connected socket's descriptor (-1 when the connection fails):
    HOST:PORT, or else a unix socket's path (@NAME: abstract)."""
    if not isinstance(address, str):
        raise TypeError(f"connect() argument 1 must be str, not "
                        f"{type(address).__name__}")
    host, colon, port = address.partition(":")
    if colon:
        family, target = socket.AF_INET, (host, _atoi(port))
    else:
        family = socket.AF_UNIX
        target = "\0" + address[1:] if address.startswith("@") else address
    conn = socket.socket(family, socket.SOCK_STREAM)
    conn.settimeout(timeout or None)
    try:
        conn.connect(target)
    except (OSError, OverflowError):
        conn.close()
        return -1
    conn.setblocking(True)
    return conn.detach()


def _atoi(text):
    """C's atoi(): the leading digits, 0 without any."""
    digits = len(text) - len(text.lstrip("0123456789"))
    return int(text[:digits] or 0)


def is_connected(fd):
    """Whether the socket `fd` has no pending error (SO_ERROR)."""
    try:
        sock = socket.socket(fileno=os.dup(operator.index(fd)))
    except OSError:
        return False
    with sock:
        try:
            return not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError:
            return False


def send(*args):
    """send(data) on the request's connection, or send(fd, data):
    True, or None once the write failed (and said so)."""
    if not 1 <= len(args) <= 2:
        raise TypeError(f"send() takes 1 or 2 arguments ({len(args)} "
                        f"given)")
    data = args[-1]
    if not isinstance(data, bytes):
        raise TypeError(f"send() data must be bytes, not "
                        f"{type(data).__name__}")
    fd = operator.index(args[0]) if len(args) == 2 else connection_fd()
    try:
        _write_all(fd, data)
    except OSError as e:
        log.log(f"write(): {e.strerror} [plugins/python/uwsgi_pymodule.c "
                f"line 706]")
        return None
    return True


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            fdwait.writable(fd)


def recv(fd, max_size=4096):
    """Up to `max_size` bytes (4096 at most) read from `fd`; None at
    its end or on an error."""
    fd, max_size = operator.index(fd), min(operator.index(max_size), 4096)
    try:
        data = os.read(fd, max(max_size, 0))
    except BlockingIOError:
        fdwait.readable([fd])
        return recv(fd, max_size)
    except OSError:
        return None
    return data or None


def add_var(key, value):
    """Add a var to the request's own (the log line's %(var.KEY), the
    routes'); the app's environ, made already, does not change."""
    ex = _exchange()
    key, value = _line_text(key), _line_text(value)
    if ex.vars_size + 4 + len(key) + len(value) > ex.ctx.buffer_size:
        log.log(f"not enough buffer space to add {key} variable, consider "
                f"increasing it with the --buffer-size option")
        raise ValueError("unable to add request var, check your buffer "
                         "size")
    ex.add_var(key, value)
    return True


def sendfile(what, chunk=0, pos=0, filesize=0):
    """Send a file (a path, or an object with fileno()) as the response
    body's next bytes: from `pos`, `filesize` of them (0: all it has);
    the head goes first if it has not.  `chunk` is not used, as in
    uWSGI.  True; None for a file that cannot be opened."""
    ex = _exchange()
    for number in (chunk, pos, filesize):
        operator.index(number)
    if isinstance(what, (str, bytes)):
        path = what.encode("latin-1") if isinstance(what, str) else what
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as e:
            log.log(f'open("{os.fsdecode(path)}"): {e.strerror} '
                    f'[plugins/python/uwsgi_pymodule.c line 800]')
            return None
        try:
            _send_file(ex, fd, pos, filesize)
        finally:
            os.close(fd)
    else:
        # The app's file stays open, its own to close (uWSGI closes its
        # descriptor under it).
        _send_file(ex, _fileno(what), pos, filesize)
    return True


def _fileno(what):
    fd = what if isinstance(what, int) else what.fileno()
    return operator.index(fd)


def _send_file(ex, fd, pos, count):
    from ugu.vassal.request import SENDFILE, ClientWriteError
    if ex.write_failed:
        raise OSError("write error")
    try:
        if not ex.headers_sent:
            ex.send_head()
        if not count:
            size = os.fstat(fd).st_size
            if pos >= size:
                return
            count = size - pos
        if ex.transport.head_only:
            # A HEAD's line counts the body it did not send, as uWSGI's.
            ex.body_size += 0 if ex.body_dropped else count
            return
        ex.via = "sendfile"
        try:
            ex.transport.send_file(fd, pos, count, ex.waited)
        except OSError as e:
            raise ClientWriteError(SENDFILE, e) from None
        ex.body_size += count
    except ClientWriteError as e:
        ex.write_failed = True
        e.log(ex)
        if not ex.ctx.quiet_writes:
            raise OSError("write error") from None


def offload(*args):
    """uWSGI 2.0's offload() does nothing (its body, arguments included,
    is commented out) and answers b"": so does ugu's.  An app offloads a
    file by returning wsgi.file_wrapper's, under offload-threads."""
    return b""


def extract(name):
    """The bytes of a file (or of `exec://COMMAND`'s output, or of
    stdin for `-`); None when it is empty."""
    if not isinstance(name, str):
        raise TypeError(f"extract() argument 1 must be str, not "
                        f"{type(name).__name__}")
    scheme, found, _ = name.partition("://")
    if found and scheme != "exec":
        raise ValueError(f"uwsgi.extract: ugu reads files, `-` and "
                         f"exec:// only, not {scheme}://")
    try:
        data = _read_source(name)
    except OSError as e:
        # uWSGI's worker exits there; ugu's app gets the error.
        log.log(f'open("{name}"): {e.strerror} [core/io.c line 525]')
        raise
    return data or None


def _read_source(name):
    if name.startswith(sources.EXEC):
        return subprocess.run(name[len(sources.EXEC):], shell=True,
                              stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL).stdout
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as f:
        return f.read()


def parsefile(filename):
    """The vars of a uwsgi packet stored in a file (modifier1 0 or 17,
    a spool file's), as a dict of bytes; None when it holds none."""
    if not isinstance(filename, str):
        raise TypeError(f"parsefile() argument 1 must be str, not "
                        f"{type(filename).__name__}")
    try:
        with open(filename, "rb") as f:
            head = f.read(4)
            if len(head) != 4:
                return None
            modifier1, size, _ = struct.unpack("<BHB", head)
            block = f.read(size)
    except OSError as e:
        # uWSGI's says the read() it then does not do, with open()'s
        # error.
        log.log(f'open("{filename}"): {e.strerror} '
                f'[plugins/python/uwsgi_pymodule.c line 2451]')
        log.log(f'read(): {e.strerror} '
                f'[plugins/python/uwsgi_pymodule.c line 2471]')
        return None
    if len(block) != size or modifier1 not in (0, 17):
        return None
    return _packet_vars(block)


def _packet_vars(block):
    found, at = {}, 0
    while at < len(block):
        if at + 2 >= len(block):
            return None
        key_size = int.from_bytes(block[at:at + 2], "little")
        if not key_size:
            log.log("uwsgi key cannot be null.")
            return None
        at += 2
        if at + key_size >= len(block):
            return None
        key = block[at:at + key_size]
        at += key_size
        if at + 2 > len(block):
            return None
        value_size = int.from_bytes(block[at:at + 2], "little")
        at += 2
        if at + value_size > len(block):
            return None
        found[key] = block[at:at + value_size]
        at += value_size
    return found


def embedded_data(name):
    """uWSGI's data linked into its binary (_binary_NAME_start); ugu is
    no binary and has none."""
    if not isinstance(name, str):
        raise TypeError(f"embedded_data() argument 1 must be str, not "
                        f"{type(name).__name__}")
    raise ValueError(f"unable to find symbol {name}")


def set_user_harakiri(seconds):
    """The master kills this worker `seconds` from now (0: never), as
    harakiri does, unless the request ends before: its end clears it."""
    seconds = operator.index(seconds)
    if not _state.master:
        log.log("!!! unable to set user harakiri without the master "
                "process !!!")
        return None
    if _state.mule_id or _state.spooler is not None:
        raise ValueError("uwsgi.set_user_harakiri() is for workers in ugu: "
                         "use mule-harakiri or spooler-harakiri in the "
                         "config for mules and spoolers")
    _state.scoreboard.set_user_harakiri(
        _state.wid, time.time() + seconds if seconds else 0.0)
    return None


def ready():
    """True once the instance is ready: in its workers, mules and
    spoolers; None while the master loads the apps."""
    if _state.wid or _state.mule_id or _state.spooler is not None:
        return True
    return None


_FUNCTIONS = {f.__name__: f for f in (
    close, connect, is_connected, send, recv, add_var, sendfile, offload,
    extract, parsefile, embedded_data, ready, set_user_harakiri,
    worker_id, masterpid, total_requests, request_id, workers, reload, stop,
    set_logvar, get_logvar, log_this_request, connection_fd, disconnect,
    cl, mem, micros, setprocname, lock, unlock, is_locked, mule_id,
    mule_msg, mule_get_msg, farm_msg, farm_get_msg, in_farm,
    i_am_the_spooler, register_signal, signal_registered, add_timer,
    add_rb_timer, add_cron, add_file_monitor, signal_wait, signal_received,
    chunked_read, chunked_read_nb,
    websocket_handshake, websocket_recv, websocket_recv_nb, websocket_send,
    websocket_send_binary, register_rpc, rpc_list, call)}
_FUNCTIONS["log"] = log_line
_FUNCTIONS["rpc"] = rpc_call
_FUNCTIONS["signal"] = raise_signal
_FUNCTIONS.update(cacheapi.FUNCTIONS)
_FUNCTIONS.update(metrics.FUNCTIONS)
