"""Process plumbing shared by the emperor, masters and workers.

Signal handlers only record the signal number; the owning loop picks it up
from `SignalQueue.wait()`, woken through a pipe, so no work ever runs inside
a handler.
"""

import contextlib
import ctypes
import os
import queue
import re
import resource
import signal
import sys

from ugu import fdwait, log
from ugu.options import registry
from ugu.options.errors import ConfigError

PR_SET_PDEATHSIG = 1
# How this process was started, before the app's own sys.argv and
# sys.executable (pyargv, py-executable) replace them: what ugu runs
# again (a binary reload, a vassal, optimize's restart).
ARGV = tuple(sys.argv)
EXECUTABLE = sys.executable
_daemon_pid = None
# The C library through the symbols this process already has: finding
# it by name (ctypes.util) would cost every process 2 MB of modules.
libc = ctypes.CDLL(None, use_errno=True)
# The signals a fresh child sets back to their default.
_RESET = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
          signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2}
# The signals a running master takes to reload or to report, whose
# default action ends a process.  A master's new image (a reload's exec)
# starts with them ignored, as an ignored signal stays ignored across an
# exec, then holds them until its SignalQueue takes them: a second reload
# sent while the new image starts used to end the whole instance.
RELOAD_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1)
_held = []


def hold_ignored_signals():
    """Hold those of RELOAD_SIGNALS this process started ignoring, for
    the SignalQueue to come: held, not ignored, so that the programs it
    runs meanwhile (hooks, daemons) start with their default action."""
    for signum in RELOAD_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, _hold)


def _hold(signum, frame):
    _held.append(signum)


def exec_image(path, argv, env):
    """Become `argv` (the program at `path`), a master's new image, with
    RELOAD_SIGNALS ignored until it holds them."""
    before = {signum: signal.signal(signum, signal.SIG_IGN)
              for signum in RELOAD_SIGNALS}
    try:
        os.execve(path, argv, env)
    except OSError:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        raise


class SignalQueue:
    """Signals recorded by handlers, delivered to one loop in order."""

    def __init__(self, signals):
        self._queue = queue.SimpleQueue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for signum in signals:
            signal.signal(signum, self._record)
        self._take_held()

    def _take_held(self):
        """The signals held since the process started, delivered first."""
        while _held:
            self._queue.put(_held.pop(0))
            os.write(self._write, b"\0")

    def add(self, signum):
        """Record `signum` too (a unix_signal hook's); a child forked
        later sets it back to its default.  ValueError or OSError for a
        number no handler can take."""
        signal.signal(signum, self._record)
        _RESET.add(signum)

    def _record(self, signum, frame):
        self._queue.put(signum)

    def fileno(self):
        return self._read

    def wait(self, timeout, extra=()):
        """Signals received, waiting up to timeout; also returns which of
        the `extra` file objects became readable."""
        found = fdwait.readable([self._read, *extra], timeout)
        if self._read in found:
            self._drain()
        return self._pending(), [f for f in found if f is not self._read]

    def _drain(self):
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass

    def _pending(self):
        signals = []
        while not self._queue.empty():
            signals.append(self._queue.get_nowait())
        return signals

    def close(self):
        signal.set_wakeup_fd(-1)
        os.close(self._read)
        os.close(self._write)


def reset_signals():
    """Default dispositions, for a freshly forked child."""
    signal.set_wakeup_fd(-1)
    for signum in _RESET:
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def signals_blocked(signals):
    """Block signals around a fork: a signal sent to a new child before
    it installs its own handlers then waits for `unblock_signals()`,
    instead of running the parent's handler in the child and being
    lost."""
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def unblock_signals():
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


class _Rlimit(ctypes.Structure):
    _fields_ = [("rlim_cur", ctypes.c_ulong), ("rlim_max", ctypes.c_ulong)]


def set_max_fd(config):
    """max-fd: both limits on open files, for this process and all it
    starts, as uWSGI sets them; a refusal is said in uWSGI's words and
    the start goes on.  Through the C library, whose errno uWSGI shows
    (Python's resource module turns it into a ValueError's text)."""
    wanted = config["max-fd"]
    if not wanted:
        return
    limit = _Rlimit(wanted, wanted)
    if libc.setrlimit(resource.RLIMIT_NOFILE, ctypes.byref(limit)) != 0:
        log.log(f"setrlimit(): {os.strerror(ctypes.get_errno())} "
                f"[core/uwsgi.c line 2710]")


_MEGABYTE = 1024 * 1024


def limit_address_space(config):
    """limit-as: both limits on the address space (MB), for this process
    and all it starts, as uWSGI sets them; then, limited by it or from
    outside, the hard limit said as uWSGI says it."""
    wanted = config["limit-as"] * _MEGABYTE
    if wanted:
        log.log("limiting address space of processes...")
        limit = _Rlimit(wanted, wanted)
        if libc.setrlimit(resource.RLIMIT_AS, ctypes.byref(limit)) != 0:
            log.log(f"setrlimit(): {os.strerror(ctypes.get_errno())} "
                    f"[core/uwsgi.c line 2675]")
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        log.log(f"your process address space limit is {hard} bytes "
                f"({hard // _MEGABYTE} MB)")


def lock_memory():
    """never-swap: every page of this process, and all it maps from now
    on, kept in RAM, as uWSGI locks them once its log is set up (the
    kernel passes no lock on to a forked child, in uWSGI as here); a
    refusal is said in uWSGI's words and the start goes on."""
    if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
        log.log(f"mlockall(): {os.strerror(ctypes.get_errno())} "
                f"[core/uwsgi.c line 2308]")


_MCL_CURRENT, _MCL_FUTURE = 1, 2


def trim_heap():
    """Give the kernel back the heap pages malloc keeps free (glibc's
    malloc_trim; other C libraries have none).  Start-up frees megabytes
    (the modules compiled, the config read) that malloc would keep for
    the process's life, and that every child forked after it would count
    as its own: called before a process settles into its loop."""
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


def set_cpu_affinity(wid, count):
    """cpu-affinity: worker N runs on `count` CPUs from (N - 1) * count
    on, wrapping round the CPUs online, as uWSGI maps them (with 2 CPUs
    and 3 each, worker 1 gets 0 1 0 and worker 2 gets 1 0 1)."""
    cpus = os.cpu_count() or 1
    first = (wid - 1) * count % cpus
    chosen = [(first + i) % cpus for i in range(count)]
    try:
        os.sched_setaffinity(0, chosen)
    except OSError as e:
        # uWSGI's source line; its failure could not be provoked here.
        log.log(f"sched_setaffinity(): {e.strerror} "
                f"[core/utils.c line 3688]")
    log.log(f"mapping worker {wid} to CPUs: "
            f"{' '.join(str(cpu) for cpu in chosen)}")


def die_with_parent(parent, signum=signal.SIGKILL):
    """Ask the kernel to signal us when our parent exits (no orphans).
    False if `parent` (its pid, taken before the fork) died before the
    request took hold: the caller must end at once, as no signal comes."""
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return os.getppid() == parent


def enter_side_process(config, master, listeners, ignored, title):
    """After fork, in a process of the master's that serves no
    connection (a mule, a spooler): the master's handlers undone, its
    death ours, the listening sockets closed, the `ignored` signals
    ignored and the process titled.  Ends at once if the master is gone
    already."""
    reset_signals()
    if not die_with_parent(master):
        os._exit(0)
    for listener in listeners:
        listener.sock.close()
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)
    set_title(config, title)


def apply_env(config):
    """env and unenv, in the order they are written, as uWSGI applies
    them (unenv after env removes the variable, env after unenv sets
    it); the children inherit them."""
    for entry in config.entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt and opt.name == "env":
            _setenv(entry.value)
        elif opt and opt.name == "unenv":
            _unenv(entry.value)


def _setenv(item):
    key, eq, value = item.partition("=")
    if not eq or not key:
        raise ConfigError(f"expected KEY=VALUE, got '{item}'", option="env")
    os.environ[key] = value


def _unenv(name):
    """A name unsetenv() refuses is said in uWSGI's line; the start goes
    on."""
    if not name or "=" in name:
        log.log("unsetenv(): Invalid argument [core/uwsgi.c line 4409]")
    else:
        os.environ.pop(name, None)


def start_log(config, reloaded, under_emperor=False, asap=None):
    """The log at start-up, in uWSGI's order: the first lines (see
    log.start), the `asap` hooks where given (a callable), then
    `daemonize` detaches, and its file takes fd 1 and 2, or logto's does;
    then the show-config dump, there already.  A reload keeps the file of
    the instance before, unless `log-reopen`; under an Emperor, which
    must keep its vassal's pid, daemonize is a logto that every start
    opens."""
    log.start(config)
    if asap:
        asap()
    option = "daemonize" if config["daemonize"] else "logto"
    if config["daemonize"] and not under_emperor and not reloaded:
        daemonize()
    # A UDP address's sending thread ends with the process it was in:
    # opened again at every start.
    again = config["log-reopen"] or (under_emperor and
                                     option == "daemonize") or \
        log.is_udp(config[option] or "")
    if config[option] and (again or not reloaded):
        log.logto(config, option)
    if config["imperial-monitor-list"]:
        # uWSGI's, once its log is set up; ugu's Emperor has these two.
        log.log_all(["", "*** uWSGI loaded imperial monitors ***", "dir",
                     "glob", "--- end of imperial monitors list ---", ""])
    if config["show-config"]:
        for message in config.dump():
            log.log(message)
    if _lists_asked(config):
        from ugu import inventory
        inventory.log_lists(config)


def _lists_asked(config):
    return any(config[name] for name in LIST_OPTIONS)


# The options whose lists are logged at start-up (see ugu/inventory.py).
LIST_OPTIONS = ("plugins-list", "logger-list", "cheaper-algo-list",
                "router-list", "loop-list", "imperial-monitor-list",
                "clock-list", "alarm-list")


def daemonize():
    """Go to the background as uWSGI's daemonize does: fork and let the
    parent exit 0 (the shell gets its prompt back), start a session of
    our own, fork again (a session leader could take a terminal), clear
    the umask, read stdin from /dev/null.  Returns in the grandchild."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.umask(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    global _daemon_pid
    _daemon_pid = os.getpid()


def daemon_pid():
    """The pid of the daemon daemonize made of this process, else None:
    it ends the instance in its place (fallback-config)."""
    return _daemon_pid


# Each of these turns uWSGI's auto-procname on.
PROCNAME_OPTIONS = ("procname", "procname-master", "procname-prefix",
                    "procname-prefix-spaced", "procname-append")


def set_title(config, name):
    """Title a forked process (a worker, a router, the Emperor) as uWSGI
    does: with auto-procname, `procname` if set, else its own `name`;
    without, the command line is kept."""
    if _auto_procname(config):
        _retitle(config, config["procname"] or name)


def set_worker_title(config, wid):
    set_title(config, f"uWSGI worker {wid}")


def set_master_title(config):
    if _auto_procname(config):
        _retitle(config, config["procname-master"] or config["procname"]
                 or "uWSGI master")


def _auto_procname(config):
    return config["auto-procname"] or \
        any(config[name] for name in PROCNAME_OPTIONS)


def name_process(config, name):
    """Title this process `name` (with procname-prefix and -append),
    auto-procname or not."""
    _retitle(config, name)


def _retitle(config, name):
    # Here, where a procname option asks for it: setproctitle's package
    # imports logging, which only then need be loaded.
    import setproctitle
    prefix = config["procname-prefix"] or ""
    if config["procname-prefix-spaced"]:
        prefix = config["procname-prefix-spaced"] + " "
    setproctitle.setproctitle(prefix + name +
                              (config["procname-append"] or ""))


def describe_exit(status):
    """(exit code, killing signal) from a waitpid status."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status), None


def said_subprocess(pid, status):
    """As uWSGI tells the end of a child it no longer follows."""
    code, killer = describe_exit(status)
    if killer:
        log.log(f"subprocess {pid} exited by signal {killer}")
    else:
        log.log(f"subprocess {pid} exited with code {code}")


class Subprocesses(set):
    """The pids of commands the master started and does not follow
    (touch-exec's, cmd alarms', a superseded cron's)."""

    def died(self, pid, status):
        """Whether `pid` was one of them; its end is said, as uWSGI
        says a child it does not follow."""
        if pid not in self:
            return False
        self.discard(pid)
        said_subprocess(pid, status)
        return True


def reap():
    """Yield (pid, status) for every child that has exited, without
    blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def write_pidfile(path, option):
    """Our pid in `path`; a failure names the option that asked for it."""
    try:
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}",
                          option=option) from None


def change_dir(path, option):
    """chdir at start; a folder that is not there stops the instance,
    naming the option that asked for it."""
    try:
        os.chdir(path)
    except OSError as e:
        raise ConfigError(f"chdir() to {path}: {e.strerror}",
                          option=option) from None


def return_home(folder):
    """What a master says and does before it re-executes itself, as
    uWSGI's: back to the folder it started in (or force-cwd), where the
    new image reads its relative paths from; a failure is said and the
    reload goes on from where it is."""
    log.log(f"chdir() to {folder}")
    try:
        os.chdir(folder)
    except OSError as e:
        log.log(f"uwsgi_reload()/chdir(): {e.strerror} "
                f"[core/master_utils.c line 453]")
    max_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    log.log(f"closing all non-uwsgi socket fds > 2 (max_fd = {max_fd})...")


# The largest pid_t: os.kill() takes no larger number.
PID_MAX = 2**31 - 1


def signal_pidfile(path, signum, option):
    """`stop`, `reload`: send `signum` to the pid in a pidfile; the exit
    status, with uWSGI's lines for a missing file or process."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        log.log(f'open("{path}"): {e.strerror} [core/io.c line 525]')
        return 1
    # uWSGI takes the leading digits; where there are none it signals
    # pid 0, its own process group: the shell that ran the command.  A
    # number past a pid_t's range wraps in its C int, to 0 or to -1
    # (every process it may signal).
    digits = re.match(rb"\s*(\d+)", text)
    pid = int(digits[1]) if digits else 0
    if not 0 < pid <= PID_MAX:
        raise ConfigError(f"{path} holds no process id: name the pidfile "
                          "the instance writes (its `pidfile` option)",
                          option=option)
    try:
        os.kill(pid, signum)
    except OSError as e:
        log.log(f"signal_pidfile()/kill(): {e.strerror} "
                "[core/uwsgi.c line 1707]")
        return 255
    return 0


def python_m_ugu():
    """The command that runs ugu again (a vassal, a reload): this Python,
    with -P so that the working directory is not put first on sys.path,
    where a folder named `ugu` (a checkout beside the configs) would hide
    the installed package."""
    return [EXECUTABLE, "-P", "-m", "ugu"]
