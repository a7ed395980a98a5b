"""uWSGI's spooler: a queue of tasks kept as files in a folder, run by
processes of their own beside the workers.

An app spools a task with `uwsgi.spool({b"key": b"value", ...})`: the
dict becomes a file in the spooler's folder, named and laid out as
uWSGI 2.0 writes it (a uwsgi packet of modifier1 17 holding the dict's
keys and values, then the `body` value as it is), so that either
server runs the other's tasks.  Each `spooler = DIR` gets
`spooler-processes` processes (one without it), forked by the master
as mules are, which scan DIR every `spooler-frequency` seconds (or at
once when a worker spools there), hand each task's dict to the app's
`uwsgi.spooler` function, and remove the file when it returns
SPOOL_OK.  Any other answer keeps the file for the next scan:
SPOOL_RETRY, an exception, anything but an int; SPOOL_IGNORE (0) is
uWSGI's "not mine", which it reports as a missing function.  A
`spooler-external = DIR` is a spooler too, which tasks are spooled to,
but whose process another instance runs.

Special keys, as 2.0 reads them: `spooler` (the folder, as
uwsgi.spoolers names it, to spool to another spooler than the first),
`at` (a Unix time: the task waits until then, kept as the file's
mtime) and `priority` (a subfolder, which only `spooler-ordered`
visits, in number order).

Between scans a spooler also waits on the signal socket the spoolers
share: it runs the handler of a uWSGI signal the master routes to the
"spooler" target (one signal a wake-up, under spooler-harakiri), then
scans again, as uWSGI's spoolers do.

Where ugu differs: a task file is written under a temporary name and
renamed into place, so no spooler (ugu's or uWSGI's) meets it half
written; uWSGI writes it in place under an fcntl lock, which ugu's
spoolers honour as uWSGI's do.
"""

import collections
import fcntl
import importlib
import mmap
import os
import re
import signal
import socket
import struct
import sys
import threading
import time

from ugu import log, proc, protocol
from ugu.options.errors import ConfigError

# What the app's spooler function returns (uWSGI's values).
SPOOL_OK = -2
SPOOL_RETRY = -1
SPOOL_IGNORE = 0
PREFIX = "uwsgi_spoolfile_on_"
MODIFIER_SPOOL = 17
# uWSGI's exit code for a process ending on its own (its end_me()).
EXIT_RECYCLE = 30
# uWSGI lowers its spoolers' priority as far as it goes.
NICEST = 19
_ARGS_LIMIT = 0xFFFF
# The board, shared by every process of the instance: the frequency
# set by uwsgi.set_spooler_frequency (0: the option's), then a State
# for each spooler process.
_FREQUENCY = struct.Struct("<i")
_SLOT = struct.Struct("<iiqQQ")
# deadline: when its spooler-harakiri ends (0: none); tasks: run since
# its spawn; respawns: since the instance's start (the stats').
State = collections.namedtuple(
    "State", "pid running deadline tasks respawns")


class Spoolers:
    """The instance's spoolers, numbered from 0 in the order of the
    `spooler` and `spooler-external` lines, `spooler-processes` for each
    folder.  An external one is a folder the spooler of another instance
    runs: this one spools tasks there, and never forks its process (its
    pid stays 0), as uWSGI's."""

    def __init__(self, dirs, external=frozenset()):
        self.dirs = dirs            # each spooler's folder, real path
        self.external = external    # the numbers of the external ones
        self.board = mmap.mmap(-1, _FREQUENCY.size + _SLOT.size * len(dirs))
        self.lock = threading.Lock()    # for a worker's threads
        self.counter = 0            # tasks this process spooled

    @classmethod
    def from_config(cls, config):
        """None without `spooler` or `spooler-external`; the folders made
        where missing, as uWSGI makes them while reading its options."""
        lines = config.parsed(("spooler", "spooler-external"),
                              lambda name, folder: (name, folder))
        if not lines:
            return None
        count = max(config["spooler-processes"], 1)
        dirs, external = [], set()
        for name, folder in lines:
            if name == "spooler-external":
                external.update(range(len(dirs), len(dirs) + count))
            dirs += [_prepare(folder, name)] * count
        return cls(dirs, frozenset(external))

    def run_here(self):
        """The numbers of the spoolers whose processes this instance
        forks."""
        return [index for index in range(len(self.dirs))
                if index not in self.external]

    def __len__(self):
        return len(self.dirs)

    def _slot(self, index):
        return _FREQUENCY.size + _SLOT.size * index

    def state(self, index):
        return State._make(_SLOT.unpack_from(self.board, self._slot(index)))

    def set_state(self, index, **changes):
        _SLOT.pack_into(self.board, self._slot(index),
                        *self.state(index)._replace(**changes))

    def pids(self):
        return [self.state(index).pid for index in range(len(self))]

    def stats(self):
        """The stats document's `spoolers`, as uWSGI lists them."""
        found = []
        for index, folder in enumerate(self.dirs):
            state = self.state(index)
            found.append({"dir": folder, "pid": state.pid,
                          "tasks": state.tasks, "respawns": state.respawns,
                          "running": state.running})
        return found

    def frequency(self, default):
        return _FREQUENCY.unpack_from(self.board)[0] or default

    def set_frequency(self, seconds):
        _FREQUENCY.pack_into(self.board, 0, seconds)

    def find(self, name):
        """The first spooler on folder `name` (bytes), else None."""
        for index, folder in enumerate(self.dirs):
            if folder.encode() == name:
                return index
        return None


def _prepare(folder, option):
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        try:
            os.mkdir(folder, 0o750)
        except OSError as e:
            raise ConfigError(f"[spooler directory] access(): {e.strerror} "
                              f"({folder})", option=option) from None
    return os.path.realpath(folder)


# -- spooling (in any process of the app's) --------------------------------
def spool(spoolers, args, quiet):
    """Write the task `args` (a dict of bytes) for a spooler; its file's
    path, as bytes.  uWSGI's `body` key is taken out of the dict and
    written after the packet, as it is."""
    if not isinstance(args, dict):
        raise ValueError("The argument of spooler callable must be a "
                         "dictionary")
    body = args.get(b"body")
    if isinstance(body, bytes):
        del args[b"body"]
    else:
        body = b""
    pairs = [(key, _value(key, value)) for key, value in args.items()]
    path = _write(spoolers, pairs, body, quiet)
    if path is None:
        raise ValueError("unable to spool job")
    return path.encode()


def _value(key, value):
    """A value as uWSGI's Python 3 module takes it: bytes, or what
    bytes() makes of a buffer or a list of small ints."""
    if not isinstance(key, bytes) or isinstance(value, (str, int, float)):
        raise ValueError("spooler callable dictionary must contains only "
                         "bytes")
    try:
        return bytes(value)
    except (TypeError, ValueError):
        raise ValueError("spooler callable dictionary must contains only "
                         "bytes") from None


def _write(spoolers, pairs, body, quiet):
    block = protocol.encode_vars(pairs)
    if len(block) > _ARGS_LIMIT:
        log.log("[uwsgi-spooler] args buffer is limited to 64k, use the "
                "'body' for bigger values")
        return None
    special = dict(pairs)
    index = 0
    if special.get(b"spooler"):
        index = spoolers.find(special[b"spooler"])
        if index is None:
            name = special[b"spooler"].decode("latin-1")
            log.log(f'[uwsgi-spooler] unable to find spooler "{name}"')
            return None
    with spoolers.lock:
        spoolers.counter += 1
        path = _task_path(spoolers.dirs[index], spoolers.counter,
                          special.get(b"priority"))
        data = protocol.HEADER.pack(MODIFIER_SPOOL, len(block), 0) + \
            block + body
        if not _write_file(path, data, _at(special.get(b"at"))):
            return None
        if not quiet:
            log.log(f"[spooler] written {len(data)} bytes to file {path}")
    _wake(spoolers, spoolers.dirs[index])
    return path


def _task_path(folder, counter, priority):
    """uWSGI 2.0's name: host, pid, counter, a random number, the time;
    in the priority's subfolder where there is one."""
    import random
    if priority:
        folder = os.path.join(folder, priority.decode("latin-1"))
        try:
            os.mkdir(folder, 0o777)
        except FileExistsError:
            pass
    now = time.time_ns() // 1000
    name = (f"{PREFIX}{socket.gethostname()}_{os.getpid()}_{counter}_"
            f"{random.randrange(1 << 31)}_{now // 1000000}_{now % 1000000}")
    return os.path.join(folder, name)


def _at(value):
    """uWSGI reads `at` as the integer before any dot."""
    digits = re.match(rb"\d*", (value or b"").partition(b".")[0]).group()
    return int(digits) if digits else 0


def _write_file(path, data, at):
    """The task written under a name no spooler looks at, then renamed:
    a spooler never reads it half written."""
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}")
    try:
        fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as e:
        log.log(f"open(\"{temporary}\"): {e.strerror}")
        return False
    try:
        with os.fdopen(fd, "wb") as task:
            task.write(data)
            # After the data, whose writing would set the time again.
            task.flush()
            if at > 0:
                os.utime(task.fileno(), (at, at))
        os.rename(temporary, path)
    except OSError as e:
        log.log(f"uwsgi_spool_request()/write(): {e.strerror}")
        _unlink(temporary)
        return False
    return True


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _wake(spoolers, folder):
    """The spoolers of `folder` that wait scan it now (SIGUSR1)."""
    for index, other in enumerate(spoolers.dirs):
        found = spoolers.state(index)
        if other == folder and found.pid > 0 and not found.running:
            try:
                os.kill(found.pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass


def jobs(spoolers):
    """The tasks waiting in the first spooler's folder, as full paths."""
    folder = spoolers.dirs[0]
    found = []
    for name in _listdir(folder):
        path = os.path.join(folder, name)
        if name.startswith(PREFIX) and os.path.isfile(path) and \
                not os.path.islink(path) and \
                os.access(path, os.R_OK | os.W_OK):
            found.append(path.encode())
    return found


def _listdir(folder):
    try:
        return os.listdir(folder)
    except OSError as e:
        log.log(f"opendir(): {e.strerror} [core/spooler.c line 516]")
        return []


def read_task(path, name=None):
    """The dict a spooler function gets for the task file at `path`
    (`spooler_task_name` its name), or None when it cannot be read or
    another process holds its lock."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as task:
        found = _read_locked(task, path)
    if found is None:
        return None
    return task_dict(name or path, *found)


def _read_locked(task, path):
    """(packet, body) of the open task at `path`, locked as uWSGI's
    spoolers lock it (until it is closed); None when another holds the
    lock, when it is gone (done by another spooler while this one
    waited), or when it is short."""
    try:
        fcntl.lockf(task.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    if not os.access(path, os.R_OK | os.W_OK):
        return None
    header = task.read(protocol.HEADER_SIZE)
    if len(header) != protocol.HEADER_SIZE:
        return None
    size = protocol.decode_header(header)[1]
    block = task.read(size)
    if len(block) != size:
        return None
    return block, task.read()


def task_dict(name, block, body):
    """As uWSGI's Python plugin builds it: `spooler_task_name` (str key),
    the packet's keys and values (bytes), `body` (str key) if any."""
    found = {"spooler_task_name": name.encode()}
    found.update(protocol.decode_vars(block))
    if body:
        found["body"] = body
    return found


# -- the spooler process ----------------------------------------------------
class Spooler:
    """One spooler process's life, after fork."""

    def __init__(self, spoolers, index, config, find_function, wakeups,
                 uwsgi_signals=None):
        self.spoolers, self.index = spoolers, index
        self.dir = spoolers.dirs[index]
        self.config = config
        self.find_function = find_function  # the app's uwsgi.spooler
        self.tasks = 0
        self.quiet = config["spooler-quiet"]
        self.wakeups = wakeups      # SIGUSR1, from a worker that spooled
        self.signals = uwsgi_signals    # None without a master
        if uwsgi_signals:
            uwsgi_signals.enter_spooler(self.set_harakiri)

    def set_harakiri(self, running):
        """A signal handler runs (or ends) under spooler-harakiri."""
        seconds = self.config["spooler-harakiri"]
        if seconds:
            self.spoolers.set_state(
                self.index,
                deadline=int(time.time()) + seconds if running else 0)

    def run(self):
        while True:
            if not _chdir(self.dir, 437):
                _end(1)
            self.scan(self.dir)
            seconds = self.spoolers.frequency(
                self.config["spooler-frequency"])
            ends = self.signals.inbox if self.signals else ()
            for end in self.wakeups.wait(seconds, ends)[1]:
                self.signals.receive(end)

    def scan(self, folder):
        ordered = self.config["spooler-ordered"]
        names = _listdir(folder)
        if ordered:
            names.sort(key=_version_key)
        for name in names:
            if name.startswith(PREFIX) or (ordered and name.isdigit()):
                self.manage(folder, name)

    def manage(self, folder, name):
        try:
            found = os.lstat(name)
        except OSError:
            return
        if int(found.st_mtime) > int(time.time()):
            # A task for later (`at`).
            return
        if os.path.isdir(name) and self.config["spooler-ordered"]:
            _chdir(name, 602)
            self.scan(os.path.realpath("."))
            _chdir(folder, 609)
            return
        if not os.path.isfile(name) or os.path.islink(name) or \
                not os.access(name, os.R_OK | os.W_OK):
            return
        try:
            task = open(name, "r+b")
        except OSError:
            return
        with task:
            found = _read_locked(task, name)
            if found is not None:
                self.run_task(folder, name, found)
        if self.config["spooler-max-tasks"] and \
                self.tasks >= self.config["spooler-max-tasks"]:
            log.log(f"[spooler {self.dir} pid: {os.getpid()}] maximum "
                    f"number of tasks reached "
                    f"({self.config['spooler-max-tasks']}) recycling ...")
            _end(EXIT_RECYCLE)
        if not _chdir(folder, 697):
            _horrible()

    def run_task(self, folder, name, found):
        self.spoolers.set_state(self.index, running=1)
        here = f"[spooler {self.dir} pid: {os.getpid()}]"
        if not self.quiet:
            log.log(f"{here} managing request {name} ...")
        if self.config["spooler-chdir"]:
            _chdir(self.config["spooler-chdir"], 651)
        started = int(time.time())
        answer = self.call(name, *found)
        if answer == SPOOL_IGNORE:
            log.log("unable to find the spooler function, have you loaded "
                    "it into the spooler process ?")
        else:
            self.tasks += 1
            self.spoolers.set_state(self.index, tasks=self.tasks)
        if answer == SPOOL_OK:
            if not self.quiet:
                log.log(f"{here} done with task {name} after "
                        f"{int(time.time()) - started} seconds")
            _destroy(folder, name)
        self.spoolers.set_state(self.index, running=0)

    def call(self, name, block, body):
        """The app's answer for the task, as uWSGI's Python plugin reads
        it: SPOOL_IGNORE without a function, SPOOL_OK for a task it cannot
        parse, SPOOL_RETRY for an exception or anything but an int."""
        function = self.find_function()
        if function is None:
            return SPOOL_IGNORE
        try:
            args = task_dict(name, block, body)
        except protocol.ProtocolError:
            return SPOOL_OK
        harakiri = self.config["spooler-harakiri"]
        if harakiri:
            self.spoolers.set_state(self.index,
                                    deadline=int(time.time()) + harakiri)
        try:
            answer = function(args)
        except Exception:
            log.app_traceback()
            answer = SPOOL_RETRY
        finally:
            if harakiri:
                self.spoolers.set_state(self.index, deadline=0)
        return answer if isinstance(answer, int) else SPOOL_RETRY


def _version_key(name):
    """versionsort's order, near enough: runs of digits by their value."""
    return [int(part) if i % 2 else part
            for i, part in enumerate(re.split(r"(\d+)", name))]


def _chdir(folder, line):
    """chdir(); its failure said as uWSGI says it, with the line of its
    spooler.c."""
    try:
        os.chdir(folder)
        return True
    except OSError as e:
        log.log(f"chdir(): {e.strerror} [core/spooler.c line {line}]")
        return False


def _destroy(folder, name):
    """The task done: its file goes."""
    if not _chdir(folder, 158):
        _horrible()
    try:
        os.unlink(name)
    except OSError as e:
        log.log(f"unlink(): {e.strerror} [core/spooler.c line 164]")
        _horrible()


def _horrible():
    """A spooler that cannot leave its tasks behind, or get back to its
    folder, would run them for ever: it ends, as uWSGI's does."""
    log.log("[spooler] something horrible happened to the spooler. "
            "Better to kill it.")
    _end(1)


def _end(code):
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(spoolers, index, config, master, listeners, enter, find_function,
        uwsgi_signals=None):
    """Spooler `index`'s life, after fork: `enter` called with its index
    once it is one, `find_function` giving the app's uwsgi.spooler (or
    None), `uwsgi_signals` the instance's (None without a master).
    Never returns."""
    # As uWSGI's: INT and TERM end it, HUP does not, USR1 wakes it.
    proc.enter_side_process(
        config, master, listeners,
        (signal.SIGHUP, signal.SIGUSR2, signal.SIGPIPE), "uWSGI spooler")
    spoolers.set_state(index, pid=os.getpid(), running=0, deadline=0,
                       tasks=0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.setpriority(os.PRIO_PROCESS, 0, NICEST)
    # Not the master's random sequence, as uWSGI reseeds it.
    import random
    random.seed()
    # Before the signals blocked since the fork come: a worker's SIGUSR1
    # would end a spooler without its handler.
    wakeups = proc.SignalQueue([signal.SIGUSR1])
    proc.unblock_signals()
    spooler = Spooler(spoolers, index, config, find_function, wakeups,
                      uwsgi_signals)
    enter(index)
    for name in config["spooler-import"]:
        _import(name)
    spooler.run()


def _import(name):
    """spooler-import: a file (a path or FILE.py) or a module."""
    import runpy
    try:
        if "/" in name or name.endswith(".py"):
            runpy.run_path(name, run_name=_module_name(name))
        else:
            importlib.import_module(name)
    except Exception:
        log.app_traceback()


def _module_name(path):
    return os.path.splitext(os.path.basename(path))[0].replace(".", "_")
