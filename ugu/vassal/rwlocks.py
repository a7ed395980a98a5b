"""Readers-writer locks shared by every process of the instance, for the
sharedarea and the queue (uWSGI's process-shared pthread rwlocks).

Each lock is a byte of an anonymous file that the master makes before it
forks, locked with Linux's open file description locks (F_OFD_SETLKW).
Each thread opens the file once, so the kernel sees each thread as its
own owner: two threads of a worker exclude each other as two workers do.
The kernel drops a dead process's locks with its files, so a worker that
harakiri kills holding a lock cannot leave the others waiting for ever
(uWSGI's rwlocks are not robust: its other workers hang).  A thread's
file is closed as the thread ends, which frees what it still held: an
app that starts a thread per job neither runs out of descriptors nor
leaves a lock behind.

A thread that holds a lock and asks for it again gets it at once (a
read inside its own write lock, as an app reads the area it has
wlock()ed), and unlock() of a lock the thread does not hold does
nothing.  What must not happen is a write under the thread's own read
lock: asking for the write lock there raises (see `WouldDeadlock`).
"""

import errno
import fcntl
import os
import struct
import sys
import threading

# struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
_FLOCK = struct.Struct("hhqqi4x")
READ, WRITE = "read", "write"


class WouldDeadlock(ValueError):
    """A thread asked for the write lock while holding the read lock."""


class Locks:
    """`count` readers-writer locks, numbered from 0."""

    def __init__(self, name, count):
        self.fd = os.memfd_create(f"ugu-{name}-locks")
        os.ftruncate(self.fd, max(count, 1))
        # Made in each process at its first lock, once a gevent worker
        # has patched threading: its greenlets are then owners apart.
        self.local = None
        self.pid = None
        self.cooperative = False

    def _state(self):
        """This thread's (greenlet's) file and the locks it holds: opened
        again after a fork, so that a child never shares its parent's
        locks."""
        if self.pid != os.getpid():
            self.local, self.pid = threading.local(), os.getpid()
            self.cooperative = cooperative()
        found = getattr(self.local, "owner", None)
        if found is None:
            found = self.local.owner = _Owner(self.fd)
        return found

    def _lock(self, state, number, kind):
        flock = _FLOCK.pack(kind, os.SEEK_SET, number, 1, 0)
        if not self.cooperative or kind == fcntl.F_UNLCK:
            fcntl.fcntl(state.fd, fcntl.F_OFD_SETLKW, flock)
            return

        def try_once():
            try:
                fcntl.fcntl(state.fd, fcntl.F_OFD_SETLK, flock)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise
            return True
        wait_turns(try_once)

    def rlock(self, number):
        """Take lock `number` to read; True if this call took it (and
        unlock must follow), False if the thread already held it."""
        state = self._state()
        if number in state.held:
            return False
        self._lock(state, number, fcntl.F_RDLCK)
        state.held[number] = READ
        return True

    def wlock(self, number):
        state = self._state()
        held = state.held.get(number)
        if held == WRITE:
            return False
        if held == READ:
            raise WouldDeadlock(
                "this thread holds the read lock it asks to write under: "
                "unlock it first (uWSGI waits there for ever)")
        self._lock(state, number, fcntl.F_WRLCK)
        state.held[number] = WRITE
        return True

    def unlock(self, number):
        state = self._state()
        if state.held.pop(number, None) is not None:
            self._lock(state, number, fcntl.F_UNLCK)

    def reading(self, number):
        return _Held(self, number, self.rlock)

    def writing(self, number):
        return _Held(self, number, self.wlock)


def cooperative():
    """Whether this process is a gevent worker's (threading patched): a
    wait for a lock must then let its other greenlets run, the holder
    among them."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def wait_turns(try_once):
    """Until try_once() succeeds, the other greenlets run between tries:
    a lock shared with other processes gives gevent nothing to wait on."""
    import gevent
    delay = 0.001
    while not try_once():
        gevent.sleep(delay)
        delay = min(delay * 2, 0.02)


class _Owner:
    """A thread's own file of the locks, closed when the thread's local
    data goes (the thread ended).  A child of a fork leaves its parent's
    alone: the number may name another file of the child's by then."""

    def __init__(self, shared_fd):
        self.pid = os.getpid()
        self.fd = os.open(f"/proc/self/fd/{shared_fd}",
                          os.O_RDWR | os.O_CLOEXEC)
        self.held = {}

    def __del__(self):
        if self.pid == os.getpid():
            try:
                os.close(self.fd)
            except OSError:
                pass


class _Held:
    """`with locks.reading(n):`, releasing only what it took."""

    def __init__(self, locks, number, take):
        self.locks, self.number, self.take = locks, number, take
        self.taken = False

    def __enter__(self):
        self.taken = self.take(self.number)

    def __exit__(self, *exc):
        if self.taken:
            self.locks.unlock(self.number)
