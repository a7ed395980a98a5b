"""uWSGI's signals: 256 numbers an app gives handlers to, raised by
uwsgi.signal(), by the master's timers and crons, and by touched or
changed files, and run by the process the handler's target names.

    uwsgi.register_signal(99, "workers", handler)
    uwsgi.add_timer(99, 5)

The numbers travel as single bytes over non-blocking stream socket
pairs made in the master before the app loads, as uWSGI's do: one
shared by the workers (any of them takes a byte the master writes; the
master reads what any of them raises), one per worker, the same for
the mules (and one per farm), and one the spoolers share.  The master
routes each number by its own table (the handlers registered before
fork, whose targets every process inherits); a worker, mule or spooler
runs the handler of its own table.  So, as in uWSGI, a handler a
worker registers at run time is that worker's alone, and its number is
routed as one the master does not know: to any worker, which says it
cannot manage it unless it is the one.

Timers, rb-timers, crons and file monitors go in a table in shared
memory, so that those a worker adds (under lazy-apps, or in a request)
reach the master, which picks them up on its next pass, as uWSGI's
does.  A worker's handlers run under harakiri, a mule's under
mule-harakiri, a spooler's under spooler-harakiri.

A worker core waits on the signal sockets beside its listeners (a
request pays nothing for them), so a handler runs on an idle core,
between requests, never inside one; a mule runs them in mule_get_msg's
wait and in a bare mule's loop, a spooler between its scans.  Without
a master there is no signal framework: registering is refused and a
raised signal goes nowhere, in uWSGI's words.
"""

import fcntl
import mmap
import os
import socket
import struct
import termios
import time

import _multiprocessing

from ugu import log
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi
from ugu.vassal import cron as crons
from ugu.vassal import appexit, fsmon, metrics

# uWSGI's table sizes (MAX_TIMERS, MAX_CRONS, its file monitors').
MAX_TIMERS = 64
MAX_CRONS = 64
MAX_FILE_MONITORS = 64
RECEIVER_MAX = 63
# The longest file name add_file_monitor takes, in bytes.
FILE_NAME_MAX = 254
TIMER, RB_TIMER, CRON, FILE_MONITOR = range(4)
_LIMITS = {TIMER: ("timers", MAX_TIMERS), RB_TIMER: ("rb_timers", MAX_TIMERS),
           CRON: ("cron", MAX_CRONS),
           FILE_MONITOR: ("file monitors", MAX_FILE_MONITORS)}
_ENTRIES = 2 * MAX_TIMERS + MAX_CRONS + MAX_FILE_MONITORS
# A timer, rb-timer, cron or file monitor: kind, signal, then up to five
# numbers (seconds, iterations; the cron's five fields; the file name's
# length).
_ENTRY = struct.Struct("<2i5i")
_COUNT = struct.Struct("<i")
_RUN = struct.Struct("<Q")
# A mule's mule-harakiri deadline (time.time(), 0 for none), its signal.
_MULE_DEADLINE = struct.Struct("<di")
_SEMAPHORE = 1
# What uWSGI says when a byte has nowhere to go (its signal socket is -1).
_BAD_FD = ("uwsgi_signal_send(): Bad file descriptor "
           "[core/signal.c line 306]")


def number(value):
    """A signal number as uWSGI's module reads it (a C unsigned char,
    unchecked): any int, taken modulo 256."""
    return value.__index__() & 0xFF


def _pair(bufsize):
    """(master's end, the other processes' end)."""
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for end in ends:
        end.setblocking(False)
        if bufsize:
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
    return ends


def send(end, signum):
    """Write the number; False, said as uWSGI says it, when it cannot.
    With metrics, counted as routed or unrouted, as uWSGI counts it."""
    sent = _send(end, signum)
    found = metrics.instance()
    if found:
        found.count_signal(sent)
    return sent


def _send(end, signum):
    if end is None:
        log.log(_BAD_FD)
        return False
    try:
        end.send(bytes((signum,)))
        return True
    except BlockingIOError:
        size = end.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        log.log(f"*** SIGNAL QUEUE IS FULL: buffer size {size} bytes (you "
                f"can tune it with --signal-bufsize) ***")
    except OSError as e:
        log.log(f"uwsgi_signal_send(): {e.strerror} [core/signal.c line "
                f"306]")
    return False


class Handler:
    def __init__(self, receiver, function):
        self.receiver, self.function = receiver, function


class Table:
    """Timers, rb-timers and crons, in memory every process shares; the
    master reads the entries added since its last look."""

    def __init__(self):
        self.memory = mmap.mmap(-1, _COUNT.size + _ENTRY.size * _ENTRIES)
        # A file monitor's name, in the room of its entry's index.
        self.names = mmap.mmap(-1, FILE_NAME_MAX * _ENTRIES)
        self.lock = _multiprocessing.SemLock(_SEMAPHORE, 1, 1,
                                             f"/ugu-signals-{id(self)}", True)

    def add(self, kind, signum, *values, name=b""):
        """False, said in uWSGI's words, once the kind's table is full."""
        with self.lock:
            count = _COUNT.unpack_from(self.memory)[0]
            entries = list(self.entries(0, count))
            what, limit = _LIMITS[kind]
            if sum(1 for entry in entries if entry[1] == kind) >= limit:
                log.log(f"you can register max {limit} {what} !!!")
                return False
            values = (values + (0,) * 5)[:5]
            _ENTRY.pack_into(self.memory, _COUNT.size + count * _ENTRY.size,
                             kind, signum, *values)
            self.names[count * FILE_NAME_MAX:
                       count * FILE_NAME_MAX + len(name)] = name
            _COUNT.pack_into(self.memory, 0, count + 1)
        return True

    def entries(self, start, end=None):
        """(index, kind, signal, five numbers) of each entry from
        `start`."""
        if end is None:
            end = _COUNT.unpack_from(self.memory)[0]
        for index in range(start, end):
            yield (index, *_ENTRY.unpack_from(
                self.memory, _COUNT.size + index * _ENTRY.size))

    def name(self, index, length):
        start = index * FILE_NAME_MAX
        return self.names[start:start + length]

    def add_file_monitor(self, signum, path):
        """add_file_monitor: False, said as uWSGI says it, for a name
        too long or a full table."""
        if len(path) > FILE_NAME_MAX - 1:
            log.log("uwsgi_add_file_monitor: invalid filename length")
            return False
        return self.add(FILE_MONITOR, signum, len(path), name=path)


class Timer:
    """A timer (for ever) or an rb-timer (`iterations` times, 0 for
    ever), in the master."""

    def __init__(self, signum, seconds, iterations=0):
        self.signum, self.seconds = signum, seconds
        self.iterations = iterations
        self.done = 0
        # A timer of no seconds never fires (uWSGI's timerfd is then
        # disarmed).
        self.due = time.monotonic() + seconds if seconds > 0 else None

    def fire(self, now):
        """Whether it is due at `now`; if so the next time is set."""
        if self.due is None or self.due > now:
            return False
        self.done += 1
        if self.iterations and self.done >= self.iterations:
            self.due = None
        else:
            self.due = now + self.seconds
        return True


class SignalCron:
    """add_cron's rule, read as the cron option's (cron.matches)."""

    def __init__(self, signum, minute, hour, day, month, week):
        self.signum = signum
        self.minute, self.hour, self.day = minute, hour, day
        self.month, self.week = month, week
        self.last_job = 0


class UwsgiSignals:
    """The instance's signal sockets, tables and, in each process, its
    own handlers and the ends it reads."""

    def __init__(self, workers, mules, bufsize, spoolers=0):
        self.pool = _pair(bufsize)
        self.workers = [_pair(bufsize) for _ in range(workers)]
        self.mule_pool = _pair(bufsize) if mules else None
        self.mules = [_pair(bufsize) for _ in range(len(mules or ()))]
        self.farms = [(farm, _pair(bufsize))
                      for farm in (mules.farms if mules else ())]
        self.spoolers = _pair(bufsize) if spoolers else None
        self.table = Table()
        self.handlers = {}      # this process's: number -> Handler
        self.wid = self.mule_id = 0
        self.spooler_pid = 0    # in a spooler, its pid (uWSGI's id)
        self.out = None         # where this process raises a signal
        self.inbox = []         # the ends this process reads
        # The master's.
        self.timers = []
        self.crons = []
        self._seen = 0
        self._harakiri = None
        self.monitors = None    # a FileMonitors once one is added
        # Each mule's mule-harakiri deadline (0: none) and the signal its
        # handler runs for, for the master to read.
        self.mule_harakiri = 0
        # The handlers each worker has run, for uwsgi.workers() and the
        # stats.
        self.counts = mmap.mmap(-1, _RUN.size * max(workers, 1))
        self.mule_deadlines = mmap.mmap(
            -1, _MULE_DEADLINE.size * max(len(self.mules), 1))

    @classmethod
    def from_config(cls, config, mules, has_master, spoolers=None):
        """None without a master (uWSGI's signals need one)."""
        if not has_master:
            return None
        found = cls(config["processes"], mules, config["signal-bufsize"],
                    len(spoolers or ()))
        found.mule_harakiri = config["mule-harakiri"]
        for option, kind in (("timer", TIMER), ("rbtimer", RB_TIMER)):
            for value in config[option]:
                found.table.add(kind, *_timer_option(option, value))
        # Checked now, before any fork; the master watches the files.
        for value in config["touch-signal"]:
            touch_signal(value)
        return found

    # -- the process's role ----------------------------------------------
    def enter_worker(self, wid, scoreboard=None, harakiri=0):
        """In worker `wid`: its handlers run under `harakiri` (seconds,
        0: none), as uWSGI times them, on its `scoreboard` deadline."""
        self.wid = wid
        if harakiri:
            self._harakiri = (scoreboard, harakiri)
        self.out = self.pool[1]
        self.inbox = [self.pool[1], self.workers[wid - 1][1]]

    def enter_mule(self, mule_id):
        self.mule_id = mule_id
        self.out = self.mule_pool[1]
        self.inbox = [self.mule_pool[1], self.mules[mule_id - 1][1]]
        self.inbox += [pair[1] for farm, pair in self.farms
                       if mule_id in farm.ids]

    def enter_spooler(self, spooler_harakiri):
        """In a spooler: its handlers run under `spooler_harakiri` (a
        function of whether one runs), as uWSGI times them."""
        self.spooler_pid = os.getpid()
        self._harakiri = spooler_harakiri
        self.out = self.spoolers[1]
        self.inbox = [self.spoolers[1]]

    # -- the app's calls ---------------------------------------------------
    def register(self, signum, receiver, function):
        """False where uWSGI refuses (its module then raises)."""
        if self.mule_id:
            log.log("only the master and the workers can register signal "
                    "handlers")
            return False
        if len(receiver.encode()) > RECEIVER_MAX:
            return False
        if signum in self.handlers and not self.wid:
            log.log("[uwsgi-signal] you cannot re-register a signal as the "
                    "master !!!")
            return False
        self.handlers[signum] = Handler(receiver, function)
        target = receiver or "default, any worker"
        log.log(f"[uwsgi-signal] signum {signum} registered (wid: "
                f"{self.wid} modifier1: 0 target: {target})")
        return True

    def registered(self, signum):
        return signum in self.handlers

    def raise_signal(self, signum):
        """uwsgi.signal(): to the master, which routes it.  The master's
        own call (the app's import) has nowhere to write, as in uWSGI."""
        send(self.out, signum)

    # -- running handlers (workers, mules) ------------------------------
    def receive(self, end):
        """Read a number the master sent on `end` and run its handler;
        the numbers read.  One at a time, as uWSGI reads them: the next
        one may go to another idle worker."""
        try:
            data = end.recv(1)
        except (BlockingIOError, InterruptedError):
            # Another core or mule took it first.
            return b""
        for signum in data:
            self.run(signum)
        return data

    def run(self, signum):
        found = self.handlers.get(signum)
        ok = False
        if found is not None:
            if self.wid:
                at = (self.wid - 1) * _RUN.size
                _RUN.pack_into(self.counts, at,
                               _RUN.unpack_from(self.counts, at)[0] + 1)
            self._set_harakiri(signum, True)
            try:
                found.function(signum)
                ok = True
            except SystemExit as error:
                appexit.end_process(error)
            except (Exception, KeyboardInterrupt):
                log.app_traceback()
            self._set_harakiri(signum, False)
        if not ok:
            log.verbose(f"error managing signal {signum} on {self._who()}")

    def _who(self):
        if self.wid:
            return f"worker {self.wid}"
        if self.mule_id:
            return f"mule {self.mule_id}"
        return f"spooler {self.spooler_pid}"

    def _set_harakiri(self, signum, running):
        """A handler's harakiri, as uWSGI times it: a worker's under
        `harakiri`, on its scoreboard deadline; a mule's under
        mule-harakiri, a spooler's under spooler-harakiri."""
        if self.spooler_pid:
            self._harakiri(running)
        elif self._harakiri:
            board, seconds = self._harakiri
            board.set_harakiri(self.wid, time.time() + seconds
                               if running else 0.0)
        elif self.mule_id and self.mule_harakiri:
            deadline = time.time() + self.mule_harakiri if running else 0
            _MULE_DEADLINE.pack_into(
                self.mule_deadlines, (self.mule_id - 1) * _MULE_DEADLINE.size,
                deadline, signum)

    # -- the master ----------------------------------------------------------
    def worker_signals(self, wid):
        """(handlers worker `wid` has run, bytes of signals waiting for
        it), as uWSGI's stats count them."""
        ran = _RUN.unpack_from(self.counts, (wid - 1) * _RUN.size)[0]
        return ran, _waiting(self.workers[wid - 1][1])

    def queue(self):
        """The bytes of signals waiting for any worker."""
        return _waiting(self.pool[1])

    def overdue_mules(self, now):
        """(mule id, signal) of each mule past its mule-harakiri deadline,
        said in uWSGI's words; the deadline is cleared."""
        found = []
        for index in range(len(self.mules) if self.mule_harakiri else 0):
            at = index * _MULE_DEADLINE.size
            deadline, signum = _MULE_DEADLINE.unpack_from(
                self.mule_deadlines, at)
            if 0 < deadline < now:
                found.append((index + 1, signum))
                _MULE_DEADLINE.pack_into(self.mule_deadlines, at, 0, 0)
        return found

    def master_ends(self):
        """What the master reads: the numbers workers and mules raise,
        and the file monitors' events once there are some."""
        return self._raised_on() + ([self.monitors] if self.monitors else [])

    def _raised_on(self):
        ends = [self.pool[0]]
        for pair in (self.mule_pool, self.spoolers):
            if pair:
                ends.append(pair[0])
        return ends

    def serve(self, ready, active):
        """Route what was raised on the `ready` ends; `active` gives the
        wids of the workers alive and not cheaped."""
        if self.monitors in ready:
            found = self.monitors.event()
            if found is not None:
                self.route(found, active)
        for end in self._raised_on():
            if end in ready:
                try:
                    data = end.recv(64)
                except (BlockingIOError, InterruptedError):
                    continue
                for signum in data:
                    self.route(signum, active)

    def next_due(self):
        """The monotonic time of the next timer, None without one."""
        times = [t.due for t in self.timers if t.due is not None]
        return min(times) if times else None

    def tick(self, active):
        """On each pass of the master's loop: pick up new timers and
        crons, fire those due."""
        self._pick_up()
        now = time.monotonic()
        for timer in self.timers:
            if timer.fire(now):
                self.route(timer.signum, active)
        if self.crons:
            self._crons(int(time.time()), active)

    def _pick_up(self):
        for index, kind, signum, *values in self.table.entries(self._seen):
            self._seen += 1
            if kind == FILE_MONITOR:
                self._watch(self.table.name(index, values[0]), signum)
            elif kind == CRON:
                self.crons.append(SignalCron(signum, *values))
            elif kind == RB_TIMER:
                self.timers.append(Timer(signum, values[0], values[1]))
            else:
                self.timers.append(Timer(signum, values[0]))

    def _watch(self, path, signum):
        if self.monitors is None:
            self.monitors = FileMonitors()
        self.monitors.add(path, signum)

    def _crons(self, now, active):
        when = time.localtime(now)
        for entry in self.crons:
            if crons.matches(entry, when) and \
                    now - entry.last_job >= crons.MINUTE:
                log.verbose(f"[uwsgi-cron] routing signal {entry.signum}")
                self.route(entry.signum, active)
                entry.last_job = now

    def route(self, signum, active):
        """Send the number where the master's table says (any worker for
        a number it does not know), in uWSGI's words when it cannot."""
        found = self.handlers.get(signum)
        receiver = found.receiver if found else ""
        if receiver in ("", "worker", "worker0"):
            if not send(self.pool[0], signum):
                log.log(f"could not deliver signal {signum} to workers pool")
        elif receiver in ("workers", "active-workers"):
            alive = active() if receiver == "active-workers" else None
            for wid in range(1, len(self.workers) + 1):
                if alive is None or wid in alive:
                    self._to_worker(signum, wid)
        elif receiver.startswith("worker"):
            wid = atoi(receiver[6:])
            if wid > len(self.workers):
                log.log(f"invalid signal target: {receiver}")
            self._to_worker(signum, wid)
        elif receiver == "subscribed":
            pass
        elif receiver == "spooler":
            # Any spooler takes it; without one, there is nowhere to write.
            if not send(self.spoolers[0] if self.spoolers else None, signum):
                log.log(f"could not deliver signal {signum} to the spooler")
        elif receiver == "mules":
            for mule_id in range(1, len(self.mules) + 1):
                self._to_mule(signum, mule_id)
        elif receiver.startswith("mule"):
            self._to_mule_target(signum, receiver)
        elif receiver.startswith("farm"):
            self._to_farm(signum, receiver)
        else:
            log.log(f"^^^ UNSUPPORTED SIGNAL TARGET: {receiver} ^^^")

    def _to_worker(self, signum, wid):
        end = self.workers[wid - 1][0] if 1 <= wid <= len(self.workers) \
            else None
        if not send(end, signum):
            log.log(f"could not deliver signal {signum} to worker {wid}")

    def _to_mule(self, signum, mule_id):
        if not send(self.mules[mule_id - 1][0], signum):
            log.log(f"could not deliver signal {signum} to mule {mule_id}")

    def _to_mule_target(self, signum, receiver):
        mule_id = atoi(receiver[4:])
        if mule_id > len(self.mules):
            log.log(f"invalid signal target: {receiver}")
        elif mule_id > 0:
            self._to_mule(signum, mule_id)
        elif not send(self.mule_pool[0] if self.mule_pool else None,
                      signum):
            log.log(f"could not deliver signal {signum} to a mule")

    def _to_farm(self, signum, receiver):
        if receiver.startswith("farm_"):
            name = receiver[5:]
            found = [i for i, (farm, _) in enumerate(self.farms, 1)
                     if farm.name == name]
            if not found:
                log.log(f"unknown farm: {name}")
                return
            index = found[0]
        else:
            index = atoi(receiver[4:])
            if not 1 <= index <= len(self.farms):
                log.log(f"invalid signal target: {receiver}")
                return
        farm, pair = self.farms[index - 1]
        if not send(pair[0], signum):
            log.log(f"could not deliver signal {signum} to farm {index} "
                    f"({farm.name})")


class FileMonitors:
    """The master's inotify descriptor for add_file_monitor's files (as
    uWSGI's, apart from fs-signal's): each event of a read raises the
    signal of the last file it names, once."""

    def __init__(self):
        self.fd = fsmon.inotify()
        self.signals = {}   # watch descriptor -> signal number

    def add(self, path, signum):
        # uWSGI says nothing of a watch that fails: it never fires.
        wd = fsmon.add_watch(self.fd, path)
        if wd >= 0:
            self.signals[wd] = signum

    def fileno(self):
        return self.fd

    def event(self):
        """The signal to raise for the events waiting, or None."""
        found = None
        for wd in fsmon.read_events(self.fd):
            found = self.signals.get(wd, found)
        return found


def _waiting(end):
    return struct.unpack("i", fcntl.ioctl(end, termios.FIONREAD,
                                          b"\0" * 4))[0]


def touch_signal(value):
    """`touch-signal = FILE SIGNAL`: (file, signal number)."""
    path, space, signum = value.partition(" ")
    if not space:
        raise ConfigError(f"expected FILE SIGNAL, got '{value}'",
                          option="touch-signal")
    return path, atoi(signum) & 0xFF


def _timer_option(option, value):
    """`timer = SIGNAL SECONDS` (and rbtimer's): (signal, seconds)."""
    signum, space, seconds = value.partition(" ")
    if not space:
        what = "signal" if option == "timer" else "redblack signal"
        raise ConfigError(f"invalid {what} timer syntax, must be: <signal> "
                          f"<seconds>", option=option)
    return atoi(signum) & 0xFF, atoi(seconds)
